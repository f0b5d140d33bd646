#include "vtl/train/lr_finder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/html.h"

namespace vtl::train {
namespace fs = std::filesystem;

void LrRangeOptions::validate() const {
  VTL_CHECK(start_lr > 0, "the range test's start learning rate must be positive (got {})",
            start_lr);
  VTL_CHECK(end_lr > start_lr,
            "the range test's end learning rate ({}) must be above its start ({})", end_lr,
            start_lr);
  VTL_CHECK(steps >= 6, "the range test needs at least 6 steps (got {})", steps);
  VTL_CHECK(divergence > 1, "the divergence factor must be above 1 (got {})", divergence);
  VTL_CHECK(smoothing >= 0 && smoothing < 1, "the loss smoothing must be in [0, 1) (got {})",
            smoothing);
}

void suggest_learning_rates(LrRangeResult& result, int64_t planned_steps) {
  result.valley = result.steep = result.minimum = 0;
  // The first tenth is the optimizer warming up; the last points are the blow-up.
  const size_t first = size_t(std::max<int64_t>(0, planned_steps / 10));
  size_t last = result.smoothed.size() >= 5 ? result.smoothed.size() - 5 : 0;
  for (size_t i = first; i < last; ++i)
    if (!std::isfinite(result.smoothed[i])) last = i;
  if (last < first + 2) return;
  const std::vector<double> lrs(result.lrs.begin() + long(first), result.lrs.begin() + long(last));
  const std::vector<double> losses(result.smoothed.begin() + long(first),
                                   result.smoothed.begin() + long(last));
  const size_t n = losses.size();

  // valley: the end of the longest decreasing subsequence, and about 1/2 of the way in.
  std::vector<size_t> decreasing(n, 1);
  size_t end = 0;
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = 0; j < i; ++j)
      if (losses[i] < losses[j]) decreasing[i] = std::max(decreasing[i], decreasing[j] + 1);
    if (decreasing[i] > decreasing[end]) end = i;
  }
  const size_t start = end >= decreasing[end] ? end - decreasing[end] : 0;
  const double sections = double(end - start) / 3.0;
  result.valley = lrs[start + size_t(sections) + size_t(sections / 2)];

  // steep: the most negative d(loss) / d(log lr).
  size_t steepest = 0;
  double steepest_slope = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i + 1 < n; ++i) {
    const double slope = (losses[i + 1] - losses[i]) / (std::log(lrs[i + 1]) - std::log(lrs[i]));
    if (slope < steepest_slope) {
      steepest_slope = slope;
      steepest = i;
    }
  }
  result.steep = lrs[steepest];

  // minimum: a tenth of the learning rate at the lowest loss.
  result.minimum =
      lrs[size_t(std::min_element(losses.begin(), losses.end()) - losses.begin())] / 10;
}

namespace {

/// The smoothed loss at the step whose learning rate is closest to `lr` on a log scale.
size_t nearest_step(const LrRangeResult& result, double lr) {
  size_t best = 0;
  for (size_t i = 1; i < result.lrs.size(); ++i)
    if (std::abs(std::log(result.lrs[i] / lr)) < std::abs(std::log(result.lrs[best] / lr)))
      best = i;
  return best;
}

std::string suggestions_text(const LrRangeResult& result) {
  if (result.valley <= 0)
    return "too few steps for a suggestion: run more steps or a wider range\n";
  return fmt::format(
      "suggested learning rate {:.1e} (fastai's valley); also steep {:.1e} (the steepest "
      "descent of the smoothed loss) and minimum {:.1e} (a tenth of the rate at the lowest "
      "loss)\n",
      result.valley, result.steep, result.minimum);
}

}  // namespace

