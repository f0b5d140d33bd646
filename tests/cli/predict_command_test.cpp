// `vtl predict` as a user runs it: real images, weights files written by torchvision, and
// the mistakes users make (each a one-line error naming the file, non-zero exit).

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <torch/torch.h>

#include "cli/run_cli.h"
#include "cli/serve_process.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/preprocessing.h"
#include "vtl/data/preprocess.h"
#include "vtl/models/registry.h"
#include "vtl/weights/safetensors.h"

namespace vtl {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

const std::string kSample = std::string(VTL_SOURCE_DIR) + "/data/samples/ladybug.png";

class PredictCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() / ("vtl_predict_test_" + std::to_string(::getpid()));
    fs::create_directories(home_);
    env_ = "VTL_HOME=" + home_.string();
  }
  void TearDown() override { fs::remove_all(home_); }

  /// resnet18 weights saved by torchvision (the parity fixture), or "" when absent.
  static std::string torchvision_resnet18() {
    const char* dir = std::getenv("VTL_PARITY_DIR");
    if (!dir || !fs::exists(fs::path(dir) / "resnet18.pth")) return "";
    return (fs::path(dir) / "resnet18.pth").string();
  }

  fs::path home_;
  std::string env_;
};

TEST_F(PredictCommand, TopKFromATorchvisionFileAsJson) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  auto result = run_cli("predict " + kSample + " " + kSample + " --model resnet18 --weights " +
                            weights + " --top 3 --json",
                        env_);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output.substr(result.output.find('[')));
  ASSERT_EQ(json.size(), 2u);
  const auto& predictions = json[0]["predictions"];
  ASSERT_EQ(predictions.size(), 3u);
  double previous = 1.0;
  for (const auto& p : predictions) {
    EXPECT_LE(p["probability"].get<double>(), previous);
    previous = p["probability"].get<double>();
    EXPECT_FALSE(p["label"].get<std::string>().empty());
  }
  EXPECT_EQ(json[0]["predictions"], json[1]["predictions"]) << "same image, same answer";
}

// A network fine-tuned elsewhere (torchvision: resnet18(num_classes=3), its state dict
// saved): its 3-way classifier is loaded as saved, and --class-names names the outputs.
TEST_F(PredictCommand, AWeightsFileWithItsOwnClassifierIsNamedWithClassNames) {
  torch::manual_seed(3);
  auto model = models::create_model("resnet18", models::ModelOptions().num_classes(3));
  const fs::path file = home_ / "finetuned.safetensors";
  weights::StateDict state;  // torchvision's names: the module's own
  for (const auto& item : model->named_parameters()) state[item.key()] = item.value().detach();
  for (const auto& item : model->named_buffers()) state[item.key()] = item.value();
  weights::save_safetensors(file, state);
  const std::string args = "predict " + kSample + " --model resnet18 --weights " + file.string();
  auto unnamed = run_cli(args, env_);
  EXPECT_EQ(unnamed.exit_code, 1);
  EXPECT_NE(unnamed.output.find("carry no class names for the 3 outputs of their classifier"),
            std::string::npos)
      << unnamed.output;
  EXPECT_NE(unnamed.output.find("--class-names FILE"), std::string::npos) << unnamed.output;

  write_file_atomically(home_ / "two.txt", "cat\ndog\n");
  auto short_list = run_cli(args + " --class-names " + (home_ / "two.txt").string(), env_);
  EXPECT_EQ(short_list.exit_code, 1);
  EXPECT_NE(short_list.output.find("2 class names for the 3 outputs"), std::string::npos)
      << short_list.output;

  write_file_atomically(home_ / "names.txt", "cat\r\ndog\r\n  bird \r\n\n");
  auto named = run_cli(args + " --class-names " + (home_ / "names.txt").string() + " --json", env_);
  ASSERT_EQ(named.exit_code, 0) << named.output;
  const auto predictions =
      nlohmann::json::parse(named.output.substr(named.output.find('[')))[0]["predictions"];
  ASSERT_EQ(predictions.size(), 3u);
  // The file's own classifier answers: the same probabilities as the model that was saved.
  Preprocessing preprocessing;  // a weights file: ImageNet statistics, 256 -> 224
  model->eval();
  torch::NoGradGuard no_grad;
  const auto expected = torch::softmax(
      model->forward(data::load_eval_input(kSample, preprocessing).unsqueeze(0)), 1)[0];
  const std::vector<std::string> names = {"cat", "dog", "bird"};
  for (const auto& p : predictions) {
    const auto at = std::find(names.begin(), names.end(), p["label"].get<std::string>());
    ASSERT_NE(at, names.end()) << p;
    EXPECT_NEAR(p["probability"].get<double>(), expected[at - names.begin()].item<double>(), 1e-4)
        << p;
  }
}

