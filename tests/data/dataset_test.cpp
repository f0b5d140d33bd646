#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "data/small_png.h"
#include "train/clipart_fixture.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/loader.h"
#include "vtl/data/preprocess.h"
#include "vtl/data/transforms.h"

namespace vtl::data {
namespace {
namespace fs = std::filesystem;
using vtl::testing::TempDir;

using vtl::testing::write_png;

TEST(Dataset, ClassFoldersAreSortedAndSymlinkDuplicatesCountOnce) {
  TempDir dir("vtl_dataset");
  write_png(dir.path() / "dog" / "b.png", 10);
  write_png(dir.path() / "dog" / "sub" / "a.png", 20);
  write_png(dir.path() / "cat" / "x.png", 30);
  fs::create_symlink(dir.path() / "cat" / "x.png", dir.path() / "cat" / "x_again.png");
  std::ofstream(dir.path() / "cat" / "notes.txt") << "not an image";
  auto ds = scan_class_folders(dir.path());
  ASSERT_EQ(ds.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.class_counts(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ds.describe_counts(), "cat 1, dog 2");
}

// One path per file whatever order the folder lists them in (the file rather than a link
// to it), and what is left out is said: the other paths of a file, links to nothing.
TEST(Dataset, SymbolicLinksAreResolvedTheSameWayEveryTimeAndNamedWhenLeftOut) {
  TempDir dir("vtl_dataset_links");
  write_png(dir.path() / "cat" / "z_real.png", 10);
  fs::create_symlink("z_real.png", dir.path() / "cat" / "a_link.png");  // sorts first
  fs::create_symlink("/nonexistent/vtl/x.png", dir.path() / "cat" / "gone.png");
  fs::create_symlink("loop_b.png", dir.path() / "cat" / "loop_a.png");
  fs::create_symlink("loop_a.png", dir.path() / "cat" / "loop_b.png");
  write_png(dir.path() / "dog" / "d.png", 20);
  fs::create_symlink("../cat/z_real.png", dir.path() / "dog" / "also_cat.png");
  const auto ds = scan_class_folders(dir.path());
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].path, dir.path() / "cat" / "z_real.png");
  EXPECT_EQ(ds.samples[1].path, dir.path() / "dog" / "d.png");
  std::map<std::string, std::string> reasons;
  for (const auto& file : ds.skipped) reasons[file.path.filename().string()] = file.reason;
  EXPECT_EQ(reasons.size(), 5u);
  EXPECT_EQ(reasons["a_link.png"], "the same file as " +
                                       (dir.path() / "cat" / "z_real.png").string() +
                                       " (a symbolic link); used once");
  EXPECT_NE(reasons["gone.png"].find("a symbolic link to /nonexistent/vtl/x.png, which cannot be "
                                     "opened"),
            std::string::npos);
  EXPECT_NE(reasons["loop_a.png"].find("a symbolic link to loop_b.png"), std::string::npos);
  EXPECT_NE(reasons["also_cat.png"].find("which its own folder lists; used once, there"),
            std::string::npos)
      << reasons["also_cat.png"];

