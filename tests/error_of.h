#pragma once
// The message of the vtl::Error a call throws, for tests that check what a user is told.

#include <functional>
#include <string>

#include "vtl/core/error.h"

namespace vtl::testing {

/// What `action` throws as vtl::Error; empty when it throws nothing.
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const vtl::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace vtl::testing
