#include <fstream>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "embed/sample_images.h"
#include "error_of.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/folder_lock.h"
#include "vtl/search/catalog.h"
#include "vtl/search/image_index.h"
#include "vtl/search/vector_index.h"

namespace vtl::search {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

TEST(VectorIndex, FlatCosineFindsTheSameVectorFirstAndSavesAtomically) {
  TempDir dir("vtl_vector_index");
  torch::manual_seed(1);
  auto vectors = torch::randn({50, 16});
  VectorIndex index(16, "Flat", Metric::cosine);
  index.train(vectors);
  index.add(vectors);
  auto hits = index.search(vectors.slice(0, 10, 12) * 3.0, 5);  // scale: cosine ignores it
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0][0].id, 10);
  EXPECT_NEAR(hits[0][0].score, 1.0f, 1e-5);
  EXPECT_EQ(hits[1][0].id, 11);
  index.save(dir / "v.faiss");
  auto loaded = VectorIndex::load(dir / "v.faiss", Metric::cosine);
  EXPECT_EQ(loaded.size(), 50);
  EXPECT_EQ(loaded.search(vectors[33].unsqueeze(0), 1)[0][0].id, 33);
  EXPECT_THROW(VectorIndex::load(dir / "v.faiss", Metric::l2), Error);  // metric recorded
}

TEST(VectorIndex, HnswAndIvfPqAgreeWithExactSearchOnClusteredData) {
  torch::manual_seed(2);
  const int64_t dim = 32, n = 2000;
  auto centres = torch::randn({20, dim}) * 4;
  auto data =
      centres.index_select(0, torch::randint(0, 20, {n}, torch::kLong)) + torch::randn({n, dim});
  auto queries = data.slice(0, 0, 50) + 0.05 * torch::randn({50, dim});
  VectorIndex exact(dim, "Flat", Metric::l2);
  exact.add(data);
  auto truth = exact.search(queries, 1);
  for (const std::string factory : {"HNSW32", "IVF16,PQ8"}) {
    VectorIndex index(dim, factory, Metric::l2);
    index.train(data);
    index.add(data);
    index.set_search_effort(factory == "HNSW32" ? 64 : 8);
    auto hits = index.search(queries, 10);
    int found = 0;
    for (size_t q = 0; q < hits.size(); ++q)
      for (const auto& hit : hits[q]) found += hit.id == truth[q][0].id;
    EXPECT_GE(found, 45) << factory << ": exact nearest in the top 10 for " << found << "/50";
  }
}

TEST(VectorIndex, BadFactoryAndTooFewTrainingVectorsAreClearErrors) {
  EXPECT_THROW(VectorIndex(16, "NotAnIndex", Metric::l2), Error);
  VectorIndex ivf(16, "IVF256,Flat", Metric::l2);
  try {
    ivf.train(torch::randn({20, 16}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least 256"), std::string::npos) << e.what();
  }
}

TEST(Catalog, StoresEntriesAndFindsContentHashes) {
  TempDir dir("vtl_catalog");
  {
    Catalog catalog(dir / "c.sqlite", /*create=*/true);
    catalog.append({{0, "/a.png", 1, "cat", "h0", {{"bytes", 10}}},
                    {1, "/b.png", -1, "", "h1", nlohmann::json::object()}});
    EXPECT_EQ(catalog.size(), 2);
    // Ids must continue the sequence; a repeated hash is refused and nothing is added.
    EXPECT_THROW(catalog.append({{5, "/c.png", 0, "", "h2", {}}}), Error);
    EXPECT_THROW(catalog.append({{2, "/c.png", 0, "", "h2", {}}, {3, "/d.png", 0, "", "h0", {}}}),
                 Error);
    EXPECT_EQ(catalog.size(), 2);
  }
  Catalog catalog(dir / "c.sqlite");
  auto a = catalog.get(0);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->path, "/a.png");
  EXPECT_EQ(a->class_name, "cat");
  EXPECT_EQ(a->metadata.at("bytes"), 10);
  EXPECT_EQ(catalog.get(1)->label, -1);
  EXPECT_FALSE(catalog.get(7).has_value());
  EXPECT_EQ(catalog.find_by_hash("h1"), std::optional<int64_t>(1));
  EXPECT_FALSE(catalog.find_by_hash("zz").has_value());
  write_file_atomically(dir / "not.sqlite", "hello");
  EXPECT_THROW(Catalog(dir / "not.sqlite"), Error);
  EXPECT_THROW(Catalog(dir / "missing.sqlite"), Error);
}

class ImageIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  }
  static embed::FeatureExtractor extractor() {
    embed::BackboneOptions options;
    options.model = "resnet18";
    options.image_size = 64;
    return embed::FeatureExtractor(embed::load_backbone(options), "avg_pool", false);
  }
};

