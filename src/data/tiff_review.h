#pragma once
// What vtl checks of a TIFF with libtiff before OpenCV decodes it. OpenCV's TIFF decoder
// reports what it cannot read by printing to stderr, with no file name ("imdecode_(''):
// can't read header: ... failed TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, ...)", "[ WARN:0]
// ... failed TIFFReadRGBAStrip"), then gives an empty image. vtl reads the same structure
// quietly first (libtiff's messages go to a handler of this file's own, per file) and
// refuses such a file by name instead; files that pass decode through OpenCV as before.

#include <string>

namespace vtl::data {

/// Why OpenCV could not decode `bytes` (a TIFF file's first image), found by reading it as
/// OpenCV would, one strip or tile at a time, without keeping the pixels: libtiff cannot
/// read its directory, the photometric interpretation or image size is missing, its bits
/// per sample are not 1, 8, 10, 12, 14, 16, 32 or 64, it has more than 4 samples per pixel
/// or strips or tiles of 2^24 pixels a side or 1 GiB, libtiff's RGBA reader refuses its
/// colour layout (where OpenCV reads through it: 8 bits and fewer, palette and other
/// layouts that are not grey or RGB), or a strip or tile cannot be read (data that does
/// not decompress included, which OpenCV would turn into rows of garbage). The message
/// starts "damaged TIFF" or "TIFF"; libtiff's own words are quoted where it gave some.
/// Empty when none of that was found.
std::string tiff_problem(const std::string& bytes);

}  // namespace vtl::data
