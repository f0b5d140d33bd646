#pragma once
// NumPy .npy files (format version 1.0): the on-disk form of feature matrices, readable
// with numpy.load. Only what features need: little-endian float32 ('<f4') or float16
// ('<f2'), C order, 1-D or 2-D.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vtl::embed {

/// Element types of feature arrays. vtl writes f32 or f16; f64 (NumPy's default) is read.
enum class FeatureDtype { f32, f16, f64 };

std::string to_string(FeatureDtype dtype);
/// Parses "f32"/"float32" or "f16"/"float16"; throws vtl::Error otherwise.
FeatureDtype parse_feature_dtype(const std::string& text);

/// What a .npy header declares.
struct NpyHeader {
  FeatureDtype dtype = FeatureDtype::f32;
  std::vector<int64_t> shape;  ///< 1 or 2 dimensions
  size_t data_offset = 0;      ///< bytes before the first element
};

/// The .npy header bytes (magic, version, padded dict) for a C-order array.
std::string npy_header(FeatureDtype dtype, const std::vector<int64_t>& shape);

/// Writes a 1-D or 2-D float32/float16 CPU tensor as .npy, atomically (temporary file +
/// rename). The element type follows the tensor's dtype.
void write_npy(const std::filesystem::path& path, const torch::Tensor& matrix);

/// Parses and validates the header; throws vtl::Error naming the file when it is not a
/// .npy this module can read (big-endian, Fortran order, other dtypes, truncated data).
NpyHeader read_npy_header(const std::filesystem::path& path);

/// Reads the array as stored (float32 or float16), 2-D: a 1-D array becomes [1, n].
torch::Tensor read_npy(const std::filesystem::path& path);

}  // namespace vtl::embed
