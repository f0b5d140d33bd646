#pragma once
// What vtl checks of a TIFF with libtiff before OpenCV decodes it. OpenCV's TIFF decoder
// reports what it cannot read by printing to stderr, with no file name ("imdecode_(''):
// can't read header: ... failed TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, ...)", "[ WARN:0]
// ... failed TIFFReadRGBAStrip"), then gives an empty image. vtl reads the same structure
// quietly first (libtiff's messages go to a handler of this file's own, per file) and
// refuses such a file by name instead; files that pass decode through OpenCV as before.

#include <string>

namespace vtl::data {

/// Why OpenCV could not decode `bytes` (a TIFF file's first image), found without
/// decoding pixels into an image: libtiff cannot read its directory, the photometric
/// interpretation or image size is missing, its bits per sample are not 1, 8, 10, 12, 14,
/// 16, 32 or 64, it has more than 4 samples per pixel, libtiff's RGBA reader refuses its
/// colour layout (8-bit and lower), or a strip or tile does not decompress. The message
/// starts "damaged TIFF" or "TIFF with"; libtiff's own words are quoted where it gave
/// some. Empty when none of that was found.
std::string tiff_problem(const std::string& bytes);

}  // namespace vtl::data
