// vtl: transfer learning with ImageNet-pretrained CNNs.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <unistd.h>

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/cuda.h>
#include <torch/version.h>
#if __has_include(<opencv2/core/version.hpp>)
#include <opencv2/core/version.hpp>
#endif
#if __has_include(<faiss/Index.h>)
#include <faiss/Index.h>
#endif
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/stop_signals.h"
#include "vtl/core/text.h"

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

/// LibTorch's own log lines (c10d's socket warnings and errors, printed before the exception
/// whose text vtl's message quotes) are left out unless TORCH_CPP_LOG_LEVEL (INFO, WARNING,
/// ERROR) asks for them.
void quiet_library_logs() {
  if (std::getenv("TORCH_CPP_LOG_LEVEL") != nullptr) return;
#ifdef C10_USE_GLOG
  FLAGS_minloglevel = 3;  // google::GLOG_FATAL
#else
  FLAGS_caffe2_log_level = 3;
#endif
}

/// "; did you mean '--img-size'?" for the first unexpected argument of a parse that left
/// some over: the closest option of the command that was parsed, or the closest
/// subcommand when that command has subcommands; "" when nothing is close.
std::string hint_for_unexpected_arguments(const CLI::App& app) {
  const CLI::App* command = &app;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  for (const auto& argument : app.remaining(true)) {
    std::vector<std::string> candidates;
    if (argument.rfind("-", 0) == 0) {
      for (const CLI::Option* option : command->get_options()) {
        // One name per option (its closest): aliases are not offered as alternatives.
        std::vector<std::string> names;
        for (const auto& name : option->get_lnames()) names.push_back("--" + name);
        for (const auto& name : option->get_snames()) names.push_back("-" + name);
        if (names.empty()) continue;
        candidates.push_back(*std::min_element(
            names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
              return vtl::edit_distance(argument, a) < vtl::edit_distance(argument, b);
            }));
      }
    } else {
      for (const CLI::App* sub : command->get_subcommands({}))
        candidates.push_back(sub->get_name());
    }
    if (std::find(candidates.begin(), candidates.end(), argument) != candidates.end() &&
        command != &app)  // an option of the command, given before the command's name
      return fmt::format("vtl: '{}' is an option of `{}`: give it after `{}`", argument,
                         command->get_name(), command->get_name());
    const std::string hint = vtl::did_you_mean(argument, candidates);
    if (!hint.empty()) return fmt::format("vtl: '{}'{}", argument, hint);
  }
  return "";
}

/// `vtl --version`: vtl's version and the libraries it was built with, and the GPUs it sees.
std::string version_text() {
  std::string text = fmt::format("vtl {}\nLibTorch {}", VTL_VERSION, TORCH_VERSION);
  if (torch::cuda::is_available())
    text += fmt::format(" (CUDA, {} GPU(s) visible)", torch::cuda::device_count());
  else
    text += " (CPU; no CUDA device visible)";
#ifdef CV_VERSION
  text += fmt::format("\nOpenCV {}", CV_VERSION);
#endif
#ifdef FAISS_VERSION_MAJOR
  text += fmt::format("\nFAISS {}.{}.{}", FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR,
                      FAISS_VERSION_PATCH);
#endif
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_passive_openmp(argv);
  quiet_library_logs();
  CLI::App app{
      "vtl: transfer learning with ImageNet-pretrained CNNs (VGG, ResNet, "
      "EfficientNet, MobileNet)"};
  app.name("vtl");
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for tensor math (default: all cores)")
      ->check(CLI::Range(0, 4096));
  app.parse_complete_callback([&] { vtl::configure_threads(threads); });
  // Options of `vtl` itself (--threads) may come after the command too: `vtl train ...
  // --threads 1`. Subcommands inherit this when they are added.
  app.fallthrough();

  vtl::cli::install_commands(app);
  if (argc == 1) {  // no command: what there is to do
    std::cout << app.help();
    return 0;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, as getopt's and argparse's do.
    if (app.exit(e) == 0) return 0;
    const std::string hint = hint_for_unexpected_arguments(app);
    if (!hint.empty()) std::cerr << hint << "\n";
    return 2;
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
  // Output lost on the way (a full disk behind `> file`) is an error, not a success.
  errno = 0;
  std::cout.flush();
  std::fflush(stdout);
  if (!std::cout || std::ferror(stdout)) {
    std::cerr << "vtl: error: cannot write standard output"
              << (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()) << "\n";
    return 1;
  }
  return 0;
}