TEST_F(ImageIndexTest, BuildSearchAddAndDeduplicate) {
  TempDir dir("vtl_image_index"), copies("vtl_image_copies");
  auto ex = extractor();
  auto items = testing::sample_items(2);  // 6 images
  // The same file twice under another name: stored once.
  fs::copy_file(items[0].path, copies / "spider_copy.png");
  auto with_copy = items;
  with_copy.push_back({copies / "spider_copy.png", 0, "bugs"});
  auto report = ImageIndex::build(dir.path(), ex, with_copy, {});
  EXPECT_EQ(report.added, 6);
  EXPECT_EQ(report.duplicates, 1);
  EXPECT_EQ(report.total, 6);

  auto index = ImageIndex::open(dir.path());
  auto results = index.search(ex.embed_file(items[3].path), 3)[0];
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].entry.path, items[3].path.string());
  EXPECT_EQ(results[0].entry.class_name, "fruit");
  EXPECT_NEAR(results[0].score, 1.0f, 1e-4);
  EXPECT_GE(results[0].score, results[1].score);

  // Add: new images appended, already-catalogued content skipped.
  auto more = testing::sample_items(4);
  auto added = ImageIndex::add(dir.path(), ex, more, {});
  EXPECT_EQ(added.added, 6);
  EXPECT_EQ(added.duplicates, 6);
  EXPECT_EQ(added.total, 12);
  auto grown = ImageIndex::open(dir.path());
  EXPECT_EQ(grown.size(), 12);
  EXPECT_EQ(grown.catalog().size(), 12);
  auto last = grown.search(ex.embed_file(more.back().path), 1)[0];
  EXPECT_EQ(last[0].entry.path, more.back().path.string());
  // Building over an existing index is refused.
  EXPECT_THROW(ImageIndex::build(dir.path(), ex, items, {}), Error);
}

// A catalogued file rewritten in place (another picture under its name) is not a new image
// beside a stale one: add takes out its old entry and indexes its new content, and its old
// picture no longer finds it.
TEST_F(ImageIndexTest, AddReplacesTheEntryOfAFileRewrittenInPlace) {
  TempDir dir("vtl_index_rewrite"), files("vtl_index_rewrite_files");
  auto ex = extractor();
  const auto items = testing::sample_items(2);  // 6 images
  std::vector<embed::ImageItem> copied;
  for (size_t i = 0; i < items.size(); ++i) {
    const fs::path to = files / (std::to_string(i) + ".png");
    fs::copy_file(items[i].path, to);
    copied.push_back({to, items[i].label, items[i].class_name});
  }
  ImageIndex::build(dir.path(), ex, copied, {});
  // 0.png now shows image 3 re-encoded (other bytes than 3.png).
  cv::imwrite(copied[0].path.string(), cv::imread(items[3].path.string(), cv::IMREAD_UNCHANGED),
              {cv::IMWRITE_PNG_COMPRESSION, 0});
  const auto report = ImageIndex::add(dir.path(), ex, copied, {});
  EXPECT_EQ(report.replaced, 1);
  EXPECT_EQ(report.added, 1);
  EXPECT_EQ(report.duplicates, 5);
  EXPECT_EQ(report.total, 6);
  const auto index = ImageIndex::open(dir.path());
  EXPECT_EQ(index.catalog().size(), 6);
  const auto old_picture = index.search(ex.embed_file(items[0].path), 1)[0];
  EXPECT_NE(old_picture[0].entry.path, copied[0].path.string());
  const auto new_picture = index.search(ex.embed_file(copied[0].path), 2)[0];
  EXPECT_NEAR(new_picture[0].score, 1.0f, 1e-4);
  std::set<std::string> top_two{new_picture[0].entry.path, new_picture[1].entry.path};
  EXPECT_TRUE(top_two.count(copied[0].path.string())) << new_picture[0].entry.path;
  // The same bytes again change nothing.
  EXPECT_EQ(ImageIndex::add(dir.path(), ex, copied, {}).replaced, 0);
}

