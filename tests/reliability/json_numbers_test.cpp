// Description files with numbers no field can hold (found by fuzzing the JSON readers:
// "img_size": 2.2e55 in run.json reached a float-to-int conversion, undefined behaviour).

#include <gtest/gtest.h>

#include "cli/run_cli.h"
#include "core/json_document.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {

std::string parse_error(const std::string& text) {
  try {
    parse_json_document(text, "x.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ReliabilityJsonNumbers, FloatsNoIntegerFieldCanHoldAreRefusedNamingTheFile) {
  EXPECT_EQ(parse_error(R"({"lr": 0.001, "epochs": 10, "mean": [0.485, -2.5e3], "n": 1e9})"), "");
  for (const char* text : {R"({"img_size": 2.2e55})", R"({"a": [1, {"b": -3e9}]})",
                           R"({"rows": 1e300})", R"([99999999999999999999999])"}) {
    const std::string error = parse_error(text);
    EXPECT_NE(error.find("x.json: the number"), std::string::npos) << text << " -> " << error;
  }
  EXPECT_NE(parse_error("{\"a\": ").find("x.json: malformed JSON"), std::string::npos);
  EXPECT_NE(parse_error(R"({"rows": 1e400})").find("x.json: malformed JSON"), std::string::npos);
}

TEST(ReliabilityJsonNumbers, ResumingARunWhoseRunJsonHoldsAHugeImageSizeIsAnError) {
  TempDir dir("vtl_rel_json_numbers");
  write_file_atomically(dir / "run" / "run.json", R"({"data": "/nowhere", "img_size": 2.2e55})");
  const auto run = run_cli("train --resume " + (dir / "run").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("run.json: the number 2.2e+55 is out of range"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace vtl::testing
