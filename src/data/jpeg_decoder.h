#pragma once
// JPEG decoding with libjpeg directly, so that each file's warnings are its own: libjpeg
// prints warnings to stderr by default ("Corrupt JPEG data: 214 extraneous bytes before
// marker 0xd9"), with no file name, and decodes damaged data into grey or garbled rows.
// Here nothing reaches stderr; damage that leaves part of the image missing is an error
// naming the file, harmless oddities are decoded silently.

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

namespace vtl::data {

/// `bytes` (a JPEG file) decoded to CV_8UC3 in RGB order, at 1/`reduction` of its size
/// (1, 2, 4 or 8: libjpeg's DCT scaling), turned upright as its EXIF orientation says.
/// Pixel for pixel what cv::imdecode gives with IMREAD_COLOR (or IMREAD_REDUCED_COLOR_N),
/// channels swapped: the same libjpeg, the same colour conversion (CMYK and YCCK too),
/// the same orientation rule.
///
/// Throws vtl::Error naming `label` when the frame libjpeg reads has more than
/// `max_pixels` pixels (checked before anything is allocated), when libjpeg fails, or warns that
/// entropy-coded data is missing or corrupt (premature end of data segment, bad Huffman code, lost
/// restart marker). Other warnings (extraneous bytes before a marker, unknown JFIF revision, odd
/// progression) leave the pixels whole and are dropped.
cv::Mat decode_jpeg_rgb(const std::string& bytes, int reduction, const std::string& label,
                        int64_t max_pixels);

/// The orientation (1-8, TIFF tag 0x0112) in the EXIF block of an APP1 payload
/// ("Exif\0\0" + TIFF header + IFD0); 1 when absent or unreadable. Bounds-checked: any
/// byte string is a valid argument.
int exif_orientation(const unsigned char* app1_payload, size_t size);

}  // namespace vtl::data
