#include "vtl/train/report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vtl/core/atomic_file.h"
#include "vtl/core/html.h"
#include "vtl/data/image.h"

namespace vtl::train {
namespace {

std::string base64(const std::vector<uchar>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = bytes[i] << 16;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

struct Series {
  std::string name, color;
  std::vector<double> values;
  bool dashed = false;
};

/// The y axis of a chart: `unit` is [0, 1] (accuracies), `log` is logarithmic when the
/// values span more than a factor of 20 (learning rates), `fit` spans the values.
enum class YAxis { fit, unit, log };

/// Tick text of at most 7 characters: "0.25", "1.89", "7.5e-04".
std::string tick_label(double v) {
  if (v == 0) return "0";
  const double magnitude = std::abs(v);
  if (magnitude < 1e-2 || magnitude >= 1e5) return fmt::format("{:.1e}", v);
  return fmt::format("{:.3g}", v);
}

/// A line chart over epochs (x = epoch 1..n) with phase-2 start marked; the legend sits
/// on the title row, right-aligned, so it never covers a line or the phase mark.
std::string line_chart(const std::string& title, const std::vector<int64_t>& epochs,
                       const std::vector<Series>& series, int64_t phase2_epoch, YAxis axis) {
  const double width = 460, height = 240, left = 56, right = 12, top = 28, bottom = 32;
  double lo = 1e300, hi = -1e300;
  for (const auto& s : series)
    for (double v : s.values) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  const bool log = axis == YAxis::log && lo > 0 && hi / lo > 20;
  // Plotted coordinate of a value: itself, or its log10.
  auto plotted = [&](double v) { return log ? std::log10(v) : v; };
  if (log) {
    lo = std::log10(lo);
    hi = std::log10(hi);
  }
  if (axis == YAxis::unit) {
    lo = 0;
    hi = 1;
  }
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const double e0 = epochs.empty() ? 1 : double(epochs.front());
  const double e1 = epochs.empty() ? 2 : std::max(double(epochs.back()), e0 + 1);
  auto x = [&](double e) { return left + (e - e0) / (e1 - e0) * (width - left - right); };
  auto y = [&](double v) { return top + (hi - v) / (hi - lo) * (height - top - bottom); };
  std::string svg = fmt::format(
      "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\">"
      "<text x=\"{}\" y=\"16\" class=\"t\">{}{}</text>",
      width, height, width, height, left, html_escape(title), log ? " (log scale)" : "");
  for (int i = 0; i <= 4; ++i) {
    const double v = lo + (hi - lo) * i / 4.0;
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"g\"/>"
        "<text x=\"{}\" y=\"{:.1f}\" class=\"a\" text-anchor=\"end\">{}</text>",
        left, width - right, y(v), y(v), left - 4, y(v) + 4, tick_label(log ? std::pow(10, v) : v));
  }
  for (int64_t e : epochs) {
    if (epochs.size() > 12 && e % 5 != 0) continue;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"a\" text-anchor=\"middle\">{}</text>",
                       x(double(e)), height - bottom + 14, e);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" class=\"a\" text-anchor=\"middle\">epoch</text>",
                     (left + width) / 2, height - 4);
  if (phase2_epoch > 0) {
    const double px = x(double(phase2_epoch) - 0.5);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{}\" y2=\"{}\" class=\"p\"/>"
        "<text x=\"{:.1f}\" y=\"{}\" class=\"a\">fine-tune</text>",
        px, px, top, height - bottom, px + 3, top + 10);
  }
  // Legend entries from the right edge leftwards: a 20 px line sample, then the name
  // (about 6 px per character at this font size).
  double legend_end = width - right;
  for (auto s = series.rbegin(); s != series.rend(); ++s) {
    const double text_width = 6.0 * double(s->name.size());
    const double start = legend_end - text_width - 24;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"12\" y2=\"12\" stroke=\"{}\" "
        "stroke-width=\"2\"{}/><text x=\"{:.1f}\" y=\"16\" class=\"a\">{}</text>",
        start, start + 20, s->color, s->dashed ? " stroke-dasharray=\"5,3\"" : "", start + 24,
        html_escape(s->name));
    legend_end = start - 12;
  }
  for (const auto& s : series) {
    std::string points;
    for (size_t i = 0; i < s.values.size() && i < epochs.size(); ++i)
      points += fmt::format("{:.1f},{:.1f} ", x(double(epochs[i])), y(plotted(s.values[i])));
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                       points, s.color, s.dashed ? " stroke-dasharray=\"5,3\"" : "");
    for (size_t i = 0; i < s.values.size() && i < epochs.size(); ++i)
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>",
                         x(double(epochs[i])), y(plotted(s.values[i])), s.color);
  }
  return svg + "</svg>";
}

