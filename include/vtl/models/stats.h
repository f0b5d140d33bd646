#pragma once
// Cost figures of an architecture, measured on the real module: parameter count, weight
// size, multiply-accumulates of one forward pass, and latency.

#include <cstdint>
#include <string>

#include "vtl/models/model.h"

namespace vtl::models {

/// Static cost of one architecture at one input size (batch 1, 1000 classes unless the
/// model was built otherwise).
struct ModelStats {
  std::string name;        ///< registry name
  int64_t input_size = 0;  ///< square input side the MACs were counted at, pixels
  int64_t parameters = 0;  ///< trainable + frozen parameters (BatchNorm buffers excluded)
  /// Bytes of the state dict (parameters + buffers, fp32) / 2^20: ~ the size of the
  /// weights file, as torchvision's "file size (MB)" column (which is MiB too).
  double size_mib = 0;
  /// Multiply-accumulates of every convolution and linear layer of one forward pass of
  /// one image, / 1e9. torchvision's model table labels this quantity "GFLOPS".
  double gmacs = 0;
};

/// Builds `name` (random weights), runs one forward of a [1,3,S,S] image under NoGrad with
/// S = input_size (0: the model's default input size), counting convolution and linear
/// MACs as they run. Unknown names throw vtl::Error.
ModelStats model_stats(const std::string& name, int64_t input_size = 0);

/// As above for an existing model (its current head); its train/eval mode is kept.
ModelStats model_stats(Model& model, int64_t input_size = 0);

/// Counts convolution and linear multiply-accumulates of everything the calling thread
/// runs while the counter is alive (each layer once, however LibTorch dispatches it
/// internally). Not reentrant: one counter per thread at a time.
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;

  /// MACs counted so far.
  int64_t macs() const;

 private:
  uint64_t handle_;
};

/// Latency of `model` on the device its parameters are on (CUDA passes are timed to
/// the end of their kernels), in eval mode under NoGrad: `warmup` untimed passes, then
/// `repeats` timed passes of a [batch,3,S,S] batch; returns the median milliseconds per
/// image (median pass time / batch). input_size 0: the model's default.
double measure_latency_ms(Model& model, int64_t batch = 1, int64_t input_size = 0, int repeats = 10,
                          int warmup = 2);

}  // namespace vtl::models
