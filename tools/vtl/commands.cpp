#include "commands.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "vtl/core/text.h"
#include "vtl/data/image.h"

namespace vtl::cli {
namespace {

std::vector<std::pair<int, CommandInstaller>>& installers() {
  static std::vector<std::pair<int, CommandInstaller>> list;
  return list;
}

}  // namespace

bool register_command(int order, CommandInstaller installer) {
  installers().emplace_back(order, std::move(installer));
  return true;
}

void install_commands(CLI::App& app) {
  auto list = installers();
  std::stable_sort(list.begin(), list.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, install] : list) install(app);
}

void print_left_out(const std::string& what, const std::vector<data::SkippedFile>& files,
                    const std::string& kind, const std::string& kinds) {
  if (files.empty()) return;
  std::cerr << fmt::format("{}: {} {} left out:\n", what, files.size(),
                           files.size() == 1 ? kind : kinds);
  for (size_t i = 0; i < std::min<size_t>(files.size(), 10); ++i)
    std::cerr << fmt::format("  {}: {}\n", files[i].path.string(), files[i].reason);
  if (files.size() > 10) std::cerr << fmt::format("  ... and {} more\n", files.size() - 10);
}

std::vector<std::filesystem::path> expand_image_arguments(
    const std::string& what, const std::vector<std::string>& arguments) {
  std::vector<std::filesystem::path> images;
  std::vector<data::SkippedFile> left_out;
  for (const auto& argument : arguments) {
    std::error_code ec;
    if (lowercase(std::filesystem::path(argument).extension().string()) == ".csv" &&
        std::filesystem::is_regular_file(argument, ec)) {
      // A list of images (Kaggle's sample_submission.csv): its rows, in its order.
      auto listed = data::read_image_list(argument, &left_out);
      if (listed.empty()) left_out.push_back({argument, "a CSV list without existing images"});
      images.insert(images.end(), listed.begin(), listed.end());
      continue;
    }
    if (!std::filesystem::is_directory(argument)) {
      images.emplace_back(argument);
      continue;
    }
    // Every file name gets its answer (a submission needs a row per file), a symbolic
    // link to another listed file too.
    auto found = data::list_images(argument, &left_out, /*every_name=*/true);
    if (found.empty()) left_out.push_back({argument, "a folder without images"});
    images.insert(images.end(), found.begin(), found.end());
  }
  print_left_out(what, left_out);
  return images;
}

const CLI::Validator& positive() {
  static const CLI::Validator validator(
      [](std::string& text) {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        return end != text.c_str() && value > 0 ? std::string()
                                                : "must be more than 0 (got " + text + ")";
      },
      "POSITIVE");
  return validator;
}

void add_max_image_pixels_option(CLI::App* command) {
  command
      ->add_option_function<int64_t>(
          "--max-image-pixels", [](int64_t pixels) { data::set_default_max_pixels(pixels); },
          fmt::format("Refuse images with more pixels than this (default {})",
                      data::default_max_pixels()))
      ->check(positive());
}

void add_label_source_options(CLI::App* command, data::LabelSource& source) {
  auto* path_column = command->add_option(
      "--path-column", source.path_column,
      "A CSV list's image column, by its header name (default: the one named path, id, "
      "image_id, filename, ...)");
  auto* label_column = command->add_option(
      "--label-column", source.label_column,
      "A CSV list's label column, by its header name (default: the one named label, class, "
      "category, ...)");
  command
      ->add_option("--label-pattern", source.name_pattern,
                   "A folder of images labelled by their file names: a regular expression "
                   "searched in each name, its first group the label (Oxford pets: "
                   "'^(.+)_\\d+\\.jpg$'; Kaggle's cat.0.jpg: '^(cat|dog)\\.')")
      ->excludes(path_column)
      ->excludes(label_column);
}

void print_precision_note(models::Precision precision, const torch::Device& device) {
  if (const auto advice = models::precision_advice(precision, device); !advice.empty())
    std::cerr << "vtl: note: " << advice << "\n";
}

}  // namespace vtl::cli
