#include "vtl/weights/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "mapped_file.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"

namespace vtl::weights {
namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType dtype;
};
const DtypeName kDtypes[] = {
    {"F64", torch::kDouble},    {"F32", torch::kFloat}, {"F16", torch::kHalf},
    {"BF16", torch::kBFloat16}, {"I64", torch::kLong},  {"I32", torch::kInt},
    {"I16", torch::kShort},     {"I8", torch::kChar},   {"U8", torch::kByte},
    {"BOOL", torch::kBool},
};

// A header larger than this is not a weights file (the reference implementation uses
// 100 MB as well).
constexpr uint64_t kMaxHeader = 100u << 20;

struct Entry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

StateDict load_safetensors(const std::filesystem::path& path, WeightsFileInfo* info) {
  detail::MappedFile mapped(path);
  const detail::ByteView file = mapped.view();
  const std::string name = path.string();
  VTL_CHECK(file.size() >= 8, "{}: not a safetensors file ({} bytes)", name, file.size());
  const uint64_t header_size = file.u64(0, "header size");
  VTL_CHECK(header_size <= kMaxHeader && header_size <= file.size() - 8,
            "{}: not a valid safetensors file: header size {} exceeds the file ({} bytes)", name,
            header_size, file.size());
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.string(8, header_size, "header"));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not a valid safetensors file: header is not JSON ({})", name, e.what());
  }
  VTL_CHECK(header.is_object(), "{}: not a valid safetensors file: header is not a JSON object",
            name);
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file.size() - data_start;

  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
  for (const auto& item : header.items()) {
    // Named references, not a structured binding: lambdas below capture them.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "__metadata__") {
      VTL_CHECK(value.is_object(), "{}: safetensors __metadata__ is not an object", name);
      for (const auto& [mkey, mvalue] : value.items()) {
        VTL_CHECK(mvalue.is_string(), "{}: safetensors metadata '{}' is not a string", name, mkey);
        metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& why) {
      fail("{}: not a valid safetensors file: tensor '{}': {}", name, key, why);
    };
    if (!value.is_object()) bad("entry is not an object");
    Entry entry;
    entry.name = key;
    const auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string()) bad("no dtype");
    const auto* known = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const auto& d) {
      return d.name == dtype->get<std::string>();
    });
    if (known == std::end(kDtypes)) bad("unsupported dtype " + dtype->dump());
    entry.dtype = known->dtype;
    const auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array() || shape->size() > 64) bad("no valid shape");
    uint64_t numel = 1;
    for (const auto& dim : *shape) {
      if (!dim.is_number_unsigned())
        bad("shape " + shape->dump() + " is not non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, d, &numel))
        bad("shape too large");
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    const auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      bad("no valid data_offsets");
    }
    entry.begin = (*offsets)[0].get<uint64_t>();
    entry.end = (*offsets)[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      bad(fmt::format("data_offsets [{}, {}] outside the {} data bytes (truncated file?)",
                      entry.begin, entry.end, data_size));
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(entry.dtype)),
                               &bytes) ||
        bytes != entry.end - entry.begin) {
      bad(fmt::format("shape {} needs {} bytes but data_offsets span {}", shape->dump(), bytes,
                      entry.end - entry.begin));
    }
    entries.push_back(std::move(entry));
  }
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    VTL_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end,
              "{}: not a valid safetensors file: tensors '{}' and '{}' overlap", name,
              by_offset[i - 1]->name, by_offset[i]->name);
  }

  StateDict out;
  for (const auto& e : entries) {
    auto tensor = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) {
      std::memcpy(tensor.data_ptr(), file.data() + data_start + e.begin, e.end - e.begin);
    }
    out[e.name] = tensor;
  }
  if (info) {
    info->format = "safetensors";
    info->metadata = metadata;
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path, const StateDict& state_dict,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> tensors;
  uint64_t offset = 0;
  for (const auto& [key, value] : state_dict) {
    VTL_CHECK(value.defined(), "cannot write {}: tensor '{}' is undefined", path.string(), key);
    torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
    const auto* known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                     [&](const auto& d) { return d.dtype == t.scalar_type(); });
    VTL_CHECK(known != std::end(kDtypes), "cannot write {}: tensor '{}' has unsupported dtype {}",
              path.string(), key, c10::toString(t.scalar_type()));
    const uint64_t bytes = t.numel() * t.element_size();
    header[key] = {{"dtype", known->name},
                   {"shape", t.sizes().vec()},
                   {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    tensors.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  write_file_atomically(path, [&](std::ostream& out) {
    uint8_t size[8];
    for (int i = 0; i < 8; ++i) size[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
    out.write(reinterpret_cast<const char*>(size), 8);
    out.write(text.data(), text.size());
    for (const auto& t : tensors) {
      out.write(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    }
  });
}

}  // namespace vtl::weights
