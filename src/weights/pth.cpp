#include "vtl/weights/pth.h"

#include <algorithm>
#include <cstring>

#include "mapped_file.h"
#include "state_dict_builder.h"
#include "unpickler.h"
#include "vtl/core/error.h"
#include "zip_archive.h"

namespace vtl::weights {
namespace {

using detail::ByteView;
using detail::StorageRef;
using detail::Value;
using Kind = Value::Kind;

/// Parsed persistent id: ('storage', torch.<Type>Storage, key, location, numel[, view]).
struct StorageId {
  torch::ScalarType dtype;
  std::string key;
  int64_t numel;
};

StorageId parse_storage_id(const Value& pid, const std::string& file, bool legacy) {
  const auto& items = pid.items;
  const bool shape_ok = pid.kind == Kind::tuple && items.size() >= 5 &&
                        items[0]->kind == Kind::string && items[0]->text == "storage" &&
                        items[1]->kind == Kind::global && items[2]->kind == Kind::string &&
                        items[4]->kind == Kind::integer;
  VTL_CHECK(shape_ok, "{}: not a valid PyTorch weights file: unexpected persistent id", file);
  StorageId id;
  const std::string& type = items[1]->text;
  VTL_CHECK(type.rfind("torch.", 0) == 0 && detail::storage_dtype(type.substr(6), &id.dtype),
            "{}: unsupported storage type '{}'", file, type);
  id.key = items[2]->text;
  id.numel = items[4]->integer;
  VTL_CHECK(id.numel >= 0, "{}: storage '{}' has a negative size", file, id.key);
  if (legacy && items.size() >= 6) {
    VTL_CHECK(items[5]->kind == Kind::none,
              "{}: storage views of PyTorch < 0.4 files are not supported; load and re-save "
              "the state dict with a current torch.save",
              file);
  }
  return id;
}

/// Byte count of `numel` elements of `dtype`, or a vtl::Error on overflow.
uint64_t storage_bytes(const StorageRef& ref, const std::string& file) {
  uint64_t bytes = 0;
  VTL_CHECK(!__builtin_mul_overflow(static_cast<uint64_t>(ref.numel),
                                    static_cast<uint64_t>(c10::elementSize(ref.dtype)), &bytes),
            "{}: storage '{}' is impossibly large", file, ref.key);
  return bytes;
}

void attach(StorageRef& ref, const ByteView& bytes) {
  auto data = torch::empty({ref.numel}, torch::TensorOptions().dtype(ref.dtype));
  if (bytes.size() > 0) std::memcpy(data.data_ptr(), bytes.data(), bytes.size());
  ref.data = data;
}

class StorageTable {
 public:
  StorageTable(std::string file, bool legacy) : file_(std::move(file)), legacy_(legacy) {}

  std::shared_ptr<StorageRef> get(const Value& pid) {
    const StorageId id = parse_storage_id(pid, file_, legacy_);
    auto& ref = refs_[id.key];
    if (!ref) {
      ref = std::make_shared<StorageRef>();
      ref->key = id.key;
      ref->dtype = id.dtype;
      ref->numel = id.numel;
    }
    VTL_CHECK(ref->dtype == id.dtype && ref->numel == id.numel,
              "{}: storage '{}' is declared twice with different types or sizes", file_, id.key);
    return ref;
  }
  std::map<std::string, std::shared_ptr<StorageRef>>& refs() { return refs_; }

 private:
  std::string file_;
  bool legacy_;
  std::map<std::string, std::shared_ptr<StorageRef>> refs_;
};

StateDict load_zip(const ByteView& file, WeightsFileInfo* info) {
  const auto entries = detail::read_zip_entries(file);
  std::string prefix;
  int found = 0;
  for (const auto& [name, bytes] : entries) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
      prefix = name.substr(0, slash + 1);
      ++found;
    }
  }
  if (found != 1) {
    const bool torchscript = std::any_of(entries.begin(), entries.end(), [](const auto& e) {
      return e.first.find("/constants.pkl") != std::string::npos;
    });
    fail("{}: {}", file.name(),
         torchscript ? "a TorchScript archive, not a state dict; save model.state_dict() with "
                       "torch.save instead"
                     : fmt::format("a zip archive but not a torch.save file ({} data.pkl "
                                   "records)",
                                   found));
  }
  if (auto it = entries.find(prefix + "byteorder"); it != entries.end()) {
    const auto order = it->second.string(0, it->second.size(), "byteorder record");
    VTL_CHECK(order == "little", "{}: big-endian tensors are not supported", file.name());
  }
  StorageTable storages(file.name(), false);
  detail::Unpickler unpickler(entries.at(prefix + "data.pkl"), 0,
                              [&](const Value& pid) { return storages.get(pid); });
  const auto top = unpickler.load();
  for (auto& [key, ref] : storages.refs()) {
    auto it = entries.find(prefix + "data/" + key);
    VTL_CHECK(it != entries.end(), "{}: storage record 'data/{}' is missing", file.name(), key);
    const uint64_t bytes = storage_bytes(*ref, file.name());
    VTL_CHECK(it->second.size() >= bytes,
              "{}: storage record 'data/{}' has {} bytes, its tensors need {}", file.name(), key,
              it->second.size(), bytes);
    attach(*ref, it->second.sub(0, bytes, "storage"));
  }
  if (info) info->format = "pth (zip)";
  return detail::build_state_dict(*top, file.name(), info);
}

