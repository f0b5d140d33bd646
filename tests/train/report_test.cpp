#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vtl/train/report.h"

namespace vtl::train {
namespace {

/// Two phases of two epochs: lr 1e-3, then 1e-5 from epoch 3.
ReportInput two_phase_run() {
  ReportInput in;
  in.title = "run";
  in.classes = {"cat", "dog"};
  for (int64_t epoch = 1; epoch <= 4; ++epoch) {
    EpochMetrics m;
    m.epoch = epoch;
    m.phase = epoch <= 2 ? 1 : 2;
    m.lr = epoch <= 2 ? 1e-3 : 1e-5;
    m.train_loss = 1.0 / double(epoch);
    m.val_loss = 1.2 / double(epoch);
    m.train_acc = m.val_acc = 0.5 + 0.1 * double(epoch);
    in.history.push_back(m);
  }
  in.evaluation = metrics_from_logits(torch::tensor({{2.0f, 1.0f}, {0.0f, 3.0f}}),
                                      torch::tensor({int64_t(0), int64_t(1)}));
  return in;
}

TEST(Report, LearningRatesSpanningDecadesAreOnALogScale) {
  const std::string html = render_report(two_phase_run());
  EXPECT_NE(html.find("Learning rate (log scale)"), std::string::npos);
  // Ticks from 1e-5 to 1e-3 in decade halves, written short enough for the margin.
  for (const char* tick : {">1.0e-05<", ">1.0e-04<", ">1.0e-03<"})
    EXPECT_NE(html.find(tick), std::string::npos) << tick;
  EXPECT_NE(html.find(">fine-tune<"), std::string::npos);
  // Loss and accuracy stay linear.
  EXPECT_EQ(html.find("Loss (log scale)"), std::string::npos);
  EXPECT_EQ(html.find("Accuracy (log scale)"), std::string::npos);
}

TEST(Report, ALearningRateThatBarelyMovesStaysLinear) {
  auto in = two_phase_run();
  for (auto& m : in.history) m.lr = m.phase == 1 ? 1e-3 : 5e-4;
  const std::string html = render_report(in);
  EXPECT_EQ(html.find("(log scale)"), std::string::npos);
  EXPECT_NE(html.find(">5.0e-04<"), std::string::npos);  // the lowest tick
}

TEST(Report, AnEvaluationAloneHasNoTrainingCurves) {
  auto in = two_phase_run();
  in.history.clear();
  in.evaluated_on = "data/test";
  const std::string html = render_report(in);
  EXPECT_EQ(html.find("Training curves"), std::string::npos);
  EXPECT_NE(html.find("data/test: <b>top-1"), std::string::npos);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find("Most confident mistakes"), std::string::npos);
}

}  // namespace
}  // namespace vtl::train
