#pragma once
// report.html of a run: one self-contained file (inline CSS, inline SVG charts drawn
// here, misclassified images inlined as base64 JPEG thumbnails; nothing fetched), viewable
// offline: training curves of both phases, confusion matrix, per-class table, a grid of
// the worst misclassified validation images, and the run's settings.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vtl/data/dataset.h"
#include "vtl/train/metrics.h"
#include "vtl/train/trainer.h"

namespace vtl::train {

struct ReportInput {
  std::string title;
  std::vector<std::string> classes;
  std::vector<EpochMetrics> history;
  nlohmann::json events = nlohmann::json::array();  ///< [{"epoch", "event"}]
  std::optional<EvalResult> evaluation;             ///< indices refer to `samples`; none
                                                    ///< without validation images
  std::vector<data::Sample> samples;                ///< the evaluated images (for thumbnails)
  nlohmann::json settings = nlohmann::json::object();
  int worst_images = 24;  ///< misclassified images shown, most confident first
  /// What `evaluation` was measured on, as the summary line names it.
  std::string evaluated_on = "Validation";
};

/// The report as HTML text. Without `history` (an evaluation only, `vtl evaluate --report`)
/// it has no training curves.
std::string render_report(const ReportInput& input);

/// Writes render_report(input) to `path` atomically.
void write_report(const std::filesystem::path& path, const ReportInput& input);

}  // namespace vtl::train
