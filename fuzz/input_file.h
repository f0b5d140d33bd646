#pragma once
// Where fuzz targets put their input when the parser reads a file: a scratch folder of
// this process in /dev/shm (memory-backed; the system temporary folder when /dev/shm is
// missing), removed when the process exits normally.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace vtl::fuzz {

/// This process's scratch folder, created on first use.
const std::filesystem::path& scratch_dir();

/// Writes `size` bytes to `relative` inside scratch_dir() (creating its folders),
/// replacing what was there, and returns the full path.
std::filesystem::path write_input(const std::filesystem::path& relative, const uint8_t* data,
                                  size_t size);
/// Same for text.
std::filesystem::path write_input(const std::filesystem::path& relative, const std::string& text);

}  // namespace vtl::fuzz
