#include "state_dict_builder.h"

#include <fmt/ranges.h>

#include "vtl/core/error.h"

namespace vtl::weights::detail {
namespace {

using Kind = Value::Kind;

// Keys under which training checkpoints commonly keep the model's state dict.
const char* const kWrapperKeys[] = {"state_dict", "model_state_dict", "model", "module",
                                    "net",        "state_dict_ema"};

bool is_tensor_dict(const Value& value) {
  if (value.kind != Kind::dict || value.entries.empty()) return false;
  for (const auto& [key, item] : value.entries) {
    if (key->kind != Kind::string || item->kind != Kind::tensor) return false;
  }
  return true;
}

std::string describe_keys(const Value& dict) {
  std::vector<std::string> names;
  for (const auto& [key, item] : dict.entries) {
    if (names.size() == 10) {
      names.push_back("...");
      break;
    }
    names.push_back(
        fmt::format("'{}' ({})", key->kind == Kind::string ? key->text : "?", kind_name(*item)));
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

bool strip_module_prefix(StateDict& state_dict) {
  if (state_dict.empty()) return false;
  for (const auto& [key, tensor] : state_dict) {
    if (key.rfind("module.", 0) != 0) return false;
  }
  StateDict stripped;
  for (auto& [key, tensor] : state_dict) stripped.emplace(key.substr(7), std::move(tensor));
  state_dict = std::move(stripped);
  return true;
}

StateDict build_state_dict(const Value& top, const std::string& file, WeightsFileInfo* info) {
  VTL_CHECK(top.kind == Kind::dict,
            "{}: holds a {}, not a state dict (a dict of parameter name -> tensor)", file,
            kind_name(top));
  const Value* dict = &top;
  std::string unwrapped;
  if (!is_tensor_dict(top)) {
    for (const char* wrapper : kWrapperKeys) {
      for (const auto& [key, item] : top.entries) {
        if (key->kind == Kind::string && key->text == wrapper && is_tensor_dict(*item)) {
          dict = item.get();
          unwrapped = wrapper;
          break;
        }
      }
      if (dict != &top) break;
    }
    VTL_CHECK(dict != &top,
              "{}: not a state dict: its top-level dict holds {} and none of the keys "
              "state_dict/model_state_dict/model/module/net/state_dict_ema holds a dict of "
              "tensors",
              file, describe_keys(top));
  }
  if (info) info->unwrapped_key = unwrapped;

  // How many tensors use each storage: a tensor that is the only user of its whole
  // storage can take it over instead of copying.
  std::map<const StorageRef*, int> users;
  for (const auto& [key, item] : dict->entries) users[item->storage.get()]++;

  StateDict out;
  for (const auto& [key, item] : dict->entries) {
    const StorageRef& storage = *item->storage;
    VTL_CHECK(storage.data.defined(),
              "{}: tensor '{}' refers to storage '{}', which the file "
              "does not contain",
              file, key->text, storage.key);
    torch::Tensor view = storage.data.as_strided(item->sizes, item->strides, item->storage_offset);
    if (users[&storage] == 1 && item->storage_offset == 0 && view.is_contiguous() &&
        view.numel() == storage.numel) {
      out[key->text] = view;
    } else {
      out[key->text] = view.clone(at::MemoryFormat::Contiguous);
    }
  }
  return out;
}

}  // namespace vtl::weights::detail