std::string thumbnail(const std::filesystem::path& path) {
  try {
    data::DecodeOptions decode;
    decode.min_short_side = 96;
    cv::Mat rgb = data::load_image_rgb(path, decode);
    const double scale = 96.0 / std::max(rgb.rows, rgb.cols);
    cv::Mat small, bgr;
    cv::resize(rgb, small,
               cv::Size(std::max(1, int(rgb.cols * scale)), std::max(1, int(rgb.rows * scale))), 0,
               0, cv::INTER_AREA);
    cv::cvtColor(small, bgr, cv::COLOR_RGB2BGR);
    std::vector<uchar> jpeg;
    cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 80});
    return "data:image/jpeg;base64," + base64(jpeg);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

namespace {

/// The training curves, events and the per-epoch table.
std::string training_section(const ReportInput& in) {
  std::string html;
  std::vector<int64_t> epochs;
  Series train_loss{"train loss", "#1f77b4", {}, true}, val_loss{"val loss", "#1f77b4", {}};
  Series train_acc{"train acc", "#d62728", {}, true}, val_acc{"val acc", "#d62728", {}};
  Series lr{"learning rate", "#2ca02c", {}};
  int64_t phase2 = 0;
  for (const auto& m : in.history) {
    epochs.push_back(m.epoch);
    train_loss.values.push_back(m.train_loss);
    val_loss.values.push_back(m.val_loss);
    train_acc.values.push_back(m.train_acc);
    val_acc.values.push_back(m.val_acc);
    lr.values.push_back(m.lr);
    if (m.phase == 2 && phase2 == 0) phase2 = m.epoch;
  }
  // A run without validation images has NaN val_* metrics: no curves for them.
  const bool validated = !in.history.empty() && !std::isnan(in.history.front().val_loss);
  const auto with_validation = [&](const Series& train, const Series& val) {
    return validated ? std::vector<Series>{train, val} : std::vector<Series>{train};
  };
  html += "<h2>Training curves</h2><div class=\"charts\">";
  html += line_chart("Loss", epochs, with_validation(train_loss, val_loss), phase2, YAxis::fit);
  html += line_chart("Accuracy", epochs, with_validation(train_acc, val_acc), phase2, YAxis::unit);
  html += line_chart("Learning rate", epochs, {lr}, phase2, YAxis::log);
  html += "</div>";
  if (!in.events.empty()) {
    html += "<ul>";
    for (const auto& e : in.events)
      html += fmt::format("<li>epoch {}: {}</li>", e.value("epoch", 0),
                          html_escape(e.value("event", std::string())));
    html += "</ul>";
  }
  html +=
      "<table><tr><th>epoch</th><th>phase</th><th>lr</th><th>train loss</th><th>train "
      "acc</th><th>val loss</th><th>val acc</th><th>seconds</th><th>img/s</th></tr>";
  const auto cell = [](double v) { return std::isnan(v) ? "&ndash;" : fmt::format("{:.4f}", v); };
  for (const auto& m : in.history)
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.2e}</td><td>{:.4f}</td><td>{:.4f}</td><td>{}</"
        "td><td>{}</td><td>{:.1f}</td><td>{:.0f}{}</td></tr>",
        m.epoch, m.phase, m.lr, m.train_loss, m.train_acc, cell(m.val_loss), cell(m.val_acc),
        m.seconds, m.images_per_second, m.cached ? " (cached)" : "");
  html += "</table>";

  return html;
}

