#pragma once
// `--csv FILE` of `vtl predict` and `vtl classify predict`: one row per image, in the forms
// Kaggle and spreadsheets take (`image,label,probability`, one probability column per
// class, or the form of a sample submission), streamed to a temporary name and renamed
// into place when all are answered; `-`, a pipe or a terminal gets the rows as they come.

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace vtl::cli {

/// One CSV field (RFC 4180): `text`, in double quotes when it holds a comma, a quote or a
/// line end.
std::string csv_field(const std::string& text);

/// What the CLI options say about the CSV; `file` empty: no CSV.
struct PredictionCsvOptions {
  std::filesystem::path file;
  std::string image_key = "path";  ///< path | name | stem: how a row names its image
  bool probabilities = false;      ///< one column per class instead of label,probability
  /// A sample submission whose form the CSV takes (--csv-like): its header, its id text
  /// and order; its images are the ones to classify. Empty: none.
  std::filesystem::path like;
};

/// Adds --csv, --csv-image, --csv-like and, when `with_probabilities`, --csv-probabilities.
void add_prediction_csv_options(CLI::App* command, PredictionCsvOptions& options,
                                bool with_probabilities);

/// The rows of a prediction CSV, in the order added. Not thread-safe.
class PredictionCsv {
 public:
  /// `class_names`: the classifier's classes, index = class id (column order of the
  /// probability form). When enabled, opens the temporary file now. Throws vtl::Error for
  /// an unknown image_key, a file that cannot be written, or a sample (options.like) whose
  /// columns are neither one label column nor the classifier's classes (the probability
  /// form, in the sample's column order; needs `with_probabilities`).
  PredictionCsv(PredictionCsvOptions options, std::vector<std::string> class_names,
                bool with_probabilities = true);
  /// Removes the temporary file when write() was not reached (an error, Ctrl-C).
  ~PredictionCsv();
  PredictionCsv(const PredictionCsv&) = delete;
  PredictionCsv& operator=(const PredictionCsv&) = delete;

  bool enabled() const { return !options_.file.empty(); }
  /// Whether the rows go to standard output (`--csv -`), which then holds nothing else.
  bool on_stdout() const;
  /// Throws vtl::Error when the rows go to standard output and `json` asks for it too.
  void check_stdout_is_free(bool json) const;
  /// Whether the rows follow a sample submission (options.like).
  bool follows_sample() const { return !options_.like.empty(); }
  /// The images the sample lists that exist, in its order (empty without a sample).
  const std::vector<std::filesystem::path>& sample_images() const { return sample_images_; }
  /// The image at `path`, its class probabilities in class-id order (size = classes).
  void add(const std::string& path, const std::vector<float>& probabilities);
  /// The image at `path`, the name of its predicted class, without probabilities (a
  /// classifier that gives none: its probability column stays empty).
  void add_label(const std::string& path, const std::string& class_name);
  /// Renames the finished file into place when enabled; prints where to stderr. Then, when
  /// sample rows name no image (so the CSV lacks their rows), throws vtl::Error saying so.
  void write();

 private:
  std::string key_of(const std::string& path);
  /// Reads options_.like: the header, the images, and sample_columns_.
  std::string follow_sample(bool with_probabilities);

  PredictionCsvOptions options_;
  std::vector<std::string> class_names_;
  std::filesystem::path temporary_;    ///< rows so far, header first; empty once written
  bool streaming_ = false;             ///< rows go straight to options_.file (a pipe, /dev/stdout)
  std::unique_ptr<std::ostream> out_;  ///< the temporary file or the stream target
  size_t rows_ = 0;
  std::set<std::string> seen_;  ///< image keys written (name, stem), to warn of repeats
  std::vector<std::filesystem::path> sample_images_;
  /// The sample's text for each image path (a path listed twice: twice, in order).
  std::map<std::string, std::deque<std::string>> sample_text_;
  /// Probability form of a sample: the class id of each column after the id column.
  std::vector<size_t> sample_columns_;
  size_t sample_missing_ = 0;  ///< sample rows that name no image
};

}  // namespace vtl::cli