// One command changes an index at a time: while another holds it, add and remove fail at
// once (before embedding anything), naming the index; afterwards they work.
TEST_F(ImageIndexTest, AnIndexBeingChangedByAnotherCommandIsRefusedAtOnce) {
  TempDir dir("vtl_index_locked");
  auto ex = extractor();
  ImageIndex::build(dir.path(), ex, testing::sample_items(1), {});
  const auto more = testing::sample_items(2);
  {
    const FolderLock other(dir.path(), "test", "");
    const std::string message =
        testing::error_of([&] { ImageIndex::add(dir.path(), ex, more, {}); });
    EXPECT_NE(message.find("another vtl index command is writing into " + dir.path().string()),
              std::string::npos)
        << message;
    EXPECT_THROW(ImageIndex::prune(dir.path()), Error);
  }
  EXPECT_EQ(ImageIndex::add(dir.path(), ex, more, {}).total, 6);
}

// A file that cannot be decoded is left out and reported, the others are added; an add
// of nothing readable leaves the index byte for byte as it was.
TEST_F(ImageIndexTest, UnreadableImagesAreLeftOutAndReported) {
  TempDir dir("vtl_image_index_atomic"), bad("vtl_bad_images");
  auto ex = extractor();
  ImageIndex::build(dir.path(), ex, testing::sample_items(1), {});
  const auto before_json = read_file(dir / "index.json");
  const auto before_index = read_file(dir / "index.faiss");
  const auto before_catalog = read_file(dir / "catalog.sqlite");
  write_file_atomically(bad / "broken.png", "\x89PNG\r\n\x1a\nnot really");

  const auto only_bad = ImageIndex::add(dir.path(), ex, {{bad / "broken.png", 0, "bugs"}}, {});
  EXPECT_EQ(only_bad.added, 0);
  ASSERT_EQ(only_bad.unreadable.size(), 1u);
  EXPECT_EQ(only_bad.unreadable[0].path, bad / "broken.png");
  EXPECT_NE(only_bad.unreadable[0].reason.find("not a readable image"), std::string::npos)
      << only_bad.unreadable[0].reason;
  EXPECT_EQ(read_file(dir / "index.json"), before_json);
  EXPECT_EQ(read_file(dir / "index.faiss"), before_index);
  EXPECT_EQ(read_file(dir / "catalog.sqlite"), before_catalog);
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".new-"), std::string::npos)
        << "left behind: " << entry.path();

  auto items = testing::sample_items(2);
  items.insert(items.begin() + 1, {bad / "broken.png", 0, "bugs"});
  // A file gone (or unreadable) since it was listed: left out and named, not fatal.
  items.insert(items.begin() + 2, {bad / "gone.png", 0, "bugs"});
  const int64_t before = ImageIndex::open(dir.path()).size();
  const auto mixed = ImageIndex::add(dir.path(), ex, items, {});
  ASSERT_EQ(mixed.unreadable.size(), 2u);
  EXPECT_EQ(mixed.unreadable[0].path, bad / "gone.png");
  EXPECT_NE(mixed.unreadable[0].reason.find("cannot read"), std::string::npos)
      << mixed.unreadable[0].reason;
  EXPECT_GT(mixed.added, 0);
  EXPECT_EQ(mixed.total, before + mixed.added);
  auto index = ImageIndex::open(dir.path());
  EXPECT_EQ(index.size(), mixed.total);
  // Every catalogued image is found as its own nearest neighbour: rows and entries agree
  // after the unreadable file was taken out of the middle of a batch.
  for (const auto& item : testing::sample_items(2)) {
    const auto hits = index.search(ex.embed_file(item.path), 1);
    ASSERT_EQ(hits.size(), 1u);
    ASSERT_FALSE(hits[0].empty());
    EXPECT_EQ(fs::path(hits[0][0].entry.path).filename(), item.path.filename());
  }
}

