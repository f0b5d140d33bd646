#include "vtl/train/multi_tensor_optim.h"

#include <cmath>
#include <map>
#include <sstream>
#include <type_traits>

#include "vtl/core/error.h"

namespace vtl::train {
namespace {

/// The key LibTorch's optimizers file a parameter's state under: the TensorImpl address,
/// as a string in LibTorch 1.x (c10::guts::to_string) and as the pointer in 2.x.
template <typename StateMap>
typename StateMap::key_type state_key(const StateMap&, const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

/// Parameters of a group that have a gradient, with their gradients.
struct WithGradients {
  std::vector<torch::Tensor> parameters, gradients;
};

WithGradients with_gradients(torch::optim::OptimizerParamGroup& group, const char* optimizer) {
  WithGradients out;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    VTL_CHECK(!p.grad().is_sparse(), "{} does not support sparse gradients", optimizer);
    out.parameters.push_back(p);
    out.gradients.push_back(p.grad());
  }
  return out;
}

torch::Tensor run_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

/// One Adam / AdamW update of the parameters in `params` (all with the same step count),
/// as LibTorch 1.13: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2 (amsgrad: v_max =
/// max(v_max, v) is used); p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
void adam_update(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& grads,
                 std::vector<torch::Tensor>& exp_avgs, std::vector<torch::Tensor>& exp_avg_sqs,
                 std::vector<torch::Tensor>& max_exp_avg_sqs, int64_t step, double lr, double beta1,
                 double beta2, double eps, bool amsgrad) {
  const double bias_correction1 = 1 - std::pow(beta1, step);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  at::_foreach_mul_(exp_avgs, beta1);
  at::_foreach_add_(exp_avgs, grads, 1 - beta1);
  at::_foreach_mul_(exp_avg_sqs, beta2);
  at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
  if (amsgrad)
    for (size_t i = 0; i < max_exp_avg_sqs.size(); ++i)
      torch::max_out(max_exp_avg_sqs[i], exp_avg_sqs[i], max_exp_avg_sqs[i]);
  auto denominators = at::_foreach_sqrt(amsgrad ? max_exp_avg_sqs : exp_avg_sqs);
  at::_foreach_div_(denominators, std::sqrt(bias_correction2));
  at::_foreach_add_(denominators, eps);
  at::_foreach_addcdiv_(params, exp_avgs, denominators, -lr / bias_correction1);
}

/// Adam and AdamW share everything but how weight decay enters; State is AdamParamState or
/// AdamWParamState, Options AdamOptions or AdamWOptions.
template <typename State, typename Options, typename Optimizer>
void adam_family_step(Optimizer& optimizer, bool decoupled_weight_decay, const char* name) {
  auto& state = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    auto [params, grads] = with_gradients(group, name);
    if (params.empty()) continue;
    const auto& options = static_cast<const Options&>(group.options());
    const double weight_decay = options.weight_decay();
    if (weight_decay != 0) {
      if (decoupled_weight_decay)
        at::_foreach_mul_(params, 1 - options.lr() * weight_decay);
      else
        grads = at::_foreach_add(grads, params, weight_decay);
    }
    // Parameters grouped by step count (equal unless parameters joined the group later).
    struct Batch {
      std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
    };
    std::map<int64_t, Batch> by_step;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      auto& slot = state[state_key(state, p)];
      if (!slot) {
        auto fresh = std::make_unique<State>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad())
          fresh->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& s = static_cast<State&>(*slot);
      s.step(s.step() + 1);
      auto& batch = by_step[s.step()];
      batch.params.push_back(p);
      batch.grads.push_back(grads[i]);
      batch.exp_avgs.push_back(s.exp_avg());
      batch.exp_avg_sqs.push_back(s.exp_avg_sq());
      if (options.amsgrad()) batch.max_exp_avg_sqs.push_back(s.max_exp_avg_sq());
    }
    for (auto& [step, batch] : by_step)
      adam_update(batch.params, batch.grads, batch.exp_avgs, batch.exp_avg_sqs,
                  batch.max_exp_avg_sqs, step, options.lr(), std::get<0>(options.betas()),
                  std::get<1>(options.betas()), options.eps(), options.amsgrad());
  }
}

}  // namespace

void set_gradients_to_none(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad().reset();
}

torch::Tensor MultiTensorSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  auto loss = run_closure(closure);
  auto& state = this->state();
  for (auto& group : param_groups()) {
    auto [params, grads] = with_gradients(group, "SGD");
    if (params.empty()) continue;
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    // d_p = g + weight_decay * p
    if (options.weight_decay() != 0)
      grads = at::_foreach_add(grads, params, options.weight_decay());
    if (options.momentum() != 0) {
      // buf = g on the first step, then buf = momentum * buf + (1 - dampening) * d_p;
      // d_p = nesterov ? d_p + momentum * buf : buf
      std::vector<torch::Tensor> buffers, updated_buffers, updated_grads;
      for (size_t i = 0; i < params.size(); ++i) {
        auto& slot = state[state_key(state, params[i])];
        if (!slot) {
          auto fresh = std::make_unique<torch::optim::SGDParamState>();
          fresh->momentum_buffer(torch::clone(grads[i]).detach());
          buffers.push_back(fresh->momentum_buffer());
          slot = std::move(fresh);
        } else {
          buffers.push_back(static_cast<torch::optim::SGDParamState&>(*slot).momentum_buffer());
          updated_buffers.push_back(buffers.back());
          updated_grads.push_back(grads[i]);
        }
      }
      if (!updated_buffers.empty()) {
        at::_foreach_mul_(updated_buffers, options.momentum());
        at::_foreach_add_(updated_buffers, updated_grads, 1 - options.dampening());
      }
      if (options.nesterov())
        grads = at::_foreach_add(grads, buffers, options.momentum());
      else
        grads = buffers;
    }
    at::_foreach_add_(params, grads, -options.lr());
  }
  return loss;
}

torch::Tensor MultiTensorAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  auto loss = run_closure(closure);
  adam_family_step<torch::optim::AdamParamState, torch::optim::AdamOptions>(
      *this, /*decoupled_weight_decay=*/false, "Adam");
  return loss;
}

torch::Tensor MultiTensorAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  auto loss = run_closure(closure);
  adam_family_step<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(
      *this, /*decoupled_weight_decay=*/true, "AdamW");
  return loss;
}

}  // namespace vtl::train
