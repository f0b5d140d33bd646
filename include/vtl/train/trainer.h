#pragma once
// The training loop of the three strategies (Keras' transfer-learning guide, fastai's
// fine_tune):
//   features  the whole base frozen and in inference mode; only the new head trains.
//   finetune  phase 1 = features; phase 2 unfreezes the last N layers (or from a named
//             block), rebuilds the optimizer at finetune_lr and trains finetune_epochs more.
//   full      everything trains from the first step.
//   trainable one phase that trains the parameters the caller left trainable (freeze.h),
//             as Keras' fit after setting `trainable`; the base stays in inference mode
//             (BatchNorm on running statistics) unless train_bn. What train::fit runs.
// Only trainable parameters reach the optimizer; a fully frozen base runs under
// NoGradGuard; with a frozen base and no per-image augmentation the pooled features are
// computed once and the head trains from that cache.
//
// Run folder (`run_dir`): checkpoint/last.pt after every epoch and checkpoint/best.pt
// (both written atomically), metrics.csv and metrics.jsonl (one row per epoch, rewritten
// atomically), so `resume` after a SIGKILL continues from the last finished epoch with the
// same weights, optimizer state, schedule, early-stopping state and RNG.
//
// Data parallel (a dist::ProcessGroup of more than one rank, docs/distributed.md): every
// rank holds the whole model; batch_size stays the global batch (images per optimizer
// step), of which each rank takes the positions rank, rank + W, ... (LoaderOptions::rank);
// the summed gradients are divided by the global sum of loss weights, so a step equals the
// single-process step on the same batch up to float summation order. Training and
// validation metrics are combined over the ranks; only rank 0 writes into run_dir.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "vtl/data/loader.h"
#include "vtl/dist/process_group.h"
#include "vtl/models/transfer_model.h"
#include "vtl/train/lr_finder.h"
#include "vtl/train/metrics.h"
#include "vtl/train/mixed_precision.h"

namespace vtl::train {

enum class Strategy { features, finetune, full, trainable };
/// "features", "finetune", "full" or "trainable"; throws vtl::Error otherwise.
Strategy parse_strategy(const std::string& text);
std::string to_string(Strategy strategy);

struct TrainConfig {
  Strategy strategy = Strategy::features;
  int64_t epochs = 5;           ///< phase 1 (features, finetune) or the only phase (full)
  int64_t finetune_epochs = 5;  ///< phase 2 of finetune
  int64_t batch_size = 32;
  double lr = 1e-3;
  double finetune_lr = 1e-5;
  /// finetune phase 2: the first unfrozen layer learns at finetune_lr / this, the rates
  /// rising geometrically layer by layer to finetune_lr for the head (fastai's
  /// `slice(lr / ratio, lr)`; freeze.h layerwise_parameter_groups); 1: one rate.
  double finetune_lr_ratio = 1.0;
  int64_t unfreeze = 10;           ///< finetune: last N weighted layers (freeze.h)
  std::string unfreeze_from;       ///< finetune: unfreeze from this block instead
  bool train_bn = false;           ///< finetune: unfrozen BatchNorm layers train
  std::string optimizer = "adam";  ///< adam, adamw, sgd
  double weight_decay = 0.0;
  double momentum = 0.9;  ///< sgd
  bool nesterov = false;  ///< sgd
  double label_smoothing = 0.0;
  bool balanced_class_weights = false;  ///< weight class k by N / (K * n_k)
  std::string schedule = "constant";    ///< constant, step, cosine, onecycle
  double warmup_epochs = 0.0;           ///< linear warmup (cosine, constant)
  int64_t step_epochs = 10;             ///< step: multiply by step_gamma every this many
  double step_gamma = 0.1;
  double clip_grad_norm = 0.0;          ///< 0: off
  int64_t early_stopping_patience = 0;  ///< epochs without improvement; 0: off
  std::string monitor = "val_loss";     ///< val_loss or val_acc
  bool restore_best = true;  ///< with early stopping: end each phase with the best epoch's weights
  int64_t plateau_patience = 0;  ///< ReduceLROnPlateau; 0: off
  double plateau_factor = 0.1;
  std::string cache_features = "auto";  ///< auto, on, off
  uint64_t seed = 0;
  std::string device = "cpu";  ///< cpu or cuda
  std::string amp = "off";     ///< mixed precision: off, bf16 (CPU or CUDA), fp16 (CUDA)
  bool channels_last = false;  ///< NHWC weights and inputs (faster convolutions on GPUs)

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& json);
};

