#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {

TEST(ClassifyCli, FitWithCrossValidationPredictAndEvaluate) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_classify_cli");
  make_class_tree(dir / "data");
  const std::string features = (dir / "features").string();
  auto run = run_cli("extract " + (dir / "data").string() +
                     " --model resnet18 --weights random --image-size 64 --out " + features);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const std::string algo : {"svm", "knn", "rf", "logreg", "svm-rbf"}) {
    const std::string out = (dir / ("clf-" + algo)).string();
    run = run_cli("classify fit " + features + " --algo " + algo + " --cv 2 --json --out " + out);
    ASSERT_EQ(run.exit_code, 0) << algo << ": " << run.output;
    auto report = nlohmann::json::parse(run.output);
    EXPECT_EQ(report.at("cross_validation").at("fold_accuracy").size(), 2u);
    run = run_cli("classify evaluate " + out + " " + features + " --json");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto evaluation = nlohmann::json::parse(run.output);
    EXPECT_EQ(evaluation.at("rows"), 12);
    EXPECT_EQ(evaluation.at("confusion").size(), 3u);
    EXPECT_DOUBLE_EQ(evaluation.at("accuracy").get<double>(),
                     report.at("train_accuracy").get<double>());
  }
  run = run_cli("classify predict " + (dir / "clf-svm").string() + " " + features + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output).size(), 12u);

  // Features of another extractor are refused.
  run = run_cli("extract " + (dir / "data").string() +
                " --model resnet18 --weights random --image-size 64 --layer layer3 --out " +
                (dir / "l3").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify evaluate " + (dir / "clf-svm").string() + " " + (dir / "l3").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("trained on other features"), std::string::npos) << run.output;
}

// New images are embedded as the training features were and get the same classes as
// their rows in the features folder; an unreadable one is named and the rest answered.
TEST(ClassifyCli, PredictTakesNewImagesAndFolders) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_classify_images");
  make_class_tree(dir / "data");
  const std::string features = (dir / "features").string();
  const std::string classifier = (dir / "clf").string();
  auto run = run_cli("extract " + (dir / "data").string() +
                     " --model resnet18 --weights random --image-size 64 --out " + features);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify fit " + features + " --algo knn -k 1 --out " + classifier);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify predict " + classifier + " " + features + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::map<std::string, std::string> by_features;
  for (const auto& row : nlohmann::json::parse(run.output))
    by_features[row.at("path").get<std::string>()] = row.at("class");
  ASSERT_EQ(by_features.size(), 12u);

  write_file_atomically(dir / "broken.png", "\x89PNG\r\n\x1a\ncut short");
  run = run_cli("classify predict " + classifier + " " + (dir / "data").string() + " " +
                (dir / "broken.png").string() + " --batch 5 --json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("1 of 13 images could not be read"), std::string::npos) << run.output;
  const auto begin = run.output.find('[');
  ASSERT_NE(begin, std::string::npos) << run.output;
  const auto answers =
      nlohmann::json::parse(run.output.substr(begin, run.output.find('\n', begin) - begin));
  ASSERT_EQ(answers.size(), 13u) << answers;
  for (const auto& answer : answers) {
    const std::string path = answer.at("path");
    if (path.find("broken.png") != std::string::npos) {
      EXPECT_NE(answer.at("error").get<std::string>().find("not a readable image"),
                std::string::npos);
      continue;
    }
    ASSERT_TRUE(by_features.count(path)) << path;
    // 1-nearest neighbour on the training rows: each image is its own neighbour.
    EXPECT_EQ(answer.at("class"), by_features.at(path)) << path;
    EXPECT_NE(path.find("/" + answer.at("class").get<std::string>() + "/"), std::string::npos)
        << path;
  }

  // --csv: the same answers as a table (image,label,probability; an SVM or a forest gives
  // no probability).
  const auto table = dir / "predictions.csv";
  run = run_cli("classify predict " + classifier + " " + (dir / "data").string() + " --csv " +
                table.string() + " --csv-image name");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "image,label,probability");
  size_t rows = 0;
  while (std::getline(in, line)) {
    const std::string name = line.substr(0, line.find(','));
    const std::string label = line.substr(name.size() + 1, line.rfind(',') - name.size() - 1);
    bool matched = false;
    for (const auto& [path, class_name] : by_features)
      if (std::filesystem::path(path).filename() == name) matched = class_name == label;
    EXPECT_TRUE(matched) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 12u);

  // --csv-like: the images a sample submission lists, in its form (one label column; a
  // sample of class columns asks for probabilities this classifier does not give).
  const auto& [first_path, first_class] = *by_features.begin();
  const std::string first_name = std::filesystem::path(first_path).filename().string();
  write_file_atomically(dir / "data" / "sample.csv", "file,species\n" + first_name + ",?\n");
  run = run_cli("classify predict " + classifier + " --csv " + (dir / "sub.csv").string() +
                " --csv-like " + (dir / "data" / "sample.csv").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_file(dir / "sub.csv"), "file,species\n" + first_name + "," + first_class + "\n");
  write_file_atomically(dir / "data" / "sample.csv",
                        "file,bugs,fruit,homes\n" + first_name + ",0,0,0\n");
  run = run_cli("classify predict " + classifier + " --csv " + (dir / "sub.csv").string() +
                " --csv-like " + (dir / "data" / "sample.csv").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("this classifier gives no probabilities"), std::string::npos)
      << run.output;
}

