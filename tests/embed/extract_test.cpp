#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/data/image.h"
#include "vtl/data/preprocess.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/npy.h"

namespace vtl::embed {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

FeatureExtractor small_extractor(const std::string& layer = "avg_pool", bool l2 = false) {
  BackboneOptions options;
  options.model = "resnet18";
  options.image_size = 64;
  return FeatureExtractor(load_backbone(options), layer, l2);
}

bool have_python_numpy() { return testing::run_command("/usr/bin/python3 -c 'import numpy'") == 0; }

TEST(Npy, RoundTripsFloat32AndFloat16AndNumpyReadsIt) {
  TempDir dir("vtl_npy");
  auto matrix = torch::arange(12, torch::kFloat32).reshape({3, 4}) / 8;
  write_npy(dir / "a.npy", matrix);
  write_npy(dir / "h.npy", matrix.to(torch::kHalf));
  EXPECT_TRUE(torch::equal(read_npy(dir / "a.npy"), matrix));
  auto half = read_npy(dir / "h.npy");
  EXPECT_EQ(half.scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(half.to(torch::kFloat32), matrix));
  // The header is 64-byte aligned like numpy's own.
  EXPECT_EQ(read_npy_header(dir / "a.npy").data_offset % 64, 0u);
  if (!have_python_numpy()) GTEST_SKIP() << "numpy not available for the cross-check";
  std::string output;
  ASSERT_EQ(testing::run_command("/usr/bin/python3 -c \"import numpy as n; a=n.load('" +
                                     (dir / "a.npy").string() + "'); h=n.load('" +
                                     (dir / "h.npy").string() +
                                     "'); print(a.shape, a.dtype, h.dtype, a.sum(), h.sum())\"",
                                 &output),
            0)
      << output;
  EXPECT_EQ(output, "(3, 4) float32 float16 8.25 8.25\n");
}

// NumPy's default dtype: a query vector saved from Python as float64 is read as it is.
TEST(Npy, ReadsFloat64AsNumpySavesByDefault) {
  TempDir dir("vtl_npy_f64");
  const auto values = torch::tensor({0.5, -1.25, 3.0}, torch::kFloat64);
  const std::string data(static_cast<const char*>(values.data_ptr()), 3 * sizeof(double));
  write_file_atomically(dir / "q.npy", npy_header(FeatureDtype::f64, {3}) + data);
  EXPECT_EQ(read_npy_header(dir / "q.npy").dtype, FeatureDtype::f64);
  const auto read = read_npy(dir / "q.npy");
  EXPECT_EQ(read.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(torch::equal(read, values.view({1, 3})));
}

TEST(Npy, RejectsFilesItCannotReadNamingThem) {
  TempDir dir("vtl_npy_bad");
  write_file_atomically(dir / "text.npy", "not numpy");
  try {
    read_npy(dir / "text.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text.npy"), std::string::npos) << e.what();
  }
  write_npy(dir / "ok.npy", torch::ones({4, 4}));
  auto bytes = read_file(dir / "ok.npy");
  write_file_atomically(dir / "short.npy", bytes.substr(0, bytes.size() - 8));
  EXPECT_THROW(read_npy(dir / "short.npy"), Error);
  write_file_atomically(dir / "int.npy",
                        npy_header(FeatureDtype::f32, {1})
                                .replace(npy_header(FeatureDtype::f32, {1}).find("<f4"), 3, "<i8") +
                            std::string(8, '\0'));
  EXPECT_THROW(read_npy(dir / "int.npy"), Error);
}

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
    items_ = testing::sample_items();
  }
  ExtractOptions options() const {
    ExtractOptions o;
    o.batch_size = 3;
    o.chunk_rows = 4;
    o.classes = testing::sample_classes();
    return o;
  }
  std::vector<ImageItem> items_;
};

TEST_F(ExtractTest, WritesFeaturesManifestAndDescription) {
  TempDir dir("vtl_extract");
  auto extractor = small_extractor();
  auto result = extract_features(extractor, items_, dir.path(), options());
  EXPECT_EQ(result.rows, 12);
  EXPECT_EQ(result.computed_items, 12);
  EXPECT_FALSE(fs::exists(dir / ".partial"));
  auto set = load_features(dir.path());
  ASSERT_EQ(set.features.sizes(), (std::vector<int64_t>{12, 512}));
  EXPECT_EQ(set.rows[5].path, items_[5].path);
  EXPECT_EQ(set.rows[5].label, 1);
  EXPECT_EQ(set.rows[5].class_name, "fruit");
  EXPECT_EQ(set.spec.model, "resnet18");
  EXPECT_EQ(set.spec.layer, "avg_pool");
  EXPECT_EQ(set.spec.preprocessing.crop, 64);
  // Row i is image i.
  auto direct = extractor.embed_file(items_[7].path);
  EXPECT_TRUE(torch::allclose(set.features[7], direct, 1e-5, 1e-5));
  // A second run with the same input finds the finished result.
  auto again = extract_features(extractor, items_, dir.path(), options());
  EXPECT_EQ(again.computed_items, 0);
  EXPECT_EQ(again.resumed_items, 12);
}