/// The per-class table, the confusion matrix and the most confident mistakes of `ev`.
std::string evaluation_section(const ReportInput& in, const EvalResult& ev) {
  std::string html;
  // Per-class table.
  html +=
      "<h2>Per class</h2><table><tr><th class=\"l\">class</th><th>precision</th><th>recall</"
      "th><th>F1</th><th>images</th></tr>";
  for (size_t c = 0; c < ev.precision.size(); ++c)
    html += fmt::format(
        "<tr><td class=\"l\">{}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td><td>{}</td></"
        "tr>",
        html_escape(c < in.classes.size() ? in.classes[c] : std::to_string(c)), ev.precision[c],
        ev.recall[c], ev.f1[c], ev.support[c]);
  html += "</table>";

  // Confusion matrix as a shaded table (rows: true class, columns: predicted).
  html +=
      "<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted class.</p><table>"
      "<tr><th></th>";
  for (size_t c = 0; c < ev.confusion.size(); ++c)
    html +=
        "<th>" + html_escape(c < in.classes.size() ? in.classes[c] : std::to_string(c)) + "</th>";
  html += "</tr>";
  for (size_t r = 0; r < ev.confusion.size(); ++r) {
    const int64_t row_total =
        std::accumulate(ev.confusion[r].begin(), ev.confusion[r].end(), int64_t(0));
    html += "<tr><th class=\"l\">" +
            html_escape(r < in.classes.size() ? in.classes[r] : std::to_string(r)) + "</th>";
    for (size_t c = 0; c < ev.confusion[r].size(); ++c) {
      const double share = row_total ? double(ev.confusion[r][c]) / row_total : 0.0;
      const int shade = 255 - int(std::lround(share * 180));
      const std::string color = r == c ? fmt::format("rgb({},{},255)", shade, shade)
                                       : fmt::format("rgb(255,{},{})", shade, shade);
      html += fmt::format("<td style=\"background:{}\">{}</td>", color, ev.confusion[r][c]);
    }
    html += "</tr>";
  }
  html += "</table>";

  // Worst misclassified images: wrong and most confident first.
  const std::vector<size_t> wrong = ev.mistakes();
  html +=
      fmt::format("<h2>Most confident mistakes ({} of {} misclassified)</h2><div class=\"grid\">",
                  std::min<size_t>(wrong.size(), size_t(in.worst_images)), wrong.size());
  for (size_t k = 0; k < wrong.size() && k < size_t(in.worst_images); ++k) {
    const size_t i = wrong[k];
    const size_t sample = i < ev.indices.size() ? ev.indices[i] : i;
    if (sample >= in.samples.size()) continue;
    const auto& path = in.samples[sample].path;
    const std::string src = thumbnail(path);
    auto name = [&](int64_t c) {
      return html_escape(size_t(c) < in.classes.size() ? in.classes[c] : std::to_string(c));
    };
    html += fmt::format(
        "<div class=\"cell\">{}<br>{}<br><span class=\"bad\">as {} ({:.0f}%)</span><br><span "
        "title=\"{}\">{}</span></div>",
        src.empty() ? std::string("(unreadable)") : "<img src=\"" + src + "\" alt=\"\">",
        name(ev.labels[i]), name(ev.predicted[i]), 100.0 * ev.confidence[i],
        html_escape(path.string()), html_escape(path.filename().string()));
  }
  html += "</div>";
  return html;
}

}  // namespace

std::string render_report(const ReportInput& in) {
  std::string html = page_begin(in.title);
  if (in.evaluation) {
    const auto& ev = *in.evaluation;
    const std::string top5 = top5_is_informative(in.classes.size())
                                 ? fmt::format(", top-5 {:.2f}%", 100 * ev.top5)
                                 : std::string();
    html += fmt::format(
        "<p>{}: <b>top-1 {:.2f}%</b>{}, loss {:.4f}, macro F1 {:.3f} on {} images.</p>",
        html_escape(in.evaluated_on), 100 * ev.top1, top5, ev.loss, ev.macro_f1(), ev.count);
  } else {
    html +=
        "<p>No validation images (<code>--val-split 0</code>): the model holds the last "
        "epoch's weights. <code>vtl evaluate MODEL_DIR DATA --report</code> measures it on "
        "labelled images.</p>";
  }
  if (!in.history.empty()) html += training_section(in);
  if (in.evaluation) html += evaluation_section(in, *in.evaluation);
  html += "<h2>Settings</h2><pre>" + html_escape(in.settings.dump(2)) + "</pre>";
  html += page_end();
  return html;
}

void write_report(const std::filesystem::path& path, const ReportInput& input) {
  write_file_atomically(path, render_report(input));
}

}  // namespace vtl::train