  // A link in an earlier class folder to a file in a later one: the file keeps its own
  // folder's class (the link's folder sorted first and took it).
  write_png(dir.path() / "zebra" / "stripes.png", 30);
  fs::create_symlink("../zebra/stripes.png", dir.path() / "cat" / "b_zebra_link.png");
  const auto again = scan_class_folders(dir.path());
  ASSERT_EQ(again.samples.size(), 3u);
  EXPECT_EQ(again.samples[2].path, dir.path() / "zebra" / "stripes.png");
  EXPECT_EQ(again.classes[size_t(again.samples[2].label)], "zebra");
  EXPECT_EQ(again.class_counts(), (std::vector<int64_t>{1, 1, 1}));
}

// An image given where a dataset is expected is said to be one, not parsed as a CSV.
TEST(Dataset, AnImageIsNotReadAsACsvList) {
  TempDir dir("vtl_dataset_image");
  write_png(dir.path() / "photo.png", 10);
  std::string message;
  try {
    open_dataset(dir.path() / "photo.png");
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("photo.png: an image, not a dataset"), std::string::npos) << message;
  // A weights file (a zip) given as a CSV list is named as binary, its bytes not quoted.
  write_file_atomically(dir.path() / "model.pth", std::string("PK\x03\x04\0\0binary", 12));
  message.clear();
  try {
    open_dataset(dir.path() / "model.pth");
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("model.pth: not a CSV list (it holds binary data)"), std::string::npos)
      << message;
}

TEST(Dataset, HiddenFilesAndMacArchiveFoldersAreNeitherClassesNorImages) {
  TempDir dir("vtl_dataset_hidden");
  write_png(dir.path() / "cats" / "a.png", 10);
  write_png(dir.path() / "dogs" / "b.png", 20);
  // What unzipping an archive made on a Mac, and a notebook's checkpoints, leave behind.
  std::ofstream(dir.path() / "cats" / "._a.png") << "\x00\x05\x16\x07 AppleDouble";
  write_png(dir.path() / "cats" / ".ipynb_checkpoints" / "a-checkpoint.png", 10);
  std::ofstream(dir.path() / "cats" / ".DS_Store") << "finder";
  fs::create_directories(dir.path() / "__MACOSX" / "cats");
  std::ofstream(dir.path() / "__MACOSX" / "cats" / "._a.png") << "AppleDouble";
  const auto dataset = scan_class_folders(dir.path());
  EXPECT_EQ(dataset.classes, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(dataset.samples.size(), 2u);
  EXPECT_TRUE(dataset.skipped.empty()) << dataset.skipped[0].path;
  EXPECT_EQ(list_images(dir.path() / "cats").size(), 1u);
}

TEST(Dataset, ImagesInFormatsVtlDoesNotReadAreListedNotIgnored) {
  TempDir dir("vtl_dataset_avif");
  write_png(dir.path() / "dog" / "b.png", 10);
  std::ofstream(dir.path() / "dog" / "wag.avif") << "....ftypavif";
  std::ofstream(dir.path() / "dog" / "PHOTO.HEIC") << "....ftypheic";
  std::ofstream(dir.path() / "dog" / "notes.txt") << "not an image";
  auto ds = scan_class_folders(dir.path());
  EXPECT_EQ(ds.samples.size(), 1u);
  ASSERT_EQ(ds.skipped.size(), 2u);  // notes.txt is no image at all: not listed
  EXPECT_EQ(ds.skipped[0].path.filename(), "PHOTO.HEIC");
  EXPECT_EQ(ds.skipped[0].reason,
            "HEIC images are not read (vtl reads JPEG, PNG, BMP, WebP, TIFF and GIF); convert "
            "it to PNG");
  EXPECT_EQ(ds.skipped[1].path.filename(), "wag.avif");
  std::vector<SkippedFile> left_out;
  EXPECT_EQ(list_images(dir.path(), &left_out).size(), 1u);
  EXPECT_EQ(left_out.size(), 2u);

  // A class of AVIFs only: the error says why it is empty.
  fs::create_directories(dir.path() / "cat");
  std::ofstream(dir.path() / "cat" / "purr.avif") << "....ftypavif";
  try {
    scan_class_folders(dir.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 'cat' has no images (jpg, jpeg, png, bmp, webp, "
                                         "tif, gif); left out: purr.avif: AVIF images are not "
                                         "read"),
              std::string::npos)
        << e.what();
  }
}

TEST(Dataset, EmptyClassIsAnErrorNamingIt) {
  TempDir dir("vtl_dataset_empty");
  write_png(dir.path() / "dog" / "b.png", 10);
  fs::create_directories(dir.path() / "unicorn");
  try {
    scan_class_folders(dir.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unicorn"), std::string::npos) << e.what();
  }
}

TEST(Dataset, CsvListWithHeaderRelativePathsAndMissingFiles) {
  TempDir dir("vtl_dataset_csv");
  write_png(dir.path() / "img" / "1.png", 1);
  write_png(dir.path() / "img" / "2.png", 2);
  std::ofstream(dir.path() / "list.csv") << "path,label\nimg/1.png,b\nimg/2.png,a\nimg/3.png,a\n";
  auto ds = read_csv_list(dir.path() / "list.csv");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(ds.samples.size(), 2u);
  EXPECT_EQ(ds.samples[0].label, 1);
  ASSERT_EQ(ds.skipped.size(), 1u);
  EXPECT_NE(ds.skipped[0].path.string().find("3.png"), std::string::npos);
  std::ofstream(dir.path() / "bad.csv") << "img/1.png;b\n";
  EXPECT_THROW(read_csv_list(dir.path() / "bad.csv"), Error);
}

// What spreadsheets and pandas write: a byte-order mark, CRLF line ends, other header
// names, an index column, quoted fields holding commas.
TEST(Dataset, CsvListsAsSpreadsheetsAndPandasWriteThem) {
  TempDir dir("vtl_dataset_csv_exports");
  write_png(dir.path() / "img" / "1.png", 1);
  write_png(dir.path() / "img" / "a, b.png", 2);
  const auto read = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name, std::ios::binary) << text;
    return read_csv_list(dir.path() / name);
  };
  const auto excel = read("excel.csv", "\xEF\xBB\xBFpath,label\r\nimg/1.png,cat\r\n\r\n");
  ASSERT_EQ(excel.samples.size(), 1u);
  EXPECT_EQ(excel.classes, (std::vector<std::string>{"cat"}));
  EXPECT_EQ(excel.samples[0].path, dir.path() / "img" / "1.png");

  const auto pandas =
      read("pandas.csv", ",Filename,Class\n0,img/1.png,cat\n1,\"img/a, b.png\",dog\n");
  ASSERT_EQ(pandas.samples.size(), 2u);
  EXPECT_EQ(pandas.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(pandas.samples[1].path, dir.path() / "img" / "a, b.png");
  EXPECT_EQ(pandas.samples[1].label, 1);

  // Without a header: the label is the last field, an unquoted path may hold commas.
  const auto plain = read("plain.csv", "img/a, b.png,dog\n\"img/1.png\",cat\n");
  ASSERT_EQ(plain.samples.size(), 2u);
  EXPECT_EQ(plain.samples[0].path, dir.path() / "img" / "a, b.png");
  EXPECT_EQ(plain.samples[1].path, dir.path() / "img" / "1.png");

  // Written on Windows: backslashes between folders.
  const auto windows = read("windows.csv", "path,label\r\nimg\\1.png,cat\r\n");
  ASSERT_EQ(windows.samples.size(), 1u);
  EXPECT_EQ(windows.samples[0].path, dir.path() / "img" / "1.png");

  // A header naming one of the two columns.
  const auto named = read("named.csv", "name,class\nimg/1.png,cat\n");
  ASSERT_EQ(named.samples.size(), 1u);
  EXPECT_EQ(named.classes, (std::vector<std::string>{"cat"}));

  try {
    read("short.csv", "image,index,label\nimg/1.png,3\n");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("short.csv:2: expected 3 columns as the header says"),
              std::string::npos)
        << e.what();
  }
}

// Kaggle's lists name images by id ("labels.csv": `id,breed`, the images in train/ as
// `<id>.jpg`; cassava's `image_id,label` with "123.jpg" in train_images/).
TEST(Dataset, CsvListsNamingImagesByIdAreFoundInTheFoldersBesideThem) {
  TempDir dir("vtl_dataset_csv_ids");
  write_png(dir.path() / "train" / "0a1b.png", 1);
  write_png(dir.path() / "train" / "77ff.png", 2);
  write_png(dir.path() / "train_images" / "1000.png", 3);
  write_png(dir.path() / "cats" / "1.png", 4);
  write_png(dir.path() / "a" / "dup.png", 5);
  write_png(dir.path() / "b" / "dup.png", 6);
  const auto read = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return read_csv_list(dir.path() / name);
  };
  const auto breeds = read("labels.csv", "id,breed\n0a1b,boxer\n77ff,pug\nmissing,pug\n");
  EXPECT_EQ(breeds.classes, (std::vector<std::string>{"boxer", "pug"}));
  ASSERT_EQ(breeds.samples.size(), 2u);
  EXPECT_EQ(breeds.samples[0].path, dir.path() / "train" / "0a1b.png");
  EXPECT_EQ(breeds.samples[1].path, dir.path() / "train" / "77ff.png");
  ASSERT_EQ(breeds.skipped.size(), 1u);
  EXPECT_NE(breeds.skipped[0].reason.find("nor an image named 'missing'"), std::string::npos)
      << breeds.skipped[0].reason;

