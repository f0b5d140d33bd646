#include "prediction_csv.h"

#include <cerrno>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/data/dataset.h"

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
  auto* file =
      command->add_option("--csv", options.file,
                          "Also write the predictions to this CSV file: image,label,probability "
                          "(one row per image, in input order); - for standard output");
  command
      ->add_option("--csv-image", options.image_key,
                   "How the CSV names each image: path (as listed), name (file name) or stem "
                   "(file name without extension: Kaggle's id column)")
      ->check(CLI::IsMember({"path", "name", "stem"}))
      ->default_val("path");
  auto* like = command->add_option(
      "--csv-like", options.like,
      "A sample submission (Kaggle's sample_submission.csv): classify the images it lists and "
      "write the CSV in its form: its header, its id text and order, and either its one label "
      "column or its class columns (probabilities)");
  like->check(CLI::ExistingFile)->needs(file)->excludes("--csv-image");
  if (with_probabilities) {
    auto* probabilities =
        command->add_flag("--csv-probabilities", options.probabilities,
                          "CSV columns image,<class 1>,...,<class K>: every class's probability "
                          "(Kaggle's submission form for log-loss scoring)");
    like->excludes(probabilities);
  }
}

PredictionCsv::PredictionCsv(PredictionCsvOptions options, std::vector<std::string> class_names,
                             bool with_probabilities)
    : options_(std::move(options)), class_names_(std::move(class_names)) {
  VTL_CHECK(
      options_.image_key == "path" || options_.image_key == "name" || options_.image_key == "stem",
      "--csv-image must be path, name or stem (got '{}')", options_.image_key);
  VTL_CHECK(enabled() || !follows_sample(),
            "--csv-like {}: give --csv FILE, where the submission is written",
            options_.like.string());
  if (!enabled()) return;
  VTL_CHECK(!options_.probabilities || !class_names_.empty(),
            "--csv-probabilities needs a classifier that names its classes");
  VTL_CHECK(!options_.probabilities || !follows_sample(),
            "--csv-probabilities: the sample given to --csv-like says which columns to write");
  const std::string header = follows_sample() ? follow_sample(with_probabilities) : std::string();
  // Rows go to a temporary file as they come (a table of 1,000 probabilities per image
  // need not fit in memory); write() renames it into place.
  if (options_.file == "-") options_.file = "/dev/stdout";
  if (is_stream_target(options_.file)) {
    streaming_ = true;  // standard output, a pipe, a terminal: rows go straight there
    out_ = open_stream_target(options_.file);
  } else {
    const fs::path destination = output_destination(options_.file);
    if (destination.has_parent_path()) fs::create_directories(destination.parent_path());
    temporary_ = temporary_sibling(destination);
    out_ = std::make_unique<std::ofstream>(temporary_, std::ios::binary);
  }
  VTL_CHECK(out_->good(), "{}: cannot write the CSV file: {}", options_.file.string(),
            std::strerror(errno));
  if (follows_sample()) {
    *out_ << header << "\n";
    return;
  }
  *out_ << (options_.image_key == "stem" ? "id" : "image");
  if (options_.probabilities) {
    for (const auto& name : class_names_) *out_ << "," << csv_field(name);
  } else {
    *out_ << ",label,probability";
  }
  *out_ << "\n";
}

