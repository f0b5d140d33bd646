#pragma once
// `--csv FILE` of `vtl predict` and `vtl classify predict`: one row per image, in the forms
// Kaggle and spreadsheets take (`image,label,probability`, or one probability column per
// class), streamed to a temporary name and renamed into place when all are answered.

#include <filesystem>
#include <fstream>
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
};

/// Adds --csv, --csv-image and, when `with_probabilities`, --csv-probabilities.
void add_prediction_csv_options(CLI::App* command, PredictionCsvOptions& options,
                                bool with_probabilities);

/// The rows of a prediction CSV, in the order added. Not thread-safe.
class PredictionCsv {
 public:
  /// `class_names`: the classifier's classes, index = class id (column order of the
  /// probability form). When enabled, opens the temporary file now. Throws vtl::Error for
  /// an unknown image_key or a file that cannot be written.
  PredictionCsv(PredictionCsvOptions options, std::vector<std::string> class_names);
  /// Removes the temporary file when write() was not reached (an error, Ctrl-C).
  ~PredictionCsv();
  PredictionCsv(const PredictionCsv&) = delete;
  PredictionCsv& operator=(const PredictionCsv&) = delete;

  bool enabled() const { return !options_.file.empty(); }
  /// The image at `path`, its class probabilities in class-id order (size = classes).
  void add(const std::string& path, const std::vector<float>& probabilities);
  /// The image at `path`, the name of its predicted class, without probabilities (a
  /// classifier that gives none: its probability column stays empty).
  void add_label(const std::string& path, const std::string& class_name);
  /// Renames the finished file into place when enabled; prints where to stderr.
  void write();

 private:
  std::string key_of(const std::string& path);

  PredictionCsvOptions options_;
  std::vector<std::string> class_names_;
  std::filesystem::path temporary_;  ///< rows so far, header first; empty once written
  std::ofstream out_;
  size_t rows_ = 0;
  std::set<std::string> seen_;  ///< image keys written (name, stem), to warn of repeats
};

}  // namespace vtl::cli
