// Crash-safe writes through the paths users give: symbolic links keep linking, and pipes
// or devices are written to, never replaced by a regular file.

#include "vtl/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <string>

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace {

namespace fs = std::filesystem;
using vtl::testing::TempDir;

std::string text_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(AtomicFile, ReplacesARegularFileAndLeavesNoTemporary) {
  TempDir dir("atomic_plain");
  const fs::path target = dir.path() / "out.csv";
  vtl::write_file_atomically(target, "old\n");
  vtl::write_file_atomically(target, "new\n");
  EXPECT_EQ(text_of(target), "new\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicFile, WritesThroughASymbolicLinkAndKeepsTheLink) {
  TempDir dir("atomic_link");
  fs::create_directories(dir.path() / "real" / "sub");
  fs::create_directories(dir.path() / "links");
  const fs::path real = dir.path() / "real" / "sub" / "table.csv";
  vtl::write_file_atomically(real, "old\n");
  const fs::path link = dir.path() / "links" / "table.csv";
  fs::create_symlink("../real/sub/table.csv", link);  // relative to the link's folder
  const fs::path link_to_link = dir.path() / "links" / "again.csv";
  fs::create_symlink("table.csv", link_to_link);

  vtl::write_file_atomically(link_to_link, "new\n");
  EXPECT_TRUE(fs::is_symlink(link_to_link));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(text_of(real), "new\n");
  // The temporary file was made beside the real file (same file system), and is gone.
  EXPECT_EQ(std::distance(fs::directory_iterator(real.parent_path()), fs::directory_iterator()), 1);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() / "links"), fs::directory_iterator()),
            2);
}

TEST(AtomicFile, ADanglingLinkGetsTheFileItNames) {
  TempDir dir("atomic_dangling");
  const fs::path link = dir.path() / "report.html";
  fs::create_symlink(dir.path() / "later" / "report.html", link);
  vtl::write_file_atomically(link, "<p>");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(text_of(dir.path() / "later" / "report.html"), "<p>");
}

TEST(AtomicFile, APipeIsWrittenToNotReplaced) {
  TempDir dir("atomic_fifo");
  const fs::path fifo = dir.path() / "rows";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(vtl::is_stream_target(fifo));
  auto reader = std::async(std::launch::async, [&] { return text_of(fifo); });
  vtl::write_file_atomically(fifo, "a,b\n1,2\n");
  EXPECT_EQ(reader.get(), "a,b\n1,2\n");
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(AtomicFile, DevicesAreStreamTargetsAndFilesAreNot) {
  TempDir dir("atomic_kinds");
  EXPECT_TRUE(vtl::is_stream_target("/dev/null"));
  vtl::write_file_atomically("/dev/null", "nothing\n");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_FALSE(vtl::is_stream_target(dir.path()));
  EXPECT_FALSE(vtl::is_stream_target(dir.path() / "missing.csv"));
  vtl::write_file_atomically(dir.path() / "file.csv", "x");
  EXPECT_FALSE(vtl::is_stream_target(dir.path() / "file.csv"));
}

// `--csv - >> log.txt`: standard output is a regular file the shell opened for appending.
// Writing to the process's descriptor keeps what the file held; replacing the file it
// names (what following /dev/stdout's links and renaming did) lost it.
TEST(AtomicFile, ADescriptorOfTheProcessIsWrittenToNotReplaced) {
  TempDir dir("atomic_descriptor");
  const fs::path log = dir.path() / "log.txt";
  std::ofstream(log) << "before\n";
  struct stat before {};
  ASSERT_EQ(::stat(log.c_str(), &before), 0);
  const int descriptor = ::open(log.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(descriptor, 0);
  const fs::path target = "/dev/fd/" + std::to_string(descriptor);
  EXPECT_TRUE(vtl::is_stream_target(target));
  vtl::write_file_atomically(target, "rows\n");
  vtl::write_file_atomically("/proc/self/fd/" + std::to_string(descriptor), "more\n");
  ::close(descriptor);
  EXPECT_EQ(text_of(log), "before\nrows\nmore\n");
  struct stat after {};
  ASSERT_EQ(::stat(log.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_TRUE(vtl::is_stream_target("-"));
  EXPECT_TRUE(vtl::is_stream_target("/dev/stdout"));
  EXPECT_FALSE(vtl::is_stream_target("/dev/fd/x"));
}