std::string PredictionCsv::follow_sample(bool with_probabilities) {
  const std::string sample_name = options_.like.string();
  const auto sample =
      data::read_image_list_as_written(options_.like, /*first_line_is_header=*/true);
  VTL_CHECK(!sample.rows.empty(), "{}: the sample submission lists no images", sample_name);
  std::string header = csv_field(sample.header.at(sample.path_column));
  std::vector<std::string> columns;  // after the id column
  for (size_t i = 0; i < sample.header.size(); ++i)
    if (i != sample.path_column) columns.push_back(sample.header[i]);
  VTL_CHECK(!columns.empty(),
            "{}:1: the sample has only the image column '{}'; a submission needs a label "
            "column or one column per class",
            sample_name, sample.header.at(sample.path_column));
  if (columns.size() == 1) {
    header += "," + csv_field(columns.front());  // one label column: the predicted class
  } else {
    std::map<std::string, size_t> class_ids;  // the names not yet given a column
    for (size_t id = 0; id < class_names_.size(); ++id) class_ids.emplace(class_names_[id], id);
    std::vector<std::string> unknown;
    for (const auto& column : columns) {
      const auto id = class_ids.find(column);
      if (id == class_ids.end()) {
        unknown.push_back(column);
        continue;
      }
      sample_columns_.push_back(id->second);
      class_ids.erase(id);
      header += "," + csv_field(column);
    }
    std::vector<std::string> absent;
    for (const auto& [name, id] : class_ids) absent.push_back(name);
    const auto listing = [](const std::vector<std::string>& names) {
      std::string text;
      for (size_t i = 0; i < std::min<size_t>(names.size(), 5); ++i)
        text += (i ? ", '" : "'") + names[i] + "'";
      return names.size() > 5 ? text + fmt::format(" and {} more", names.size() - 5) : text;
    };
    VTL_CHECK(unknown.empty() && absent.empty(),
              "{}:1: the sample's {} columns after the image column are neither one label "
              "column nor the model's {} classes{}{}",
              sample_name, columns.size(), class_names_.size(),
              unknown.empty() ? std::string() : "; not a class: " + listing(unknown),
              absent.empty() ? std::string() : "; no column for the class " + listing(absent));
    VTL_CHECK(with_probabilities,
              "{}: the sample has one column per class, and this classifier gives no "
              "probabilities; give a sample with one label column",
              sample_name);
  }
  std::vector<data::SkippedFile> missing;
  for (const auto& row : sample.rows) {
    if (!row.image) {
      missing.push_back({row.listed, row.why_missing});
      continue;
    }
    sample_images_.push_back(*row.image);
    sample_text_[row.image->string()].push_back(row.listed);
  }
  sample_missing_ = missing.size();
  print_left_out("vtl: " + sample_name, missing, "row without its image",
                 "rows without their image");
  return header;
}

bool PredictionCsv::on_stdout() const { return enabled() && names_standard_output(options_.file); }

void PredictionCsv::check_stdout_is_free(bool json) const {
  VTL_CHECK(!json || !on_stdout(),
            "--csv {} and --json would both write to standard output; give --csv a file name",
            options_.file.string());
}

PredictionCsv::~PredictionCsv() {
  if (temporary_.empty()) return;
  out_.reset();
  std::error_code ec;
  fs::remove(temporary_, ec);  // not written to the end: the target stays as it was
}

std::string PredictionCsv::key_of(const std::string& path) {
  if (follows_sample()) {
    auto texts = sample_text_.find(path);
    if (texts == sample_text_.end() || texts->second.empty()) return csv_field(path);
    std::string text = std::move(texts->second.front());
    texts->second.pop_front();
    return csv_field(text);
  }
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
  if (!sample_columns_.empty()) {
    for (const size_t id : sample_columns_) row += fmt::format(",{:.6g}", probabilities.at(id));
  } else if (options_.probabilities) {
    for (const float p : probabilities) row += fmt::format(",{:.6g}", p);
  } else {
    size_t best = 0;
    for (size_t i = 1; i < probabilities.size(); ++i)
      if (probabilities[i] > probabilities[best]) best = i;
    const std::string label =
        best < class_names_.size() ? class_names_[best] : std::to_string(best);
    row += "," + csv_field(label);
    if (!follows_sample())
      row += fmt::format(",{:.6g}", probabilities.empty() ? 0.0f : probabilities[best]);
  }
  *out_ << row << "\n";
  ++rows_;
}

void PredictionCsv::add_label(const std::string& path, const std::string& class_name) {
  if (!enabled()) return;
  VTL_CHECK(!options_.probabilities, "--csv-probabilities: this classifier gives no probabilities");
  *out_ << key_of(path) << "," << csv_field(class_name) << (follows_sample() ? "\n" : ",\n");
  ++rows_;
}

void PredictionCsv::write() {
  if (!enabled() || (temporary_.empty() && !streaming_)) return;
  out_->flush();
  const bool written = !out_->fail();
  out_.reset();  // closes the file
  VTL_CHECK(written, "{}: cannot write the CSV file (disk full?)",
            (streaming_ ? options_.file : temporary_).string());
  if (!streaming_) commit_file(temporary_, options_.file);
  temporary_.clear();
  streaming_ = false;
  std::cerr << fmt::format("vtl: wrote {} row{} to {}\n", rows_, rows_ == 1 ? "" : "s",
                           options_.file.string());
  VTL_CHECK(sample_missing_ == 0,
            "{} of the {} rows of {} name no image (listed above): {} lacks them", sample_missing_,
            sample_missing_ + sample_images_.size(), options_.like.string(),
            options_.file.string());
}

}  // namespace vtl::cli
