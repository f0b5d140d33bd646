// vtl: transfer learning with ImageNet-pretrained CNNs.

#include <iostream>

#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{
      "vtl: transfer learning with ImageNet-pretrained CNNs (VGG, ResNet, "
      "EfficientNet, MobileNet)"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for tensor math (default: all cores)");
  app.parse_complete_callback([&] { vtl::configure_threads(threads); });

  vtl::cli::install_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const vtl::Error& e) {
    std::cerr << "vtl: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "vtl: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vtl: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
