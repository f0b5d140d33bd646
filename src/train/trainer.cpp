#include "vtl/train/trainer.h"

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"
#include "vtl/core/stop_signals.h"
#include "vtl/models/batch_norm.h"
#include "vtl/models/device.h"
#include "vtl/train/freeze.h"
#include "vtl/train/multi_tensor_optim.h"

namespace vtl::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Strategy parse_strategy(const std::string& text) {
  if (text == "features") return Strategy::features;
  if (text == "finetune") return Strategy::finetune;
  if (text == "full") return Strategy::full;
  if (text == "trainable") return Strategy::trainable;
  fail("unknown strategy '{}': expected features, finetune, full or trainable", text);
}

std::string to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::features:
      return "features";
    case Strategy::finetune:
      return "finetune";
    case Strategy::full:
      return "full";
    case Strategy::trainable:
      return "trainable";
  }
  return "features";
}

nlohmann::json TrainConfig::to_json() const {
  return {{"strategy", train::to_string(strategy)},
          {"epochs", epochs},
          {"finetune_epochs", finetune_epochs},
          {"batch_size", batch_size},
          {"lr", lr},
          {"finetune_lr", finetune_lr},
          {"finetune_lr_ratio", finetune_lr_ratio},
          {"unfreeze", unfreeze},
          {"unfreeze_from", unfreeze_from},
          {"train_bn", train_bn},
          {"optimizer", optimizer},
          {"weight_decay", weight_decay},
          {"momentum", momentum},
          {"nesterov", nesterov},
          {"label_smoothing", label_smoothing},
          {"balanced_class_weights", balanced_class_weights},
          {"schedule", schedule},
          {"warmup_epochs", warmup_epochs},
          {"step_epochs", step_epochs},
          {"step_gamma", step_gamma},
          {"clip_grad_norm", clip_grad_norm},
          {"early_stopping_patience", early_stopping_patience},
          {"monitor", monitor},
          {"restore_best", restore_best},
          {"plateau_patience", plateau_patience},
          {"plateau_factor", plateau_factor},
          {"cache_features", cache_features},
          {"seed", seed},
          {"device", device},
          {"amp", amp},
          {"channels_last", channels_last}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  c.strategy = parse_strategy(j.value("strategy", train::to_string(c.strategy)));
#define VTL_READ(field) c.field = j.value(#field, c.field)
  VTL_READ(epochs);
  VTL_READ(finetune_epochs);
  VTL_READ(batch_size);
  VTL_READ(lr);
  VTL_READ(finetune_lr);
  VTL_READ(finetune_lr_ratio);
  VTL_READ(unfreeze);
  VTL_READ(unfreeze_from);
  VTL_READ(train_bn);
  VTL_READ(optimizer);
  VTL_READ(weight_decay);
  VTL_READ(momentum);
  VTL_READ(nesterov);
  VTL_READ(label_smoothing);
  VTL_READ(balanced_class_weights);
  VTL_READ(schedule);
  VTL_READ(warmup_epochs);
  VTL_READ(step_epochs);
  VTL_READ(step_gamma);
  VTL_READ(clip_grad_norm);
  VTL_READ(early_stopping_patience);
  VTL_READ(monitor);
  VTL_READ(restore_best);
  VTL_READ(plateau_patience);
  VTL_READ(plateau_factor);
  VTL_READ(cache_features);
  VTL_READ(seed);
  VTL_READ(device);
  VTL_READ(amp);
  VTL_READ(channels_last);
#undef VTL_READ
  return c;
}

nlohmann::json EpochMetrics::to_json() const {
  return {{"epoch", epoch},
          {"phase", phase},
          {"lr", lr},
          {"train_loss", train_loss},
          {"train_acc", train_acc},
          {"val_loss", val_loss},
          {"val_acc", val_acc},
          {"val_top5", val_top5},
          {"seconds", seconds},
          {"images_per_second", images_per_second},
          {"cached", cached}};
}

namespace {

/// A metric that may be absent: JSON writes NaN as null.
double metric_or_nan(const nlohmann::json& j, const char* name) {
  const auto& value = j.at(name);
  return value.is_null() ? std::numeric_limits<double>::quiet_NaN() : value.get<double>();
}

}  // namespace

EpochMetrics EpochMetrics::from_json(const nlohmann::json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch");
  m.phase = j.at("phase");
  m.lr = j.at("lr");
  m.train_loss = j.at("train_loss");
  m.train_acc = j.at("train_acc");
  m.val_loss = metric_or_nan(j, "val_loss");
  m.val_acc = metric_or_nan(j, "val_acc");
  m.val_top5 = metric_or_nan(j, "val_top5");
  m.seconds = j.at("seconds");
  m.images_per_second = j.at("images_per_second");
  m.cached = j.at("cached");
  return m;
}

namespace {

void validate(const TrainConfig& c) {
  VTL_CHECK(c.unfreeze >= 0, "--unfreeze must be 0 or more (got {})", c.unfreeze);
  VTL_CHECK(c.epochs >= 0 && c.finetune_epochs >= 0, "epochs must be 0 or more");
  VTL_CHECK(c.batch_size > 0, "--batch-size must be positive (got {})", c.batch_size);
  VTL_CHECK(c.lr > 0 && c.finetune_lr > 0, "learning rates must be positive");
  VTL_CHECK(c.finetune_lr_ratio >= 1, "--finetune-lr-ratio must be 1 or more (got {})",
            c.finetune_lr_ratio);
  VTL_CHECK(c.optimizer == "adam" || c.optimizer == "adamw" || c.optimizer == "sgd",
            "unknown optimizer '{}': expected adam, adamw or sgd", c.optimizer);
  VTL_CHECK(c.schedule == "constant" || c.schedule == "step" || c.schedule == "cosine" ||
                c.schedule == "onecycle",
            "unknown schedule '{}': expected constant, step, cosine or onecycle", c.schedule);
  VTL_CHECK(c.monitor == "val_loss" || c.monitor == "val_acc",
            "unknown monitor '{}': expected val_loss or val_acc", c.monitor);
  VTL_CHECK(c.cache_features == "auto" || c.cache_features == "on" || c.cache_features == "off",
            "--cache-features must be auto, on or off (got '{}')", c.cache_features);
  VTL_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, "label smoothing must be in [0, 1)");
  VTL_CHECK(c.weight_decay >= 0, "--weight-decay must be 0 or more (got {})", c.weight_decay);
  VTL_CHECK(c.momentum >= 0 && c.momentum < 1, "--momentum must be in [0, 1) (got {})", c.momentum);
  VTL_CHECK(c.warmup_epochs >= 0, "--warmup-epochs must be 0 or more (got {})", c.warmup_epochs);
  VTL_CHECK(c.step_epochs >= 1, "--step-epochs must be 1 or more (got {})", c.step_epochs);
  VTL_CHECK(c.step_gamma > 0 && c.step_gamma <= 1, "--step-gamma must be in (0, 1] (got {})",
            c.step_gamma);
  VTL_CHECK(c.clip_grad_norm >= 0, "--clip-grad-norm must be 0 (off) or more (got {})",
            c.clip_grad_norm);
  VTL_CHECK(c.early_stopping_patience >= 0, "--early-stopping must be 0 (off) or more (got {})",
            c.early_stopping_patience);
  VTL_CHECK(c.plateau_patience >= 0, "--reduce-lr-patience must be 0 (off) or more (got {})",
            c.plateau_patience);
  VTL_CHECK(c.plateau_factor > 0 && c.plateau_factor < 1,
            "--reduce-lr-factor must be in (0, 1): it multiplies the learning rate (got {})",
            c.plateau_factor);
  parse_precision(c.amp);
}

/// A progress bar on stderr: rewritten in place on a terminal, a line a minute in a log.
class ProgressBar {
 public:
  ProgressBar(bool enabled, std::string label, size_t total)
      : label_(std::move(label)), total_(total), start_(Clock::now()) {
    if (enabled) line_.emplace(std::cerr, isatty(STDERR_FILENO) != 0, std::chrono::minutes(1));
  }
  void update(size_t done, int64_t images, double loss, double acc) {
    if (!line_) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const double eta = done ? elapsed / done * (total_ - done) : 0.0;
    const int width = 24, filled = total_ ? int(width * done / total_) : width;
    line_->show(fmt::format("{} [{}{}] {}/{}  {:.0f} img/s  loss {:.4f}  acc {:.3f}  ETA {}",
                            label_, std::string(filled, '='), std::string(width - filled, ' '),
                            done, total_, elapsed > 0 ? images / elapsed : 0.0, loss, acc,
                            format_duration(eta)));
  }
  /// The epoch's line replaces the bar.
  ~ProgressBar() {
    if (line_) line_->clear();
  }

 private:
  std::optional<ProgressLine> line_;
  std::string label_;
  size_t total_;
  Clock::time_point start_;
};

/// Tests: VTL_TEST_KILL_AFTER_STEPS=N raises VTL_TEST_KILL_SIGNAL (default SIGKILL) after
/// the N-th step of this process.
void maybe_kill_for_test(int64_t steps) {
  static const char* env = std::getenv("VTL_TEST_KILL_AFTER_STEPS");
  static const char* signal = std::getenv("VTL_TEST_KILL_SIGNAL");
  if (env && steps == std::atoll(env)) std::raise(signal ? std::atoi(signal) : SIGKILL);
}

/// The state of LibTorch's default CPU generator (dropout masks, initialisation), and
/// setting it back: what checkpoints keep and the range test gives back.
torch::Tensor cpu_generator_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_cpu_generator_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

/// Row indices 0..rows-1 of the feature cache in the training order of `epoch` (a shuffle
/// seeded with (seed, epoch)), as an int64 tensor on `device`.
torch::Tensor cached_rows_in_order(int64_t rows, uint64_t seed, uint64_t epoch,
                                   const torch::Device& device) {
  std::vector<int64_t> order(size_t(rows), 0);
  for (int64_t i = 0; i < rows; ++i) order[size_t(i)] = i;
  std::mt19937_64 rng(data::mix_seed(seed, epoch, 0x5EED));
  std::shuffle(order.begin(), order.end(), rng);
  return torch::tensor(order, torch::kInt64).to(device);
}

/// What needs validation images is refused without them.
void check_without_validation(const TrainConfig& c) {
  VTL_CHECK(c.early_stopping_patience == 0,
            "early stopping (--early-stopping) watches the validation metrics, and there are no "
            "validation images");
  VTL_CHECK(c.plateau_patience == 0,
            "ReduceLROnPlateau (--reduce-lr-patience) watches the validation loss, and there are "
            "no validation images");
}

}  // namespace

