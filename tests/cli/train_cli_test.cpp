// `vtl train`, `vtl train --resume` after SIGKILL or Ctrl-C, and `vtl evaluate` on a tiny
// real set.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_cli.h"
#include "train/clipart_fixture.h"
#include "train/run_folder.h"
#include "vtl/core/atomic_file.h"
#include "vtl/models/registry.h"
#include "vtl/weights/safetensors.h"

namespace vtl {
namespace {
namespace fs = std::filesystem;
using vtl::testing::run_cli;
using vtl::testing::TempDir;

using vtl::testing::read_metrics;

/// Runs `a` and `b` wrote `epochs` rows of metrics each, equal in `keys`.
void expect_same_metrics(const fs::path& a_run, const fs::path& b_run, size_t epochs,
                         const std::vector<const char*>& keys) {
  const auto a = read_metrics(a_run), b = read_metrics(b_run);
  ASSERT_EQ(a.size(), epochs);
  ASSERT_EQ(b.size(), epochs);
  for (size_t e = 0; e < a.size(); ++e)
    for (const char* key : keys)
      EXPECT_EQ(a[e][key].get<double>(), b[e][key].get<double>())
          << "epoch " << e + 1 << " " << key;
}

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(vtl::testing::kClipart / "animals"))
      GTEST_SKIP() << "openclipart-png is not installed";
    vtl::testing::make_clipart_set(data_.path(), {"animals", "geography", "shapes"}, 12);
  }
  std::string train_args(const fs::path& out) const {
    // 27 training images (75%), batch 8: 4 steps per epoch.
    return "train " + data_.path().string() +
           " --model resnet18 --weights random --strategy finetune --epochs 2 --finetune-epochs 2 "
           "--finetune-lr 1e-3 --unfreeze 4 --img-size 32 --batch-size 8 --seed 5 --val-split "
           "0.25 --quiet --out " +
           out.string();
  }
  TempDir data_{"vtl_cli_data"};
  TempDir runs_{"vtl_cli_runs"};
};

TEST_F(TrainCli, ResumeAfterSigkillMidEpochMatchesAnUninterruptedRun) {
  const fs::path whole = runs_.path() / "whole", killed = runs_.path() / "killed";
  auto full = run_cli(train_args(whole));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("classes (3): animals 9, geography 9, shapes 9"), std::string::npos)
      << full.output;
  EXPECT_TRUE(fs::exists(whole / "model.safetensors"));
  EXPECT_TRUE(fs::exists(whole / "report.html"));

  // Killed during epoch 3 (the first of phase 2): step 10 of 4 per epoch.
  auto interrupted = run_cli(train_args(killed), "VTL_TEST_KILL_AFTER_STEPS=10");
  EXPECT_NE(interrupted.exit_code, 0) << interrupted.output;
  EXPECT_FALSE(fs::exists(killed / "model.json"));
  ASSERT_EQ(read_metrics(killed).size(), 2u);  // epochs 1 and 2 were checkpointed

  auto again = run_cli(train_args(killed));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;

  auto resumed = run_cli("train --resume " + killed.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_metrics(whole, killed, 4, {"train_loss", "train_acc", "val_loss", "val_acc", "lr"});

  // evaluate reads the model folder the run wrote, with its class names.
  auto evaluated = run_cli("evaluate " + killed.string() + " " + data_.path().string() + " --json");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  auto json = nlohmann::json::parse(evaluated.output);
  EXPECT_EQ(json["count"], 36);
  EXPECT_EQ(json["per_class"].size(), 3u);
  EXPECT_EQ(json["confusion"].size(), 3u);
  const fs::path table = runs_.path() / "per_image.csv";
  auto text = run_cli("evaluate " + killed.string() + " " + data_.path().string() + " --csv " +
                      table.string());
  EXPECT_NE(text.output.find("top-1"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("geography"), std::string::npos);
  // --csv: one row per image, agreeing with the JSON's accuracy and mistakes.
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "image,label,predicted,probability,correct");
  std::set<std::string> wrong;
  size_t rows = 0, correct = 0;
  while (std::getline(in, line)) {
    ++rows;
    if (line.back() == '1')
      ++correct;
    else
      wrong.insert(line.substr(0, line.find(',')));
  }
  EXPECT_EQ(rows, 36u);
  EXPECT_NEAR(double(correct) / 36, json["top1"].get<double>(), 1e-9);
  std::set<std::string> json_wrong;
  for (const auto& mistake : json["mistakes"]) json_wrong.insert(mistake["path"]);
  EXPECT_EQ(wrong, json_wrong);
}

