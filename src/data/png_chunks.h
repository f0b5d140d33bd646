#pragma once
// What vtl reads of a PNG's chunks before libpng sees the file. libpng prints its
// complaints straight to stderr, with no file name: warnings about colour-space and text
// chunks ("iCCP: known incorrect sRGB profile", "sRGB: invalid rendering intent"), which
// OpenCV never applies, and errors about files cut short or damaged ("PNG input buffer is
// incomplete", "IDAT: CRC error"). vtl removes the former and refuses the latter itself,
// naming the file; the decoded pixels are the same.

#include <optional>
#include <string>

namespace vtl::data {

/// Chunks removed: iCCP, sRGB, cHRM, gAMA (colour space) and tEXt, zTXt, iTXt (text).
bool is_png_metadata_chunk(const char type[4]);

/// `bytes` (a PNG file) without its metadata chunks and without ancillary chunks that fail
/// their CRC check (libpng drops those too, with a warning); nullopt when it has none
/// (nothing is copied then). Chunks are walked by their declared lengths: a chunk that runs past
/// the end, and everything after it, is kept as it is for the decoder to refuse.
std::optional<std::string> png_without_metadata_chunks(const std::string& bytes);

/// Why libpng would fail on `bytes` (a PNG file), found from its chunk structure: the file
/// ends inside a chunk or before IEND ("truncated PNG: ..."), or a critical chunk (IHDR,
/// PLTE, IDAT, IEND) fails its CRC check ("corrupt PNG: ..."). Empty when the structure is
/// whole; bytes after IEND are ignored, as libpng ignores them.
std::string png_chunk_problem(const std::string& bytes);

}  // namespace vtl::data
