// The multi-tensor optimizers against LibTorch's: bitwise the same parameters after every
// step on the CPU, for each option that changes the update, and checkpoints that move
// between the two.

#include "vtl/train/multi_tensor_optim.h"

#include <gtest/gtest.h>

namespace vtl::train {
namespace {

/// Three parameter tensors of different shapes plus one that never gets a gradient.
std::vector<torch::Tensor> make_parameters() {
  torch::manual_seed(3);
  std::vector<torch::Tensor> out = {torch::randn({4, 3, 3, 3}), torch::randn({4}),
                                    torch::randn({5, 4}), torch::randn({2})};
  for (auto& p : out) p.set_requires_grad(true);
  return out;
}

/// Gives every parameter but the last a gradient that depends on the step and the value.
void fill_gradients(std::vector<torch::Tensor>& params, int step) {
  for (size_t i = 0; i + 1 < params.size(); ++i) {
    torch::NoGradGuard no_grad;
    params[i].mutable_grad() = torch::sin(params[i] * (step + 1)) + 0.1 * double(i);
  }
}

template <typename Reference, typename MultiTensor, typename Options>
void expect_same_trajectory(const Options& options, const std::string& label) {
  SCOPED_TRACE(label);
  auto reference_params = make_parameters();
  auto multi_params = make_parameters();
  Reference reference(reference_params, options);
  MultiTensor multi(multi_params, options);
  for (int step = 0; step < 5; ++step) {
    fill_gradients(reference_params, step);
    fill_gradients(multi_params, step);
    reference.step();
    multi.step();
    for (size_t i = 0; i < reference_params.size(); ++i)
      ASSERT_TRUE(torch::equal(multi_params[i], reference_params[i]))
          << "step " << step << ", parameter " << i << ": max difference "
          << (multi_params[i] - reference_params[i]).abs().max().item<double>();
  }
  // The same state entries (none for the parameter without a gradient, none without momentum).
  EXPECT_EQ(multi.state().size(), reference.state().size());
}

TEST(MultiTensorOptim, SgdFollowsLibTorchForEveryOption) {
  using torch::optim::SGDOptions;
  expect_same_trajectory<torch::optim::SGD, MultiTensorSGD>(SGDOptions(0.1), "plain");
  expect_same_trajectory<torch::optim::SGD, MultiTensorSGD>(SGDOptions(0.1).momentum(0.9),
                                                            "momentum");
  expect_same_trajectory<torch::optim::SGD, MultiTensorSGD>(
      SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01), "nesterov, decay");
  expect_same_trajectory<torch::optim::SGD, MultiTensorSGD>(
      SGDOptions(0.05).momentum(0.5).dampening(0.3), "dampening");
}

TEST(MultiTensorOptim, AdamAndAdamWFollowLibTorch) {
  using torch::optim::AdamOptions;
  using torch::optim::AdamWOptions;
  expect_same_trajectory<torch::optim::Adam, MultiTensorAdam>(AdamOptions(1e-2), "adam");
  expect_same_trajectory<torch::optim::Adam, MultiTensorAdam>(
      AdamOptions(1e-2).weight_decay(0.1).amsgrad(true), "adam, decay, amsgrad");
  expect_same_trajectory<torch::optim::AdamW, MultiTensorAdamW>(AdamWOptions(1e-2), "adamw");
  expect_same_trajectory<torch::optim::AdamW, MultiTensorAdamW>(
      AdamWOptions(1e-2).weight_decay(0.2).amsgrad(true), "adamw, amsgrad");
}

TEST(MultiTensorOptim, CheckpointsMoveBetweenLibTorchAndMultiTensor) {
  // Two steps with the multi-tensor Adam, saved, loaded into LibTorch's Adam for a third
  // step: the same as three multi-tensor steps.
  auto moved_params = make_parameters();
  auto straight_params = make_parameters();
  torch::optim::AdamOptions options(1e-2);
  MultiTensorAdam first(moved_params, options);
  MultiTensorAdam straight(straight_params, options);
  for (int step = 0; step < 2; ++step) {
    fill_gradients(moved_params, step);
    fill_gradients(straight_params, step);
    first.step();
    straight.step();
  }
  torch::serialize::OutputArchive saved;
  first.save(saved);
  std::stringstream bytes;
  saved.save_to(bytes);
  torch::serialize::InputArchive loaded;
  loaded.load_from(bytes);
  torch::optim::Adam second(moved_params, options);
  second.load(loaded);
  fill_gradients(moved_params, 2);
  fill_gradients(straight_params, 2);
  second.step();
  straight.step();
  for (size_t i = 0; i < moved_params.size(); ++i)
    EXPECT_TRUE(torch::equal(moved_params[i], straight_params[i])) << i;
}

}  // namespace
}  // namespace vtl::train