// Ctrl-C (here raised by the trainer itself after step 10, in epoch 3) ends the step,
// leaves the checkpoint of the finished epochs whole, says how to continue, and exits
// with 130; the resumed run ends as an uninterrupted one. SIGTERM exits with 143.
TEST_F(TrainCli, CtrlCStopsBetweenStepsAndTheResumedRunMatchesAnUninterruptedOne) {
  const fs::path whole = runs_.path() / "whole", stopped = runs_.path() / "stopped";
  ASSERT_EQ(run_cli(train_args(whole)).exit_code, 0);

  auto interrupted =
      run_cli(train_args(stopped), "VTL_TEST_KILL_AFTER_STEPS=10 VTL_TEST_KILL_SIGNAL=2");
  EXPECT_EQ(interrupted.exit_code, 130) << interrupted.output;
  EXPECT_NE(interrupted.output.find("vtl: interrupted: stopping after this step"),
            std::string::npos)
      << interrupted.output;
  EXPECT_NE(interrupted.output.find("stopped in epoch 3 before it finished; " +
                                    (stopped / "checkpoint" / "last.pt").string() +
                                    " holds the 2 finished epochs; continue with: vtl train "
                                    "--resume " +
                                    stopped.string()),
            std::string::npos)
      << interrupted.output;
  ASSERT_EQ(read_metrics(stopped).size(), 2u);
  for (const auto& entry : fs::directory_iterator(stopped / "checkpoint"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << entry.path() << " left behind";

  // A setting given with --resume would be ignored: refused, naming it.
  auto changed = run_cli("train --resume " + stopped.string() + " --lr 0.5");
  EXPECT_EQ(changed.exit_code, 1) << changed.output;
  EXPECT_NE(changed.output.find("--lr cannot change a resumed run"), std::string::npos)
      << changed.output;
  // From another folder (run.json keeps the data's absolute path), without progress lines.
  auto resumed = run_cli("train --quiet --resume " + stopped.string(), "cd / &&");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("reading the training images"), std::string::npos)
      << resumed.output;
  expect_same_metrics(whole, stopped, 4, {"train_loss", "train_acc", "val_loss", "val_acc", "lr"});

  auto terminated = run_cli(train_args(runs_.path() / "terminated"),
                            "VTL_TEST_KILL_AFTER_STEPS=2 VTL_TEST_KILL_SIGNAL=15");
  EXPECT_EQ(terminated.exit_code, 143) << terminated.output;
  EXPECT_NE(terminated.output.find("stopped in epoch 1 before it finished; nothing was saved"),
            std::string::npos)
      << terminated.output;
}

TEST_F(TrainCli, CorruptImagesAreSkippedAndListedAndBadInputIsNamed) {
  std::ofstream(data_.path() / "shapes" / "zz_broken.png") << "not a png";
  const fs::path out = runs_.path() / "corrupt";
  auto result =
      run_cli("train " + data_.path().string() +
              " --model resnet18 --weights random --epochs 1 --img-size 32 --batch-size 8 --quiet "
              "--no-augment --out " +
              out.string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("skipped 1"), std::string::npos) << result.output;
  EXPECT_NE(read_file(out / "skipped.txt").find("zz_broken.png"), std::string::npos);
  EXPECT_NE(result.output.find("cached features"), std::string::npos) << result.output;

  fs::create_directories(data_.path() / "empty_class");
  auto empty =
      run_cli("train " + data_.path().string() + " --out " + (runs_.path() / "x").string());
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("empty_class"), std::string::npos) << empty.output;

  auto missing =
      run_cli("evaluate " + (runs_.path() / "nope").string() + " " + data_.path().string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope"), std::string::npos) << missing.output;
}

TEST_F(TrainCli, FindLrPrintsTheCurveAndASuggestionAndTrainsNothing) {
  const fs::path out = runs_.path() / "lr_find";
  auto found = run_cli(
      "train " + data_.path().string() +
      " --model resnet18 --weights random --img-size 32 --batch-size 8 --no-augment --quiet "
      "--find-lr --find-lr-steps 30 --out " +
      out.string());
  ASSERT_EQ(found.exit_code, 0) << found.output;
  EXPECT_NE(found.output.find("learning-rate range test of phase 1 (features): 30 steps"),
            std::string::npos)
      << found.output;
  EXPECT_NE(found.output.find("(fastai's valley)"), std::string::npos) << found.output;
  EXPECT_NE(found.output.find("train with: --lr "), std::string::npos) << found.output;
  const std::string csv = read_file(out / "lr_find.csv");
  EXPECT_EQ(csv.rfind("step,lr,loss,smoothed_loss\n1,1e-07,", 0), 0u) << csv;
  EXPECT_TRUE(fs::exists(out / "lr_find.html"));
  // Nothing of a run: no checkpoint, model, run.json or split.
  for (const char* name : {"checkpoint", "model.safetensors", "run.json", "split.jsonl"})
    EXPECT_FALSE(fs::exists(out / name)) << name;

  // finetune: phase 1 trains the head, then phase 2's rate is suggested; no --out needed.
  auto finetune = run_cli(
      "train " + data_.path().string() +
      " --model resnet18 --weights random --img-size 32 --batch-size 8 --no-augment --quiet "
      "--strategy finetune --epochs 1 --unfreeze 4 --find-lr "
      "--find-lr-steps 12 --find-lr-range 1e-6 1");
  ASSERT_EQ(finetune.exit_code, 0) << finetune.output;
  EXPECT_NE(finetune.output.find("phase 1: training the head for 1 epoch"), std::string::npos)
      << finetune.output;
  EXPECT_NE(finetune.output.find("range test of phase 2 (fine-tuning): 12 steps from 1.0e-06 to "
                                 "1.0e+00"),
            std::string::npos)
      << finetune.output;
  EXPECT_NE(finetune.output.find("train with: --finetune-lr "), std::string::npos)
      << finetune.output;

  auto bad = run_cli("train " + data_.path().string() + " --find-lr --find-lr-range 1 1e-3");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("must be above its start"), std::string::npos) << bad.output;
}

