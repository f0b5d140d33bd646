#include "vtl/core/fault_injection.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace vtl {
namespace {

struct KillRequest {
  std::string name;
  int occurrence = 1;
};

/// The point named by VTL_FAULT_KILL_AT, read once; empty name when unset.
const KillRequest& kill_request() {
  static const KillRequest request = [] {
    KillRequest r;
    const char* value = std::getenv("VTL_FAULT_KILL_AT");
    if (!value) return r;
    r.name = value;
    const auto hash = r.name.rfind('#');
    if (hash != std::string::npos) {
      r.occurrence = std::atoi(r.name.c_str() + hash + 1);
      r.name.resize(hash);
    }
    return r;
  }();
  return request;
}

}  // namespace

void fault_point(const std::string& name, void (*before_kill)(const char*), const char* argument) {
  const KillRequest& request = kill_request();
  if (request.name.empty() || request.name != name) return;
  static std::atomic<int> reached{0};
  if (++reached != request.occurrence) return;
  if (before_kill) before_kill(argument);
  std::raise(SIGKILL);
}

}  // namespace vtl
