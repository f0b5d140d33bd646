#include <gtest/gtest.h>

#include "embed/sample_images.h"
#include "embed/softmax_regression.h"
#include "vtl/core/error.h"
#include "vtl/embed/classical.h"

namespace vtl::embed {
namespace {

/// Three well-separated Gaussian clusters in 8-d, 30 rows each.
void clustered(torch::Tensor* x, std::vector<int64_t>* labels, uint64_t seed) {
  torch::manual_seed(seed);
  auto centres = torch::randn({3, 8}) * 5;
  std::vector<torch::Tensor> rows;
  labels->clear();
  for (int64_t i = 0; i < 90; ++i) {
    rows.push_back(centres[i % 3] + torch::randn({8}));
    labels->push_back(i % 3);
  }
  *x = torch::stack(rows);
}

TEST(Classical, EveryAlgorithmLearnsSeparableClustersAndRoundTripsThroughFiles) {
  torch::Tensor x, test_x;
  std::vector<int64_t> labels, test_labels;
  clustered(&x, &labels, 1);
  // Same centres (seed 1 draws them first), fresh noise for the test rows.
  torch::manual_seed(1);
  auto centres = torch::randn({3, 8}) * 5;
  torch::manual_seed(99);
  test_x = centres.repeat({10, 1}) + torch::randn({30, 8});
  for (int i = 0; i < 30; ++i) test_labels.push_back(i % 3);
  for (const std::string name : {"svm", "svm-rbf", "rf", "knn", "logreg"}) {
    ClassicalParams params;
    params.algo = parse_classical_algo(name);
    auto model = ClassicalClassifier::fit(x, labels, 3, params);
    const auto accuracy = evaluate_predictions(model.predict(test_x), test_labels, 3).accuracy;
    EXPECT_GE(accuracy, 0.9) << name;
    testing::TempDir dir("vtl_classical");
    model.save(dir.path(), {{"classes", {"a", "b", "c"}}});
    nlohmann::json description;
    auto loaded = ClassicalClassifier::load(dir.path(), &description);
    EXPECT_EQ(loaded.predict(test_x), model.predict(test_x)) << name;
    EXPECT_EQ(description.at("algo"), name);
    EXPECT_EQ(description.at("classes").size(), 3u);
  }
}

TEST(Classical, CrossValidationIsDeterministicAndReportsEveryFold) {
  torch::Tensor x;
  std::vector<int64_t> labels;
  clustered(&x, &labels, 3);
  ClassicalParams params;
  params.algo = ClassicalAlgo::random_forest;
  params.trees = 20;
  auto a = cross_validate(x, labels, 3, params, 5, 42);
  auto b = cross_validate(x, labels, 3, params, 5, 42);
  ASSERT_EQ(a.fold_accuracy.size(), 5u);
  EXPECT_EQ(a.fold_accuracy, b.fold_accuracy);
  EXPECT_GE(a.mean_accuracy, 0.9);
  EXPECT_THROW(cross_validate(x, labels, 3, params, 1, 0), Error);
}

// A random base's features can be 1e-9 in size. Each column is scaled by its own deviation,
// so clusters at that scale are told apart as well as at scale 1 (a fixed floor of 1e-6 on
// the deviation left the values near 0, and the SVM and logistic regression at chance); a
// constant column is harmless.
TEST(Classical, TinyFeaturesAreStandardisedByTheirOwnScale) {
  torch::manual_seed(7);
  const auto centres = torch::randn({3, 64}) * 0.5;  // overlapping clusters
  std::vector<int64_t> labels;
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < 120; ++i) {
    rows.push_back(centres[i % 3] + torch::randn({64}));
    labels.push_back(i % 3);
  }
  const torch::Tensor x = torch::cat({torch::stack(rows), torch::full({120, 1}, 3.0)}, 1);
  for (const std::string name : {"svm", "logreg", "knn"}) {
    ClassicalParams params;
    params.algo = parse_classical_algo(name);
    const auto plain = ClassicalClassifier::fit(x, labels, 3, params);
    const double accuracy = evaluate_predictions(plain.predict(x), labels, 3).accuracy;
    EXPECT_GE(accuracy, 0.8) << name;
    for (const double scale : {1e-9, 1e-11}) {
      const auto tiny = ClassicalClassifier::fit(x * scale, labels, 3, params);
      EXPECT_EQ(tiny.predict(x * scale), plain.predict(x)) << name << " at scale " << scale;
    }
  }
}

TEST(Classical, BadInputIsAClearError) {
  auto x = torch::randn({4, 3});
  EXPECT_THROW(ClassicalClassifier::fit(x, {0, 0, 0, 0}, 2, {}), Error);   // one class
  EXPECT_THROW(ClassicalClassifier::fit(x, {0, 1, -1, 0}, 2, {}), Error);  // unlabelled
  auto model = ClassicalClassifier::fit(x, {0, 1, 0, 1}, 2, {});
  EXPECT_THROW(model.predict(torch::randn({2, 5})), Error);  // other width
  EXPECT_THROW(parse_classical_algo("xgboost"), Error);
  testing::TempDir dir("vtl_classical_missing");
  EXPECT_THROW(ClassicalClassifier::load(dir.path()), Error);
}

// Logistic regression is scikit-learn's LogisticRegression(C): at the weights it finds,
// the gradient of mean cross-entropy + ||W||^2 / (2 C N), written out here in closed form,
// is zero. A class without rows (the fourth) gets weights too.
TEST(Classical, LogisticRegressionFindsTheMinimumOfScikitLearnsObjective) {
  torch::manual_seed(11);
  const int64_t n = 150, d = 40, k = 4;
  const auto centres = torch::randn({3, d}) * 0.4;  // overlapping: no separating plane
  std::vector<torch::Tensor> rows;
  std::vector<float> labels;
  for (int64_t i = 0; i < n; ++i) {
    rows.push_back(centres[i % 3] + torch::randn({d}));
    labels.push_back(float(i % 3));
  }
  const torch::Tensor x = torch::stack(rows).contiguous();
  const cv::Mat samples(int(n), int(d), CV_32F, x.data_ptr<float>());
  const cv::Mat responses(int(n), 1, CV_32F, labels.data());
  double norm_at_c1 = 0;
  for (const double c : {1.0, 0.05}) {
    SoftmaxRegression model(c, 500, k);
    ASSERT_TRUE(model.train(cv::ml::TrainData::create(samples, cv::ml::ROW_SAMPLE, responses)));
    EXPECT_TRUE(model.converged()) << model.iterations();
    const auto w =
        torch::from_blob(model.weights().clone().ptr<double>(), {d, k}, torch::kFloat64).clone();
    const auto b =
        torch::from_blob(model.bias().clone().ptr<double>(), {k}, torch::kFloat64).clone();
    const auto x64 = x.to(torch::kFloat64);
    const auto p = torch::softmax(x64.mm(w) + b, 1);
    const auto y = torch::one_hot(torch::tensor(labels).to(torch::kInt64), k).to(torch::kFloat64);
    const auto grad_w = x64.t().mm(p - y) / double(n) + w / (c * double(n));
    const auto grad_b = (p - y).mean(0);
    EXPECT_LT(grad_w.abs().max().item<double>(), 2e-5) << "C " << c;
    EXPECT_LT(grad_b.abs().max().item<double>(), 2e-5) << "C " << c;
    EXPECT_GT(w.abs().max().item<double>(), 1e-2);  // not the trivial zero start
    // A stronger penalty (smaller C) gives smaller weights.
    if (c < 1) EXPECT_LT(w.norm().item<double>(), 0.5 * norm_at_c1);
    norm_at_c1 = w.norm().item<double>();
  }
  // Out of iterations: the classifier says so.
  ClassicalParams params;
  params.algo = ClassicalAlgo::logreg;
  std::vector<int64_t> int_labels(labels.begin(), labels.end());
  EXPECT_TRUE(ClassicalClassifier::fit(x, int_labels, 3, params).warning().empty());
  params.iterations = 2;
  EXPECT_NE(ClassicalClassifier::fit(x, int_labels, 3, params).warning().find("--iterations"),
            std::string::npos);
}

}  // namespace
}  // namespace vtl::embed