TEST_F(TrainCli, CsvSplitColumnTrainsValidatesAndEvaluatesOnItsRows) {
  // fastai's from_df with valid_col plus test rows: of each class's 12 images, 8 train,
  // 2 valid, 2 test.
  const fs::path csv = runs_.path() / "images.csv";
  {
    std::ofstream out(csv);
    out << "filename,label,split\n";
    for (const std::string category : {"animals", "geography", "shapes"}) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(data_.path() / category))
        files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (size_t i = 0; i < files.size(); ++i)
        out << files[i].string() << "," << category << ","
            << (i < 8    ? "train"
                : i < 10 ? "valid"
                         : "test")
            << "\n";
    }
  }
  const fs::path run = runs_.path() / "csv_split";
  auto trained =
      run_cli("train " + csv.string() +
              " --model resnet18 --weights random --epochs 1 --img-size 32 --batch-size 8 --quiet "
              "--no-augment --out " +
              run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("split column: training on the 24 rows marked train, validating "
                                "on the 6 rows marked valid (6 test rows are left for `vtl "
                                "evaluate`)"),
            std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("train 24 images, validation 6 images"), std::string::npos)
      << trained.output;

  auto evaluated = run_cli("evaluate " + run.string() + " " + csv.string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("split column: evaluating on the 6 rows marked test"),
            std::string::npos)
      << evaluated.output;
  EXPECT_NE(evaluated.output.find(": 6 images"), std::string::npos) << evaluated.output;
}

