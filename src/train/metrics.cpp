#include "vtl/train/metrics.h"

#include <algorithm>

#include "vtl/core/error.h"

namespace vtl::train {

bool EvalResult::occurs(size_t c) const {
  if (c < support.size() && support[c] > 0) return true;
  for (const auto& row : confusion)
    if (c < row.size() && row[c] > 0) return true;
  return false;
}

double EvalResult::macro_f1() const {
  double sum = 0;
  int64_t classes = 0;
  for (size_t c = 0; c < f1.size(); ++c) {
    if (!occurs(c)) continue;
    sum += f1[c];
    ++classes;
  }
  return classes == 0 ? 0.0 : sum / double(classes);
}

std::vector<size_t> EvalResult::mistakes() const {
  std::vector<size_t> wrong;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != predicted[i]) wrong.push_back(i);
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](size_t a, size_t b) { return confidence[a] > confidence[b]; });
  return wrong;
}

nlohmann::json EvalResult::to_json(const std::vector<std::string>& classes) const {
  nlohmann::json per_class = nlohmann::json::array();
  for (size_t c = 0; c < precision.size(); ++c) {
    per_class.push_back({{"name", c < classes.size() ? classes[c] : std::to_string(c)},
                         {"precision", precision[c]},
                         {"recall", recall[c]},
                         {"f1", f1[c]},
                         {"support", support[c]}});
  }
  return {{"count", count},        {"loss", loss},           {"top1", top1},
          {"top5", top5},          {"macro_f1", macro_f1()}, {"per_class", per_class},
          {"confusion", confusion}};
}

EvalResult metrics_from_logits(const torch::Tensor& logits_in, const torch::Tensor& labels_in,
                               const std::vector<size_t>& indices) {
  auto logits = logits_in.detach().to(torch::kCPU, torch::kFloat32);
  auto labels = labels_in.detach().to(torch::kCPU, torch::kInt64);
  VTL_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0),
            "metrics: logits [N,K] and labels [N] expected");
  const int64_t n = logits.size(0), k = logits.size(1);
  EvalResult r;
  r.count = n;
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  r.support.assign(k, 0);
  r.precision.assign(k, 0);
  r.recall.assign(k, 0);
  r.f1.assign(k, 0);
  if (n == 0) return r;
  r.loss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
  auto probs = torch::softmax(logits, 1);
  auto [conf, pred] = probs.max(1);
  const int64_t top = std::min<int64_t>(5, k);
  auto top5 = std::get<1>(logits.topk(top, 1));
  r.top1 = pred.eq(labels).to(torch::kFloat64).mean().item<double>();
  r.top5 = top5.eq(labels.unsqueeze(1)).any(1).to(torch::kFloat64).mean().item<double>();
  auto pred_a = pred.accessor<int64_t, 1>();
  auto label_a = labels.accessor<int64_t, 1>();
  auto conf_a = conf.accessor<float, 1>();
  for (int64_t i = 0; i < n; ++i) {
    r.confusion[label_a[i]][pred_a[i]]++;
    r.labels.push_back(label_a[i]);
    r.predicted.push_back(pred_a[i]);
    r.confidence.push_back(conf_a[i]);
  }
  r.indices = indices;
  for (int64_t c = 0; c < k; ++c) {
    int64_t tp = r.confusion[c][c], predicted = 0, actual = 0;
    for (int64_t j = 0; j < k; ++j) {
      predicted += r.confusion[j][c];
      actual += r.confusion[c][j];
    }
    r.support[c] = actual;
    r.precision[c] = predicted ? double(tp) / predicted : 0.0;
    r.recall[c] = actual ? double(tp) / actual : 0.0;
    const double pr = r.precision[c] + r.recall[c];
    r.f1[c] = pr > 0 ? 2 * r.precision[c] * r.recall[c] / pr : 0.0;
  }
  return r;
}

EvalResult evaluate(models::TransferModel& model, data::Loader& loader, torch::Device device,
                    models::Precision precision) {
  torch::NoGradGuard no_grad;
  const models::AutocastScope autocast(precision, device);
  model->eval();
  std::vector<torch::Tensor> logits, labels;
  std::vector<size_t> indices;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    logits.push_back(model->forward(batch->images.to(device, /*non_blocking=*/true))
                         .to(torch::kCPU, torch::kFloat32));
    labels.push_back(batch->labels);
    indices.insert(indices.end(), batch->indices.begin(), batch->indices.end());
  }
  if (logits.empty())
    return metrics_from_logits(torch::zeros({0, model->num_classes()}),
                               torch::zeros({0}, torch::kInt64));
  return metrics_from_logits(torch::cat(logits), torch::cat(labels), indices);
}

}  // namespace vtl::train