// On a GPU the extractor gives the CPU's vectors (up to cuDNN's rounding), on the CPU.
TEST_F(ExtractTest, CudaExtractionMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto on_cpu = small_extractor();
  auto on_gpu = small_extractor();
  on_gpu.to(torch::kCUDA);
  std::vector<fs::path> paths;
  for (size_t i = 0; i < 5; ++i) paths.push_back(items_[i].path);
  const auto expected = on_cpu.embed_files(paths, 2);
  const auto actual = on_gpu.embed_files(paths, 2);
  EXPECT_TRUE(actual.device().is_cpu());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-3, 1e-3));
}

TEST_F(ExtractTest, InterruptedRunContinuesWhereItStopped) {
  TempDir full("vtl_extract_full"), resumed("vtl_extract_resumed");
  auto extractor = small_extractor("layer3", /*l2=*/true);
  extract_features(extractor, items_, full.path(), options());

  auto stopping = options();
  stopping.progress = [](int64_t done, int64_t) {
    if (done >= 8) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(extract_features(extractor, items_, resumed.path(), stopping), std::runtime_error);
  EXPECT_FALSE(fs::exists(resumed / "features.json"));
  EXPECT_TRUE(fs::exists(resumed / ".partial" / "chunk-000001.npy"));

  auto result = extract_features(extractor, items_, resumed.path(), options());
  EXPECT_EQ(result.resumed_items, 8);
  EXPECT_EQ(result.computed_items, 4);
  auto a = load_features(full.path()), b = load_features(resumed.path());
  EXPECT_EQ(a.features.size(1), 256);  // layer3 of resnet18, pooled
  EXPECT_TRUE(torch::allclose(a.features, b.features, 1e-6, 1e-6));
  EXPECT_NEAR(b.features[3].norm().item<float>(), 1.0f, 1e-5);
  EXPECT_EQ(read_file(full / "manifest.jsonl"), read_file(resumed / "manifest.jsonl"));
}

TEST_F(ExtractTest, OtherSettingsInTheSameFolderAreRefusedUnlessOverwriting) {
  TempDir dir("vtl_extract_other");
  auto extractor = small_extractor();
  extract_features(extractor, items_, dir.path(), options());
  auto other = small_extractor("layer4");
  try {
    extract_features(other, items_, dir.path(), options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  auto overwrite = options();
  overwrite.overwrite = true;
  EXPECT_EQ(extract_features(other, items_, dir.path(), overwrite).computed_items, 12);
  EXPECT_EQ(load_features(dir.path()).spec.layer, "layer4");
}

TEST_F(ExtractTest, ShardsMergeToTheUnshardedResult) {
  TempDir whole("vtl_extract_whole"), merged("vtl_extract_merged");
  auto extractor = small_extractor();
  auto opts = options();
  opts.dtype = FeatureDtype::f16;
  extract_features(extractor, items_, whole.path(), opts);
  std::vector<fs::path> shards;
  std::vector<std::unique_ptr<TempDir>> dirs;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(std::make_unique<TempDir>("vtl_extract_shard"));
    auto shard = opts;
    shard.shard_index = i;
    shard.shard_count = 3;
    EXPECT_EQ(extract_features(extractor, items_, dirs.back()->path(), shard).rows, 4);
    shards.push_back(dirs.back()->path());
  }
  // Missing shard: refused.
  EXPECT_THROW(merge_feature_shards({shards[0], shards[2]}, merged.path()), Error);
  merge_feature_shards({shards[2], shards[0], shards[1]}, merged.path());
  EXPECT_EQ(read_file(whole / "manifest.jsonl"), read_file(merged / "manifest.jsonl"));
  EXPECT_EQ(read_file(whole / "features.npy"), read_file(merged / "features.npy"));
  EXPECT_EQ(read_file(whole / "features.json"), read_file(merged / "features.json"));
  EXPECT_EQ(read_npy(merged / "features.npy").scalar_type(), torch::kHalf);

  // A merge that fails part-way (a shard's rows cut short) leaves the earlier result.
  const auto npy = read_file(shards[1] / "features.npy");
  write_file_atomically(shards[1] / "features.npy", npy.substr(0, npy.size() - 10));
  EXPECT_THROW(merge_feature_shards({shards[0], shards[1], shards[2]}, merged.path()), Error);
  EXPECT_EQ(read_file(whole / "features.npy"), read_file(merged / "features.npy"));
  EXPECT_EQ(read_file(whole / "features.json"), read_file(merged / "features.json"));
  EXPECT_EQ(load_features(merged.path()).features.size(0), 12);
}

TEST_F(ExtractTest, UndecodableFileIsNamedOrSkipped) {
  TempDir dir("vtl_extract_bad"), out("vtl_extract_bad_out");
  write_file_atomically(dir / "broken.png", "\x89PNG\r\n\x1a\n garbage");
  auto items = items_;
  items.insert(items.begin() + 5, ImageItem{dir / "broken.png", 0, "bugs"});  // chunk 2 of 4
  auto extractor = small_extractor();
  try {
    extract_features(extractor, items, out.path(), options());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("with --skip-bad"), std::string::npos) << e.what();
  }
  // The same job with --skip-bad goes on from the stopped one (no --overwrite needed): the
  // chunk finished before the bad file is kept.
  auto skipping = options();
  skipping.skip_bad = true;
  auto result = extract_features(extractor, items, out.path(), skipping);
  EXPECT_EQ(result.rows, 12);
  EXPECT_EQ(result.skipped, 1);
  EXPECT_EQ(result.resumed_items, 4);  // the first chunk, finished before the bad file
  EXPECT_NE(read_file(out / "skipped.jsonl").find("broken.png"), std::string::npos);
  auto set = load_features(out.path());
  EXPECT_EQ(set.items[5], 6);  // item 5 was skipped
}

// bf16 autocast on the CPU: float32 vectors that point where the f32 ones do, recorded in
// the spec; fp16 is refused without CUDA.
TEST_F(ExtractTest, Bf16AutocastGivesCloseVectorsAndIsRecorded) {
  auto f32 = small_extractor();
  auto bf16 = small_extractor();
  bf16.set_amp(models::Precision::bf16);
  std::vector<fs::path> paths;
  for (size_t i = 0; i < 6; ++i) paths.push_back(items_[i].path);
  const auto expected = f32.embed_files(paths, 3);
  const auto actual = bf16.embed_files(paths, 3);
  EXPECT_EQ(actual.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::equal(actual, expected)) << "autocast did not run";
  const auto cosine = torch::cosine_similarity(actual, expected, 1);
  EXPECT_GT(cosine.min().item<double>(), 0.99) << cosine;
  TempDir dir("vtl_extract_bf16");
  extract_features(bf16, {items_.begin(), items_.begin() + 4}, dir.path(), options());
  EXPECT_EQ(load_features(dir.path()).spec.amp, models::Precision::bf16);
  EXPECT_EQ(extractor_for_spec(bf16.spec()).spec().amp, models::Precision::bf16);
  if (!torch::cuda::is_available()) EXPECT_THROW(f32.set_amp(models::Precision::fp16), Error);
}

TEST(FeatureSpec, MismatchNamesTheDifference) {
  FeatureSpec a{"resnet18", "random(seed=0)", "avg_pool", true, {}, 512};
  FeatureSpec b = a;
  EXPECT_EQ(spec_mismatch(a, b), "");
  b.model = "resnet50";
  EXPECT_EQ(spec_mismatch(a, b), "model resnet18 vs resnet50");
  auto round_trip = feature_spec_from_json(to_json(a), "test");
  EXPECT_EQ(spec_mismatch(a, round_trip), "");
  EXPECT_THROW(feature_spec_from_json(nlohmann::json::object(), "x.json"), Error);
  // Files written before the autocast field read as f32.
  auto without_amp = to_json(a);
  without_amp.erase("amp");
  EXPECT_EQ(feature_spec_from_json(without_amp, "old.json").amp, models::Precision::f32);
  a.amp = models::Precision::bf16;
  EXPECT_EQ(to_json(a).at("amp"), "bf16");
  // What a user can act on: the input size option, and a weights file rewritten in place.
  FeatureSpec c = round_trip, d = round_trip;
  d.preprocessing.crop = 96;
  EXPECT_EQ(spec_mismatch(c, d), "input size 224 vs 96 (--img-size)");
  c.weights = "folder:/runs/cats@sha256:a61d19b060798c85";
  d.weights = "folder:/runs/cats@sha256:b700d38508064af2";
  EXPECT_EQ(spec_mismatch(c, d),
            "/runs/cats has changed since the earlier vectors were made (other bytes)");
  d.weights = "folder:/moved/cats@sha256:a61d19b060798c85";
  d.preprocessing = c.preprocessing;
  EXPECT_EQ(spec_mismatch(c, d), "");  // moved, the same bytes
}

TEST(FeatureExtractor, EmbedImagesNamesAnEmptyOrWrongTypedImage) {
  auto extractor = small_extractor();
  EXPECT_EQ(extractor.embed_images({}).sizes(), (std::vector<int64_t>{0, 512}));
  const cv::Mat rgb(40, 50, CV_8UC3, cv::Scalar(10, 200, 30));
  EXPECT_EQ(extractor.embed_images({rgb, rgb}).sizes(), (std::vector<int64_t>{2, 512}));
  for (const auto& [image, message] : std::vector<std::pair<cv::Mat, std::string>>{
           {cv::Mat(), "image 1 is empty"},
           {cv::Mat(40, 50, CV_8UC4), "image 1 has 4 channel(s) of 1-byte values"},
           {cv::Mat(40, 50, CV_32FC3), "image 1 has 3 channel(s) of 4-byte values"}}) {
    try {
      extractor.embed_images({rgb, image});
      ADD_FAILURE() << message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace vtl::embed
