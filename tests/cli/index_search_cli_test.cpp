#include <algorithm>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/npy.h"

namespace vtl::testing {
namespace {

namespace fs = std::filesystem;

// Real folders are messy: an undecodable file is left out and named, an image lying next
// to the class folders is listed (it has no class), and the rest is indexed.
TEST(IndexSearchCli, UnreadableAndLooseImagesAreLeftOutAndNamed) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_index_cli_messy");
  make_class_tree(dir / "data", 2);  // 3 classes x 2
  write_file_atomically(dir / "data" / "fruit" / "broken.png", "\x89PNG\r\n\x1a\ncut short");
  std::filesystem::copy_file(sample_items()[0].path, dir / "data" / "loose.png");
  const std::string index = (dir / "index").string();
  auto run = run_cli("index build " + (dir / "data").string() +
                     " --model resnet18 --weights random --image-size 64 --json --out " + index);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // (libpng's own warnings about the broken file come first, on stderr)
  const auto summary = nlohmann::json::parse(run.output.substr(run.output.find('{')));
  EXPECT_EQ(summary.at("total"), 6);
  ASSERT_EQ(summary.at("unreadable").size(), 1u);
  EXPECT_EQ(summary.at("unreadable")[0].at("path"),
            (dir / "data" / "fruit" / "broken.png").string());
  ASSERT_EQ(summary.at("left_out").size(), 1u);
  EXPECT_EQ(summary.at("left_out")[0].at("path"), (dir / "data" / "loose.png").string());

  auto plain = run_cli("index build " + (dir / "data").string() +
                       " --model resnet18 --weights random --image-size 64 --out " +
                       (dir / "index2").string());
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("1 unreadable image left out:\n  " +
                              (dir / "data" / "fruit" / "broken.png").string() +
                              ": not a readable image"),
            std::string::npos)
      << plain.output;
  EXPECT_NE(plain.output.find("loose.png: not in a class folder"), std::string::npos)
      << plain.output;

  // The same folder as queries: every readable image finds itself (loose.png, a copy,
  // finds its original); the broken one is an error of its own and the exit status 1.
  auto queries = run_cli("search " + index + " " + (dir / "data").string() + " -k 1 --json");
  EXPECT_EQ(queries.exit_code, 1) << queries.output;
  EXPECT_NE(queries.output.find("1 of 8 query images could not be read"), std::string::npos)
      << queries.output;
  const auto begin = queries.output.find("[\n");
  ASSERT_NE(begin, std::string::npos) << queries.output;
  const auto answers =
      nlohmann::json::parse(queries.output.substr(begin, queries.output.rfind(']') - begin + 1));
  ASSERT_EQ(answers.size(), 8u) << answers;
  for (const auto& answer : answers) {
    const std::string query = answer.at("query");
    if (query.find("broken.png") != std::string::npos) {
      EXPECT_NE(answer.at("error").get<std::string>().find("not a readable image"),
                std::string::npos);
      continue;
    }
    const std::string expected = query.find("loose.png") != std::string::npos
                                     ? sample_items()[0].path.filename().string()
                                     : std::filesystem::path(query).filename().string();
    EXPECT_EQ(std::filesystem::path(answer.at("results")[0].at("path").get<std::string>())
                  .filename()
                  .string(),
              expected)
        << answer;
  }

  // "More like this": with --exclude-query no image finds itself (nor a copy of its bytes,
  // loose.png's original), and k others are still given.
  auto others =
      run_cli("search " + index + " " + (dir / "data").string() + " -k 2 --exclude-query --json");
  EXPECT_EQ(others.exit_code, 1) << others.output;  // the broken file, as above
  const auto others_begin = others.output.find("[\n");
  ASSERT_NE(others_begin, std::string::npos) << others.output;
  const auto more_like_this = nlohmann::json::parse(
      others.output.substr(others_begin, others.output.rfind(']') - others_begin + 1));
  ASSERT_EQ(more_like_this.size(), 8u);
  for (const auto& answer : more_like_this) {
    if (answer.contains("error")) continue;
    const auto query = std::filesystem::path(answer.at("query").get<std::string>()).filename();
    const auto original = query == "loose.png" ? sample_items()[0].path.filename() : query;
    ASSERT_EQ(answer.at("results").size(), 2u) << answer;
    for (const auto& result : answer.at("results")) {
      EXPECT_NE(std::filesystem::path(result.at("path").get<std::string>()).filename(), original)
          << answer;
    }
  }
}