void check_config(const TrainConfig& config, models::TransferModel& model, bool has_validation) {
  validate(config);
  if (!has_validation) check_without_validation(config);
  if (config.strategy == Strategy::finetune && !config.unfreeze_from.empty())
    check_unfreeze_block(model, config.unfreeze_from);
}

Trainer::Trainer(models::TransferModel model, TrainConfig config, TrainData data, fs::path run_dir,
                 std::shared_ptr<dist::ProcessGroup> group)
    : model_(std::move(model)),
      config_(std::move(config)),
      data_(std::move(data)),
      run_dir_(std::move(run_dir)),
      group_(std::move(group)),
      device_(group_ && config_.device == "cuda" ? group_->device()
                                                 : models::parse_device(config_.device)) {
  validate(config_);
  VTL_CHECK(!data_.train.samples.empty(), "no training images");
  if (!has_validation()) check_without_validation(config_);
  const auto classes = static_cast<int64_t>(data_.train.classes.size());
  VTL_CHECK(model_->num_classes() == classes,
            "the model's head has {} outputs and the data has {} classes; give TransferModel "
            "the data's num_classes()",
            model_->num_classes(), classes);
  precision_ = parse_precision(config_.amp);
  check_precision_supported(precision_, device_);
  scaler_ = LossScaler(precision_ == Precision::fp16);
  model_->to(device_);
  if (config_.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  data::LoaderOptions train_options;
  train_options.batch_size = config_.batch_size;
  train_options.shuffle = true;
  train_options.workers = data_.workers;
  train_options.seed = config_.seed;
  train_options.train = data_.augment.any_per_image();
  train_options.augment = data_.augment;
  train_options.preprocessing = data_.preprocessing;
  train_options.pin_memory = device_.is_cuda();  // asynchronous host-to-device copies
  data::LoaderOptions val_options = train_options;
  val_options.shuffle = false;
  val_options.train = false;
  if (has_validation())
    val_loader_ = std::make_unique<data::Loader>(data_.val, data_.store, val_options);
  if (distributed()) {
    train_options.rank = group_->rank();
    train_options.world = group_->size();
    if (has_validation()) {
      data::Dataset share = data_.val;
      share.samples.clear();
      for (auto i :
           dist::rank_share(0, int64_t(data_.val.samples.size()), group_->rank(), group_->size()))
        share.samples.push_back(data_.val.samples[size_t(i)]);
      val_share_loader_ = std::make_unique<data::Loader>(share, data_.store, val_options);
    }
    // The ranks decoded their images at their own pace: meet without the collective
    // timeout (a rank that died still ends the wait at once), then every rank starts from
    // rank 0's weights and buffers, as torch's DDP does.
    group_->wait_for_all();
    std::vector<torch::Tensor> state;
    for (auto& p : model_->parameters()) state.push_back(p);
    for (auto& b : model_->buffers()) state.push_back(b);
    group_->broadcast(state);
  }
  train_loader_ = std::make_unique<data::Loader>(data_.train, data_.store, train_options);

  const int64_t k = model_->num_classes();
  class_weights_ = torch::ones({k});
  if (config_.balanced_class_weights) {
    const auto counts = data_.train.class_counts();
    const double n = double(data_.train.samples.size());
    for (int64_t c = 0; c < k; ++c)
      class_weights_[c] = counts[c] > 0 ? n / (double(k) * double(counts[c])) : 0.0;
  }
  class_weights_ = class_weights_.to(device_);
}

std::vector<Trainer::Phase> Trainer::phases() const {
  std::vector<Phase> out;
  out.push_back({1, 0, config_.epochs, config_.lr});
  if (config_.strategy == Strategy::finetune)
    out.push_back({2, config_.epochs, config_.finetune_epochs, config_.finetune_lr});
  return out;
}

bool Trainer::base_trains(const Phase& phase) const { return config_.strategy == Strategy::full; }

void Trainer::apply_freezing(const Phase& phase, bool log_event) {
  if (config_.strategy == Strategy::trainable) return;  // as the caller set it
  if (config_.strategy == Strategy::full) {
    unfreeze_all(model_);
    return;
  }
  freeze_base(model_);
  const bool augmenting = data_.augment.any_per_image() || data_.augment.mixup_alpha > 0 ||
                          data_.augment.cutmix_alpha > 0;
  if (log_event && augmenting && use_cache(phase))
    events_.push_back({{"epoch", phase.first_epoch + 1},
                       {"event", fmt::format("phase {} trains the head on features computed once "
                                             "per image (--cache-features on): augmentation, "
                                             "mixup and cutmix do not apply to it",
                                             phase.index)}});
  if (phase.index == 2) {
    auto names = config_.unfreeze_from.empty() ? unfreeze_last(model_, config_.unfreeze)
                                               : unfreeze_from(model_, config_.unfreeze_from);
    if (!log_event) return;
    const std::string rates =
        config_.finetune_lr_ratio > 1
            ? fmt::format("lr {:g} at {} rising to {:g}", phase.lr / config_.finetune_lr_ratio,
                          names.empty() ? "" : names.front(), phase.lr)
            : fmt::format("lr {}", phase.lr);
    const std::string unfrozen =
        names.empty()       ? std::string("no layer of the base unfrozen (the head trains alone)")
        : names.size() == 1 ? fmt::format("1 layer unfrozen ({})", names.front())
                            : fmt::format("{} layers unfrozen ({} .. {})", names.size(),
                                          names.front(), names.back());
    events_.push_back({{"epoch", phase.first_epoch + 1},
                       {"event", fmt::format("phase 2: {}, {}", unfrozen, rates)}});
  }
}

void Trainer::announce_events() {
  for (; events_announced_ < events_.size(); ++events_announced_)
    if (on_event) on_event(events_[events_announced_]);
}

bool Trainer::use_cache(const Phase& phase) {
  if (config_.strategy == Strategy::full || phase.index == 2) return false;
  if (config_.strategy == Strategy::trainable && !base_is_frozen(model_)) return false;
  if (config_.cache_features == "on") return true;
  if (config_.cache_features == "off") return false;
  return !data_.augment.any_per_image() && data_.augment.mixup_alpha <= 0 &&
         data_.augment.cutmix_alpha <= 0;
}

void Trainer::make_optimizer(const Phase& phase) {
  VTL_CHECK(!trainable_parameters(model_).empty(), "nothing to train: every parameter is frozen");
  // Phase 2 (or fit()'s one phase) with a learning-rate ratio: a group per unfrozen layer
  // (layerwise_parameter_groups); otherwise one group.
  const double ratio =
      phase.index == 2 || config_.strategy == Strategy::trainable ? config_.finetune_lr_ratio : 1.0;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  group_lr_scales_.clear();
  if (ratio > 1) {
    for (auto& group : layerwise_parameter_groups(model_, ratio)) {
      groups.emplace_back(group.parameters);
      group_lr_scales_.push_back(group.lr_scale);
    }
  } else {
    groups.emplace_back(trainable_parameters(model_));
    group_lr_scales_.push_back(1.0);
  }
  if (config_.optimizer == "sgd") {
    optimizer_ = std::make_unique<MultiTensorSGD>(groups, torch::optim::SGDOptions(phase.lr)
                                                              .momentum(config_.momentum)
                                                              .nesterov(config_.nesterov)
                                                              .weight_decay(config_.weight_decay));
  } else if (config_.optimizer == "adamw") {
    optimizer_ = std::make_unique<MultiTensorAdamW>(
        groups, torch::optim::AdamWOptions(phase.lr).weight_decay(config_.weight_decay));
  } else {
    optimizer_ = std::make_unique<MultiTensorAdam>(
        groups, torch::optim::AdamOptions(phase.lr).weight_decay(config_.weight_decay));
  }
  set_lr(phase.lr);
}

double Trainer::lr_at(const Phase& phase, int64_t step, int64_t steps_per_epoch) const {
  const double base = phase.lr;
  const int64_t total = std::max<int64_t>(1, phase.epochs * steps_per_epoch);
  const double t = double(step) / double(total);
  const int64_t warmup = int64_t(std::lround(config_.warmup_epochs * steps_per_epoch));
  double lr = base;
  if (config_.schedule == "step") {
    lr = base * std::pow(config_.step_gamma, double((step / std::max<int64_t>(1, steps_per_epoch)) /
                                                    std::max<int64_t>(1, config_.step_epochs)));
  } else if (config_.schedule == "cosine") {
    if (step < warmup) return base * double(step + 1) / double(warmup) * lr_scale_;
    const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
    lr = base * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  } else if (config_.schedule == "onecycle") {
    // PyTorch's OneCycleLR defaults: 30% up from base/25 with cosine, then down to base/25e4.
    const double start = base / 25.0, end = start / 1e4, pct = 0.3;
    if (t < pct) {
      lr = start + (base - start) * 0.5 * (1.0 - std::cos(M_PI * t / pct));
    } else {
      lr = end + (base - end) * 0.5 * (1.0 + std::cos(M_PI * (t - pct) / (1.0 - pct)));
    }
  }
  if (config_.schedule != "cosine" && step < warmup) lr = lr * double(step + 1) / double(warmup);
  return lr * lr_scale_;
}

void Trainer::set_lr(double lr) {
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g)
    groups[g].options().set_lr(lr * (g < group_lr_scales_.size() ? group_lr_scales_[g] : 1.0));
}