TEST_F(ImageIndexTest, QueriesFromAnotherModelAndBrokenFoldersAreRefused) {
  TempDir dir("vtl_image_index_refuse");
  auto ex = extractor();
  ImageIndex::build(dir.path(), ex, testing::sample_items(1), {});
  auto index = ImageIndex::open(dir.path());
  embed::BackboneOptions other;
  other.model = "resnet18";
  other.image_size = 64;
  other.seed = 7;
  embed::FeatureExtractor other_ex(embed::load_backbone(other), "avg_pool", false);
  try {
    index.check_query_spec(other_ex.spec());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another feature extractor"), std::string::npos);
  }
  EXPECT_THROW(ImageIndex::add(dir.path(), other_ex, testing::sample_items(2), {}), Error);
  fs::remove(dir / "catalog.sqlite");
  try {
    ImageIndex::open(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("catalog.sqlite is missing"), std::string::npos)
        << e.what();
  }
}

TEST_F(ImageIndexTest, DuplicatesAndIndexFromExtractedFeatures) {
  TempDir features("vtl_index_features"), dir("vtl_index_from_features"), copy("vtl_dup");
  auto ex = extractor();
  auto items = testing::sample_items(2);
  // A re-encoded copy (different bytes, same pixels) is a near duplicate.
  cv::Mat image = cv::imread(items[1].path.string(), cv::IMREAD_UNCHANGED);
  cv::imwrite((copy / "ladybug.png").string(), image, {cv::IMWRITE_PNG_COMPRESSION, 0});
  ASSERT_NE(read_file(copy / "ladybug.png"), read_file(items[1].path));
  items.push_back({copy / "ladybug.png", 0, "bugs"});
  embed::ExtractOptions options;
  options.classes = testing::sample_classes();
  embed::extract_features(ex, items, features.path(), options);
  auto report =
      ImageIndex::build_from_features(dir.path(), embed::load_features(features.path()), {});
  EXPECT_EQ(report.added, 7);
  auto index = ImageIndex::open(dir.path());
  EXPECT_EQ(embed::spec_mismatch(index.spec(), ex.spec()), "");
  auto pairs = index.find_duplicates(0.999f);
  ASSERT_GE(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].a, 1);
  EXPECT_EQ(pairs[0].b, 6);
}

// A group of 30 near-identical images has 435 pairs: all are found, though each image is
// first asked for its 10 nearest (a fixed 10 found 30 * 10 / 2 at most).
TEST_F(ImageIndexTest, DuplicatesAreEveryPairOfALargeGroup) {
  TempDir files("vtl_dup_group"), dir("vtl_dup_group_index");
  embed::FeatureSet set;
  set.spec = extractor().spec();
  torch::manual_seed(4);
  const int64_t dim = set.spec.dim, group = 30, others = 20;
  const auto centre = torch::randn({dim});
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < group + others; ++i) {
    rows.push_back(i < group ? centre + 1e-3 * torch::randn({dim}) : torch::randn({dim}));
    const fs::path file = files / ("image" + std::to_string(i) + ".png");
    write_file_atomically(file, "bytes of image " + std::to_string(i));  // hashed, not decoded
    set.rows.push_back({file, -1, ""});
    set.items.push_back(i);
  }
  set.features = torch::stack(rows);
  ImageIndex::build_from_features(dir.path(), set, {});
  const auto index = ImageIndex::open(dir.path());
  const auto pairs = index.find_duplicates(0.99f, 10);
  EXPECT_EQ(pairs.size(), size_t(group * (group - 1) / 2));
  for (const auto& pair : pairs) EXPECT_LT(pair.b, group);
}

// Each dataset numbers its own classes from 0; in the index a class keeps one id.
TEST_F(ImageIndexTest, AClassKeepsOneIdAcrossAddsAndMerges) {
  TempDir dir("vtl_index_ids"), other("vtl_index_ids_other"), merged("vtl_index_ids_merged");
  auto ex = extractor();
  const auto items = testing::sample_items(2);  // bugs 0, fruit 1, homes 2
  std::vector<embed::ImageItem> bugs_and_fruit, homes_and_new;
  for (const auto& item : items)
    if (item.class_name != "homes") bugs_and_fruit.push_back(item);
  for (const auto& item : items) {
    if (item.class_name != "homes") continue;
    homes_and_new.push_back({item.path, 1, "homes"});  // class 1 of a {cats, homes} dataset
  }
  fs::copy_file(items.front().path, other / "cat.png");
  homes_and_new.push_back({other / "cat.png", 0, "cats"});
  std::ofstream(other / "cat.png", std::ios::app) << "x";  // other bytes: not a duplicate

  ImageIndex::build(dir.path(), ex, bugs_and_fruit, {});
  ImageIndex::add(dir.path(), ex, homes_and_new, {});
  const auto ids = ImageIndex::open(dir.path()).catalog().class_ids();
  const std::map<std::string, int64_t> expected{
      {"bugs", 0}, {"fruit", 1}, {"homes", 2}, {"cats", 3}};
  EXPECT_EQ(ids, expected);
  for (const auto& entry : ImageIndex::open(dir.path()).catalog().all())
    EXPECT_EQ(entry.label, expected.at(entry.class_name)) << entry.path;

  TempDir second("vtl_index_ids_second");
  ImageIndex::build(second.path(), ex, homes_and_new, {});  // cats 0, homes 1
  ImageIndex::merge(merged / "index", {dir.path(), second.path()});
  for (const auto& entry : ImageIndex::open(merged / "index").catalog().all())
    EXPECT_EQ(entry.label, expected.at(entry.class_name)) << entry.path;
}

