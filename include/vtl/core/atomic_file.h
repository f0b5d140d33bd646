#pragma once
// Crash-safe file writing: content goes to `<target>.tmp-<pid>` in the same folder and is
// renamed over the target only after it was fully written and flushed, so a reader (or a
// resumed job) sees either the previous version or the new one, never a partial file.
// A target that is a symbolic link is written through: the file it names is replaced and
// the link stays. A target that is a FIFO, a terminal or another device (/dev/stdout) is
// written to directly, as a stream, since it cannot be replaced; so is "-" and a descriptor
// the process already has (/dev/stdout), whatever file the shell made it.

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string_view>

namespace vtl {

/// Calls `write(stream)` on a temporary file beside `target` (or the file it links to),
/// fsyncs and renames it into place. On any exception the temporary file is removed and the
/// target is untouched. A stream target (is_stream_target) is written to directly.
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(std::ostream&)>& write);

/// Convenience: atomically replaces `target` with `content`.
void write_file_atomically(const std::filesystem::path& target, std::string_view content);

/// The file that writing `target` replaces: `target` with its symbolic links followed
/// (the links may dangle: the file they name is then created).
std::filesystem::path output_destination(const std::filesystem::path& target);

/// Whether `target` is written to directly, never through a temporary file: "-" (standard
/// output), a descriptor this process already has (/dev/stdout, /dev/stderr, /dev/fd/N,
/// /proc/self/fd/N: whatever the shell redirected it to, a file included), or an existing
/// path that is neither a regular file nor a folder (a FIFO, a device, a socket).
bool is_stream_target(const std::filesystem::path& target);

/// Whether `target` is this process's standard output: "-", /dev/stdout, /dev/fd/1 or
/// /proc/self/fd/1 (what else the command prints then goes to stderr).
bool names_standard_output(const std::filesystem::path& target);

/// Opens a stream target for writing. A descriptor the process has is written through a
/// copy of it, so that a shell's `>>` appends and what was written before stays; anything
/// else is opened. Throws vtl::Error naming `target` when it cannot be written.
std::unique_ptr<std::ostream> open_stream_target(const std::filesystem::path& target);

/// A temporary path beside output_destination(target), unique to this process and call.
std::filesystem::path temporary_sibling(const std::filesystem::path& target);

/// fsyncs `path`, renames it to output_destination(`target`) (same file system) and fsyncs
/// the folder.
void commit_file(const std::filesystem::path& path, const std::filesystem::path& target);

/// Removes the temporary files (`*.tmp-<pid>-<n>`, `*.new-<pid>`) in `dir` whose writing
/// process no longer runs: what a killed job leaves. Files of running processes are kept.
/// Returns how many were removed.
int remove_stale_temporaries(const std::filesystem::path& dir);

/// Reads a whole file; throws vtl::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace vtl
