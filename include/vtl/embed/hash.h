#pragma once
// SHA-256 digests as lowercase hex: content identity for catalogued images and a
// fingerprint of image lists (to tell whether a resumed job sees the same input).

#include <filesystem>
#include <string>
#include <string_view>

namespace vtl::embed {

std::string sha256_hex(std::string_view bytes);

/// Digest of a file's bytes; throws vtl::Error naming the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace vtl::embed