  // Looked for down to three folders below the CSV's, not deeper.
  write_png(dir.path() / "x" / "y" / "z" / "deep3.png", 7);
  write_png(dir.path() / "x" / "y" / "z" / "w" / "deep4.png", 8);
  const auto deep = read("deep.csv", "id,label\ndeep3,a\ndeep4,a\n");
  ASSERT_EQ(deep.samples.size(), 1u);
  EXPECT_EQ(deep.samples[0].path, dir.path() / "x" / "y" / "z" / "deep3.png");
  ASSERT_EQ(deep.skipped.size(), 1u);
  EXPECT_NE(deep.skipped[0].reason.find("(3 folders deep)"), std::string::npos)
      << deep.skipped[0].reason;

  const auto cassava = read("train.csv", "image_id,label\n1000.png,3\n0a1b.png,1\n");
  ASSERT_EQ(cassava.samples.size(), 2u);
  EXPECT_EQ(cassava.samples[0].path, dir.path() / "train_images" / "1000.png");
  EXPECT_EQ(cassava.classes, (std::vector<std::string>{"1", "3"}));

  // A name that is two images is not guessed at; a path with a folder is taken as written.
  const auto unsure = read("unsure.csv", "id,label\ndup,x\ncats/1.png,x\ndogs/1.png,y\n0a1b,y\n");
  ASSERT_EQ(unsure.samples.size(), 2u);
  ASSERT_EQ(unsure.skipped.size(), 2u);
  EXPECT_NE(unsure.skipped[0].reason.find("2 images under"), std::string::npos)
      << unsure.skipped[0].reason;
  EXPECT_EQ(unsure.skipped[1].reason, "no such file");