torch::Tensor Trainer::loss_of(const torch::Tensor& logits, const torch::Tensor& targets) const {
  // Soft-target cross-entropy with per-class weights, normalised like PyTorch's weighted
  // mean: sum_i sum_k t_ik w_k (-log p_ik) / sum_i sum_k t_ik w_k.
  auto log_probs = torch::log_softmax(logits, 1);
  auto weighted = targets * class_weights_.unsqueeze(0);
  return -(weighted * log_probs).sum() / weighted.sum().clamp_min(1e-12);
}

void Trainer::build_cache() {
  if (cache_ready_) return;
  torch::NoGradGuard no_grad;
  model_->eval();
  const models::FoldedBatchNorms folded(*model_->base);  // the frozen base, while it runs
  // Pooled float32 features, the base run in the training's precision as on the uncached
  // path (forward_batch).
  const auto features_of = [&](const torch::Tensor& images) {
    AutocastScope autocast(precision_, device_);
    auto input = images.to(device_, /*non_blocking=*/true);
    if (config_.channels_last) input = input.contiguous(torch::MemoryFormat::ChannelsLast);
    return model_->features(input).to(torch::kFloat32);
  };
  auto run = [&](const data::Dataset& dataset, torch::Tensor& x, torch::Tensor& y) {
    data::LoaderOptions options = train_loader_->options();
    options.shuffle = false;
    options.train = false;
    if (distributed()) {
      // Rank r computes images r, r + W, ...; the rows are gathered on every rank.
      options.rank = 0;
      options.world = 1;
      data::Dataset share = dataset;
      share.samples.clear();
      std::vector<int64_t> labels;
      for (const auto& sample : dataset.samples) labels.push_back(sample.label);
      for (auto i : dist::rank_share(0, int64_t(labels.size()), group_->rank(), group_->size()))
        share.samples.push_back(dataset.samples[size_t(i)]);
      data::Loader loader(share, data_.store, options);
      std::vector<torch::Tensor> xs{torch::zeros({0, model_->num_features()}, device_)};
      loader.start_epoch(0);
      while (auto batch = loader.next()) xs.push_back(features_of(batch->images));
      x = group_->gather_strided_rows(torch::cat(xs), int64_t(labels.size()));
      y = torch::tensor(labels, torch::kInt64).to(device_);
      return;
    }
    data::Loader loader(dataset, data_.store, options);
    std::vector<torch::Tensor> xs, ys;
    loader.start_epoch(0);
    while (auto batch = loader.next()) {
      xs.push_back(features_of(batch->images));
      ys.push_back(batch->labels.to(device_, /*non_blocking=*/true));
      stop_if_requested();
    }
    x = torch::cat(xs);
    y = torch::cat(ys);
  };
  run(data_.train, cache_train_x_, cache_train_y_);
  if (has_validation()) run(data_.val, cache_val_x_, cache_val_y_);
  cache_ready_ = true;
}

