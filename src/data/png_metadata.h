#pragma once
// PNG chunks that describe colour spaces or carry text. OpenCV decodes pixels without
// applying any of them, but libpng checks them and prints its complaints ("iCCP: known
// incorrect sRGB profile", "sRGB: invalid rendering intent") straight to stderr, with no
// file name. vtl removes them before decoding; the decoded pixels are the same.

#include <optional>
#include <string>

namespace vtl::data {

/// Chunks removed: iCCP, sRGB, cHRM, gAMA (colour space) and tEXt, zTXt, iTXt (text).
bool is_png_metadata_chunk(const char type[4]);

/// `bytes` (a PNG file) without its metadata chunks; nullopt when it has none (nothing is
/// copied then). Chunks are walked by their declared lengths: a chunk that runs past the
/// end, and everything after it, is kept as it is for the decoder to refuse.
std::optional<std::string> png_without_metadata_chunks(const std::string& bytes);

}  // namespace vtl::data
