#include <fstream>

#include <gtest/gtest.h>

#include "data/small_png.h"
#include "train/clipart_fixture.h"
#include "vtl/data/dataset.h"
#include "vtl/data/split_folders.h"

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

}  // namespace
}  // namespace vtl::data