// An index names the model folder (or weights file) that made it by path and SHA-256: a
// folder moved since is found again with --weights, and the same bytes are required.
TEST(IndexSearchCli, AMovedModelFolderIsGivenWithWeightsAndMustHoldTheSameBytes) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_index_moved");
  make_class_tree(dir / "data", 2);
  auto run = run_cli("train " + (dir / "data").string() +
                     " --model resnet18 --weights random --epochs 1 --img-size 32 --quiet "
                     "--no-augment --out " +
                     (dir / "run").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string index = (dir / "index").string();
  run = run_cli("index build " + (dir / "data").string() + " --model " + (dir / "run").string() +
                " --out " + index);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::filesystem::rename(dir / "run", dir / "moved");
  const auto sample = vtl::testing::sample_items(2).back();  // a homes/ image
  const auto query = (dir / "data" / sample.class_name / sample.path.filename()).string();

  run = run_cli("search " + index + " " + query + " -k 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("is gone (if it moved, give its new place with --weights PATH"),
            std::string::npos)
      << run.output;
  run = run_cli("search " + index + " " + query + " -k 1 --json --weights " +
                (dir / "moved").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output)[0].at("results")[0].at("path"), query);

  // Other weights in the folder's place: refused.
  run = run_cli("train " + (dir / "data").string() +
                " --model resnet18 --weights random --seed 9 --epochs 1 --img-size 32 --quiet "
                "--no-augment --out " +
                (dir / "other").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("search " + index + " " + query + " --weights " + (dir / "other").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("cannot rebuild the feature extractor"), std::string::npos)
      << run.output;
}

TEST(IndexSearchCli, BuildSearchAddDuplicatesAndRefusals) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_index_cli");
  make_class_tree(dir / "first", 2);
  make_class_tree(dir / "more", 4);
  const std::string index = (dir / "index").string();
  auto run = run_cli(
      "index build " + (dir / "first").string() +
      " --model resnet18 --weights random --image-size 64 --factory HNSW32 --json --out " + index);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).at("total"), 6);

  run = run_cli("index add " + index + " " + (dir / "more").string() + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto added = nlohmann::json::parse(run.output);
  EXPECT_EQ(added.at("added"), 6);
  EXPECT_EQ(added.at("duplicates"), 6);
  EXPECT_EQ(added.at("total"), 12);

  const auto query = dir / "more" / "fruit" / "peach_simple.png";
  run = run_cli("search " + index + " " + query.string() + " -k 3 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto results = nlohmann::json::parse(run.output)[0].at("results");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("class"), "fruit");
  EXPECT_EQ(results[0].at("path"), query.string());
  EXPECT_NEAR(results[0].at("score").get<double>(), 1.0, 1e-4);

  // Duplicates: the folder has none above 0.9999 except identical content (none here).
  run = run_cli("search " + index + " --duplicates --threshold 0.9999 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).size(), 0u);

  // A vector query from features made by another model (seed) is refused.
  run = run_cli("extract " + (dir / "first").string() +
                " --model resnet18 --weights random --image-size 64 --seed 3 --out " +
                (dir / "other").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("search " + index + " --vector " + (dir / "other" / "features.npy").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("another feature extractor"), std::string::npos) << run.output;

  // Undecodable query: named.
  write_file_atomically(dir / "bad.jpg", "nope");
  run = run_cli("search " + index + " " + (dir / "bad.jpg").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("bad.jpg"), std::string::npos) << run.output;

  // A folder missing its catalogue: named.
  std::filesystem::remove(dir / "index" / "catalog.sqlite");
  run = run_cli("search " + index + " " + query.string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("catalog.sqlite is missing"), std::string::npos) << run.output;
}

// A catalogue changes: an image is withdrawn by its path, by a copy of its bytes, by its
// folder or by the id search printed; a name that selects nothing changes nothing.
TEST(IndexSearchCli, RemoveTakesOutImagesByPathContentFolderOrId) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_index_cli_remove");
  const fs::path data = dir / "data";
  make_class_tree(data, 2);  // 3 classes x 2
  const std::string index = (dir / "index").string();
  ASSERT_EQ(run_cli("index build " + data.string() +
                    " --model resnet18 --weights random --image-size 64 --out " + index)
                .exit_code,
            0);
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(data))
    if (entry.is_regular_file()) files.push_back(fs::absolute(entry.path()).lexically_normal());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 6u);
  const auto index_bytes = read_file(fs::path(index) / "index.faiss");
  auto removed_paths = [](const std::string& output) {
    std::set<std::string> paths;
    const auto summary = nlohmann::json::parse(output);
    for (const auto& entry : summary.at("removed"))
      paths.insert(entry.at("path").get<std::string>());
    return paths;
  };

  // Nothing changes on a dry run, on a name that is not indexed, on an id out of range,
  // or when every image would go.
  auto dry = run_cli("index remove " + index + " " + files[0].string() + " --dry-run --json");
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_EQ(removed_paths(dry.output), std::set<std::string>{files[0].string()});
  auto missing = run_cli("index remove " + index + " " + (dir / "not_indexed.png").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("not_indexed.png: not in " + index), std::string::npos)
      << missing.output;
  auto too_far = run_cli("index remove " + index + " " + files[0].string() + " --id 6");
  EXPECT_EQ(too_far.exit_code, 1);
  EXPECT_NE(too_far.output.find("--id 6: " + index + " holds ids 0 to 5"), std::string::npos)
      << too_far.output;
  EXPECT_EQ(run_cli("index remove " + index + " " + data.string()).exit_code, 1);
  EXPECT_EQ(read_file(fs::path(index) / "index.faiss"), index_bytes);

  // By path, and by the bytes of a copy elsewhere.
  const fs::path copy = dir / "copy.png";
  fs::copy_file(files[1], copy);
  auto by_path =
      run_cli("index remove " + index + " " + files[0].string() + " " + copy.string() + " --json");
  ASSERT_EQ(by_path.exit_code, 0) << by_path.output;
  EXPECT_EQ(removed_paths(by_path.output),
            (std::set<std::string>{files[0].string(), files[1].string()}));
  EXPECT_EQ(nlohmann::json::parse(by_path.output).at("total"), 4);

  // By folder (a trailing slash is fine) and by id.
  const fs::path folder = files[2].parent_path();
  auto by_folder = run_cli("index remove " + index + " " + folder.string() + "/ --json");
  ASSERT_EQ(by_folder.exit_code, 0) << by_folder.output;
  for (const auto& path : removed_paths(by_folder.output))
    EXPECT_EQ(fs::path(path).parent_path(), folder);
  const int64_t left = nlohmann::json::parse(by_folder.output).at("total");
  ASSERT_GE(left, 2);
  auto by_id = run_cli("index remove " + index + " --id 0 --json");
  ASSERT_EQ(by_id.exit_code, 0) << by_id.output;
  ASSERT_EQ(removed_paths(by_id.output).size(), 1u);
  const std::string removed_by_id = *removed_paths(by_id.output).begin();

  // Searching finds none of them any more; the others are still found first.
  auto search = run_cli("search " + index + " " + data.string() + " -k 1 --json");
  std::set<std::string> found;
  const auto answers = nlohmann::json::parse(search.output.substr(search.output.find('[')));
  for (const auto& query : answers)
    found.insert(query.at("results")[0].at("path").get<std::string>());
  EXPECT_EQ(found.size(), size_t(left - 1)) << search.output;
  for (const auto& gone : {files[0].string(), files[1].string(), removed_by_id})
    EXPECT_EQ(found.count(gone), 0u) << gone;
  for (const auto& path : removed_paths(by_folder.output)) EXPECT_EQ(found.count(path), 0u);
}

}  // namespace
}  // namespace vtl::testing
