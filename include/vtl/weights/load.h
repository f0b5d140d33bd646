#pragma once
// Copies a StateDict into a module's parameters and buffers (torch's
// Module.load_state_dict, with timm's classifier handling).

#include <string>
#include <vector>

#include <torch/torch.h>

#include "vtl/weights/state_dict.h"

namespace vtl::weights {

struct LoadOptions {
  /// Every module key must be in the file with the same shape and every file key must be
  /// used; otherwise one vtl::Error names the problems (first 10 of each kind + counts).
  TORCH_ARG(bool, strict) = true;
  /// Keys equal to this prefix or below it ("fc" covers "fc.weight", "fc.bias") are left
  /// out on both sides: the module keeps its fresh initialisation there. Used for a
  /// classifier with another number of classes. Empty: nothing skipped.
  TORCH_ARG(std::string, skip_prefix) = "";
  /// File keys the module does not have are ignored (reported, not an error), e.g. the
  /// classifier of a model built without a top.
  TORCH_ARG(bool, allow_unexpected) = false;
  /// Used in error messages: the file the state dict came from.
  TORCH_ARG(std::string, source) = "";
};

struct LoadReport {
  std::vector<std::string> loaded;      ///< module keys copied from the file
  std::vector<std::string> skipped;     ///< module keys under skip_prefix (freshly initialised)
  std::vector<std::string> missing;     ///< module keys absent from the file (non-strict only)
  std::vector<std::string> unexpected;  ///< file keys the module lacks (ignored)
  std::vector<std::string> mismatched;  ///< "key: file [..] vs model [..]" (non-strict only)
  std::vector<std::string> notes;       ///< other facts worth telling (checkpoint unwrapped, ...)
  /// One human-readable line: "loaded 320 tensors; classifier 'fc' (2 tensors) left out
  /// and freshly initialised".
  std::string summary() const;
};

/// Copies matching tensors under NoGradGuard, converting to each parameter's dtype (and
/// device). Throws vtl::Error (strict mode) naming every missing, unexpected and
/// shape-mismatched key; a non-strict load copies what matches and reports the rest.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state_dict,
                           const LoadOptions& options = {});

/// True when `key` is `prefix` or lies below it ("fc" matches "fc.weight", not "fc2.w").
bool key_has_prefix(const std::string& key, const std::string& prefix);

}  // namespace vtl::weights
