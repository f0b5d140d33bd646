#pragma once
// What vtl reads of a PNG's chunks before libpng sees the file. libpng prints its
// complaints straight to stderr, with no file name: warnings about colour-space and text
// chunks ("iCCP: known incorrect sRGB profile", "sRGB: invalid rendering intent"), which
// OpenCV never applies, and errors about files cut short or damaged ("PNG input buffer is
// incomplete", "IDAT: CRC error"). vtl removes the former and refuses the latter itself,
// naming the file; the decoded pixels are the same.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vtl::data {

/// Chunks removed: iCCP, sRGB, cHRM, gAMA (colour space) and tEXt, zTXt, iTXt (text).
bool is_png_metadata_chunk(const char type[4]);

/// One walk over a PNG's chunks, by their declared lengths.
struct PngChunkReview {
  /// Why libpng would fail on the file, from its chunk structure: it ends inside a chunk or
  /// before IEND ("truncated PNG: ..."), a chunk has no valid type, a critical chunk
  /// (IHDR, PLTE, IDAT, IEND) fails its CRC check, or they come in an order libpng refuses:
  /// IHDR not first or twice, no IDAT before IEND, a palette image's IDAT before its PLTE
  /// ("corrupt PNG: ..."). Empty when the
  /// structure is whole; bytes after IEND are ignored, as libpng ignores them. The first
  /// problem found.
  std::string problem;
  /// Byte ranges [begin, end) of the chunks vtl removes before decoding, in file order: the
  /// metadata chunks and ancillary chunks that fail their CRC check (libpng drops those
  /// too, with a warning). The walk stops at a chunk that runs past the end: it, and
  /// everything after it, is kept for the decoder to refuse.
  std::vector<std::pair<size_t, size_t>> removable;
};
PngChunkReview review_png_chunks(const std::string& bytes);

/// `bytes` without the byte `ranges` (sorted, disjoint); nullopt when there are none
/// (nothing is copied then).
std::optional<std::string> png_without_chunks(const std::string& bytes,
                                              const std::vector<std::pair<size_t, size_t>>& ranges);

/// `bytes` (a PNG file) without the chunks review_png_chunks() finds removable.
std::optional<std::string> png_without_metadata_chunks(const std::string& bytes);

/// review_png_chunks(bytes).problem.
std::string png_chunk_problem(const std::string& bytes);

}  // namespace vtl::data
