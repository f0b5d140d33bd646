#include "vtl/embed/npy.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::embed {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

/// What each dtype is called in a .npy header, how wide it is, and its tensor type.
struct DtypeInfo {
  FeatureDtype dtype;
  const char* descr;
  const char* name;
  size_t size;
  torch::ScalarType scalar;
};
constexpr DtypeInfo kDtypes[] = {{FeatureDtype::f32, "<f4", "f32", 4, torch::kFloat32},
                                 {FeatureDtype::f16, "<f2", "f16", 2, torch::kHalf},
                                 {FeatureDtype::f64, "<f8", "f64", 8, torch::kFloat64}};

const DtypeInfo& info(FeatureDtype dtype) {
  for (const auto& entry : kDtypes)
    if (entry.dtype == dtype) return entry;
  return kDtypes[0];
}

const char* descr(FeatureDtype dtype) { return info(dtype).descr; }

size_t element_size(FeatureDtype dtype) { return info(dtype).size; }

torch::ScalarType scalar_type(FeatureDtype dtype) { return info(dtype).scalar; }

}  // namespace

std::string to_string(FeatureDtype dtype) { return info(dtype).name; }

FeatureDtype parse_feature_dtype(const std::string& text) {
  if (text == "f32" || text == "float32") return FeatureDtype::f32;
  if (text == "f16" || text == "float16") return FeatureDtype::f16;
  fail("unknown feature dtype '{}': expected f32 or f16", text);
}

std::string npy_header(FeatureDtype dtype, const std::vector<int64_t>& shape) {
  std::string shape_text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_text += std::to_string(shape[i]);
    shape_text += (shape.size() == 1 || i + 1 < shape.size()) ? ", " : "";
  }
  if (shape.size() == 1) shape_text.pop_back();  // "(5,)"
  shape_text += ")";
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 descr(dtype), shape_text);
  // magic(6) + version(2) + length(2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = kMagicSize + 4 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string header(kMagic, kMagicSize);
  header.push_back('\x01');
  header.push_back('\x00');
  header.push_back(static_cast<char>(dict.size() & 0xFF));
  header.push_back(static_cast<char>((dict.size() >> 8) & 0xFF));
  return header + dict;
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& matrix) {
  VTL_CHECK(matrix.dim() == 1 || matrix.dim() == 2,
            "{}: only 1-D or 2-D arrays can be written (got {} dimensions)", path.string(),
            matrix.dim());
  VTL_CHECK(matrix.scalar_type() == torch::kFloat32 || matrix.scalar_type() == torch::kHalf,
            "{}: only float32 or float16 arrays can be written", path.string());
  const auto dtype = matrix.scalar_type() == torch::kHalf ? FeatureDtype::f16 : FeatureDtype::f32;
  auto data = matrix.to(torch::kCPU).contiguous();
  const std::string header = npy_header(dtype, data.sizes().vec());
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(header.data(), header.size());
    out.write(static_cast<const char*>(data.data_ptr()),
              static_cast<std::streamsize>(data.numel() * element_size(dtype)));
  });
}

NpyHeader read_npy_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  VTL_CHECK(in.good(), "cannot read {}: {}", path.string(), std::strerror(errno));
  char prefix[10];
  in.read(prefix, sizeof(prefix));
  VTL_CHECK(in.gcount() == 10 && std::memcmp(prefix, kMagic, kMagicSize) == 0,
            "{} is not a NumPy .npy file (bad magic)", path.string());
  const int major = static_cast<unsigned char>(prefix[6]);
  size_t header_length = 0;
  size_t prefix_length = 10;
  if (major == 1) {
    header_length = static_cast<unsigned char>(prefix[8]) |
                    (static_cast<size_t>(static_cast<unsigned char>(prefix[9])) << 8);
  } else if (major == 2 || major == 3) {
    char extra[2];
    in.read(extra, 2);
    header_length = static_cast<unsigned char>(prefix[8]) |
                    (static_cast<size_t>(static_cast<unsigned char>(prefix[9])) << 8) |
                    (static_cast<size_t>(static_cast<unsigned char>(extra[0])) << 16) |
                    (static_cast<size_t>(static_cast<unsigned char>(extra[1])) << 24);
    prefix_length = 12;
  } else {
    fail("{}: unsupported .npy format version {}", path.string(), major);
  }
  VTL_CHECK(header_length < (1u << 20), "{}: .npy header too long", path.string());
  std::string dict(header_length, '\0');
  in.read(dict.data(), static_cast<std::streamsize>(header_length));
  VTL_CHECK(static_cast<size_t>(in.gcount()) == header_length, "{}: truncated .npy header",
            path.string());

  NpyHeader header;
  std::smatch match;
  static const std::regex kDescr(R"('descr'\s*:\s*'([<>|=]?)([a-z])(\d+)')");
  VTL_CHECK(std::regex_search(dict, match, kDescr), "{}: .npy header has no dtype", path.string());
  const std::string order = match[1], kind = match[2], width = match[3];
  VTL_CHECK(order != ">", "{}: big-endian .npy arrays are not supported", path.string());
  const std::string wanted = "<" + kind + width;
  const auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                  [&](const DtypeInfo& entry) { return wanted == entry.descr; });
  VTL_CHECK(known != std::end(kDtypes),
            "{}: dtype '{}{}' is not supported (expected float32, float16 or float64)",
            path.string(), kind, width);
  header.dtype = known->dtype;
  static const std::regex kFortran(R"('fortran_order'\s*:\s*(True|False))");
  VTL_CHECK(std::regex_search(dict, match, kFortran) && match[1] == "False",
            "{}: Fortran-order .npy arrays are not supported", path.string());
  static const std::regex kShape(R"('shape'\s*:\s*\(([^)]*)\))");
  VTL_CHECK(std::regex_search(dict, match, kShape), "{}: .npy header has no shape", path.string());
  const std::string dims = match[1];
  static const std::regex kNumber(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), kNumber);
       it != std::sregex_iterator(); ++it) {
    // 15 digits cover any array a file can hold and keep std::stoll in range.
    VTL_CHECK(it->length() <= 15, "{}: .npy shape ({}) is too large", path.string(), dims);
    header.shape.push_back(std::stoll(it->str()));
  }
  VTL_CHECK(header.shape.size() == 1 || header.shape.size() == 2,
            "{}: expected a 1-D or 2-D array, got {} dimensions", path.string(),
            header.shape.size());
  header.data_offset = prefix_length + header_length;
  return header;
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  const NpyHeader header = read_npy_header(path);
  const int64_t rows = header.shape.size() == 2 ? header.shape[0] : 1;
  const int64_t cols = header.shape.back();
  // The header's shape is checked against the file before anything is allocated.
  uint64_t values = 0, bytes = 0;
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  VTL_CHECK(
      !__builtin_mul_overflow(static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), &values) &&
          !__builtin_mul_overflow(values, element_size(header.dtype), &bytes) && !ec &&
          bytes <= file_size - std::min<uint64_t>(file_size, header.data_offset),
      "{}: truncated .npy data (the header promises {} x {} values)", path.string(), rows, cols);
  auto out = torch::empty({rows, cols}, torch::TensorOptions().dtype(scalar_type(header.dtype)));
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(header.data_offset));
  in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(bytes));
  VTL_CHECK(static_cast<size_t>(in.gcount()) == bytes,
            "{}: truncated .npy data (expected {} bytes of {} x {} values)", path.string(), bytes,
            rows, cols);
  return out;
}

}  // namespace vtl::embed