/// One row of metrics.csv / metrics.jsonl.
struct EpochMetrics {
  int64_t epoch = 0;  ///< 1-based over both phases
  int phase = 1;
  double lr = 0;  ///< at the epoch's last step
  double train_loss = 0, train_acc = 0;
  double val_loss = 0, val_acc = 0, val_top5 = 0;  ///< NaN when there is no validation set
  double seconds = 0, images_per_second = 0;
  bool cached = false;  ///< the head trained from cached features
  nlohmann::json to_json() const;
  static EpochMetrics from_json(const nlohmann::json& json);
};

/// What the trainer reads: both splits, the store that holds their images, transforms.
struct TrainData {
  data::Dataset train, val;
  std::shared_ptr<data::ImageStore> store;
  Preprocessing preprocessing;
  data::AugmentOptions augment;  ///< AugmentOptions::none() for --no-augment
  int workers = 2;

  int64_t num_classes() const { return train.num_classes(); }
};

/// Throws vtl::Error for what the Trainer would refuse, at once: bad rates, sizes or
/// names, and a finetune's --unfreeze-from block that `model`'s base lacks (which would
/// otherwise surface only when phase 2 starts), and, when `has_validation` is false,
/// early stopping or ReduceLROnPlateau (they watch the validation metrics). Changes nothing.
void check_config(const TrainConfig& config, models::TransferModel& model,
                  bool has_validation = true);

/// Trains one TransferModel (a shared handle: the caller's model is the one trained).
/// Not thread-safe; one fit at a time per model.
class Trainer {
 public:
  /// `run_dir` empty: nothing is written (no checkpoints, metrics files or resume).
  /// `group`: data-parallel ranks (every rank constructs its Trainer with the same model,
  /// config and data; the model starts from rank 0's weights); null: this process alone.
  Trainer(models::TransferModel model, TrainConfig config, TrainData data,
          std::filesystem::path run_dir = {}, std::shared_ptr<dist::ProcessGroup> group = {});

  /// Trains to the end; with `resume`, first restores run_dir/checkpoint/last.pt (a
  /// missing checkpoint starts from the beginning). While a StopSignals lives, a signal
  /// ends it between two steps with vtl::Interrupted; last.pt then holds the finished
  /// epochs, and `resume` repeats the interrupted one.
  void fit(bool resume = false);

  /// The learning-rate range test (lr_finder.h) of phase `phase` (1, or 2 of finetune):
  /// that phase's freezing, optimizer, augmentation and feature cache, as fit() would use
  /// them, with the learning rate growing geometrically instead of the schedule. The
  /// model's weights and buffers and the CPU random generator are put back afterwards;
  /// nothing is written. One process only (throws vtl::Error with a process group of
  /// several ranks).
  LrRangeResult find_lr(const LrRangeOptions& options, int phase = 1);

  const std::vector<EpochMetrics>& history() const { return history_; }
  /// Phase boundaries and early stops, for the report ("phase 2 from epoch 6").
  const nlohmann::json& events() const { return events_; }
  /// Whether the data has validation images. Without them every epoch's val_* metrics are
  /// NaN, nothing is "best", and early stopping and ReduceLROnPlateau are refused.
  bool has_validation() const { return !data_.val.samples.empty(); }
  /// Validation metrics of the final model (after fit), over the whole validation set on
  /// this process alone. Throws vtl::Error without validation images.
  EvalResult evaluate_validation();
  models::TransferModel& model() { return model_; }
  const TrainConfig& config() const { return config_; }

  /// Called after each epoch (logging); `progress` lines go to stderr when it is a tty.
  std::function<void(const EpochMetrics&)> on_epoch;
  /// Called with each event of events() when it happens (a phase's start before that
  /// phase's first epoch; stops and learning-rate changes after their epoch's on_epoch).
  /// Events restored by a resume are not repeated.
  std::function<void(const nlohmann::json& event)> on_event;
  bool show_progress = true;