TEST_F(PredictCommand, MissingWeightsSayHowToGetThem) {
  auto result = run_cli("predict " + kSample + " --model resnet50", env_);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("vtl weights fetch"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("vtl weights import"), std::string::npos) << result.output;
}

TEST_F(PredictCommand, UnknownModelSuggestsCloseNames) {
  auto result = run_cli("predict " + kSample + " --model resnet5", env_);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("did you mean 'resnet50'"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("Exception raised"), std::string::npos) << "no stack trace";
}

TEST_F(PredictCommand, BadImagesAreNamedAndTheOthersStillPredicted) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  const auto text_file = home_ / "notes.jpg";
  std::ofstream(text_file) << "not an image";
  auto result = run_cli("predict " + text_file.string() + " " + (home_ / "missing.png").string() +
                            " " + kSample + " --model resnet18 --weights " + weights,
                        env_);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("notes.jpg: not a readable image"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("missing.png: no such file"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("ladybug.png\n   1."), std::string::npos) << result.output;
}

TEST_F(PredictCommand, WeightsOfAnotherArchitectureAreRefused) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  auto result = run_cli("predict " + kSample + " --model resnet34 --weights " + weights, env_);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("resnet18.pth"), std::string::npos) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n') < 20, true)
      << result.output;
}

TEST_F(PredictCommand, TruncatedWeightsFileIsAnErrorNotACrash) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  const auto truncated = home_ / "truncated.pth";
  {
    std::ifstream in(weights, std::ios::binary);
    std::string head(1 << 20, '\0');
    in.read(head.data(), head.size());
    std::ofstream(truncated, std::ios::binary).write(head.data(), in.gcount());
  }
  auto result =
      run_cli("predict " + kSample + " --model resnet18 --weights " + truncated.string(), env_);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("truncated.pth"), std::string::npos) << result.output;
}

/// The JSON array `vtl predict --json` printed, from output that may also hold error lines.
nlohmann::json predictions_json(const std::string& output) {
  const auto begin = output.find("[\n");
  const auto end = output.rfind("]");
  EXPECT_NE(begin, std::string::npos) << output;
  return nlohmann::json::parse(output.substr(begin, end - begin + 1));
}

