#pragma once
// Labelled image lists: a class-folder tree or a CSV of `path,label`, plus a stratified
// train/validation split. Only paths and labels here; decoding happens in the loader.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vtl::data {

/// Which part of a dataset an image belongs to, when the dataset says (a CSV split column).
enum class Split { unmarked, train, validation, test };

struct Sample {
  std::filesystem::path path;
  int64_t label = 0;  ///< index into Dataset::classes
  Split split = Split::unmarked;
};

/// A file a dataset or loader could not use, with the reason (shown to the user and
/// written to the run folder's skipped.txt).
struct SkippedFile {
  std::filesystem::path path;
  std::string reason;

  /// `path` skipped for `error`, a message of vtl's that names the file first
  /// ("<path>: not a readable image ..."): the reason is the message without that name.
  static SkippedFile from_error(const std::filesystem::path& path, const std::string& error);
};

/// Plain data: copies are independent; safe to read from several threads.
struct Dataset {
  std::vector<std::string> classes;  ///< class id -> name
  std::vector<Sample> samples;
  std::vector<SkippedFile> skipped;  ///< files left out while listing
  /// Every sample's split is marked (a CSV with a split column; see read_csv_list).
  bool marks_splits = false;

  /// Images per class, index = class id.
  std::vector<int64_t> class_counts() const;
  /// "cat 120, dog 98" (for logs).
  std::string describe_counts() const;
  /// The label of each sample, in sample order (what classical classifiers take).
  std::vector<int64_t> labels() const;
  /// The path of each sample, in sample order.
  std::vector<std::filesystem::path> paths() const;
  int64_t num_classes() const { return static_cast<int64_t>(classes.size()); }
};

/// Where the labels are when the data's layout does not say (class folders, a CSV header
/// naming `path,label`): fastai's `from_df(fn_col=, label_col=)` and `from_name_re`. Plain
/// data; empty: the layout says.
struct LabelSource {
  /// A CSV list's image column, by its header name (any case); "": the column named path,
  /// id, image_id, filename, ... (see read_csv_list).
  std::string path_column;
  /// A CSV list's label column, by its header name (any case); "": the column named label,
  /// class, category, ... (see read_csv_list).
  std::string label_column;
  /// A folder whose images' file names hold their labels (Oxford pets' `Abyssinian_12.jpg`,
  /// Kaggle's `cat.0.jpg`): an ECMAScript regular expression searched in each file name;
  /// its first group, or the whole match when it has none, is the label. "": class folders.
  std::string name_pattern;

  bool empty() const { return path_column.empty() && label_column.empty() && name_pattern.empty(); }
};

/// A class-folder tree: `root/<class>/**/<image>`; class names are the sorted subfolder
/// names; images are files with an image extension (see has_image_extension), symbolic
/// links are followed and duplicates (two names for the same file) are kept once; files
/// are sorted by path within a class. Images directly in `root`, next to the class
/// folders, have no class and go to `skipped`. A class folder without images, or a root
/// without class folders, throws vtl::Error naming it. `classes`, when given, fixes the class list
/// and order (a validation tree must match the training classes; extra folders are
/// errors, missing ones are allowed).
Dataset scan_class_folders(const std::filesystem::path& root,
                           const std::vector<std::string>& classes = {});

/// A CSV of `path,label` rows (an optional header `path,label` is skipped; relative paths
/// are relative to the CSV's folder; labels are class names). Classes are the sorted
/// distinct labels unless `classes` is given. Malformed lines throw vtl::Error naming the
/// file and line; rows whose file is missing are skipped and listed.
/// A path that names no folder and is not beside the CSV ("0a1b2c" or "0a1b2c.jpg": Kaggle's
/// `id`/`image_id` columns) is the one image under the CSV's folder, at any depth, with
/// that file name or that name plus an image extension; none or several: skipped, saying so.
/// A header may also name a split column, which marks every row's Split (marks_splits):
/// fastai's `is_valid` (also `valid`, `is_val`, `is_validation`: true/false, 1/0, yes/no)
/// or `split` (also `subset`, `set`, `partition`: train/training, val/valid/validation/dev,
/// test/testing; any case).
/// `source` names the path and label columns by header name when given (then the first line
/// must be a header holding them; an unknown name throws vtl::Error listing the header).
Dataset read_csv_list(const std::filesystem::path& csv,
                      const std::vector<std::string>& classes = {}, const LabelSource& source = {});

/// Every image under `root` (as list_images) labelled by the regular expression
/// `source.name_pattern` searched in its file name (see LabelSource). Images whose names it
/// does not match go to `skipped`, saying so. Classes are the sorted distinct labels unless
/// `classes` is given (then a label outside them throws vtl::Error naming the file). Throws
/// vtl::Error for an invalid expression, or when no file name matches.
Dataset scan_file_name_labels(const std::filesystem::path& root, const LabelSource& source,
                              const std::vector<std::string>& classes = {});

