#include "vtl/core/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext/stdio_filebuf.h>

#include "vtl/core/error.h"
#include "vtl/core/fault_injection.h"

namespace vtl {

std::filesystem::path output_destination(const std::filesystem::path& target) {
  std::filesystem::path destination = target;
  std::error_code ec;
  // A bounded walk, as the kernel's: a loop of links ends at a link, which rename replaces.
  for (int hops = 0; hops < 40 && std::filesystem::is_symlink(destination, ec); ++hops) {
    const std::filesystem::path link = std::filesystem::read_symlink(destination, ec);
    if (ec) break;
    destination = link.is_absolute() ? link : destination.parent_path() / link;
  }
  return destination;
}

namespace {

/// The descriptor `target` names lexically ("-", /dev/stdout, /dev/fd/3, ...), or -1.
int inherited_descriptor(const std::filesystem::path& target) {
  const std::string path = target.string();
  if (path == "-" || path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (const char* folder : {"/dev/fd/", "/proc/self/fd/"}) {
    const size_t length = std::strlen(folder);
    if (path.size() <= length || path.compare(0, length, folder) != 0) continue;
    const std::string number = path.substr(length);
    if (number.find_first_not_of("0123456789") != std::string::npos || number.size() > 6) return -1;
    return std::stoi(number);
  }
  return -1;
}

/// An ostream over its own copy of a descriptor (closed with the stream).
class DescriptorStream : public std::ostream {
 public:
  explicit DescriptorStream(int descriptor)
      : std::ostream(nullptr), buffer_(descriptor, std::ios::out) {
    rdbuf(&buffer_);
  }
  /// False when the descriptor cannot be written (it was opened for reading only).
  bool is_open() const { return buffer_.is_open(); }

 private:
  __gnu_cxx::stdio_filebuf<char> buffer_;
};

}  // namespace

std::unique_ptr<std::ostream> open_stream_target(const std::filesystem::path& target) {
  const int inherited = inherited_descriptor(target);
  if (inherited >= 0) {
    std::cout.flush();
    const int copy = ::fcntl(inherited, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) fail("cannot write {}: {}", target.string(), std::strerror(errno));
    const int access = ::fcntl(copy, F_GETFL) & O_ACCMODE;
    if (access != O_WRONLY && access != O_RDWR) {
      ::close(copy);
      fail("cannot write {}: the descriptor is open for reading only", target.string());
    }
    auto stream = std::make_unique<DescriptorStream>(copy);
    if (!stream->is_open()) {
      const int error = errno;
      ::close(copy);
      fail("cannot write {}: {}", target.string(), std::strerror(error));
    }
    return stream;
  }
  auto out = std::make_unique<std::ofstream>(target, std::ios::binary);
  if (!*out) fail("cannot write {}: {}", target.string(), std::strerror(errno));
  return out;
}

bool names_standard_output(const std::filesystem::path& target) {
  return inherited_descriptor(target) == STDOUT_FILENO;
}

bool is_stream_target(const std::filesystem::path& target) {
  if (inherited_descriptor(target) >= 0) return true;
  std::error_code ec;
  const auto status = std::filesystem::status(target, ec);
  return !ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status) &&
         !std::filesystem::is_directory(status);
}

std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path destination = output_destination(target);
  auto name = destination.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter++);
  return destination.parent_path() / name;
}

namespace {

/// What a write cut short leaves: the first half of the file (fault injection only).
void cut_to_half(const char* path) {
  struct stat info {};
  if (::stat(path, &info) == 0) ::truncate(path, info.st_size / 2);
}

void fsync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// The pid in a temporary name "<target>.tmp-<pid>-<n>" or "<target>.new-<pid>"; 0 if none.
pid_t writer_pid(const std::string& name) {
  for (const char* marker : {".tmp-", ".new-"}) {
    const auto at = name.rfind(marker);
    if (at == std::string::npos) continue;
    const char* digits = name.c_str() + at + 5;
    char* end = nullptr;
    const long pid = std::strtol(digits, &end, 10);
    if (end != digits && (*end == '\0' || *end == '-') && pid > 0) return static_cast<pid_t>(pid);
  }
  return 0;
}

}  // namespace

void commit_file(const std::filesystem::path& path, const std::filesystem::path& link_or_target) {
  const std::filesystem::path target = output_destination(link_or_target);
  fsync_path(path, O_RDONLY);
  fault_point("commit:" + target.filename().string(), cut_to_half, path.c_str());
  std::error_code ec;
  std::filesystem::rename(path, target, ec);
  if (ec) {
    std::filesystem::remove(path, ec);
    fail("cannot move {} into place: {}", target.string(), ec.message());
  }
  // The rename itself reaches the disk with the folder's entry.
  fsync_path(target.parent_path().empty() ? "." : target.parent_path(), O_RDONLY | O_DIRECTORY);
}

int remove_stale_temporaries(const std::filesystem::path& dir) {
  std::error_code ec;
  int removed = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const pid_t pid = writer_pid(name);
    if (pid == 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer may still be running
    std::error_code remove_error;
    if (std::filesystem::remove_all(it->path(), remove_error) > 0) ++removed;
  }
  return removed;
}

void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(std::ostream&)>& write) {
  if (is_stream_target(target)) {
    const auto out = open_stream_target(target);
    write(*out);
    out->flush();
    if (!*out) fail("cannot write {}: {}", target.string(), std::strerror(errno));
    return;
  }
  const std::filesystem::path destination = output_destination(target);
  if (!destination.parent_path().empty())
    std::filesystem::create_directories(destination.parent_path());
  const auto tmp = temporary_sibling(destination);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
      write(out);
      out.flush();
      if (!out) fail("cannot write {}: {} (disk full?)", target.string(), std::strerror(errno));
    }
    commit_file(tmp, destination);
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