TEST_F(PredictCommand, FoldersAreExpandedAndBatchingDoesNotChangeTheAnswers) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  const auto images = home_ / "images";
  testing::make_class_tree(images, 2);  // 6 images in bugs/, fruit/, homes/
  std::ofstream(images / "fruit" / "a_broken.png") << "not an image";  // mid-batch
  // A link to another listed file is answered under its own name too (a row per file).
  std::vector<fs::path> fruit;
  for (const auto& entry : fs::directory_iterator(images / "fruit")) fruit.push_back(entry.path());
  std::sort(fruit.begin(), fruit.end());
  fs::create_symlink(fruit.back().filename(), images / "fruit" / "z_link.png");
  fs::create_directories(home_ / "empty");
  const std::string common = images.string() + " " + (home_ / "empty").string() + " " + kSample +
                             " --model resnet18 --weights " + weights + " --top 3 --json";
  auto one = run_cli("predict " + common + " --batch 1", env_);
  auto four = run_cli("predict " + common + " --batch 4", env_);
  for (const auto* run : {&one, &four}) {
    EXPECT_EQ(run->exit_code, 1) << run->output;
    EXPECT_NE(run->output.find("a_broken.png: not a readable image"), std::string::npos)
        << run->output;
    EXPECT_NE(run->output.find("1 of 9 images could not be read"), std::string::npos)
        << run->output;
    EXPECT_NE(run->output.find("empty: a folder without images"), std::string::npos) << run->output;
  }
  const auto a = predictions_json(one.output), b = predictions_json(four.output);
  ASSERT_EQ(a.size(), 9u);
  ASSERT_EQ(b.size(), 9u);
  EXPECT_NE(a[0]["path"].get<std::string>().find("/bugs/"), std::string::npos) << a[0];
  EXPECT_NE(a[2]["path"].get<std::string>().find("a_broken.png"), std::string::npos) << a[2];
  EXPECT_TRUE(a[2].contains("error"));
  EXPECT_NE(a[5]["path"].get<std::string>().find("z_link.png"), std::string::npos) << a[5];
  EXPECT_EQ(a[5]["predictions"], a[4]["predictions"]);  // the file it links to
  EXPECT_NE(a[8]["path"].get<std::string>().find("ladybug.png"), std::string::npos) << a[8];
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i]["path"], b[i]["path"]);
    if (a[i].contains("error")) continue;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(a[i]["predictions"][k]["label"], b[i]["predictions"][k]["label"]) << i;
      EXPECT_NEAR(a[i]["predictions"][k]["probability"].get<double>(),
                  b[i]["predictions"][k]["probability"].get<double>(), 1e-4)
          << i;
    }
  }
}

/// The fields of each line of a CSV file (RFC 4180 quoting, one line per row).
std::vector<std::vector<std::string>> read_csv_rows(const fs::path& file) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      if (quoted && line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (line[i] == '"') {
        quoted = !quoted;
      } else if (line[i] == ',' && !quoted) {
        fields.emplace_back();
      } else {
        fields.back() += line[i];
      }
    }
    rows.push_back(fields);
  }
  return rows;
}