// Files deleted after indexing: prune takes them out, the others are found as before.
TEST_F(ImageIndexTest, PruneTakesOutTheImagesWhoseFilesAreGone) {
  TempDir dir("vtl_index_prune"), copies("vtl_index_prune_files");
  auto ex = extractor();
  std::vector<embed::ImageItem> items;
  for (const auto& item : testing::sample_items(2)) {
    const fs::path copy = copies / item.path.filename();
    fs::copy_file(item.path, copy);
    items.push_back({copy, item.label, item.class_name});
  }
  ImageIndex::build(dir.path(), ex, items, {});
  const auto before = read_file(dir / "index.faiss");
  EXPECT_TRUE(ImageIndex::prune(dir.path()).empty());  // nothing gone: nothing written
  EXPECT_EQ(read_file(dir / "index.faiss"), before);

  fs::remove(items[1].path);
  fs::remove(items[4].path);
  const auto gone = ImageIndex::prune(dir.path());
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_EQ(gone[0].id, 1);
  EXPECT_EQ(gone[0].path, items[1].path.string());
  EXPECT_EQ(gone[1].id, 4);
  auto index = ImageIndex::open(dir.path());
  EXPECT_EQ(index.size(), static_cast<int64_t>(items.size()) - 2);
  for (size_t i : {0, 2, 3, 5}) {
    const auto hit = index.search(ex.embed_file(items[i].path), 1)[0].at(0);
    EXPECT_EQ(hit.entry.path, items[i].path.string());
    EXPECT_NEAR(hit.score, 1.0f, 1e-4);
  }
  for (const auto& item : items) fs::remove(item.path);
  EXPECT_THROW(ImageIndex::prune(dir.path()), Error);  // every file gone: refused
  EXPECT_EQ(ImageIndex::open(dir.path()).size(), index.size());
}

TEST_F(ImageIndexTest, MergeCombinesShardsAndDropsRepeatedContent) {
  TempDir a("vtl_merge_a"), b("vtl_merge_b"), merged("vtl_merge_out");
  auto ex = extractor();
  auto items = testing::sample_items();
  const std::vector<embed::ImageItem> first(items.begin(), items.begin() + 7);
  const std::vector<embed::ImageItem> second(items.begin() + 5, items.end());  // 2 repeated
  IndexOptions options;
  options.factory = "HNSW32";
  ImageIndex::build(a.path(), ex, first, options);
  ImageIndex::build(b.path(), ex, second, options);
  auto report = ImageIndex::merge(merged / "index", {a.path(), b.path()});
  EXPECT_EQ(report.total, 12);
  EXPECT_EQ(report.duplicates, 2);
  auto index = ImageIndex::open(merged / "index");
  EXPECT_EQ(index.factory(), "HNSW32");
  for (size_t i : {0, 6, 11}) {
    auto hit = index.search(ex.embed_file(items[i].path), 1)[0][0];
    EXPECT_EQ(hit.entry.path, items[i].path.string());
    EXPECT_EQ(hit.entry.id, static_cast<int64_t>(i));
  }
  // Another factory cannot be merged.
  TempDir flat("vtl_merge_flat"), bad("vtl_merge_bad");
  ImageIndex::build(flat.path(), ex, second, {});
  EXPECT_THROW(ImageIndex::merge(bad / "index", {a.path(), flat.path()}), Error);
}

}  // namespace
}  // namespace vtl::search