// Oxford pets' layout: one folder, the class in each file name (`animals_3.png`); and
// HAM10000's metadata, whose label column is chosen by name.
TEST_F(TrainCli, LabelsFromFileNamesOrAChosenColumnTrainEvaluateAndExtract) {
  TempDir flat("vtl_cli_named");
  const fs::path images = flat.path() / "images";
  fs::create_directories(images);
  const fs::path metadata = flat.path() / "metadata.csv";
  std::ofstream csv(metadata);
  csv << "lesion_id,image_id,dx,age\n";
  for (const std::string category : {"animals", "geography", "shapes"}) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(data_.path() / category))
      files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string stem = category + "_" + std::to_string(i);
      fs::copy_file(files[i], images / (stem + ".png"));
      csv << "L" << i << "," << stem << "," << category << ",40\n";
    }
  }
  csv.close();
  const fs::path run = runs_.path() / "named";
  const std::string pattern = " --label-pattern '^([a-z]+)_[0-9]+[.]png$'";
  auto trained =
      run_cli("train " + images.string() + pattern +
              " --model resnet18 --weights random --epochs 1 --img-size 32 --batch-size 8 --quiet "
              "--no-augment --val-split 0.25 --out " +
              run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("classes (3): animals 9, geography 9, shapes 9"), std::string::npos)
      << trained.output;
  const auto config = nlohmann::json::parse(read_file(run / "run.json"));
  EXPECT_EQ(config.at("label_pattern"), "^([a-z]+)_[0-9]+[.]png$");  // what --resume reads

  // evaluate takes the pattern the model was trained with, and says so.
  auto evaluated = run_cli("evaluate " + run.string() + " " + images.string() + " --json");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const auto report = nlohmann::json::parse(evaluated.output.substr(evaluated.output.find('{')));
  EXPECT_EQ(report.at("count"), 36) << report;
  auto said = run_cli("evaluate " + run.string() + " " + images.string());
  EXPECT_NE(said.output.find("labels: --label-pattern '^([a-z]+)_[0-9]+[.]png$' (as "
                             "trained)"),
            std::string::npos)
      << said.output;

  // A CSV of more columns than path and label: the label column chosen by name.
  auto ambiguous = run_cli("extract " + metadata.string() +
                           " --model resnet18 --weights random --image-size 32 "
                           "--out " +
                           (flat.path() / "f0").string());
  EXPECT_EQ(ambiguous.exit_code, 1);
  EXPECT_NE(ambiguous.output.find("choose it with --label-column NAME"), std::string::npos)
      << ambiguous.output;
  auto extracted = run_cli("extract " + metadata.string() +
                           " --label-column dx --model "
                           "resnet18 --image-size 32 --json --out " +
                           (flat.path() / "f1").string());
  ASSERT_EQ(extracted.exit_code, 0) << extracted.output;
  const auto features = nlohmann::json::parse(read_file(flat.path() / "f1" / "features.json"));
  EXPECT_EQ(features.at("classes"), (nlohmann::json{"animals", "geography", "shapes"})) << features;
  auto wrong = run_cli("train " + metadata.string() + " --label-column diagnosis --out " +
                       (runs_.path() / "wrong").string());
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("--label-column diagnosis: the first line has no such column"),
            std::string::npos)
      << wrong.output;
}

TEST_F(TrainCli, WithoutWeightsTheBaseIsTheStoredDefaultElseRandomWithAWarning) {
  // An empty store: random values, said on stderr with the command that gets the weights.
  TempDir home("vtl_cli_home");
  const std::string environment = "VTL_HOME=" + home.path().string();
  const std::string args = "train " + data_.path().string() +
                           " --model resnet18 --epochs 1 --img-size 32 --batch-size 8 --quiet "
                           "--no-augment --out ";
  const fs::path out = runs_.path() / "no_weights";
  auto trained = run_cli(args + out.string(), environment);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("warning: no pretrained weights for resnet18"), std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("`vtl weights fetch resnet18.tv_in1k`"), std::string::npos)
      << trained.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(out / "run.json")).at("weights"), "random");

  // Random on purpose: no warning.
  auto chosen =
      run_cli(args + (runs_.path() / "random").string() + " --weights random", environment);
  ASSERT_EQ(chosen.exit_code, 0) << chosen.output;
  EXPECT_EQ(chosen.output.find("warning"), std::string::npos) << chosen.output;

  // A file in the store under the default's name is used only if it is the published one.
  fs::create_directories(home.path() / "weights");
  std::ofstream(home.path() / "weights" / "resnet18-f37072fd.pth") << "not the published file";
  auto replaced = run_cli(args + (runs_.path() / "replaced").string(), environment);
  EXPECT_EQ(replaced.exit_code, 1) << replaced.output;
  EXPECT_NE(replaced.output.find("resnet18-f37072fd.pth is not the published file of "
                                 "resnet18.tv_in1k"),
            std::string::npos)
      << replaced.output;

  // vtl extract chooses its weights the same way.
  fs::remove(home.path() / "weights" / "resnet18-f37072fd.pth");
  const fs::path features = runs_.path() / "features";
  auto extracted = run_cli("extract " + data_.path().string() +
                               " --model resnet18 --img-size 32 --out " + features.string(),
                           environment);
  ASSERT_EQ(extracted.exit_code, 0) << extracted.output;
  EXPECT_NE(extracted.output.find("warning: no pretrained weights for resnet18"), std::string::npos)
      << extracted.output;
}

