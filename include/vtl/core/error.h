#pragma once
// vtl::Error: the one exception type the library throws for problems a user can fix
// (a missing file, a bad option, a weights file for another model). Its message is a
// complete sentence meant to be printed as-is by the CLI, with no stack trace.

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace vtl {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Throws vtl::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws vtl::Error with the formatted message unless `condition` holds.
#define VTL_CHECK(condition, ...) \
  do {                            \
    if (!(condition)) {           \
      ::vtl::fail(__VA_ARGS__);   \
    }                             \
  } while (false)

}  // namespace vtl
