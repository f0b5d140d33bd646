#include "prediction_csv.h"

#include <cerrno>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::cli {
namespace fs = std::filesystem;

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

void add_prediction_csv_options(CLI::App* command, PredictionCsvOptions& options,
                                bool with_probabilities) {
  command->add_option("--csv", options.file,
                      "Also write the predictions to this CSV file: image,label,probability "
                      "(one row per image, in input order)");
  command
      ->add_option("--csv-image", options.image_key,
                   "How the CSV names each image: path (as listed), name (file name) or stem "
                   "(file name without extension: Kaggle's id column)")
      ->check(CLI::IsMember({"path", "name", "stem"}))
      ->default_val("path");
  if (with_probabilities)
    command->add_flag("--csv-probabilities", options.probabilities,
                      "CSV columns image,<class 1>,...,<class K>: every class's probability "
                      "(Kaggle's submission form for log-loss scoring)");
}

PredictionCsv::PredictionCsv(PredictionCsvOptions options, std::vector<std::string> class_names)
    : options_(std::move(options)), class_names_(std::move(class_names)) {
  VTL_CHECK(
      options_.image_key == "path" || options_.image_key == "name" || options_.image_key == "stem",
      "--csv-image must be path, name or stem (got '{}')", options_.image_key);
  if (!enabled()) return;
  VTL_CHECK(!options_.probabilities || !class_names_.empty(),
            "--csv-probabilities needs a classifier that names its classes");
  // Rows go to a temporary file as they come (a table of 1,000 probabilities per image
  // need not fit in memory); write() renames it into place.
  if (options_.file.has_parent_path()) fs::create_directories(options_.file.parent_path());
  temporary_ = temporary_sibling(options_.file);
  out_.open(temporary_, std::ios::binary);
  VTL_CHECK(out_.good(), "{}: cannot write the CSV file: {}", options_.file.string(),
            std::strerror(errno));
  out_ << (options_.image_key == "stem" ? "id" : "image");
  if (options_.probabilities) {
    for (const auto& name : class_names_) out_ << "," << csv_field(name);
  } else {
    out_ << ",label,probability";
  }
  out_ << "\n";
}

PredictionCsv::~PredictionCsv() {
  if (temporary_.empty()) return;
  out_.close();
  std::error_code ec;
  fs::remove(temporary_, ec);  // not written to the end: the target stays as it was
}

std::string PredictionCsv::key_of(const std::string& path) {
  std::string key = path;
  if (options_.image_key == "name") key = fs::path(path).filename().string();
  if (options_.image_key == "stem") key = fs::path(path).stem().string();
  if (options_.image_key != "path" && !seen_.insert(key).second)
    std::cerr << fmt::format(
        "vtl: warning: two images have the {} '{}' in {} ({}); both rows are written\n",
        options_.image_key, key, options_.file.string(), path);
  return csv_field(key);
}

void PredictionCsv::add(const std::string& path, const std::vector<float>& probabilities) {
  if (!enabled()) return;
  VTL_CHECK(probabilities.size() == class_names_.size() || class_names_.empty(),
            "{} probabilities for {} classes", probabilities.size(), class_names_.size());
  std::string row = key_of(path);
  if (options_.probabilities) {
    for (const float p : probabilities) row += fmt::format(",{:.6g}", p);
  } else {
    size_t best = 0;
    for (size_t i = 1; i < probabilities.size(); ++i)
      if (probabilities[i] > probabilities[best]) best = i;
    const std::string label =
        best < class_names_.size() ? class_names_[best] : std::to_string(best);
    row += fmt::format(",{},{:.6g}", csv_field(label),
                       probabilities.empty() ? 0.0f : probabilities[best]);
  }
  out_ << row << "\n";
  ++rows_;
}

void PredictionCsv::add_label(const std::string& path, const std::string& class_name) {
  if (!enabled()) return;
  VTL_CHECK(!options_.probabilities, "--csv-probabilities: this classifier gives no probabilities");
  out_ << key_of(path) << "," << csv_field(class_name) << ",\n";
  ++rows_;
}

void PredictionCsv::write() {
  if (!enabled() || temporary_.empty()) return;
  out_.close();
  VTL_CHECK(!out_.fail(), "{}: cannot write the CSV file (disk full?)", temporary_.string());
  commit_file(temporary_, options_.file);
  temporary_.clear();
  std::cerr << fmt::format("vtl: wrote {} rows to {}\n", rows_, options_.file.string());
}

}  // namespace vtl::cli
