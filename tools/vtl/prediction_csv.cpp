#include "prediction_csv.h"

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
  text_ = options_.image_key == "stem" ? "id" : "image";
  if (options_.probabilities) {
    for (const auto& name : class_names_) text_ += "," + csv_field(name);
  } else {
    text_ += ",label,probability";
  }
  text_ += "\n";
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
  text_ += row + "\n";
  ++rows_;
}

void PredictionCsv::add_label(const std::string& path, int64_t label) {
  if (!enabled()) return;
  VTL_CHECK(!options_.probabilities, "--csv-probabilities: this classifier gives no probabilities");
  const std::string name = label >= 0 && label < int64_t(class_names_.size())
                               ? class_names_[size_t(label)]
                               : std::to_string(label);
  text_ += key_of(path) + "," + csv_field(name) + ",\n";
  ++rows_;
}

void PredictionCsv::write() const {
  if (!enabled()) return;
  write_file_atomically(options_.file, text_);
  std::cerr << fmt::format("vtl: wrote {} rows to {}\n", rows_, options_.file.string());
}

}  // namespace vtl::cli
