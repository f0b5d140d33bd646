#include <cstdint>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "vtl/core/error.h"
#include "vtl/weights/safetensors.h"
#include "vtl/weights/weights_file.h"

namespace vtl::weights {
namespace {

using testing::run_command;
using testing::slurp;
using testing::TempDir;
using testing::write_bytes;

StateDict sample() {
  StateDict sd;
  sd["a.weight"] = torch::arange(12, torch::kFloat).reshape({3, 4}) * 0.25 - 1;
  sd["a.bias"] = torch::tensor({1.5, -2.0}, torch::kHalf);
  sd["b"] = torch::tensor({3.0, -0.5}).to(torch::kBFloat16);
  sd["count"] = torch::tensor(9, torch::kLong);
  sd["mask"] = torch::tensor({true, false, true});
  sd["empty"] = torch::zeros({0, 3});
  sd["strided"] = torch::arange(20, torch::kInt).reshape({4, 5}).t();  // non-contiguous input
  return sd;
}

void expect_equal(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(b.count(key));
    EXPECT_EQ(t.scalar_type(), b.at(key).scalar_type());
    EXPECT_EQ(t.sizes(), b.at(key).sizes());
    EXPECT_TRUE(torch::equal(t, b.at(key)));
  }
}

TEST(Safetensors, RoundTrip) {
  TempDir dir("vtl_weights_st");
  const auto path = dir / "model.safetensors";
  save_safetensors(path, sample(), {{"format", "pt"}, {"note", "x"}});
  WeightsFileInfo info;
  const auto loaded = load_weights_file(path, &info);
  expect_equal(sample(), loaded);
  EXPECT_EQ(info.format, "safetensors");
  EXPECT_EQ(info.metadata.at("format"), "pt");
  // Header is padded to 8 bytes; no temporary file is left beside the target.
  const std::string bytes = slurp(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

// Python (hand-parsing, as the safetensors module is not installed) reads our file.
TEST(Safetensors, PythonReadsOurFile) {
  TempDir dir("vtl_weights_st-py");
  const auto path = dir / "model.safetensors";
  save_safetensors(path, sample());
  const auto script = dir / "check.py";
  write_bytes(script, R"(
import json, struct, sys, torch
data = open(sys.argv[1], 'rb').read()
n, = struct.unpack('<Q', data[:8])
header = json.loads(data[8:8 + n])
body = data[8 + n:]
dtypes = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64,
          'I32': torch.int32, 'BOOL': torch.bool}
t = {}
for k, v in header.items():
    b, e = v['data_offsets']
    raw = bytearray(body[b:e])
    t[k] = (torch.frombuffer(raw, dtype=dtypes[v['dtype']]) if raw else torch.empty(0, dtype=dtypes[v['dtype']])).reshape(v['shape'])
assert torch.equal(t['a.weight'], torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1)
assert torch.equal(t['a.bias'], torch.tensor([1.5, -2.0], dtype=torch.float16))
assert torch.equal(t['b'], torch.tensor([3.0, -0.5]).bfloat16())
assert t['count'].shape == () and t['count'].item() == 9
assert t['mask'].tolist() == [True, False, True]
assert t['empty'].shape == (0, 3)
assert torch.equal(t['strided'], torch.arange(20, dtype=torch.int32).reshape(4, 5).t())
print('python-ok')
)");
  std::string output;
  ASSERT_EQ(run_command("/usr/bin/python3 " + script.string() + " " + path.string(), &output), 0)
      << output;
  EXPECT_NE(output.find("python-ok"), std::string::npos);
}

std::string make_file(const std::string& header, const std::string& body) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  return bytes + header + body;
}

void expect_rejected(const std::string& bytes, const std::string& fragment) {
  TempDir dir("vtl_weights_st-bad");
  const auto path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  try {
    load_safetensors(path);
    ADD_FAILURE() << "accepted: " << fragment;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(Safetensors, MalformedHeadersAreRejected) {
  const std::string body(16, '\0');
  expect_rejected("abc", "not a safetensors file");
  expect_rejected(make_file("{", body), "not JSON");
  expect_rejected(make_file("[1]", body), "not a JSON object");
  expect_rejected(
      make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", body).substr(0, 20),
      "exceeds the file");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", body),
                  "outside");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", body),
                  "needs 12 bytes");
  expect_rejected(make_file(R"({"w":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}})", body),
                  "unsupported dtype");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", body),
                  "non-negative");
  expect_rejected(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", body),
                  "outside");
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            body),
                  "overlap");
  expect_rejected(
      make_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                body),
      "too large");
  expect_rejected(make_file(R"({"__metadata__":{"a":1}})", body), "not a string");
}

}  // namespace
}  // namespace vtl::weights
