#include "vtl/core/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "vtl/core/error.h"

namespace vtl {

std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  auto name = target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter++);
  return target.parent_path() / name;
}

void commit_file(const std::filesystem::path& path, const std::filesystem::path& target) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  std::filesystem::rename(path, target, ec);
  if (ec) {
    std::filesystem::remove(path, ec);
    fail("cannot move {} into place: {}", target.string(), ec.message());
  }
}

void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(std::ostream&)>& write) {
  if (!target.parent_path().empty()) std::filesystem::create_directories(target.parent_path());
  const auto tmp = temporary_sibling(target);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
      write(out);
      out.flush();
      if (!out) fail("cannot write {}: {} (disk full?)", target.string(), std::strerror(errno));
    }
    commit_file(tmp, target);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void write_file_atomically(const std::filesystem::path& target, std::string_view content) {
  write_file_atomically(target,
                        [&](std::ostream& out) { out.write(content.data(), content.size()); });
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}: {}", path.string(), std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace vtl
