#pragma once
// Each subcommand lives in its own file and registers itself with VTL_COMMAND, so adding a
// command touches no other file. A command's callback throws vtl::Error for user
// mistakes; main prints the message on one line and exits with status 1.

#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vtl/core/stop_signals.h"
#include "vtl/data/batch_reader.h"
#include "vtl/data/dataset.h"
#include "vtl/models/precision.h"

namespace vtl::cli {

/// Validator of options that must be above 0 ("must be more than 0 (got -1)"); CLI11's
/// PositiveNumber names a range up to the largest double instead.
const CLI::Validator& positive();

/// Adds one subcommand (and its callback) to the application.
using CommandInstaller = std::function<void(CLI::App& app)>;

/// Registers an installer; `order` sorts the commands in --help (lower first).
bool register_command(int order, CommandInstaller installer);

/// Installs every registered command in order.
void install_commands(CLI::App& app);

/// `--json` output text. File names on disk need not be UTF-8 (a Latin-1 name): their odd
/// bytes are shown as U+FFFD instead of failing the whole output.
inline std::string json_text(const nlohmann::json& value, int indent = -1) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Prints "WHAT: N KIND left out:" (`kind` for one, `kinds` for more) and the first ten
/// (path: reason) to stderr; nothing when `files` is empty.
void print_left_out(const std::string& what, const std::vector<data::SkippedFile>& files,
                    const std::string& kind = "file or folder",
                    const std::string& kinds = "files or folders");

/// Image arguments of a command in order, each folder replaced by the images under it
/// (data::list_images: recursive, sorted; a symbolic link to another listed file is kept,
/// so every file name is answered). Folders without images and unresolvable entries are
/// printed as left out, under `what`.
std::vector<std::filesystem::path> expand_image_arguments(
    const std::string& what, const std::vector<std::string>& arguments);

/// Adds --max-image-pixels to `command`: images with more pixels are refused (the
/// process-wide data::default_max_pixels, 400 million unless set).
void add_max_image_pixels_option(CLI::App* command);

/// --path-column, --label-column (a CSV list's columns by header name) and --label-pattern
/// (labels in a folder's file names), into `source`.
void add_label_source_options(CLI::App* command, data::LabelSource& source);

/// Prints "vtl: note: ..." to stderr when `precision` will be slow on `device`
/// (models::precision_advice).
void print_precision_note(models::Precision precision, const torch::Device& device);

/// Answers each of `images` (read ahead in batches by `reader`, in that order): per batch,
/// `compute(batch)` runs once when it has readable images and returns something indexable
/// by their row in batch.stacked() (a tensor, a vector); then, in input order, `answer(path,
/// results[row])` for each readable image, and for each unreadable one its error goes to
/// stderr and `unreadable(path, error)` is called. Returns how many could not be read.
/// Under a live StopSignals (Ctrl-C), throws vtl::Interrupted before the next batch.
template <typename Compute, typename Answer, typename Unreadable>
size_t answer_each_image(data::BatchReader& reader,
                         const std::vector<std::filesystem::path>& images, Compute compute,
                         Answer answer, Unreadable unreadable) {
  size_t failures = 0;
  while (auto batch = reader.next()) {
    if (stop_requested())  // only under a live StopSignals: `predict --csv`
      throw Interrupted(fmt::format("stopped after {} of {} images", batch->first, images.size()),
                        stop_signal());
    decltype(compute(*batch)) results{};
    if (batch->readable() > 0) results = compute(*batch);
    size_t row = 0;
    for (size_t i = 0; i < batch->size(); ++i) {
      const std::string path = images[batch->first + i].string();
      if (const auto& error = batch->errors[i]; !error.empty()) {
        std::cerr << "vtl: error: " << error << "\n";
        ++failures;
        unreadable(path, error);
        continue;
      }
      answer(path, results[row++]);
    }
  }
  return failures;
}

}  // namespace vtl::cli

/// At namespace scope in a command's file: VTL_COMMAND(10, add_models_command);
#define VTL_COMMAND(order, installer)                    \
  static const bool vtl_command_registered_##installer = \
      ::vtl::cli::register_command(order, installer)