std::pair<torch::Tensor, torch::Tensor> Trainer::forward_batch(const torch::Tensor& inputs,
                                                               const torch::Tensor& labels,
                                                               bool are_features, bool frozen,
                                                               std::mt19937_64& mix_rng) {
  const int64_t k = model_->num_classes();
  auto targets = torch::one_hot(labels, k).to(torch::kFloat32);
  if (config_.label_smoothing > 0)
    targets = targets * (1.0 - config_.label_smoothing) + config_.label_smoothing / double(k);
  torch::Tensor images = inputs;
  if (!are_features) {
    data::mix_batch(images, targets, data_.augment, mix_rng);
    if (config_.channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  torch::Tensor logits;
  {
    AutocastScope autocast(precision_, device_);
    if (are_features) {
      logits = model_->forward_head(images);
    } else if (frozen) {
      torch::Tensor pooled;
      {
        torch::NoGradGuard no_grad;
        pooled = model_->features(images);
      }
      logits = model_->forward_head(pooled);
    } else {
      logits = model_->forward(images);
    }
  }
  return {targets, logits.to(torch::kFloat32)};  // the loss in full precision
}

std::pair<torch::Tensor, torch::Tensor> Trainer::local_step(const torch::Tensor& inputs,
                                                            const torch::Tensor& labels,
                                                            bool are_features, bool frozen,
                                                            std::mt19937_64& mix_rng, double lr) {
  auto [targets, logits] = forward_batch(inputs, labels, are_features, frozen, mix_rng);
  auto loss = loss_of(logits, targets);
  set_gradients_to_none(*optimizer_);
  scaler_.scaled(loss).backward();
  const auto parameters = trainable_parameters(model_);
  const bool finite = scaler_.unscale(parameters);
  if (config_.clip_grad_norm > 0 && finite)
    torch::nn::utils::clip_grad_norm_(parameters, config_.clip_grad_norm);
  set_lr(lr);
  if (finite) optimizer_->step();  // fp16 overflow: skip the step, the scale halves
  scaler_.update(finite);
  return {loss.detach(), logits.detach()};
}

double Trainer::distributed_step(const Phase& phase, int64_t step, int64_t steps_per_epoch,
                                 const torch::Tensor& inputs, const torch::Tensor& labels,
                                 bool are_features, bool frozen, std::mt19937_64& mix_rng,
                                 double& loss_sum, int64_t& correct, int64_t& seen) {
  const int64_t n = labels.size(0);
  set_gradients_to_none(*optimizer_);
  const auto parameters = trainable_parameters(model_);
  // This rank's [weighted loss sum, weight sum, images, correct]; the loss is the sum, not
  // the mean, so that the reduced gradient divided by the global weight sum is the
  // gradient of the single-process mean (loss_of) over the whole batch.
  auto stats = torch::zeros({4}, torch::kFloat64);
  if (n > 0) {
    auto [targets, logits] = forward_batch(inputs, labels, are_features, frozen, mix_rng);
    auto weighted = targets * class_weights_.unsqueeze(0);
    auto sum = -(weighted * torch::log_softmax(logits, 1)).sum();
    scaler_.scaled(sum).backward();
    stats = torch::tensor({sum.item<double>(), weighted.sum().item<double>(), double(n),
                           double(logits.argmax(1).eq(labels).sum().item<int64_t>())},
                          torch::kFloat64);
  }
  std::vector<torch::Tensor> reduced;
  for (auto& p : parameters) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    reduced.push_back(p.grad());
  }
  reduced.push_back(stats);
  group_->allreduce_sum(reduced);
  const double weight = std::max(stats[1].item<double>(), 1e-12);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : parameters) p.mutable_grad().div_(weight);
  }
  const bool finite = scaler_.unscale(parameters);
  if (config_.clip_grad_norm > 0 && finite)
    torch::nn::utils::clip_grad_norm_(parameters, config_.clip_grad_norm);
  const double lr = lr_at(phase, step, steps_per_epoch);
  set_lr(lr);
  if (finite) optimizer_->step();
  scaler_.update(finite);
  loss_sum += stats[0].item<double>() / weight * stats[2].item<double>();
  correct += int64_t(std::llround(stats[3].item<double>()));
  seen += int64_t(std::llround(stats[2].item<double>()));
  return lr;
}