std::string render_lr_curve_text(const LrRangeResult& result, int rows) {
  const size_t n = result.lrs.size();
  if (n == 0) return "no steps were taken\n";
  // Sampled steps, evenly spaced in log(lr), finite losses only.
  std::vector<size_t> shown;
  for (int r = 0; r < rows; ++r) {
    const size_t i =
        rows > 1 ? size_t(std::lround(double(r) * double(n - 1) / double(rows - 1))) : n - 1;
    if ((shown.empty() || shown.back() != i) && std::isfinite(result.smoothed[i]))
      shown.push_back(i);
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (size_t i : shown) {
    lo = std::min(lo, result.smoothed[i]);
    hi = std::max(hi, result.smoothed[i]);
  }
  const int width = 40;
  std::string text = "learning rate   smoothed loss\n";
  for (size_t i : shown) {
    const double v = result.smoothed[i];
    const int bar = hi > lo ? 1 + int(std::lround((v - lo) / (hi - lo) * (width - 1))) : 1;
    text +=
        fmt::format("  {:9.1e}   {:9.4f}  {}\n", result.lrs[i], v, std::string(size_t(bar), '#'));
  }
  if (result.diverged)
    text += fmt::format("stopped at {:.1e}: the loss diverged\n", result.lrs.back());
  return text + suggestions_text(result);
}

void write_lr_range_files(const fs::path& dir, const LrRangeResult& result,
                          const std::string& title) {
  fs::create_directories(dir);
  std::string csv = "step,lr,loss,smoothed_loss\n";
  for (size_t i = 0; i < result.lrs.size(); ++i)
    csv += fmt::format("{},{:.6g},{:.6f},{:.6f}\n", i + 1, result.lrs[i], result.losses[i],
                       result.smoothed[i]);
  write_file_atomically(dir / "lr_find.csv", csv);

  // The curve: x = log10(lr), y = smoothed loss over the finite points; without the last 5
  // (as fastai plots it), whose blow-up would flatten the rest.
  const double width = 640, height = 320, left = 60, right = 16, top = 20, bottom = 40;
  std::vector<size_t> points;
  const size_t plotted = result.lrs.size() > 10 ? result.lrs.size() - 5 : result.lrs.size();
  for (size_t i = 0; i < plotted; ++i)
    if (std::isfinite(result.smoothed[i])) points.push_back(i);
  std::string svg;
  if (!points.empty()) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (size_t i : points) {
      lo = std::min(lo, result.smoothed[i]);
      hi = std::max(hi, result.smoothed[i]);
    }
    if (!(hi > lo)) hi = lo + 1;
    const double x0 = std::floor(std::log10(result.lrs.front()));
    const double x1 = std::max(x0 + 1, std::ceil(std::log10(result.lrs[points.back()])));
    auto x = [&](double lr) {
      return left + (std::log10(lr) - x0) / (x1 - x0) * (width - left - right);
    };
    auto y = [&](double v) { return top + (hi - v) / (hi - lo) * (height - top - bottom); };
    svg = fmt::format("<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\">", width,
                      height, width, height);
    for (int i = 0; i <= 4; ++i) {
      const double v = lo + (hi - lo) * i / 4.0;
      svg += fmt::format(
          "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"g\"/>"
          "<text x=\"{}\" y=\"{:.1f}\" class=\"a\" text-anchor=\"end\">{:.3g}</text>",
          left, width - right, y(v), y(v), left - 4, y(v) + 4, v);
    }
    for (double e = x0; e <= x1; ++e)
      svg +=
          fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"a\" text-anchor=\"middle\">1e{}</text>",
                      x(std::pow(10, e)), height - bottom + 14, int(e));
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" class=\"a\" text-anchor=\"middle\">learning rate (log "
        "scale)</text>",
        (left + width) / 2, height - 6);
    std::string line;
    for (size_t i : points)
      line += fmt::format("{:.1f},{:.1f} ", x(result.lrs[i]), y(result.smoothed[i]));
    svg += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>", line);
    const struct {
      const char* name;
      double lr;
      const char* color;
    } marks[] = {{"valley", result.valley, "#d62728"},
                 {"steep", result.steep, "#2ca02c"},
                 {"minimum/10", result.minimum, "#9467bd"}};
    double legend_y = top + 12;  // top left: the blow-up is at the right
    for (const auto& mark : marks) {
      if (mark.lr <= 0) continue;
      const size_t i = nearest_step(result, mark.lr);
      if (!std::isfinite(result.smoothed[i])) continue;
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>"
          "<circle cx=\"{}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>"
          "<text x=\"{}\" y=\"{:.1f}\" class=\"a\">{} {:.1e}</text>",
          x(mark.lr), y(result.smoothed[i]), mark.color, left + 14, legend_y - 4, mark.color,
          left + 24, legend_y, mark.name, mark.lr);
      legend_y += 16;
    }
    svg += "</svg>";
  }
  std::string page = page_begin(title);
  page += fmt::format("<p>{} steps from {:.1e} to {:.1e}{}{}.</p>", result.lrs.size(),
                      result.lrs.empty() ? 0.0 : result.lrs.front(),
                      result.lrs.empty() ? 0.0 : result.lrs.back(),
                      result.diverged ? ", stopped when the loss diverged" : "",
                      plotted < result.lrs.size()
                          ? fmt::format("; the last {} are not drawn", result.lrs.size() - plotted)
                          : std::string());
  page += svg;
  page += "<p>" + html_escape(suggestions_text(result)) + "</p>";
  page += page_end();
  write_file_atomically(dir / "lr_find.html", page);
}

}  // namespace vtl::train