  // More columns than the header names: which is the label is asked, not guessed
  // (HAM10000's metadata: lesion_id,image_id,dx,dx_type,age,sex,localization).
  try {
    read("ham.csv", "lesion_id,image_id,dx,age\nL1,0a1b,nv,40\n");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ham.csv:1: which column is the label?"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("'lesion_id', 'dx', 'age'; choose it with "
                                         "--label-column NAME, or name it `label`"),
              std::string::npos)
        << e.what();
  }
  const auto renamed = read("ham_renamed.csv", ",lesion_id,image_id,label,age\n0,L1,0a1b,nv,40\n");
  ASSERT_EQ(renamed.samples.size(), 1u);
  EXPECT_EQ(renamed.classes, (std::vector<std::string>{"nv"}));
  const auto indexed = read("indexed.csv", "Unnamed: 0,id,breed\n0,0a1b,boxer\n");
  ASSERT_EQ(indexed.samples.size(), 1u);
  EXPECT_EQ(indexed.classes, (std::vector<std::string>{"boxer"}));

  // An unlabelled list (Kaggle's sample_submission.csv): its images in its order.
  std::ofstream(dir.path() / "sample_submission.csv")
      << "id,boxer,pug\n77ff,0.5,0.5\n0a1b,0.5,0.5\nnope,0.5,0.5\n";
  std::vector<SkippedFile> skipped;
  EXPECT_EQ(read_image_list(dir.path() / "sample_submission.csv", &skipped),
            (std::vector<fs::path>{dir.path() / "train" / "77ff.png",
                                   dir.path() / "train" / "0a1b.png"}));
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].path, dir.path() / "nope");
  // Without a header: the first column.
  std::ofstream(dir.path() / "plain_list.csv") << "train/77ff.png\ncats\\1.png,extra\n";
  EXPECT_EQ(
      read_image_list(dir.path() / "plain_list.csv"),
      (std::vector<fs::path>{dir.path() / "train" / "77ff.png", dir.path() / "cats" / "1.png"}));

  // Which lists have labels, from their first line.
  const auto labelled = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return csv_list_is_labelled(dir.path() / name);
  };
  EXPECT_TRUE(labelled("l1.csv", "id,breed\n0a1b,boxer\n"));
  EXPECT_TRUE(labelled("l2.csv", "train/77ff.png,pug\n"));
  EXPECT_TRUE(labelled("l3.csv", "\xEF\xBB\xBF,name,class\n0,a.png,x\n"));
  EXPECT_FALSE(labelled("u1.csv", "id\n0a1b\n"));
  EXPECT_FALSE(labelled("u2.csv", "\n\ntrain/77ff.png\n"));
  EXPECT_FALSE(labelled("u3.csv", ",image_id,is_valid\n0,0a1b,1\n"));

  // The folder of images, or the folder above it, given instead of the list: the error
  // points at the list.
  try {
    open_dataset(dir.path() / "train");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no class folders"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("give its path instead of the folder (found: " +
                                         (dir.path() / "labels.csv").string()),
              std::string::npos)
        << e.what();
  }

  try {
    read("none.csv", "id,label\nnope,x\n");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 'x' has no existing images; left out:"),
              std::string::npos)
        << e.what();
  }
}