TEST_F(PredictCommand, CsvOfLabelsOrOfEveryClassProbabilityForKaggle) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  const auto images = home_ / "images";
  testing::make_class_tree(images, 1);  // 3 images in bugs/, fruit/, homes/
  std::ofstream(images / "fruit" / "a_broken.png") << "not an image";
  const std::string common = images.string() + " --model resnet18 --weights " + weights;
  const auto labels_csv = home_ / "out" / "labels.csv";
  auto labels = run_cli("predict " + common + " --top 1 --json --csv " + labels_csv.string(), env_);
  EXPECT_EQ(labels.exit_code, 1) << labels.output;  // the broken image is reported...
  EXPECT_NE(labels.output.find("wrote 3 rows to"), std::string::npos) << labels.output;
  const auto json = predictions_json(labels.output);
  const auto rows = read_csv_rows(labels_csv);  // ...and the others are in the file
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"image", "label", "probability"}));
  size_t row = 1;
  for (const auto& answer : json) {
    if (answer.contains("error")) continue;
    ASSERT_EQ(rows[row].size(), 3u);
    EXPECT_EQ(rows[row][0], answer["path"].get<std::string>());
    EXPECT_EQ(rows[row][1], answer["predictions"][0]["label"].get<std::string>());
    EXPECT_NEAR(std::stod(rows[row][2]), answer["predictions"][0]["probability"].get<double>(),
                1e-5);
    ++row;
  }

  const auto submission_csv = home_ / "submission.csv";
  auto submission =
      run_cli("predict " + images.string() + "/bugs --model resnet18 --weights " + weights +
                  " --csv " + submission_csv.string() + " --csv-image stem --csv-probabilities",
              env_);
  ASSERT_EQ(submission.exit_code, 0) << submission.output;
  EXPECT_EQ(submission.output.find("  1. "), std::string::npos) << "no per-image listing";
  const auto table = read_csv_rows(submission_csv);
  ASSERT_EQ(table.size(), 2u);
  ASSERT_EQ(table[0].size(), 1001u);
  EXPECT_EQ(table[0][0], "id");
  EXPECT_EQ(table[1][0], fs::path(json[0]["path"].get<std::string>()).stem().string());
  double sum = 0;
  size_t best = 1;
  for (size_t c = 1; c < table[1].size(); ++c) {
    sum += std::stod(table[1][c]);
    if (std::stod(table[1][c]) > std::stod(table[1][best])) best = c;
  }
  EXPECT_NEAR(sum, 1.0, 1e-3);
  EXPECT_EQ(table[0][best], json[0]["predictions"][0]["label"].get<std::string>());

  // A CSV argument lists the images (Kaggle's sample_submission.csv: ids, in its order).
  const std::string first = fs::path(json[0]["path"].get<std::string>()).stem().string();
  const std::string last = fs::path(json.back()["path"].get<std::string>()).stem().string();
  std::ofstream(images / "sample_submission.csv") << "id,label\n"
                                                  << last << ",x\n"
                                                  << first << ",x\n";
  const auto ordered_csv = home_ / "ordered.csv";
  auto ordered = run_cli("predict " + (images / "sample_submission.csv").string() +
                             " --model resnet18 --weights " + weights + " --csv " +
                             ordered_csv.string() + " --csv-image stem",
                         env_);
  ASSERT_EQ(ordered.exit_code, 0) << ordered.output;
  const auto ordered_rows = read_csv_rows(ordered_csv);
  ASSERT_EQ(ordered_rows.size(), 3u);
  EXPECT_EQ(ordered_rows[0], (std::vector<std::string>{"id", "label", "probability"}));
  EXPECT_EQ(ordered_rows[1][0], last);
  EXPECT_EQ(ordered_rows[2][0], first);
  EXPECT_EQ(ordered_rows[2][1], json[0]["predictions"][0]["label"].get<std::string>());
}

/// `fields` as one CSV line (RFC 4180 quoting).
std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string field = fields[i];
    if (field.find_first_of(",\"") != std::string::npos) {
      std::string quoted = "\"";
      for (const char c : field) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      field = quoted + "\"";
    }
    line += (i ? "," : "") + field;
  }
  return line;
}

