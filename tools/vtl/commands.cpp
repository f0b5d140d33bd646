#include "commands.h"

#include <algorithm>

namespace vtl::cli {
namespace {

std::vector<std::pair<int, CommandInstaller>>& installers() {
  static std::vector<std::pair<int, CommandInstaller>> list;
  return list;
}

}  // namespace

bool register_command(int order, CommandInstaller installer) {
  installers().emplace_back(order, std::move(installer));
  return true;
}

void install_commands(CLI::App& app) {
  auto list = installers();
  std::stable_sort(list.begin(), list.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, install] : list) install(app);
}

}  // namespace vtl::cli