StateDict load_legacy(const ByteView& file, WeightsFileInfo* info) {
  // Magic number 0x1950a86a20f9469cfc6c, as the little-endian bytes pickle's LONG1 uses.
  static const char kMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
  uint64_t pos = 0;
  {
    detail::Unpickler magic(file, pos);
    const auto value = magic.load();
    VTL_CHECK(value->kind == Kind::big_integer && value->text == std::string(kMagic, 10),
              "{}: a pickle file but not a PyTorch one (no torch.save magic number)", file.name());
    pos = magic.end();
  }
  {
    detail::Unpickler protocol(file, pos);
    const auto value = protocol.load();
    VTL_CHECK(value->kind == Kind::integer && value->integer == 1001,
              "{}: unsupported torch.save protocol version", file.name());
    pos = protocol.end();
  }
  {
    detail::Unpickler sys_info(file, pos);
    const auto value = sys_info.load();
    VTL_CHECK(value->kind == Kind::dict, "{}: malformed sys_info record", file.name());
    for (const auto& [key, item] : value->entries) {
      if (key->kind == Kind::string && key->text == "little_endian") {
        VTL_CHECK(item->kind == Kind::boolean && item->integer == 1,
                  "{}: big-endian tensors are not supported", file.name());
      }
    }
    pos = sys_info.end();
  }
  StorageTable storages(file.name(), true);
  detail::Unpickler main(file, pos, [&](const Value& pid) { return storages.get(pid); });
  const auto top = main.load();
  pos = main.end();

  detail::Unpickler key_list(file, pos);
  const auto keys = key_list.load();
  VTL_CHECK(keys->kind == Kind::list, "{}: malformed storage key list", file.name());
  pos = key_list.end();
  for (const auto& key : keys->items) {
    VTL_CHECK(key->kind == Kind::string, "{}: malformed storage key list", file.name());
    auto it = storages.refs().find(key->text);
    VTL_CHECK(it != storages.refs().end(), "{}: storage '{}' is listed but never used", file.name(),
              key->text);
    StorageRef& ref = *it->second;
    const uint64_t count = file.u64(pos, "storage size");
    VTL_CHECK(count == static_cast<uint64_t>(ref.numel),
              "{}: storage '{}' holds {} elements, its tensors need {}", file.name(), ref.key,
              count, ref.numel);
    const uint64_t bytes = storage_bytes(ref, file.name());
    attach(ref, file.sub(pos + 8, bytes, "storage data"));
    pos += 8 + bytes;
  }
  if (info) info->format = "pth (legacy)";
  return detail::build_state_dict(*top, file.name(), info);
}

}  // namespace

StateDict load_pth(const std::filesystem::path& path, WeightsFileInfo* info) {
  detail::MappedFile mapped(path);
  const ByteView file = mapped.view();
  StateDict out;
  if (detail::looks_like_zip(file)) {
    out = load_zip(file, info);
  } else if (file.size() >= 2 && file.data()[0] == 0x80) {
    out = load_legacy(file, info);
  } else if (file.size() >= 262 && file.string(257, 5, "tar header") == "ustar") {
    fail("{}: a tar-format checkpoint from PyTorch < 0.4; these are not supported", path.string());
  } else {
    fail("{}: not a PyTorch weights file (neither a zip archive nor a pickle)", path.string());
  }
  const bool stripped = detail::strip_module_prefix(out);
  if (info) info->stripped_module_prefix = stripped;
  return out;
}

}  // namespace vtl::weights