/// The images a CSV file lists, in its order, without labels (Kaggle's
/// `sample_submission.csv` or `test.csv`): the column a header names as the path (see
/// read_csv_list; `id`, `image_id`, `filename`, ...), else the first column. Paths resolve
/// as read_csv_list's do (relative to the CSV's folder, bare ids found under it); rows
/// whose image is not found are appended to `skipped` when given, with the reason. Throws
/// vtl::Error naming the file and line for a row without the path column.
/// `path_column`, when given, is the path column's header name (LabelSource::path_column).
std::vector<std::filesystem::path> read_image_list(const std::filesystem::path& csv,
                                                   std::vector<SkippedFile>* skipped = nullptr,
                                                   const std::string& path_column = {});

/// One row of a CSV image list: the path column's text as written and the image it names.
struct ListedImage {
  std::string listed;                          ///< the path column's text, as written
  std::optional<std::filesystem::path> image;  ///< the file; std::nullopt: not found
  std::string why_missing;                     ///< why `image` is empty
};

/// A CSV image list as written (what a submission in its form needs).
struct ImageList {
  std::vector<std::string> header;  ///< the first line's fields when it is a header, else empty
  size_t path_column = 0;           ///< the column that names the images
  std::vector<ListedImage> rows;    ///< in file order
};

/// read_image_list, keeping the text of each row and the header. The first line is the
/// header when `first_line_is_header` (Kaggle's sample submissions: `id_code,diagnosis`)
/// or when it names a path or label column; the path column is the one the header names
/// as such (`path_column` when given), else the first. Throws vtl::Error as read_image_list
/// does, and for a `path_column` the header lacks.
ImageList read_image_list_as_written(const std::filesystem::path& csv,
                                     bool first_line_is_header = false,
                                     const std::string& path_column = {});

/// Whether a CSV list has a label column, from its first line: false for one column, or a
/// header that names the path column and nothing else but an index or split column
/// (Kaggle's `test.csv` of `id`); then read it with read_image_list. Throws vtl::Error when
/// the file cannot be read. Always true when `source` names a label column.
bool csv_list_is_labelled(const std::filesystem::path& csv, const LabelSource& source = {});

/// Every image file under `root` (recursive, symbolic links followed, a file reachable by
/// two names listed once, sorted by path): an unlabelled folder for extraction and search.
/// Paths that cannot be resolved are appended to `skipped` when given. `every_name`: a
/// file reachable by two names is listed under both (commands that answer each file).
std::vector<std::filesystem::path> list_images(const std::filesystem::path& root,
                                               std::vector<SkippedFile>* skipped = nullptr,
                                               bool every_name = false);

/// Whether a file or folder name is one that listings pass over: dot-named (".git",
/// ".ipynb_checkpoints", macOS's "._photo.jpg" resource forks) or macOS's "__MACOSX"
/// archive folder. Such entries are neither classes nor images.
bool is_hidden_name(const std::string& name);

/// The file that marks `dir` as a folder vtl wrote (features.json, .partial, index.json,
/// run.json, model.json: `--out` inside the data), or "" for any other folder. Such a
/// folder is neither a class nor a split.
std::string vtl_output_marker(const std::filesystem::path& dir);

/// Whether `root` has a visible (not hidden, see is_hidden_name) subfolder, i.e. reads as
/// a class tree.
bool has_subfolders(const std::filesystem::path& root);

/// Throws vtl::Error naming `path` when it cannot be a dataset at all: it does not exist,
/// or it is an image file. Cheap (no listing); open_dataset checks it too.
void check_dataset_path(const std::filesystem::path& path);

/// Reads either form: a folder is a class-folder tree, a .csv file a CSV list. A folder of
/// split folders (train/, val/, test/; see find_split_folders) reads as one dataset of all
/// their images, labelled by their class folders; pick one split to train or evaluate.
/// `source`: CSV columns chosen by name, or a folder labelled by file names
/// (scan_file_name_labels); a pattern given for a CSV, or columns for a folder, throw
/// vtl::Error.
Dataset open_dataset(const std::filesystem::path& path,
                     const std::vector<std::string>& classes = {}, const LabelSource& source = {});

/// The samples of `dataset` marked `split`, with its classes (and, for Split::train, its
/// skipped files, so that they are reported once).
Dataset select_split(const Dataset& dataset, Split split);

/// "train", "validation", "test" or "unmarked".
const char* to_string(Split split);

/// The split a folder name or a CSV split column's value names: train|training,
/// val|valid|validation|dev, test|testing (any case); std::nullopt for any other name.
std::optional<Split> split_named(const std::string& name);

/// Splits `dataset` into (train, validation) with `val_fraction` of each class (rounded,
/// at least one image per class when the class has two or more) in validation, chosen by
/// a shuffle seeded with `seed`; `val_fraction` 0 leaves validation empty. Both keep the
/// class list and order of samples by path.
std::pair<Dataset, Dataset> split_stratified(const Dataset& dataset, double val_fraction,
                                             uint64_t seed);

}  // namespace vtl::data
