#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "vtl/core/html.h"
#include "vtl/embed/backbone_comparison.h"

namespace vtl::embed {
namespace {

/// Accuracy (mean ± std over folds, y) against ms/image at batch 1 (x, log scale), one
/// labelled point per compared model.
std::string accuracy_speed_chart(const std::vector<const CandidateResult*>& rows,
                                 const std::string& device) {
  const double width = 560, height = 320, left = 56, right = 16, top = 28, bottom = 40;
  double x_lo = 1e300, x_hi = 0, y_lo = 1, y_hi = 0;
  for (const auto* r : rows) {
    x_lo = std::min(x_lo, r->ms_per_image_batch1);
    x_hi = std::max(x_hi, r->ms_per_image_batch1);
    y_lo = std::min(y_lo, r->probe.mean_accuracy - r->probe.std_accuracy);
    y_hi = std::max(y_hi, r->probe.mean_accuracy + r->probe.std_accuracy);
  }
  x_lo = std::log10(std::max(x_lo, 1e-3) / 1.5);
  x_hi = std::log10(std::max(x_hi, 1e-3) * 1.5);
  y_lo = std::max(0.0, y_lo - 0.05);
  y_hi = std::min(1.0, y_hi + 0.05);
  if (!(y_hi > y_lo)) y_hi = y_lo + 0.1;
  auto x = [&](double ms) {
    return left + (std::log10(std::max(ms, 1e-3)) - x_lo) / (x_hi - x_lo) * (width - left - right);
  };
  auto y = [&](double v) { return top + (y_hi - v) / (y_hi - y_lo) * (height - top - bottom); };
  std::string svg = fmt::format(
      "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\">"
      "<text x=\"{2}\" y=\"16\" class=\"t\">Probe accuracy vs latency on {3}</text>",
      width, height, left, html_escape(device.empty() ? std::string("cpu") : device));
  for (int i = 0; i <= 4; ++i) {
    const double v = y_lo + (y_hi - y_lo) * i / 4.0;
    svg += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"g\"/>"
        "<text x=\"{3}\" y=\"{4:.1f}\" class=\"a\" text-anchor=\"end\">{5:.2f}</text>",
        left, width - right, y(v), left - 4, y(v) + 3, v);
  }
  for (double decade = std::floor(x_lo); decade <= x_hi; decade += 1.0) {
    for (double mantissa : {1.0, 2.0, 5.0}) {
      const double ms = mantissa * std::pow(10.0, decade);
      if (std::log10(ms) < x_lo || std::log10(ms) > x_hi) continue;
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" class=\"g\"/>"
          "<text x=\"{0:.1f}\" y=\"{3}\" class=\"a\" text-anchor=\"middle\">{4:g}</text>",
          x(ms), top, height - bottom, height - bottom + 12, ms);
    }
  }
  svg += fmt::format(
      "<text x=\"{}\" y=\"{}\" class=\"a\" text-anchor=\"middle\">ms per image, batch 1 (log "
      "scale)</text><text x=\"12\" y=\"{}\" class=\"a\" transform=\"rotate(-90 12 {})\" "
      "text-anchor=\"middle\">accuracy</text>",
      (left + width - right) / 2, height - 6, (top + height - bottom) / 2,
      (top + height - bottom) / 2);
  for (const auto* r : rows) {
    const double cx = x(r->ms_per_image_batch1), cy = y(r->probe.mean_accuracy);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#1f77b4\"/>"
        "<circle cx=\"{0:.1f}\" cy=\"{3:.1f}\" r=\"4.5\" fill=\"#1f77b4\"><title>{4}: {5:.3f} ± "
        "{6:.3f}, {7:.1f} ms</title></circle>"
        "<text x=\"{8:.1f}\" y=\"{9:.1f}\" class=\"a\">{4}</text>",
        cx, y(r->probe.mean_accuracy - r->probe.std_accuracy),
        y(r->probe.mean_accuracy + r->probe.std_accuracy), cy, html_escape(r->model),
        r->probe.mean_accuracy, r->probe.std_accuracy, r->ms_per_image_batch1, cx + 7, cy - 6);
  }
  return svg + "</svg>";
}

}  // namespace

std::string render_comparison_report(const Comparison& comparison) {
  std::string html = page_begin("Backbone comparison");
  html += fmt::format(
      "<p>{} images in {} classes; linear probe <b>{}</b> with {}-fold "
      "stratified cross-validation on pooled features.</p>",
      comparison.images, comparison.classes.size(), html_escape(comparison.probe),
      comparison.folds);
  std::vector<const CandidateResult*> compared;
  for (const auto& c : comparison.candidates)
    if (!c.skipped()) compared.push_back(&c);
  const auto& r = comparison.recommendation;
  if (!r.most_accurate.empty()) {
    html += fmt::format(
        "<p>Most accurate: <b>{}</b>. Fastest within 1 point of it: <b>{}</b>. Smallest within "
        "2 points: <b>{}</b>.</p>",
        html_escape(r.most_accurate), html_escape(r.fastest_near_best),
        html_escape(r.smallest_near_best));
  }
  if (!r.note.empty()) html += "<p class=\"bad\">" + html_escape(r.note) + "</p>";
  if (!compared.empty())
    html += "<div class=\"charts\">" + accuracy_speed_chart(compared, comparison.device) + "</div>";
  html +=
      "<h2>Table</h2><table><tr><th class=\"l\">model</th><th class=\"l\">weights</th>"
      "<th>params</th><th>MB</th><th>GFLOPs</th><th>input</th><th>width</th>"
      "<th>accuracy</th><th>ms/img b1</th><th>ms/img b32</th></tr>";
  for (const auto* c : compared) {
    html += fmt::format(
        "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.1f}M</td><td>{:.1f}</td>"
        "<td>{:.2f}</td><td>{}</td><td>{}</td><td>{:.3f} ± {:.3f}</td><td>{:.1f}</td>"
        "<td>{:.1f}</td></tr>",
        html_escape(c->model), html_escape(c->weights), double(c->parameters) / 1e6, c->size_mib,
        c->gmacs, c->input_size, c->feature_dim, c->probe.mean_accuracy, c->probe.std_accuracy,
        c->ms_per_image_batch1, c->ms_per_image_batch32);
  }
  html += "</table>";
  bool any_skipped = false;
  for (const auto& c : comparison.candidates) {
    if (!c.skipped()) continue;
    if (!any_skipped) html += "<h2>Skipped</h2><ul>";
    any_skipped = true;
    html += "<li><b>" + html_escape(c.model) + "</b>: " + html_escape(c.skip_reason) + "</li>";
  }
  if (any_skipped) html += "</ul>";
  html += "<h2>Data</h2><pre>" + html_escape(comparison.to_json().dump(2)) + "</pre>";
  return html + page_end();
}

}  // namespace vtl::embed