TEST_F(TrainCli, APhaseTwoBlockTheModelLacksIsRefusedBeforeAnyTraining) {
  const fs::path out = runs_.path() / "layer5";
  auto refused = run_cli("train " + data_.path().string() +
                         " --model resnet18 --weights random --strategy finetune --unfreeze-from "
                         "layer5 --img-size 32 --out " +
                         out.string());
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("resnet18 has no block 'layer5'; blocks: conv1, bn1, layer1"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find("epoch"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("reading the training images"), std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(out / "checkpoint"));  // nothing to resume, nothing in the way
}

TEST_F(TrainCli, SplitFoldersTrainOnTrainValidateOnValAndEvaluateOnTest) {
  // root/{train,val,test}/<class>/: 6 + 3 + 3 images of each of 2 classes.
  TempDir root("vtl_cli_splits");
  vtl::testing::make_clipart_set(root.path() / "train", {"animals", "shapes"}, 12);
  for (const std::string category : {"animals", "shapes"}) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(root.path() / "train" / category))
      files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 6; i < files.size(); ++i) {
      const fs::path to = root.path() / (i < 9 ? "val" : "test") / category;
      fs::create_directories(to);
      fs::rename(files[i], to / files[i].filename());
    }
  }
  const fs::path out = runs_.path() / "splits";
  auto trained = run_cli("train " + root.path().string() +
                         " --model resnet18 --weights random --epochs 1 --img-size 32 "
                         "--batch-size 8 --quiet --no-augment --out " +
                         out.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("split folders: training on " + (root.path() / "train").string() +
                                ", validating on " + (root.path() / "val").string()),
            std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("classes (2): animals 6, shapes 6"), std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("train 12 images, validation 6 images"), std::string::npos)
      << trained.output;

  EXPECT_EQ(trained.output.find("warning"), std::string::npos) << trained.output;

  // A validation folder without some class is trained on, with a warning naming it.
  fs::remove_all(root.path() / "val" / "shapes");
  auto lopsided =
      run_cli("train " + root.path().string() +
              " --model resnet18 --weights random --epochs 1 --img-size 32 --batch-size 8 --quiet "
              "--no-augment --out " +
              (runs_.path() / "lopsided").string());
  ASSERT_EQ(lopsided.exit_code, 0) << lopsided.output;
  EXPECT_NE(lopsided.output.find("warning: validation has no images of 1 of the 2 classes "
                                 "(shapes)"),
            std::string::npos)
      << lopsided.output;

  const fs::path report = runs_.path() / "evaluation.html";
  auto evaluated = run_cli("evaluate " + out.string() + " " + root.path().string() +
                           " --json --report " + report.string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const auto json = nlohmann::json::parse(evaluated.output.substr(evaluated.output.find('{')));
  EXPECT_EQ(json.at("data").get<std::string>(), (root.path() / "test").string());
  EXPECT_EQ(json.at("count").get<int64_t>(), 6);
  const std::string html = read_file(report);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find((root.path() / "test").string() + ": <b>top-1"), std::string::npos);
  // Every misclassified image is listed, most confident first.
  const auto& mistakes = json.at("mistakes");
  EXPECT_EQ(int64_t(mistakes.size()), 6 - std::llround(json.at("top1").get<double>() * 6.0));
  for (size_t i = 0; i < mistakes.size(); ++i) {
    EXPECT_NE(mistakes[i].at("class"), mistakes[i].at("predicted"));
    EXPECT_TRUE(fs::exists(mistakes[i].at("path").get<std::string>()));
    if (i > 0)
      EXPECT_GE(mistakes[i - 1].at("confidence").get<double>(),
                mistakes[i].at("confidence").get<double>());
  }
}

