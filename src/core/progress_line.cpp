#include "vtl/core/progress_line.h"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

namespace vtl {

std::string format_duration(double seconds) {
  const int64_t s = std::lround(std::max(0.0, seconds));
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

ProgressLine::ProgressLine() : ProgressLine(std::cerr, isatty(STDERR_FILENO) != 0) {}

ProgressLine::ProgressLine(std::ostream& out, bool terminal, std::chrono::milliseconds log_interval)
    : out_(out), terminal_(terminal), log_interval_(log_interval) {}

ProgressLine::~ProgressLine() {
  if (open_) out_ << "\n" << std::flush;
}

void ProgressLine::show(const std::string& text, bool last) {
  if (terminal_) {
    out_ << "\r\033[K" << text;
    open_ = !last;
    if (last) out_ << "\n";
    out_ << std::flush;
    return;
  }
  const auto now = Clock::now();
  if (!last && now - last_logged_ < log_interval_) return;
  last_logged_ = now;
  out_ << text << "\n" << std::flush;
}

void ProgressLine::clear() {
  if (!terminal_ || !open_) return;
  out_ << "\r\033[K" << std::flush;
  open_ = false;
}

std::string ProgressLine::counted(int64_t done, int64_t total, const std::string& unit) const {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = seconds > 0 ? done / seconds : 0.0;
  std::string text = fmt::format("{}/{} {} ({:.1f} {}/s", done, total, unit, rate, unit);
  if (done > 0 && done < total && rate > 0) {
    text += ", " + format_duration((total - done) / rate) + " left";
  }
  return text + ")";
}

}  // namespace vtl