// Labels where the layout does not say: CSV columns chosen by header name (fastai's
// `from_df(fn_col=, label_col=)`), or file names (fastai's `from_name_re`).
TEST(Dataset, LabelsFromChosenColumnsOrFromFileNames) {
  TempDir dir("vtl_dataset_label_source");
  write_png(dir.path() / "images" / "ISIC_1.png", 1);
  write_png(dir.path() / "images" / "ISIC_2.png", 2);
  write_png(dir.path() / "images" / "ISIC_3.png", 3);
  const auto csv = dir.path() / "HAM10000_metadata.csv";
  std::ofstream(csv)
      << "lesion_id,image_id,dx,dx_type,age\n"
         "L1,ISIC_1,nv,histo,40\nL2,ISIC_2,mel,histo,55\nL3,ISIC_3,nv,follow_up,35\n";
  LabelSource dx;
  dx.label_column = "DX";  // any case
  const auto ham = read_csv_list(csv, {}, dx);
  EXPECT_EQ(ham.classes, (std::vector<std::string>{"mel", "nv"}));
  ASSERT_EQ(ham.samples.size(), 3u);
  EXPECT_EQ(ham.samples[1].path, dir.path() / "images" / "ISIC_2.png");
  EXPECT_EQ(ham.samples[1].label, 0);
  LabelSource by_type;  // both chosen: the image column need not be one vtl knows by name
  by_type.path_column = "image_id";
  by_type.label_column = "dx_type";
  EXPECT_EQ(read_csv_list(csv, {}, by_type).classes,
            (std::vector<std::string>{"follow_up", "histo"}));
  EXPECT_TRUE(csv_list_is_labelled(csv, dx));
  LabelSource typo;
  typo.label_column = "diagnosis";
  try {
    read_csv_list(csv, {}, typo);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "HAM10000_metadata.csv:1: --label-column diagnosis: the first line has no such "
                  "column (it has 'lesion_id', 'image_id', 'dx', 'dx_type', 'age')"),
              std::string::npos)
        << e.what();
  }
  // An unlabelled list whose image column has a name of its own.
  std::ofstream(dir.path() / "test.csv") << "lesion,picture\nL9,ISIC_3\n";
  EXPECT_EQ(read_image_list(dir.path() / "test.csv", nullptr, "picture"),
            (std::vector<fs::path>{dir.path() / "images" / "ISIC_3.png"}));
  EXPECT_THROW(read_image_list(dir.path() / "test.csv", nullptr, "image"), Error);

  // Oxford pets: the breed is the name before `_<number>`; names it does not match are
  // skipped, saying so.
  const auto pets = dir.path() / "pets";
  write_png(pets / "Abyssinian_1.png", 10);
  write_png(pets / "Abyssinian_12.png", 11);
  write_png(pets / "great_pyrenees_3.png", 12);
  write_png(pets / "sub" / "great_pyrenees_40.png", 13);
  write_png(pets / "README.png", 14);
  LabelSource breed;
  breed.name_pattern = R"(^(.+)_\d+\.png$)";
  const auto oxford = open_dataset(pets, {}, breed);
  EXPECT_EQ(oxford.classes, (std::vector<std::string>{"Abyssinian", "great_pyrenees"}));
  ASSERT_EQ(oxford.samples.size(), 4u);
  EXPECT_EQ(oxford.class_counts(), (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(oxford.skipped.size(), 1u);
  EXPECT_EQ(oxford.skipped[0].path.filename(), "README.png");
  EXPECT_NE(oxford.skipped[0].reason.find("its name gives no label"), std::string::npos);
  // Without a group the whole match is the label (Kaggle's cat.0.jpg).
  LabelSource prefix;
  prefix.name_pattern = "^[a-z]+";
  EXPECT_EQ(open_dataset(pets, {}, prefix).classes,
            (std::vector<std::string>{"great"}));  // "Abyssinian" starts upper-case
  // Validation data read with the training classes: a label outside them is an error.
  EXPECT_THROW(scan_file_name_labels(pets, breed, {"Abyssinian", "beagle"}), Error);
  LabelSource broken;
  broken.name_pattern = "^(.+";
  EXPECT_THROW(open_dataset(pets, {}, broken), Error);
  LabelSource nothing;
  nothing.name_pattern = "^dog";
  EXPECT_THROW(open_dataset(pets, {}, nothing), Error);
  // Each kind of source for its kind of data.
  EXPECT_THROW(open_dataset(csv, {}, breed), Error);
  EXPECT_THROW(open_dataset(pets, {}, dx), Error);
}

TEST(Dataset, StratifiedSplitKeepsEveryClassInBothParts) {
  Dataset ds;
  ds.classes = {"a", "b", "c"};
  for (int i = 0; i < 50; ++i) ds.samples.push_back({"a" + std::to_string(i), 0});
  for (int i = 0; i < 10; ++i) ds.samples.push_back({"b" + std::to_string(i), 1});
  for (int i = 0; i < 3; ++i) ds.samples.push_back({"c" + std::to_string(i), 2});
  auto [train, val] = split_stratified(ds, 0.2, 7);
  EXPECT_EQ(val.class_counts(), (std::vector<int64_t>{10, 2, 1}));
  EXPECT_EQ(train.class_counts(), (std::vector<int64_t>{40, 8, 2}));
  auto [train2, val2] = split_stratified(ds, 0.2, 7);
  for (size_t i = 0; i < val.samples.size(); ++i)
    EXPECT_EQ(val.samples[i].path, val2.samples[i].path);
  auto [train3, val3] = split_stratified(ds, 0.2, 8);
  bool differs = false;
  for (size_t i = 0; i < val.samples.size(); ++i)
    differs |= val.samples[i].path != val3.samples[i].path;
  EXPECT_TRUE(differs);
  // A fraction of 0 holds nothing out; 1 would leave nothing to train on.
  auto [everything, none] = split_stratified(ds, 0.0, 7);
  EXPECT_EQ(everything.class_counts(), (std::vector<int64_t>{50, 10, 3}));
  EXPECT_TRUE(none.samples.empty());
  EXPECT_EQ(none.classes, ds.classes);
  EXPECT_THROW(split_stratified(ds, 1.0, 7), Error);
  EXPECT_THROW(split_stratified(ds, -0.1, 7), Error);
}

TEST(Loader, CorruptImagesAreSkippedAndListed) {
  TempDir dir("vtl_loader_corrupt");
  for (int i = 0; i < 3; ++i) write_png(dir.path() / "a" / (std::to_string(i) + ".png"), i * 40);
  for (int i = 0; i < 3; ++i) write_png(dir.path() / "b" / (std::to_string(i) + ".png"), 200);
  std::ofstream(dir.path() / "a" / "broken.png") << "\x89PNG truncated";
  auto ds = scan_class_folders(dir.path());
  ASSERT_EQ(ds.samples.size(), 7u);
  ImageStore store({}, 32);
  store.prepare(ds, 2);
  EXPECT_EQ(ds.samples.size(), 6u);
  ASSERT_EQ(ds.skipped.size(), 1u);
  EXPECT_EQ(ds.skipped[0].path.filename(), "broken.png");
  // The reason does not name the file again: listings print "<path>: <reason>".
  EXPECT_EQ(ds.skipped[0].reason.rfind("not a readable image", 0), 0u) << ds.skipped[0].reason;
  EXPECT_EQ(SkippedFile::from_error("x/a.png", "x/a.png: empty file").reason, "empty file");
  EXPECT_EQ(SkippedFile::from_error("x/a.png", "out of memory").reason, "out of memory");
}

TEST(Loader, AWorkerThatThrowsStopsTheEpochWithItsErrorAndNothingHangs) {
  // Nothing is kept in memory, so workers decode again during the epoch; a file that was
  // fine when the dataset was prepared is corrupted before it is used.
  TempDir dir("vtl_loader_throw");
  for (int i = 0; i < 8; ++i) write_png(dir.path() / "a" / (std::to_string(i) + ".png"), i * 20);
  for (int i = 0; i < 8; ++i) write_png(dir.path() / "b" / (std::to_string(i) + ".png"), 200);
  auto ds = scan_class_folders(dir.path());
  auto store = std::make_shared<ImageStore>(DecodeOptions{}, 32, /*memory_budget=*/0);
  store->prepare(ds, 2);
  ASSERT_EQ(store->images_kept(), 0u);
  std::ofstream(dir.path() / "b" / "5.png", std::ios::trunc) << "overwritten";
  for (int workers : {1, 3}) {
    LoaderOptions o;
    o.batch_size = 2;
    o.workers = workers;
    o.prefetch = 4;
    o.preprocessing.resize = 32;
    o.preprocessing.crop = 32;
    Loader loader(ds, store, o);
    loader.start_epoch(1);
    size_t batches = 0;
    std::string error;
    try {
      while (loader.next()) ++batches;
    } catch (const Error& e) {
      error = e.what();
    }
    EXPECT_NE(error.find("5.png"), std::string::npos) << workers << " workers: " << error;
    EXPECT_LT(batches, loader.num_batches());
    // A new epoch starts cleanly (the error is not sticky) and meets the same file.
    loader.start_epoch(2);
    EXPECT_THROW(while (loader.next()){}, Error);
  }  // ~Loader joins its workers: reaching the end of the test is the check
}

TEST(Loader, BatchesAreDeterministicForAnyWorkerCount) {
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_loader_det");
  vtl::testing::make_clipart_set(dir.path(), {"animals", "shapes"}, 6);
  auto ds = scan_class_folders(dir.path());
  auto store = std::make_shared<ImageStore>(DecodeOptions{}, 48);
  store->prepare(ds, 2);
  auto run = [&](int workers) {
    LoaderOptions o;
    o.batch_size = 5;
    o.shuffle = true;
    o.train = true;
    o.workers = workers;
    o.prefetch = 2;
    o.seed = 3;
    o.preprocessing.resize = 48;
    o.preprocessing.crop = 40;
    Loader loader(ds, store, o);
    std::vector<torch::Tensor> out;
    loader.start_epoch(1);
    while (auto batch = loader.next()) {
      EXPECT_EQ(batch->images.sizes(), (std::vector<int64_t>{batch->labels.size(0), 3, 40, 40}));
      out.push_back(batch->images);
    }
    EXPECT_EQ(out.size(), loader.num_batches());
    return torch::cat(out);
  };
  auto one = run(1), three = run(3);
  EXPECT_TRUE(torch::equal(one, three));
  EXPECT_EQ(one.size(0), int64_t(ds.samples.size()));
}

// pin_memory: the same batches, in page-locked memory (needs CUDA; skipped without it).
TEST(Loader, PinnedBatchesEqualPageableOnes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "page-locked memory needs CUDA";
  VTL_REQUIRE_CLIPART();
  TempDir dir("vtl_loader_pinned");
  vtl::testing::make_clipart_set(dir.path(), {"animals", "shapes"}, 4);
  auto ds = scan_class_folders(dir.path());
  auto store = std::make_shared<ImageStore>(DecodeOptions{}, 48);
  store->prepare(ds, 2);
  auto first_batch = [&](bool pinned) {
    LoaderOptions o;
    o.batch_size = 4;
    o.preprocessing.resize = 48;
    o.preprocessing.crop = 40;
    o.pin_memory = pinned;
    Loader loader(ds, store, o);
    loader.start_epoch(0);
    return *loader.next();
  };
  const auto pinned = first_batch(true), pageable = first_batch(false);
  EXPECT_TRUE(pinned.images.is_pinned());
  EXPECT_TRUE(pinned.labels.is_pinned());
  EXPECT_TRUE(torch::equal(pinned.images, pageable.images));
  EXPECT_TRUE(torch::equal(pinned.labels, pageable.labels));
  const auto on_gpu = pinned.images.to(torch::kCUDA, /*non_blocking=*/true);
  EXPECT_TRUE(torch::equal(on_gpu.cpu(), pageable.images));
}

TEST(Transforms, AugmentationChangesPixelsAndNoneEqualsEval) {
  cv::Mat image(60, 80, CV_8UC3);
  cv::randu(image, 0, 255);
  Preprocessing p;
  p.resize = 40;
  p.crop = 32;
  std::mt19937_64 rng(1), rng2(1);
  auto a = train_transform(image, p, AugmentOptions{}, rng);
  auto b = train_transform(image, p, AugmentOptions{}, rng2);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::equal(a, b));  // same rng state, same output
  auto c = train_transform(image, p, AugmentOptions{}, rng);
  EXPECT_FALSE(torch::equal(a, c));
  std::mt19937_64 rng3(1);
  auto plain = train_transform(image, p, AugmentOptions::none(), rng3);
  EXPECT_TRUE(torch::allclose(plain, eval_transform(image, p), 1e-5, 1e-5));
}

TEST(Transforms, MixupKeepsTargetsNormalised) {
  auto images = torch::rand({8, 3, 16, 16});
  auto targets = torch::one_hot(torch::arange(8) % 4, 4).to(torch::kFloat32);
  AugmentOptions o = AugmentOptions::none();
  o.mixup_alpha = 0.4;
  std::mt19937_64 rng(5);
  auto mixed_images = images.clone();
  mix_batch(mixed_images, targets, o, rng);
  EXPECT_TRUE(torch::allclose(targets.sum(1), torch::ones({8})));
  EXPECT_FALSE(torch::equal(mixed_images, images));
  o.mixup_alpha = 0;
  o.cutmix_alpha = 1.0;
  auto t2 = torch::one_hot(torch::arange(8) % 4, 4).to(torch::kFloat32);
  mix_batch(mixed_images, t2, o, rng);
  EXPECT_TRUE(torch::allclose(t2.sum(1), torch::ones({8})));
}

}  // namespace
}  // namespace vtl::data