// `--csv-like sample_submission.csv`: the images the sample lists, its header and id text
// verbatim, its one label column or its class columns in its order.
TEST_F(PredictCommand, SubmissionInTheFormOfKagglesSample) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  if (!testing::have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  const auto images = home_ / "competition";
  testing::make_class_tree(images / "test_images", 1);  // 3 images in bugs/, fruit/, homes/
  const std::string model = " --model resnet18 --weights " + weights;
  auto reference =
      run_cli("predict " + (images / "test_images").string() + model + " --json --top 1", env_);
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const auto json = predictions_json(reference.output);
  ASSERT_EQ(json.size(), 3u);
  const auto name_of = [&](size_t i) {
    return fs::path(json[i]["path"].get<std::string>()).filename().string();
  };
  const auto stem_of = [&](size_t i) {
    return fs::path(json[i]["path"].get<std::string>()).stem().string();
  };
  const auto top1 = [&](size_t i) { return json[i]["predictions"][0]["label"].get<std::string>(); };

  // One label column (APTOS' `id_code,diagnosis`: no header name vtl knows), ids with and
  // without the extension, in an order of its own, and an id whose image is missing.
  const auto sample = images / "sample_submission.csv";
  std::ofstream(sample) << "id_code,diagnosis\n"
                        << name_of(2) << ",0\n"
                        << "no_such_image,0\n"
                        << stem_of(0) << ",0\n";
  const auto submission = home_ / "submission.csv";
  auto labels = run_cli(
      "predict" + model + " --csv " + submission.string() + " --csv-like " + sample.string(), env_);
  EXPECT_EQ(labels.exit_code, 1) << "a row is missing" << labels.output;
  EXPECT_NE(labels.output.find("no_such_image"), std::string::npos) << labels.output;
  EXPECT_NE(labels.output.find("1 of the 3 rows of " + sample.string() + " name no image"),
            std::string::npos)
      << labels.output;
  const auto rows = read_csv_rows(submission);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"id_code", "diagnosis"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{name_of(2), top1(2)}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{stem_of(0), top1(0)}));

  // Every class's probability, with the sample's column order (the classes reversed).
  auto every = run_cli("predict " + (images / "test_images").string() + model + " --csv " +
                           (home_ / "every.csv").string() + " --csv-probabilities",
                       env_);
  ASSERT_EQ(every.exit_code, 0) << every.output;
  const auto table = read_csv_rows(home_ / "every.csv");
  ASSERT_EQ(table.size(), 4u);
  ASSERT_EQ(table[0].size(), 1001u);
  std::vector<std::string> header = {"image_id"};
  header.insert(header.end(), table[0].rbegin(), table[0].rend() - 1);
  std::ofstream(sample) << csv_line(header) << "\n" << stem_of(1) << std::string(1000, ',') << "\n";
  auto probabilities = run_cli(
      "predict" + model + " --csv " + submission.string() + " --csv-like " + sample.string(), env_);
  ASSERT_EQ(probabilities.exit_code, 0) << probabilities.output;
  const auto columns = read_csv_rows(submission);
  ASSERT_EQ(columns.size(), 2u);
  EXPECT_EQ(columns[0], header);
  ASSERT_EQ(columns[1].size(), 1001u);
  EXPECT_EQ(columns[1][0], stem_of(1));
  // The same probabilities (batches of another size: within 1e-5), in the reverse order.
  double largest_difference = 0;
  for (size_t c = 1; c <= 1000; ++c)
    largest_difference = std::max(
        largest_difference, std::abs(std::stod(columns[1][c]) - std::stod(table[2][1001 - c])));
  EXPECT_LT(largest_difference, 1e-5);

  // Columns that are not the model's classes, and image arguments besides the sample.
  std::ofstream(sample) << "id,cat,dog\n" << stem_of(1) << ",0.5,0.5\n";
  auto wrong = run_cli("predict" + model + " --csv " + (home_ / "wrong.csv").string() +
                           " --csv-like " + sample.string(),
                       env_);
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("neither one label column nor the model's 1000 classes; not a "
                              "class: 'cat', 'dog'; no column for the class"),
            std::string::npos)
      << wrong.output;
  EXPECT_FALSE(fs::exists(home_ / "wrong.csv"));
  auto both = run_cli("predict " + kSample + model + " --csv " + (home_ / "both.csv").string() +
                          " --csv-like " + sample.string(),
                      env_);
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.output.find("--csv-like lists the images to classify"), std::string::npos)
      << both.output;
}

// `--csv -` puts the table alone on standard output; a CSV path that is a symbolic link is
// written through, the link kept.
TEST_F(PredictCommand, CsvToStandardOutputOrThroughASymbolicLink) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  const std::string args =
      "predict " + kSample + " --model resnet18 --weights " + weights + " --csv ";
  // Piped through cat: only vtl's standard output is captured.
  const auto piped = run_cli(args + "- | cat", env_);
  EXPECT_EQ(piped.output.rfind("image,label,probability\n", 0), 0u) << piped.output;
  EXPECT_EQ(std::count(piped.output.begin(), piped.output.end(), '\n'), 2) << piped.output;
  // Appended to a file the shell opened: what the file held stays.
  const fs::path log = home_ / "log.txt";
  std::ofstream(log) << "earlier output\n";
  run_cli(args + "- >> " + log.string() + " 2>/dev/null; true", env_);
  EXPECT_EQ(vtl::read_file(log).rfind("earlier output\nimage,label,probability\n", 0), 0u)
      << vtl::read_file(log);

  fs::create_directories(home_ / "real");
  std::ofstream(home_ / "real" / "table.csv") << "old\n";
  fs::create_symlink(home_ / "real" / "table.csv", home_ / "link.csv");
  const auto linked = run_cli(args + (home_ / "link.csv").string(), env_);
  ASSERT_EQ(linked.exit_code, 0) << linked.output;
  EXPECT_TRUE(fs::is_symlink(home_ / "link.csv"));
  EXPECT_EQ(vtl::read_file(home_ / "real" / "table.csv").rfind("image,label,probability\n", 0), 0u);
}

