#pragma once
// The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's lr_find):
// train for a few dozen steps while the learning rate grows geometrically from `start` to
// `end`, record the loss of every step, and read a good learning rate off the curve — the
// loss falls fastest somewhat below the rate at which it blows up. The model's weights are
// put back afterwards; only the curve remains.
//
// Suggestions, as fastai computes them from the smoothed losses with the first tenth of
// the planned steps and the last 5 recorded ones left out:
//   valley   the longest stretch over which the loss keeps falling (the longest
//            decreasing subsequence), 1/3 to 1/2 of the way into it (fastai's default);
//   steep    where the loss falls fastest per decade of learning rate;
//   minimum  a tenth of the learning rate at the lowest loss.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vtl::train {

struct LrRangeOptions {
  double start_lr = 1e-7;  ///< learning rate of the first step
  double end_lr = 10.0;    ///< of the last planned step
  int64_t steps = 100;     ///< planned steps (fewer when the loss diverges)
  /// The test stops once the smoothed loss exceeds this many times its lowest value.
  double divergence = 4.0;
  /// Exponential moving average of the losses, debiased (fastai's beta).
  double smoothing = 0.98;
  /// Throws vtl::Error naming the option at fault.
  void validate() const;
};

struct LrRangeResult {
  int phase = 1;                         ///< the training phase tested (2: fine-tuning of finetune)
  std::vector<double> lrs;               ///< of each step taken
  std::vector<double> losses, smoothed;  ///< mean training loss of each step; its average
  bool diverged = false;                 ///< stopped before the planned steps
  /// Suggested learning rates (see the file comment); 0 when too few steps were taken.
  double valley = 0, steep = 0, minimum = 0;
};

/// Fills the suggestions of `result` from its curve; `planned_steps` as in the file comment.
void suggest_learning_rates(LrRangeResult& result, int64_t planned_steps);

/// The curve as text: one row per sampled learning rate with a bar as long as its smoothed
/// loss, then the suggestions (at most `rows` rows).
std::string render_lr_curve_text(const LrRangeResult& result, int rows = 14);

/// Writes `dir`/lr_find.csv (step, lr, loss, smoothed_loss) and `dir`/lr_find.html (the
/// curve on a log axis with the suggestions marked), each atomically; creates `dir`.
void write_lr_range_files(const std::filesystem::path& dir, const LrRangeResult& result,
                          const std::string& title);

}  // namespace vtl::train
