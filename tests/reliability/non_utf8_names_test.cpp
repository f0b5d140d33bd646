// A file name that is not UTF-8 (Latin-1 "café") in a folder that is indexed, searched and
// served: the image is indexed like any other, JSON shows the odd byte as U+FFFD, the
// text output keeps the name's real bytes, and the thumbnail is still found (by id).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#if defined(VTL_HAVE_SERVE)
#include "cli/serve_process.h"
#include "serve/http.h"
#endif

namespace vtl::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

TEST(ReliabilityNonUtf8, NameIsIndexedSearchedAndServed) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_rel_latin1");
  make_class_tree(dir / "images", 2);
  const std::string latin1_name = "caf\xE9 apple.png";  // 0xE9 alone is not UTF-8
  const fs::path apple = clipart_root() / "food/fruit/apple_wedge.png";
  fs::copy_file(apple, dir / "images" / "fruit" / latin1_name);
  const std::string shown_name = "caf\xEF\xBF\xBD apple.png";  // U+FFFD in UTF-8

  const fs::path index = dir / "index";
  auto run =
      run_cli("index build " + (dir / "images").string() +
              " --model resnet18 --weights random --image-size 64 --json --out " + index.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(json::parse(run.output).at("total"), 7);

  run = run_cli("search " + index.string() + " " + apple.string() + " -k 1 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto hit = json::parse(run.output)[0].at("results")[0];
  EXPECT_EQ(fs::path(hit.at("path").get<std::string>()).filename(), shown_name);
  EXPECT_NEAR(hit.at("score").get<double>(), 1.0, 1e-4);
  run = run_cli("search " + index.string() + " " + apple.string() + " -k 1");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find(latin1_name), std::string::npos) << run.output;

#if defined(VTL_HAVE_SERVE)
  ServeProcess server({"serve", index.string(), "--port", "0"});
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  httplib::MultipartFormDataItems items = {{"image", read_file(apple), "query.png", "image/png"},
                                           {"k", "1", "", ""}};
  auto res = client.Post("/api/search", items);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto served = json::parse(res->body).at("results")[0];
  EXPECT_EQ(served.at("name"), shown_name);
  auto thumbnail = client.Get(served.at("image").get<std::string>());
  ASSERT_TRUE(thumbnail);
  EXPECT_EQ(thumbnail->status, 200);
  EXPECT_EQ(thumbnail->get_header_value("Content-Type"), "image/jpeg");
#endif
}

}  // namespace
}  // namespace vtl::testing
