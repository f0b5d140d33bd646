#include <gtest/gtest.h>

#include "vtl/train/metrics.h"

namespace vtl::train {
namespace {

/// Logits whose argmax is `predicted[i]` among `classes`.
torch::Tensor logits_predicting(const std::vector<int64_t>& predicted, int64_t classes) {
  auto logits = torch::zeros({int64_t(predicted.size()), classes});
  for (size_t i = 0; i < predicted.size(); ++i) logits[int64_t(i)][predicted[i]] = 5.0;
  return logits;
}

// Expected values: scikit-learn's f1_score(y_true, y_pred, average="macro",
// zero_division=0) on the same labels.
TEST(Metrics, MacroF1AveragesOverTheClassesThatOccurAsScikitLearnDoes) {
  // Class 0 is neither a label nor a prediction: it has no F1 to average.
  auto absent = metrics_from_logits(logits_predicting({2, 2, 2, 1}, 3),
                                    torch::tensor(std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_NEAR(absent.macro_f1(), 0.42857142857142855, 1e-12);
  EXPECT_NEAR(absent.top1, 0.75, 1e-12);

  auto all_present = metrics_from_logits(logits_predicting({0, 2, 2, 2}, 3),
                                         torch::tensor(std::vector<int64_t>{0, 1, 2, 2}));
  EXPECT_NEAR(all_present.macro_f1(), 0.6, 1e-12);
  EXPECT_EQ(all_present.support, (std::vector<int64_t>{1, 1, 2}));
}

}  // namespace
}  // namespace vtl::train
