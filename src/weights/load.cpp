#include "vtl/weights/load.h"

#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vtl/core/error.h"

namespace vtl::weights {
namespace {

std::string shape(const torch::Tensor& t) {
  return fmt::format("[{}]", fmt::join(t.sizes(), ", "));
}

std::string first_names(const std::vector<std::string>& names, size_t limit = 10) {
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(limit, names.size()));
  std::string text = fmt::format("{}", fmt::join(shown, ", "));
  if (names.size() > limit) text += fmt::format(", ... ({} more)", names.size() - limit);
  return text;
}

}  // namespace

bool key_has_prefix(const std::string& key, const std::string& prefix) {
  if (prefix.empty() || key.compare(0, prefix.size(), prefix) != 0) return false;
  return key.size() == prefix.size() || key[prefix.size()] == '.';
}

std::string LoadReport::summary() const {
  std::string text = fmt::format("loaded {} tensors", loaded.size());
  if (!skipped.empty()) {
    text += fmt::format("; {} tensors ({}) left out and freshly initialised", skipped.size(),
                        first_names(skipped, 4));
  }
  if (!unexpected.empty()) {
    text += fmt::format("; {} file tensors not used ({})", unexpected.size(),
                        first_names(unexpected, 4));
  }
  if (!missing.empty())
    text += fmt::format("; {} missing ({})", missing.size(), first_names(missing, 4));
  if (!mismatched.empty()) {
    text +=
        fmt::format("; {} with other shapes ({})", mismatched.size(), first_names(mismatched, 4));
  }
  for (const auto& note : notes) text += "; " + note;
  return text;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state_dict,
                           const LoadOptions& options) {
  // Module keys in registration order (parameters, then buffers, as torch does).
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : module.named_parameters(true))
    targets.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) {
    if (item.value().defined()) targets.emplace_back(item.key(), item.value());
  }

  LoadReport report;
  std::set<std::string> module_keys;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [key, target] : targets) {
    module_keys.insert(key);
    if (key_has_prefix(key, options.skip_prefix())) {
      report.skipped.push_back(key);
      continue;
    }
    auto it = state_dict.find(key);
    if (it == state_dict.end()) {
      report.missing.push_back(key);
    } else if (it->second.sizes() != target.sizes()) {
      report.mismatched.push_back(
          fmt::format("{}: file {} vs model {}", key, shape(it->second), shape(target)));
    } else {
      copies.emplace_back(target, it->second);
      report.loaded.push_back(key);
    }
  }
  for (const auto& [key, tensor] : state_dict) {
    if (!module_keys.count(key) && !key_has_prefix(key, options.skip_prefix())) {
      report.unexpected.push_back(key);
    }
  }

  const bool bad_unexpected = !report.unexpected.empty() && !options.allow_unexpected();
  if (options.strict() &&
      (!report.missing.empty() || !report.mismatched.empty() || bad_unexpected)) {
    std::vector<std::string> parts;
    if (!report.missing.empty()) {
      parts.push_back(
          fmt::format("{} missing: {}", report.missing.size(), first_names(report.missing)));
    }
    if (bad_unexpected) {
      parts.push_back(fmt::format("{} unexpected: {}", report.unexpected.size(),
                                  first_names(report.unexpected)));
    }
    if (!report.mismatched.empty()) {
      parts.push_back(fmt::format("{} with another shape: {}", report.mismatched.size(),
                                  first_names(report.mismatched)));
    }
    fail("weights {}do not match the model ({} tensors in the file, {} in the model): {}",
         options.source().empty() ? "" : fmt::format("in {} ", options.source()), state_dict.size(),
         targets.size(), fmt::join(parts, "; "));
  }

  // A NaN or an infinity would make every output NaN without a word.
  for (size_t i = 0; i < copies.size(); ++i) {
    const auto& source = copies[i].second;
    if (source.is_floating_point() && !torch::isfinite(source).all().item<bool>())
      fail(
          "weights {}hold a NaN or an infinity in {}: the file is damaged or was saved from "
          "a diverged training",
          options.source().empty() ? "" : fmt::format("in {} ", options.source()),
          report.loaded[i]);
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source);
  return report;
}

}  // namespace vtl::weights
