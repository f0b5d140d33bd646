// vtl demo: transfer learning end to end on real images, no network, no user data.

#include <CLI/CLI.hpp>

#include "commands.h"
#include "vtl/train/demo.h"

namespace vtl::cli {
namespace {

void add_demo_command(CLI::App& app) {
  auto options = std::make_shared<train::DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Transfer learning on Debian's openclipart images: accuracy from scratch, with a frozen "
      "pretrained base, and fine-tuned (about a minute on 2 cores)");
  cmd->add_option("--work", options->work,
                  "folder for its datasets and runs (default: $VTL_HOME/demo)");
  cmd->add_option("--model", options->model, "architecture")->capture_default_str();
  cmd->add_option("--clipart", options->clipart, "openclipart-png folder")->capture_default_str();
  cmd->add_option("--img-size,--image-size", options->img_size, "input side in pixels")
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "seed")->capture_default_str();
  cmd->add_option("--workers", options->workers, "image loading threads")->capture_default_str();
  cmd->add_flag_callback(
      "--no-imagenet", [options] { options->use_imagenet = false; },
      "pretrain the backbone here even when ImageNet weights are in $VTL_HOME");
  cmd->callback([options] { train::run_demo(*options); });
}

}  // namespace

VTL_COMMAND(39, add_demo_command);

}  // namespace vtl::cli