 private:
  struct Phase {
    int index;
    int64_t first_epoch, epochs;  ///< global 0-based first epoch, count
    double lr;
  };
  std::vector<Phase> phases() const;
  /// Throws vtl::Interrupted (naming what was saved) once a StopSignals was signalled;
  /// called between steps, where the last checkpoint is whole.
  void stop_if_requested() const;
  /// Passes the events not yet announced to on_event.
  void announce_events();
  void apply_freezing(const Phase& phase, bool log_event);
  bool base_trains(const Phase& phase) const;
  /// True when some BatchNorm layer of the model is in training mode (it cannot take a
  /// batch of one image).
  bool batchnorm_trains();
  bool use_cache(const Phase& phase);
  void make_optimizer(const Phase& phase);
  double lr_at(const Phase& phase, int64_t step, int64_t steps_per_epoch) const;
  void set_lr(double lr);
  torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& targets) const;
  EpochMetrics train_epoch(const Phase& phase, int64_t epoch);
  void build_cache();
  void save_checkpoint(const std::filesystem::path& path, int64_t epochs_done);
  bool load_checkpoint(const std::filesystem::path& path);
  void write_metrics() const;
  double monitored(const EpochMetrics& m) const;
  bool distributed() const { return group_ && group_->size() > 1; }
  bool writer() const { return !group_ || group_->is_writer(); }
  /// One batch forward: soft targets [N, K] (one-hot, label smoothing, then batch mixing
  /// of images and targets unless `are_features`) and float32 logits [N, K] of the images,
  /// or of pooled features when `are_features`.
  std::pair<torch::Tensor, torch::Tensor> forward_batch(const torch::Tensor& inputs,
                                                        const torch::Tensor& labels,
                                                        bool are_features, bool frozen,
                                                        std::mt19937_64& mix_rng);
  /// One optimizer step of this process alone at learning rate `lr`: the batch's mean loss
  /// (a scalar tensor) and its float32 logits [N, K].
  std::pair<torch::Tensor, torch::Tensor> local_step(const torch::Tensor& inputs,
                                                     const torch::Tensor& labels, bool are_features,
                                                     bool frozen, std::mt19937_64& mix_rng,
                                                     double lr);
  /// One data-parallel optimizer step (step index `step` of the phase) on this rank's share
  /// (possibly empty) of a batch; adds the whole batch's loss sum, hits and images to the
  /// accumulators; returns the learning rate used.
  double distributed_step(const Phase& phase, int64_t step, int64_t steps_per_epoch,
                          const torch::Tensor& inputs, const torch::Tensor& labels,
                          bool are_features, bool frozen, std::mt19937_64& mix_rng,
                          double& loss_sum, int64_t& correct, int64_t& seen);
  /// Loss, top-1, top-5 and count of the ranks' validation shares put together.
  EvalResult combine_validation(const EvalResult& local);

  models::TransferModel model_;
  TrainConfig config_;
  TrainData data_;
  std::filesystem::path run_dir_;
  std::shared_ptr<dist::ProcessGroup> group_;
  torch::Device device_;
  Precision precision_ = Precision::f32;
  LossScaler scaler_;
  std::unique_ptr<data::Loader> train_loader_, val_loader_;
  std::unique_ptr<data::Loader> val_share_loader_;  ///< this rank's validation images
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<double> group_lr_scales_;  ///< per optimizer parameter group (make_optimizer)
  torch::Tensor class_weights_;
  int64_t steps_this_process_ = 0;

  // Feature cache (pooled features of a frozen base, computed once).
  bool cache_ready_ = false;
  torch::Tensor cache_train_x_, cache_train_y_, cache_val_x_, cache_val_y_;

  // Resumable state.
  int64_t epochs_done_ = 0;
  double lr_scale_ = 1.0;  ///< ReduceLROnPlateau factor in effect
  double plateau_best_ = 0;
  int64_t plateau_wait_ = 0;
  double best_value_ = 0;
  int64_t best_epoch_ = -1;
  int64_t wait_ = 0;
  bool phase_stopped_ = false;
  std::vector<EpochMetrics> history_;
  nlohmann::json events_ = nlohmann::json::array();
  size_t events_announced_ = 0;  ///< events_ already passed to on_event
};

}  // namespace vtl::train
