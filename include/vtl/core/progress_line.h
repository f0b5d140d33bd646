#pragma once
// Progress of long work on stderr, for a person at a terminal and for a log file alike.

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace vtl {

/// "m:ss" of a duration in seconds (rounded; negative counts as 0): "1:05".
std::string format_duration(double seconds);

/// On a terminal, one line rewritten in place; otherwise (stderr redirected to a file or a
/// pipe) a full line once every `log_interval` (the first one interval after the start:
/// short work logs only its last line), plus the last one, so logs stay readable. Not
/// thread-safe: one thread reports.
class ProgressLine {
 public:
  /// On stderr; a terminal when stderr is one.
  ProgressLine();
  /// On `out` (it must outlive this), which is a terminal or not as `terminal` says.
  ProgressLine(std::ostream& out, bool terminal,
               std::chrono::milliseconds log_interval = std::chrono::seconds(10));
  /// Ends a line left open on the terminal.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// Shows `text` ("extract: 120/300 images"); `last`: the work is done, always shown
  /// and the line ended.
  void show(const std::string& text, bool last = false);
  /// Removes the line from a terminal (what follows takes its place); nothing in a log.
  void clear();
  /// "120/300 images (45.2 images/s, 0:04 left)": counts since construction.
  std::string counted(int64_t done, int64_t total, const std::string& unit) const;

 private:
  using Clock = std::chrono::steady_clock;
  std::ostream& out_;
  bool terminal_;
  std::chrono::milliseconds log_interval_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_logged_ = start_;
  bool open_ = false;  ///< a terminal line is shown and not ended
};

}  // namespace vtl