// What a user gets wrong: a classifier folder written over, parameters out of range, test
// features with only some of the classes, the weights file moved or rewritten since.
TEST(ClassifyCli, RefusalsNameTheOptionAndMovedOrChangedWeightsAreTold) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_classify_refusals");
  make_class_tree(dir / "data");  // bugs, fruit, homes x 4
  std::filesystem::create_directories(dir / "some");
  std::filesystem::create_symlink(dir / "data" / "bugs", dir / "some" / "bugs");
  std::filesystem::create_symlink(dir / "data" / "fruit", dir / "some" / "fruit");
  // Features of a trained model folder (of a random base: quick to make).
  auto run =
      run_cli("train " + (dir / "data").string() +
              " --model resnet18 --weights random --image-size 64 --epochs 1 --quiet --out " +
              (dir / "run").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string features = (dir / "features").string();
  run = run_cli("extract " + (dir / "data").string() + " --model " + (dir / "run").string() +
                " --out " + features);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string clf = (dir / "clf").string();
  ASSERT_EQ(run_cli("classify fit " + features + " --out " + clf).exit_code, 0);

  // An existing classifier is kept unless --overwrite; another folder's files always.
  run = run_cli("classify fit " + features + " --algo rf --out " + clf);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("already holds a classifier; pass --overwrite"), std::string::npos)
      << run.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "clf" / "classifier.json")).at("algo"), "svm");
  EXPECT_EQ(run_cli("classify fit " + features + " --algo rf --overwrite --out " + clf).exit_code,
            0);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "clf" / "classifier.json")).at("algo"), "rf");
  run = run_cli("classify fit " + features + " --out " + features);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("the folder holds other files"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "features" / "classifier.json"));

  // Out-of-range parameters name their option.
  for (const auto& [arguments, message] :
       std::map<std::string, std::string>{{"--algo svm-rbf --gamma -5", "--gamma"},
                                          {"--algo knn -k 0", "-k"},
                                          {"--algo knn -k 500", "the 12 rows it is fitted on"},
                                          {"--algo rf --trees 0", "--trees"},
                                          {"--c -1", "--c"},
                                          {"--algo logreg --iterations 0", "--iterations"}}) {
    run =
        run_cli("classify fit " + features + " " + arguments + " --out " + (dir / "bad").string());
    EXPECT_EQ(run.exit_code, 1) << arguments;
    EXPECT_NE(run.output.find(message), std::string::npos) << arguments << ": " << run.output;
    EXPECT_EQ(run.output.find("OpenCV"), std::string::npos) << arguments << ": " << run.output;
  }
  EXPECT_EQ(
      run_cli("classify fit " + features + " --cv -3 --out " + (dir / "bad").string()).exit_code,
      2);

  // Test features of two of the three classes are evaluated with the classifier's ids.
  const std::string some = (dir / "some_features").string();
  ASSERT_EQ(run_cli("extract " + (dir / "some").string() + " --model " + (dir / "run").string() +
                    " --out " + some)
                .exit_code,
            0);
  run = run_cli("classify evaluate " + clf + " " + some + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto some_report = nlohmann::json::parse(run.output);
  EXPECT_EQ(some_report.at("rows"), 8);
  EXPECT_EQ(some_report.at("confusion").at(2).at(2), 0);  // no homes among the rows
  run = run_cli("classify evaluate " + clf + " " + features + " --json");
  const auto all_report = nlohmann::json::parse(run.output);
  for (int c : {0, 1})  // bugs and fruit rows: the same answers as among all the rows
    EXPECT_EQ(some_report.at("confusion").at(c), all_report.at("confusion").at(c)) << c;

  // The model folder moved: predict takes its new place; rewritten: told so.
  const auto image = (dir / "data" / "fruit").string();
  std::filesystem::rename(dir / "run", dir / "moved");
  run = run_cli("classify predict " + clf + " " + image);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("give its new place with --weights"), std::string::npos) << run.output;
  run = run_cli("classify predict " + clf + " " + image + " --weights " + (dir / "moved").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  std::filesystem::rename(dir / "moved", dir / "run");
  run = run_cli("train " + (dir / "data").string() +
                " --model resnet18 --weights random --seed 9 --image-size 64 --epochs 1 --quiet "
                "--out " +
                (dir / "run2").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::filesystem::copy_file(dir / "run2" / "model.safetensors", dir / "run" / "model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  run = run_cli("classify predict " + clf + " " + image);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find((dir / "run").string() + " has changed"), std::string::npos)
      << run.output;
}

TEST(ClassifyCli, CompareUsesTheTrainingRunsSplitAndShowsItsNeuralHead) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_classify_compare");
  make_class_tree(dir / "data");
  const std::string data = (dir / "data").string(), run_dir = (dir / "run").string();
  auto run =
      run_cli("train " + data +
              " --model resnet18 --weights random --img-size 64 --strategy features --epochs 2 "
              "--val-split 0.25 --no-augment --out " +
              run_dir);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string features = (dir / "features").string();
  run = run_cli("extract " + data + " --model " + run_dir + " --out " + features);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify compare " + features + " --run " + run_dir + " --algos svm,knn --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = nlohmann::json::parse(run.output);
  // 0.25 of four images per class: one per class validates, three train.
  EXPECT_EQ(report.at("train_rows"), 9);
  EXPECT_EQ(report.at("val_rows"), 3);
  EXPECT_EQ(report.at("missing"), 0);
  const auto& table = report.at("table");
  ASSERT_EQ(table.size(), 3u);
  const auto evaluation = nlohmann::json::parse(read_file(dir / "run" / "evaluation.json"));
  EXPECT_EQ(table[0].at("classifier"), "neural head (vtl train, features)");
  EXPECT_DOUBLE_EQ(table[0].at("val_accuracy").get<double>(), evaluation.at("top1").get<double>());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].at("val_images"), 3) << table[i];
    const double accuracy = table[i].at("val_accuracy").get<double>();
    EXPECT_GE(accuracy, 0.0);
    EXPECT_LE(accuracy, 1.0);
  }
  EXPECT_EQ(table[1].at("classifier"), "svm");
  EXPECT_EQ(table[2].at("classifier"), "knn");

  // A features folder of other images shares nothing with the run: a clear error.
  TempDir other("vtl_classify_compare_other");
  make_class_tree(other / "data", 2);
  run = run_cli("extract " + (other / "data").string() + " --model " + run_dir + " --out " +
                (other / "features").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_cli("classify compare " + (other / "features").string() + " --run " + run_dir);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("share no images"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace vtl::testing
