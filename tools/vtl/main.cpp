// vtl: transfer learning with ImageNet-pretrained CNNs.

#include <cstdlib>
#include <iostream>

#include <unistd.h>

#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/stop_signals.h"

namespace {

/// OpenMP reads OMP_WAIT_POLICY once, when the library loads (before main). Its default
/// busy-waiting makes the compute threads take the cores that vtl's image-loading workers
/// (and other processes) need, which on a 2-core machine slows training several times.
/// Unless the user chose a policy, restart once with passive waiting.
void restart_with_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_passive_openmp(argv);
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
  } catch (const vtl::Interrupted& e) {
    std::cerr << "vtl: " << e.what() << "\n";
    return 128 + e.signal();
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