EvalResult Trainer::combine_validation(const EvalResult& local) {
  const double n = double(local.count);
  auto sums = torch::tensor({n > 0 ? local.loss * n : 0.0, local.top1 * n, local.top5 * n, n},
                            torch::kFloat64);
  group_->allreduce_sum({sums});
  EvalResult global;
  global.count = int64_t(std::llround(sums[3].item<double>()));
  const double count = std::max(1.0, sums[3].item<double>());
  global.loss = sums[0].item<double>() / count;
  global.top1 = sums[1].item<double>() / count;
  global.top5 = sums[2].item<double>() / count;
  return global;
}

EpochMetrics Trainer::train_epoch(const Phase& phase, int64_t epoch) {
  const auto start = Clock::now();
  const bool cached = use_cache(phase);
  const bool frozen = base_is_frozen(model_);
  const int64_t epoch_in_phase = epoch - phase.first_epoch;
  std::mt19937_64 mix_rng(data::mix_seed(config_.seed, uint64_t(epoch), 0x313C));
  if (distributed()) {
    // Dropout masks per (seed, epoch, rank): the ranks draw different masks, and a resumed
    // run repeats the epochs of an uninterrupted one.
    torch::manual_seed(data::mix_seed(config_.seed, uint64_t(epoch), 0xD157 + group_->rank()));
  }

  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  double lr = 0;
  auto step = [&](const torch::Tensor& inputs, const torch::Tensor& labels, bool are_features,
                  int64_t step_index, int64_t steps_per_epoch) {
    if (distributed()) {
      lr = distributed_step(phase, epoch_in_phase * steps_per_epoch + step_index, steps_per_epoch,
                            inputs, labels, are_features, frozen, mix_rng, loss_sum, correct, seen);
      maybe_kill_for_test(++steps_this_process_);
      return;
    }
    lr = lr_at(phase, epoch_in_phase * steps_per_epoch + step_index, steps_per_epoch);
    auto [loss, logits] = local_step(inputs, labels, are_features, frozen, mix_rng, lr);
    const int64_t n = labels.size(0);
    loss_sum += loss.item<double>() * double(n);
    correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
    seen += n;
    maybe_kill_for_test(++steps_this_process_);
  };

  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  EvalResult val;
  val.loss = val.top1 = val.top5 = kNone;  // stays so without validation images
  const bool bn_trains =
      config_.train_bn && (phase.index == 2 || config_.strategy == Strategy::trainable);
  set_training_mode(model_, base_trains(phase), bn_trains);
  if (cached) {
    build_cache();
    set_training_mode(model_, false, false);
    const int64_t n = cache_train_x_.size(0);
    auto index = cached_rows_in_order(n, config_.seed, uint64_t(epoch), device_);
    const int64_t steps = (n + config_.batch_size - 1) / config_.batch_size;
    for (int64_t s = 0; s < steps; ++s) {
      auto rows = index.slice(0, s * config_.batch_size, std::min(n, (s + 1) * config_.batch_size));
      if (distributed()) rows = rows.slice(0, group_->rank(), rows.size(0), group_->size());
      step(cache_train_x_.index_select(0, rows), cache_train_y_.index_select(0, rows), true, s,
           steps);
      stop_if_requested();
    }
    torch::NoGradGuard no_grad;
    model_->eval();
    if (has_validation() && distributed()) {
      const int64_t rows = cache_val_x_.size(0), r = group_->rank(), w = group_->size();
      val = combine_validation(
          metrics_from_logits(model_->forward_head(cache_val_x_.slice(0, r, rows, w)),
                              cache_val_y_.slice(0, r, rows, w)));
    } else if (has_validation()) {
      val = metrics_from_logits(model_->forward_head(cache_val_x_), cache_val_y_);
    }
  } else {
    // The frozen part of the base runs with its BatchNorms folded into its convolutions;
    // they get their own weights back before anything is saved.
    const models::FoldedBatchNorms folded(*model_->base);
    // BatchNorm cannot train on one image (PyTorch refuses: "Expected more than 1 value per
    // channel"): a last batch that would give some rank a single image is left out of the
    // epoch. The global batch sizes decide, so every rank takes the same decision.
    const int64_t world = distributed() ? group_->size() : 1;
    const int64_t last_batch = int64_t(data_.train.samples.size()) % config_.batch_size;
    const bool skip_last = batchnorm_trains() && last_batch >= 1 && last_batch < 2 * world;
    const int64_t steps = int64_t(train_loader_->num_batches()) - (skip_last ? 1 : 0);
    ProgressBar bar(show_progress && writer(), fmt::format("epoch {}", epoch + 1), size_t(steps));
    train_loader_->start_epoch(epoch);
    int64_t s = 0;
    while (s < steps) {
      auto batch = train_loader_->next();
      if (!batch) break;
      step(batch->images.to(device_, /*non_blocking=*/true),
           batch->labels.to(device_, /*non_blocking=*/true), false, s++, steps);
      stop_if_requested();
      bar.update(size_t(s), seen, loss_sum / double(seen), double(correct) / double(seen));
    }
    if (distributed()) {
      // BatchNorm statistics of batches that trained differ per rank: rank 0's are kept.
      if (base_trains(phase) || bn_trains) {
        std::vector<torch::Tensor> buffers;
        for (auto& b : model_->buffers()) buffers.push_back(b);
        group_->broadcast(buffers);
      }
      if (has_validation())
        val = combine_validation(evaluate(model_, *val_share_loader_, device_, precision_));
    } else if (has_validation()) {
      val = evaluate(model_, *val_loader_, device_, precision_);
    }
  }
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.phase = phase.index;
  m.lr = lr;
  m.train_loss = seen ? loss_sum / double(seen) : 0.0;
  m.train_acc = seen ? double(correct) / double(seen) : 0.0;
  m.val_loss = val.loss;
  m.val_acc = val.top1;
  m.val_top5 = val.top5;
  m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  m.images_per_second = m.seconds > 0 ? double(seen) / m.seconds : 0.0;
  m.cached = cached;
  return m;
}