// Ctrl-C during `predict --csv` stops before the next batch and leaves neither the CSV
// nor its temporary file.
TEST_F(PredictCommand, CtrlCWithCsvLeavesNoPartialFile) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  const auto images = home_ / "many";
  fs::create_directories(images);
  for (int i = 0; i < 400; ++i)  // several seconds of work at one image per batch
    fs::copy_file(kSample, images / ("image" + std::to_string(i) + ".png"));
  const auto table = home_ / "out" / "table.csv";
  // The child's first line ("model: ...") says the model is loaded and the images start.
  testing::ServeProcess predict({"predict", images.string(), "--model", "resnet18", "--weights",
                                 weights, "--batch-size", "1", "--csv", table.string()});
  ::usleep(300 * 1000);
  EXPECT_EQ(predict.stop(SIGINT), 130);
  EXPECT_FALSE(fs::exists(table));
  ASSERT_TRUE(fs::is_directory(table.parent_path()));
  EXPECT_TRUE(fs::is_empty(table.parent_path())) << "a temporary file was left";
}

TEST_F(PredictCommand, DeviceNamesAreCheckedBeforeAnythingIsLoaded) {
  auto unknown = run_cli("predict " + kSample + " --model resnet18 --device gpu", env_);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("unknown device 'gpu': expected cpu, cuda or cuda:N"),
            std::string::npos)
      << unknown.output;
  if (torch::cuda::is_available()) return;
  auto cuda = run_cli("predict " + kSample + " --model resnet18 --device cuda", env_);
  EXPECT_EQ(cuda.exit_code, 1);
  EXPECT_NE(cuda.output.find("--device cuda: no CUDA device is available"), std::string::npos)
      << cuda.output;
}

TEST_F(PredictCommand, TestTimeAugmentationAveragesTheImageAndItsMirror) {
  const std::string weights = torchvision_resnet18();
  if (weights.empty()) GTEST_SKIP() << "parity fixture resnet18.pth not available";
  const fs::path mirrored = home_ / "ladybug_mirrored.png";
  cv::Mat image = cv::imread(kSample, cv::IMREAD_UNCHANGED), flipped;
  cv::flip(image, flipped, 1);
  ASSERT_TRUE(cv::imwrite(mirrored.string(), flipped));
  auto probabilities = [&](const std::string& arguments) {
    auto result = run_cli(
        "predict " + arguments + " --model resnet18 --weights " + weights + " --top 1000 --json",
        env_);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::map<std::string, double> by_label;
    const auto json = nlohmann::json::parse(result.output.substr(result.output.find('[')));
    for (const auto& p : json.at(0).at("predictions"))
      by_label[p.at("label").get<std::string>()] = p.at("probability").get<double>();
    return by_label;
  };
  const auto plain = probabilities(kSample), mirror = probabilities(mirrored.string()),
             tta = probabilities(kSample + " --tta");
  ASSERT_EQ(tta.size(), 1000u);
  double largest_difference = 0;
  for (const auto& [label, p] : tta)
    largest_difference =
        std::max(largest_difference, std::abs(p - (plain.at(label) + mirror.at(label)) / 2));
  EXPECT_LT(largest_difference, 1e-5);
}

}  // namespace
}  // namespace vtl