// --val-split 0 trains on every image: no val_* metrics anywhere, the last epoch's weights
// are the model, a killed run resumes to the same metrics, and what watches validation is
// refused before any image is read.
TEST_F(TrainCli, ValSplitZeroTrainsOnEveryImageAndResumes) {
  const auto args = [&](const fs::path& out) {
    return "train " + data_.path().string() +
           " --model resnet18 --weights random --strategy finetune --epochs 2 --finetune-epochs "
           "1 --unfreeze 4 --img-size 32 --batch-size 8 --seed 5 --val-split 0 --quiet --out " +
           out.string();
  };
  const fs::path whole = runs_.path() / "whole", killed = runs_.path() / "killed";
  auto full = run_cli(args(whole));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("train 36 images, validation 0 images"), std::string::npos)
      << full.output;
  EXPECT_NE(full.output.find("no validation images (--val-split 0)"), std::string::npos);
  std::istringstream lines(full.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("epoch", 0) == 0) EXPECT_EQ(line.find("val_"), std::string::npos) << line;
  EXPECT_NE(full.output.find("no validation; model folder " + whole.string()), std::string::npos)
      << full.output;
  EXPECT_FALSE(fs::exists(whole / "evaluation.json"));
  const std::string report = read_file(whole / "report.html");
  EXPECT_NE(report.find("No validation images"), std::string::npos);
  EXPECT_EQ(report.find("val loss</text>"), std::string::npos);  // no curve without values
  const auto model_json = nlohmann::json::parse(read_file(whole / "model.json"));
  EXPECT_TRUE(model_json.at("training").at("val_top1").is_null()) << model_json.dump();
  std::ifstream csv(whole / "metrics.csv");
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_NE(row.find(",,,"), std::string::npos) << row;  // val_loss, val_acc, val_top5 empty

  // 36 images in batches of 8: 5 steps per epoch; killed in epoch 3 (phase 2).
  auto interrupted = run_cli(args(killed), "VTL_TEST_KILL_AFTER_STEPS=12");
  EXPECT_NE(interrupted.exit_code, 0) << interrupted.output;
  ASSERT_EQ(read_metrics(killed).size(), 2u);
  auto resumed = run_cli("train --resume " + killed.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("epoch 2: resumed after epoch 2 (interrupted)"), std::string::npos)
      << resumed.output;
  expect_same_metrics(whole, killed, 3, {"train_loss"});
  for (const auto& row : read_metrics(whole)) EXPECT_TRUE(row["val_loss"].is_null());
  auto evaluated = run_cli("evaluate " + killed.string() + " " + data_.path().string() + " --json");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_EQ(nlohmann::json::parse(evaluated.output)["count"], 36);

  for (const std::string option : {"--early-stopping 2", "--reduce-lr-patience 1"}) {
    const fs::path out = runs_.path() / "refused";
    auto refused = run_cli(args(out) + " " + option);
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find(option.substr(0, option.find(' ')) + ") watches the validation"),
              std::string::npos)
        << refused.output;
    EXPECT_EQ(refused.output.find("reading the training images"), std::string::npos);
    EXPECT_FALSE(fs::exists(out / "checkpoint"));
  }
}

