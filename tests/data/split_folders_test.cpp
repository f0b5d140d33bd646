#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "data/small_png.h"
#include "train/clipart_fixture.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/split_folders.h"
#include "vtl/data/splits.h"

namespace vtl::data {
namespace {
namespace fs = std::filesystem;
using vtl::testing::TempDir;
using vtl::testing::write_png;

TEST(SplitFolders, TrainValTestFoldersAreSplitsNotClasses) {
  TempDir dir("vtl_splits");
  write_png(dir.path() / "train" / "dog" / "a.png", 10);
  write_png(dir.path() / "train" / "dog" / "b.png", 20);
  write_png(dir.path() / "train" / "cat" / "c.png", 30);
  write_png(dir.path() / "Validation" / "cat" / "d.png", 40);
  write_png(dir.path() / "test" / "dog" / "e.png", 50);
  write_png(dir.path() / "test" / "owl" / "f.png", 60);  // a class only the test set has
  std::ofstream(dir.path() / "labels.txt") << "files next to the splits do not matter";

  const auto folders = find_split_folders(dir.path());
  ASSERT_TRUE(folders.has_value());
  EXPECT_EQ(folders->train, dir.path() / "train");
  EXPECT_EQ(folders->validation, dir.path() / "Validation");
  EXPECT_EQ(folders->test, dir.path() / "test");

  // Read as one dataset (extract, index, compare): labelled by class folder, all splits.
  const auto all = open_dataset(dir.path());
  EXPECT_EQ(all.classes, (std::vector<std::string>{"cat", "dog", "owl"}));
  EXPECT_EQ(all.class_counts(), (std::vector<int64_t>{2, 3, 1}));
  EXPECT_TRUE(all.skipped.empty());
}

TEST(SplitFolders, ClassTreesAndUnlabelledTestFoldersAreRecognisedForWhatTheyAre) {
  {  // "train" as a class among others (transportation: bus, car, train) is a class.
    TempDir dir("vtl_splits_classes");
    write_png(dir.path() / "bus" / "a.png", 10);
    write_png(dir.path() / "train" / "b.png", 20);
    EXPECT_FALSE(find_split_folders(dir.path()).has_value());
    EXPECT_EQ(open_dataset(dir.path()).classes, (std::vector<std::string>{"bus", "train"}));
  }
  {  // Kaggle: labelled train/<class>/, unlabelled test/ of loose images.
    TempDir dir("vtl_splits_kaggle");
    write_png(dir.path() / "train" / "cat" / "a.png", 10);
    write_png(dir.path() / "train" / "dog" / "b.png", 20);
    write_png(dir.path() / "test" / "1.png", 30);
    const auto folders = find_split_folders(dir.path());
    ASSERT_TRUE(folders.has_value());
    EXPECT_TRUE(folders->validation.empty());
    EXPECT_TRUE(folders->test.empty());
    EXPECT_EQ(open_dataset(dir.path()).samples.size(), 2u);
  }
  {  // train/ of loose images has no classes: no split layout.
    TempDir dir("vtl_splits_flat");
    write_png(dir.path() / "train" / "a.png", 10);
    write_png(dir.path() / "val" / "b.png", 20);
    EXPECT_FALSE(find_split_folders(dir.path()).has_value());
  }
  {  // Two training folders are ambiguous.
    TempDir dir("vtl_splits_two");
    write_png(dir.path() / "train" / "cat" / "a.png", 10);
    write_png(dir.path() / "training" / "cat" / "b.png", 20);
    EXPECT_FALSE(find_split_folders(dir.path()).has_value());
  }
  EXPECT_FALSE(find_split_folders("/nonexistent/vtl").has_value());
}

// Read as a class tree, train/ val/ test/ beside a stray folder would train on the test
// images (as the classes "test", "train", ...): refused, naming the stray folder.
TEST(SplitFolders, AStrayFolderBesideSplitFoldersIsRefusedByName) {
  TempDir dir("vtl_splits_stray");
  write_png(dir.path() / "train" / "cat" / "a.png", 10);
  write_png(dir.path() / "train" / "dog" / "b.png", 20);
  write_png(dir.path() / "test" / "cat" / "c.png", 30);
  write_png(dir.path() / "extra" / "d.png", 40);
  std::string message;
  try {
    find_split_folders(dir.path());
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("holds split folders (train, test) and also extra/"), std::string::npos)
      << message;
  EXPECT_THROW(open_dataset(dir.path()), Error);
  fs::remove_all(dir.path() / "test");  // train/ among classes: a class tree again
  EXPECT_FALSE(find_split_folders(dir.path()).has_value());
  EXPECT_EQ(open_dataset(dir.path()).classes, (std::vector<std::string>{"extra", "train"}));
}

// Kaggle's dog-breed layout: labels.csv (id,breed) beside train/ and test/ of flat images.
// Read as a class tree, "train" and "test" would be the classes; the CSV is named instead.
TEST(SplitFolders, FlatTrainImagesBesideACsvPointToTheCsv) {
  TempDir dir("vtl_splits_kaggle");
  write_png(dir.path() / "train" / "0a1b.png", 10);
  write_png(dir.path() / "train" / "0c2d.png", 20);
  write_png(dir.path() / "test" / "9f8e.png", 30);
  std::ofstream(dir.path() / "labels.csv") << "id,breed\n0a1b,beagle\n0c2d,boxer\n";
  for (const bool with_test : {true, false}) {
    if (!with_test) fs::remove_all(dir.path() / "test");
    std::string message;
    try {
      open_dataset(dir.path());
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("train/ holds images without class folders, and labels.csv beside it "
                           "may list their labels: give the CSV as DATA (" +
                           (dir.path() / "labels.csv").string() + ")"),
              std::string::npos)
        << message;
  }
  EXPECT_EQ(open_dataset(dir.path() / "labels.csv").classes,
            (std::vector<std::string>{"beagle", "boxer"}));
}

/// Writes `rows` PNGs img/<i>.png and `name` holding `header` and one line per image made by
/// `line(i)`; returns the CSV's path.
template <typename Line>
fs::path write_csv(const fs::path& dir, const std::string& name, const std::string& header,
                   int rows, Line line) {
  std::ofstream csv(dir / name);
  csv << header << "\n";
  for (int i = 0; i < rows; ++i) {
    write_png(dir / "img" / (std::to_string(i) + ".png"), i * 10);
    csv << line(i) << "\n";
  }
  return dir / name;
}

TEST(SplitColumn, FastaiIsValidColumnChoosesTheValidationRows) {
  TempDir dir("vtl_split_is_valid");
  // fastai's from_df layout: name,label,is_valid; rows 0-2 of each class train, row 3 valid.
  const auto csv = write_csv(dir.path(), "labels.csv", "name,label,is_valid", 8, [](int i) {
    return fmt::format("img/{}.png,{},{}", i, i % 2 ? "seven" : "three", i >= 6 ? "True" : "False");
  });
  const auto all = read_csv_list(csv);
  EXPECT_TRUE(all.marks_splits);
  ASSERT_EQ(all.samples.size(), 8u);
  EXPECT_EQ(all.samples[7].split, Split::validation);
  EXPECT_EQ(all.samples[0].split, Split::train);

  const auto split = open_training_split(csv, {}, 0.5, 0);
  ASSERT_EQ(split.train.samples.size(), 6u);
  ASSERT_EQ(split.validation.samples.size(), 2u);
  EXPECT_EQ(split.validation.samples[0].path, dir.path() / "img" / "6.png");
  EXPECT_EQ(split.validation.samples[1].path, dir.path() / "img" / "7.png");
  EXPECT_EQ(split.train.classes, (std::vector<std::string>{"seven", "three"}));
  EXPECT_NE(split.description.find("split column: training on the 6 rows marked train, "
                                   "validating on the 2 rows marked valid"),
            std::string::npos)
      << split.description;

  // A validation path given explicitly wins over the column.
  const auto other = write_csv(dir.path(), "other.csv", "path,label", 2, [](int i) {
    return fmt::format("img/{}.png,{}", i, i % 2 ? "seven" : "three");
  });
  const auto explicit_val = open_training_split(csv, other, 0.5, 0);
  EXPECT_EQ(explicit_val.train.samples.size(), 6u);
  EXPECT_EQ(explicit_val.validation.samples.size(), 2u);
  EXPECT_EQ(explicit_val.validation.samples[0].path, dir.path() / "img" / "0.png");

  // A file without a split column is split by fraction, as before.
  const auto plain = open_training_split(other, {}, 0.5, 0);
  EXPECT_TRUE(plain.description.empty());
  EXPECT_EQ(plain.train.samples.size() + plain.validation.samples.size(), 2u);
}

TEST(SplitColumn, SplitColumnWithTestRowsLeavesThemForEvaluation) {
  TempDir dir("vtl_split_column");
  const char* parts[] = {"train", "train", "train", "train", "Valid", "valid", "TEST", "test"};
  const auto csv = write_csv(dir.path(), "data.csv", "filename,class,split", 8, [&](int i) {
    return fmt::format("img/{}.png,{},{}", i, i % 2 ? "b" : "a", parts[i]);
  });
  const auto split = open_training_split(csv, {}, 0.5, 0);
  EXPECT_EQ(split.train.samples.size(), 4u);
  EXPECT_EQ(split.validation.samples.size(), 2u);
  EXPECT_NE(split.description.find("(2 test rows are left for `vtl evaluate`)"), std::string::npos)
      << split.description;

  const auto evaluation = open_evaluation_set(csv, {"a", "b"});
  ASSERT_EQ(evaluation.images.samples.size(), 2u);
  EXPECT_EQ(evaluation.images.samples[0].path, dir.path() / "img" / "6.png");
  EXPECT_EQ(evaluation.images.samples[1].label, 1);
  EXPECT_EQ(evaluation.source, csv);
  EXPECT_NE(evaluation.description.find("evaluating on the 2 rows marked test"), std::string::npos)
      << evaluation.description;

  // Without valid rows: a fraction of the train rows validates; evaluation takes test rows.
  const auto no_valid = write_csv(dir.path(), "no_valid.csv", "image,label,subset", 8, [](int i) {
    return fmt::format("img/{}.png,{},{}", i, i % 2 ? "b" : "a", i < 6 ? "training" : "testing");
  });
  const auto fraction = open_training_split(no_valid, {}, 0.5, 0);
  EXPECT_EQ(fraction.train.samples.size() + fraction.validation.samples.size(), 6u);
  EXPECT_EQ(fraction.validation.samples.size(), 4u);  // half of 3 per class, rounded to 2
  EXPECT_NE(fraction.description.find("0.5 of each class (no row is marked valid)"),
            std::string::npos)
      << fraction.description;
}

TEST(SplitColumn, ValuesTheColumnCannotMeanAreErrorsNamingTheLine) {
  TempDir dir("vtl_split_column_bad");
  const auto bad_flag = write_csv(dir.path(), "flag.csv", "path,label,is_valid", 3, [](int i) {
    return fmt::format("img/{}.png,a,{}", i, i == 2 ? "maybe" : "0");
  });
  try {
    read_csv_list(bad_flag);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "flag.csv:4: the is_valid column says 'maybe': expected true or false"),
              std::string::npos)
        << e.what();
  }
  const auto bad_split = write_csv(dir.path(), "split.csv", "path,label,split", 2, [](int i) {
    return fmt::format("img/{}.png,a,{}", i, i == 0 ? "train" : "holdout");
  });
  try {
    read_csv_list(bad_split);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "split.csv:3: the split column says 'holdout': expected train, valid or test"),
              std::string::npos)
        << e.what();
  }
  // Every row marked valid or test: nothing to train on.
  const auto no_train = write_csv(dir.path(), "no_train.csv", "path,label,split", 2,
                                  [](int i) { return fmt::format("img/{}.png,a,valid", i); });
  EXPECT_THROW(open_training_split(no_train, {}, 0.5, 0), Error);
}

}  // namespace
}  // namespace vtl::data