double Trainer::monitored(const EpochMetrics& m) const {
  return config_.monitor == "val_acc" ? -m.val_acc : m.val_loss;  // lower is better
}

void Trainer::save_checkpoint(const fs::path& path, int64_t epochs_done) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model_->save(model_archive);
  archive.write("model", model_archive);
  if (optimizer_) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer_->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("rng", cpu_generator_state());
  nlohmann::json state = {{"epochs_done", epochs_done},
                          {"lr_scale", lr_scale_},
                          {"plateau_best", plateau_best_},
                          {"plateau_wait", plateau_wait_},
                          {"best_value", best_value_},
                          {"best_epoch", best_epoch_},
                          {"wait", wait_},
                          {"events", events_},
                          {"loss_scaler", scaler_.state()},
                          {"config", config_.to_json()}};
  nlohmann::json history = nlohmann::json::array();
  for (const auto& m : history_) history.push_back(m.to_json());
  state["history"] = history;
  archive.write("state", c10::IValue(state.dump()));
  fs::create_directories(path.parent_path());
  const auto tmp = temporary_sibling(path);
  try {
    archive.save_to(tmp.string());
    commit_file(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

namespace {
std::unique_ptr<torch::serialize::InputArchive> pending_optimizer;  // read by fit()
}

bool Trainer::load_checkpoint(const fs::path& path) {
  std::error_code ec;
  std::string bytes;  // distributed: rank 0's file, sent to every rank
  if (distributed()) {
    if (writer() && fs::exists(path, ec)) bytes = read_file(path);
    bytes = group_->broadcast_bytes(bytes);
    if (bytes.empty()) return false;
  } else if (!fs::exists(path, ec)) {
    return false;
  }
  auto archive = std::make_unique<torch::serialize::InputArchive>();
  try {
    if (distributed()) {
      archive->load_from(bytes.data(), bytes.size());
    } else {
      archive->load_from(path.string());
    }
    torch::serialize::InputArchive model_archive;
    archive->read("model", model_archive);
    model_->load(model_archive);
    c10::IValue state_value;
    archive->read("state", state_value);
    const auto state = nlohmann::json::parse(state_value.toStringRef());
    epochs_done_ = state.at("epochs_done");
    lr_scale_ = state.at("lr_scale");
    plateau_best_ = state.at("plateau_best");
    plateau_wait_ = state.at("plateau_wait");
    best_value_ = state.at("best_value");
    best_epoch_ = state.at("best_epoch");
    wait_ = state.at("wait");
    events_ = state.at("events");
    events_announced_ = events_.size();
    scaler_.load_state(state.value("loss_scaler", nlohmann::json()));
    history_.clear();
    for (const auto& m : state.at("history")) history_.push_back(EpochMetrics::from_json(m));
    torch::Tensor rng;
    archive->read("rng", rng);
    set_cpu_generator_state(rng);
  } catch (const c10::Error& e) {
    // vtl writes checkpoints whole (temporary file and rename): the damage came afterwards.
    fail(
        "{}: cannot read the checkpoint, it is damaged or cut short ({}); the run cannot go on "
        "from it: start it again with another --out",
        path.string(), e.what_without_backtrace());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed checkpoint state: {}", path.string(), e.what());
  }
  pending_optimizer = std::move(archive);
  return true;
}

void Trainer::write_metrics() const {
  std::string csv =
      "epoch,phase,lr,train_loss,train_acc,val_loss,val_acc,val_top5,seconds,images_per_second,"
      "cached\n";
  std::string jsonl;
  // A metric not measured (no validation images) is an empty field.
  const auto field = [](double v) {
    return std::isnan(v) ? std::string() : fmt::format("{:.6f}", v);
  };
  for (const auto& m : history_) {
    csv += fmt::format("{},{},{:.6g},{:.6f},{:.6f},{},{},{},{:.3f},{:.1f},{}\n", m.epoch, m.phase,
                       m.lr, m.train_loss, m.train_acc, field(m.val_loss), field(m.val_acc),
                       field(m.val_top5), m.seconds, m.images_per_second, m.cached ? 1 : 0);
    jsonl += m.to_json().dump() + "\n";
  }
  write_file_atomically(run_dir_ / "metrics.csv", csv);
  write_file_atomically(run_dir_ / "metrics.jsonl", jsonl);
}

void Trainer::fit(bool resume) {
  const torch::AutoGradMode gradients(true);  // also inside a caller's NoGradGuard
  const bool keep_files = !run_dir_.empty() && writer();
  if (keep_files) {
    fs::create_directories(run_dir_);
    // What a killed run left half-written is never read; it is dropped here.
    remove_stale_temporaries(run_dir_);
    remove_stale_temporaries(run_dir_ / "checkpoint");
  }
  const fs::path last = run_dir_ / "checkpoint" / "last.pt";
  const fs::path best = run_dir_ / "checkpoint" / "best.pt";
  // Without a run folder the best weights are kept in memory, and only when they may be
  // restored.
  const bool keep_best =
      keep_files || (config_.early_stopping_patience > 0 && config_.restore_best);
  std::stringstream best_in_memory;
  bool resumed = resume && !run_dir_.empty() && load_checkpoint(last);
  if (resumed) {
    events_.push_back(
        {{"epoch", epochs_done_},
         {"event", fmt::format("resumed after epoch {} (interrupted)", epochs_done_)}});
    announce_events();
  }
  for (const auto& phase : phases()) {
    const int64_t end = phase.first_epoch + phase.epochs;
    if (epochs_done_ >= end) continue;
    const bool mid_phase = resumed && epochs_done_ > phase.first_epoch;
    apply_freezing(phase, /*log_event=*/!mid_phase);
    announce_events();
    make_optimizer(phase);
    if (mid_phase && pending_optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (pending_optimizer->try_read("optimizer", optimizer_archive))
        optimizer_->load(optimizer_archive);
    } else {
      epochs_done_ = phase.first_epoch;
      lr_scale_ = 1.0;
      plateau_wait_ = wait_ = 0;
      plateau_best_ = 1e300;
      best_epoch_ = -1;
    }
    pending_optimizer.reset();
    for (int64_t epoch = epochs_done_; epoch < end; ++epoch) {
      EpochMetrics m = train_epoch(phase, epoch);
      const double value = monitored(m);
      // Without validation nothing tells the epochs apart: the last weights are the result.
      if (has_validation() && (best_epoch_ < 0 || value < best_value_)) {
        best_value_ = value;
        best_epoch_ = epoch;
        wait_ = 0;
        if (keep_best) {
          torch::serialize::OutputArchive archive;
          model_->save(archive);
          if (keep_files) {
            const auto tmp = temporary_sibling(best);
            fs::create_directories(best.parent_path());
            archive.save_to(tmp.string());
            commit_file(tmp, best);
          } else {
            best_in_memory.str("");
            best_in_memory.clear();
            archive.save_to(best_in_memory);
          }
        }
      } else {
        ++wait_;
      }
      // ReduceLROnPlateau on the validation loss (PyTorch's rule: reduce after more than
      // `patience` epochs without a new minimum).
      if (config_.plateau_patience > 0) {
        if (m.val_loss < plateau_best_) {
          plateau_best_ = m.val_loss;
          plateau_wait_ = 0;
        } else if (++plateau_wait_ > config_.plateau_patience) {
          lr_scale_ *= config_.plateau_factor;
          plateau_wait_ = 0;
          events_.push_back({{"epoch", epoch + 1},
                             {"event", fmt::format("learning rate x{}", config_.plateau_factor)}});
        }
      }
      history_.push_back(m);
      epochs_done_ = epoch + 1;
      bool stop = config_.early_stopping_patience > 0 && wait_ >= config_.early_stopping_patience;
      if (stop) {
        events_.push_back({{"epoch", epoch + 1},
                           {"event", fmt::format("early stop (no better {} for {} epochs)",
                                                 config_.monitor, wait_)}});
        epochs_done_ = end;
      }
      if (epochs_done_ == end && config_.early_stopping_patience > 0 && config_.restore_best &&
          best_epoch_ >= 0 && best_epoch_ != epoch) {
        torch::serialize::InputArchive archive;
        if (keep_files) {
          archive.load_from(best.string());
        } else {
          best_in_memory.seekg(0);
          archive.load_from(best_in_memory);
        }
        model_->load(archive);
        events_.push_back(
            {{"epoch", epoch + 1},
             {"event", fmt::format("restored the weights of epoch {}", best_epoch_ + 1)}});
      }
      if (keep_files) {
        save_checkpoint(last, epochs_done_);
        write_metrics();
      }
      if (on_epoch) on_epoch(m);
      announce_events();
      if (stop) break;
    }
  }
  if (keep_files) write_metrics();
}

bool Trainer::batchnorm_trains() {
  for (const auto& module : model_->modules(/*include_self=*/false))
    if (module->is_training() &&
        (module->as<models::BatchNorm2d>() || module->as<torch::nn::BatchNorm1d>()))
      return true;
  return false;
}

LrRangeResult Trainer::find_lr(const LrRangeOptions& options, int phase_index) {
  const torch::AutoGradMode gradients(true);
  options.validate();
  VTL_CHECK(!distributed(), "the learning-rate range test runs in one process, not on {} ranks",
            distributed() ? group_->size() : 1);
  const auto all = phases();
  VTL_CHECK(phase_index >= 1 && size_t(phase_index) <= all.size(),
            "the {} strategy has no phase {} to test", to_string(config_.strategy), phase_index);
  const Phase& phase = all[size_t(phase_index) - 1];

  // What the test changes and gives back: weights and buffers, the generator (dropout,
  // augmentation), the loss scale; fit() builds its own optimizer and freezing.
  std::stringstream saved;
  {
    torch::serialize::OutputArchive archive;
    model_->save(archive);
    archive.save_to(saved);
  }
  const torch::Tensor generator_state = cpu_generator_state();

  apply_freezing(phase, /*log_event=*/false);
  make_optimizer(phase);
  const bool cached = use_cache(phase);
  const bool frozen = base_is_frozen(model_);
  const bool bn_trains =
      config_.train_bn && (phase.index == 2 || config_.strategy == Strategy::trainable);
  if (cached) build_cache();
  set_training_mode(model_, !cached && base_trains(phase), !cached && bn_trains);
  std::mt19937_64 mix_rng(data::mix_seed(config_.seed, 0, 0x1F1D));

  LrRangeResult result;
  result.phase = phase.index;
  {
    std::optional<models::FoldedBatchNorms> folded;  // as train_epoch runs the frozen part
    if (!cached) folded.emplace(*model_->base);
    const bool skip_single = !cached && batchnorm_trains();
    // Batches in training order, pass after pass, until the test ends.
    int64_t pass = 0, row = 0;
    torch::Tensor order;
    bool loader_started = false;
    auto next_batch = [&]() -> std::pair<torch::Tensor, torch::Tensor> {
      if (cached) {
        const int64_t n = cache_train_x_.size(0);
        if (!order.defined() || row >= n) {
          order = cached_rows_in_order(n, config_.seed, uint64_t(pass++), device_);
          row = 0;
        }
        auto rows = order.slice(0, row, std::min(n, row + config_.batch_size));
        row += config_.batch_size;
        return {cache_train_x_.index_select(0, rows), cache_train_y_.index_select(0, rows)};
      }
      for (;;) {
        if (!loader_started) {
          train_loader_->start_epoch(pass++);
          loader_started = true;
        }
        auto batch = train_loader_->next();
        if (!batch) {
          loader_started = false;
          continue;
        }
        if (skip_single && batch->labels.size(0) < 2) continue;
        return {batch->images.to(device_, /*non_blocking=*/true),
                batch->labels.to(device_, /*non_blocking=*/true)};
      }
    };
    ProgressBar bar(show_progress, "lr range test", size_t(options.steps));
    double average = 0, best = std::numeric_limits<double>::infinity();
    int64_t images = 0;
    for (int64_t step = 0; step < options.steps; ++step) {
      const double lr = options.start_lr * std::pow(options.end_lr / options.start_lr,
                                                    double(step) / double(options.steps - 1));
      auto [inputs, labels] = next_batch();
      auto [loss_tensor, logits] = local_step(inputs, labels, cached, frozen, mix_rng, lr);
      const double loss = loss_tensor.item<double>();
      average = options.smoothing * average + (1 - options.smoothing) * loss;
      const double smoothed = average / (1 - std::pow(options.smoothing, double(step + 1)));
      result.lrs.push_back(lr);
      result.losses.push_back(loss);
      result.smoothed.push_back(smoothed);
      images += labels.size(0);
      bar.update(
          size_t(step + 1), images, smoothed,
          double(logits.argmax(1).eq(labels).sum().item<int64_t>()) / double(labels.size(0)));
      best = std::min(best, smoothed);
      if (!std::isfinite(smoothed) || smoothed > options.divergence * best) {
        result.diverged = step + 1 < options.steps;
        break;
      }
      stop_if_requested();
    }
  }

  optimizer_.reset();
  scaler_ = LossScaler(precision_ == Precision::fp16);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(saved);
    model_->load(archive);
  }
  set_cpu_generator_state(generator_state);
  model_->eval();
  suggest_learning_rates(result, options.steps);
  return result;
}

void Trainer::stop_if_requested() const {
  if (!stop_requested()) return;
  std::string saved = "nothing was saved";
  if (epochs_done_ > 0 && !run_dir_.empty())
    saved = fmt::format("{} holds the {} finished epoch{}",
                        (run_dir_ / "checkpoint" / "last.pt").string(), epochs_done_,
                        epochs_done_ == 1 ? "" : "s");
  throw Interrupted(
      fmt::format("stopped in epoch {} before it finished; {}", epochs_done_ + 1, saved),
      stop_signal());
}

EvalResult Trainer::evaluate_validation() {
  VTL_CHECK(has_validation(), "there are no validation images to evaluate on");
  return evaluate(model_, *val_loader_, device_, precision_);
}

}  // namespace vtl::train