// Weights of another architecture (resnet34's into resnet18: the headless base took its
// shared tensors and ignored 96 others) and options out of range are refused before any
// image is read; --mixup still mixes with --no-augment.
TEST_F(TrainCli, AnotherArchitecturesWeightsAndOutOfRangeOptionsAreRefused) {
  auto save = [&](const std::string& arch) {
    auto model = models::create_model(arch, models::ModelOptions());
    weights::StateDict state;
    for (const auto& item : model->named_parameters()) state[item.key()] = item.value().detach();
    for (const auto& item : model->named_buffers()) state[item.key()] = item.value();
    const fs::path file = runs_.path() / (arch + ".safetensors");
    weights::save_safetensors(file, state);
    return file.string();
  };
  const std::string base = "train " + data_.path().string() +
                           " --model resnet18 --img-size 32 --epochs 1 --batch-size 8 --quiet "
                           "--no-augment --seed 3 ";
  auto other =
      run_cli(base + "--weights " + save("resnet34") + " --out " + (runs_.path() / "r34").string());
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("unexpected: layer1.2."), std::string::npos) << other.output;
  auto own =
      run_cli(base + "--weights " + save("resnet18") + " --out " + (runs_.path() / "r18").string());
  EXPECT_EQ(own.exit_code, 0) << own.output;  // its fc.* is the head it does not keep

  for (const auto& [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"--optimizer sgd --momentum 5", "--momentum must be in [0, 1)"},
           {"--reduce-lr-factor 2", "--reduce-lr-factor must be in (0, 1)"},
           {"--early-stopping -2", "--early-stopping must be 0 (off) or more"},
           {"--step-epochs 0", "--step-epochs must be 1 or more"},
           {"--clip-grad-norm -1", "--clip-grad-norm must be 0 (off) or more"},
           {"--mixup -1", "--mixup"}}) {
    auto refused = run_cli(base + "--weights random " + option + " --out " +
                           (runs_.path() / "refused").string());
    EXPECT_NE(refused.exit_code, 0) << option;
    EXPECT_NE(refused.output.find(message), std::string::npos) << option << refused.output;
    EXPECT_EQ(refused.output.find("reading the training images"), std::string::npos) << option;
  }

  auto plain = run_cli(base + "--weights random --out " + (runs_.path() / "plain").string());
  auto mixed =
      run_cli(base + "--weights random --mixup 0.4 --out " + (runs_.path() / "mixed").string());
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  ASSERT_EQ(mixed.exit_code, 0) << mixed.output;
  EXPECT_NE(read_metrics(runs_.path() / "plain")[0]["train_loss"].get<double>(),
            read_metrics(runs_.path() / "mixed")[0]["train_loss"].get<double>());
  EXPECT_EQ(mixed.output.find("(cached features)"), std::string::npos) << mixed.output;
}

// A run resumed after images were added to and taken from its data trains on its own
// split (a fresh split would move images from validation into training mid-run); a
// validation set that repeats training images is warned about.
TEST_F(TrainCli, AResumedRunKeepsItsSplitWhenTheDataChanged) {
  const fs::path run = runs_.path() / "changed";
  auto interrupted = run_cli(train_args(run), "VTL_TEST_KILL_AFTER_STEPS=5");
  EXPECT_NE(interrupted.exit_code, 0) << interrupted.output;
  const std::string split = read_file(run / "split.jsonl");
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(data_.path()))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  fs::remove(files.front());
  for (int i = 0; i < 4; ++i)
    fs::copy_file(files[size_t(10 + i)],
                  files[size_t(10 + i)].parent_path() / ("new_" + std::to_string(i) + ".png"));
  auto resumed = run_cli("train --resume " + run.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("the data changed since the run started (4 images not in the "
                                "run's split, 1 of its images gone)"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("train 27 images, validation 8 images, skipped 1"),
            std::string::npos)
      << resumed.output;
  EXPECT_EQ(read_file(run / "split.jsonl"), split);

  auto repeated = run_cli("train " + data_.path().string() + " --val-dir " + data_.path().string() +
                          " --model resnet18 --weights random --epochs 0 --img-size 32 --quiet "
                          "--out " +
                          (runs_.path() / "repeated").string());
  EXPECT_NE(repeated.output.find("warning: 39 of the 39 validation images are also training "
                                 "images"),
            std::string::npos)
      << repeated.output;
}

// A second process cannot train into a run folder while the first still does: a --resume
// started too early is refused, naming the process that holds the folder.
TEST_F(TrainCli, TwoProcessesNeverTrainIntoOneRunFolder) {
  const fs::path run = runs_.path() / "busy", pid_file = runs_.path() / "busy.pid";
  const std::string first = std::string(VTL_CLI_PATH) + " train " + data_.path().string() +
                            " --model resnet18 --weights random --epochs 1000 --img-size 32 "
                            "--quiet --out " +
                            run.string() + " > " + (runs_.path() / "busy.log").string() +
                            " 2>&1 & echo $! > " + pid_file.string();
  ASSERT_EQ(std::system(first.c_str()), 0);
  for (int i = 0; i < 600 && !fs::exists(run / "checkpoint" / "last.pt"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(run / "checkpoint" / "last.pt"));
  const std::string pid = read_file(pid_file).substr(0, read_file(pid_file).find('\n'));
  auto second = run_cli("train --resume " + run.string());
  std::system(("kill " + pid).c_str());
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("another vtl train is writing into " + run.string() + " (process " +
                               pid + ")"),
            std::string::npos)
      << second.output;
}

}  // namespace
}  // namespace vtl
