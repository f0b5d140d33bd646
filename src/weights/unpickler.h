#pragma once
// A restricted unpickler for PyTorch state dicts. It understands the opcodes of pickle
// protocols 2..5 that torch.save emits and builds plain values; it never imports or calls
// anything. The only globals it accepts are the few a state dict needs
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and friends, torch.*Storage);
// any other global (os.system, builtins.eval, ...) makes the load fail with a vtl::Error
// naming the global, before anything else happens.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "mapped_file.h"

namespace vtl::weights::detail {

/// A tensor storage referenced by a persistent id; its bytes are attached by the caller
/// (zip: from a record, legacy: after the main pickle).
struct StorageRef {
  std::string key;
  torch::ScalarType dtype = torch::kFloat;
  int64_t numel = 0;
  torch::Tensor data;  ///< 1-D, `numel` elements of `dtype`, once attached
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// One unpickled value. Containers hold shared pointers so that the memo aliases them.
struct Value {
  enum class Kind {
    none,
    boolean,
    integer,
    big_integer,
    floating,
    string,
    bytes,
    tuple,
    list,
    dict,
    global,
    storage,
    tensor
  };
  Kind kind = Kind::none;
  int64_t integer = 0;  ///< boolean, integer
  double floating = 0;
  std::string
      text;  ///< string, bytes, big_integer (little-endian two's complement), global "module.name"
  std::vector<ValuePtr> items;                         ///< tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  ///< dict, in insertion order
  std::shared_ptr<StorageRef> storage;                 ///< storage, tensor
  int64_t storage_offset = 0;                          ///< tensor, in elements
  std::vector<int64_t> sizes, strides;                 ///< tensor
};

/// Python-ish name of a value's type for messages ("dict", "tensor", ...).
const char* kind_name(const Value& value);

/// Maps a persistent id (a tuple such as ('storage', torch.FloatStorage, '0', 'cpu', 6))
/// to a storage. Throws vtl::Error for ids it does not understand.
using PersistentLoad = std::function<std::shared_ptr<StorageRef>(const Value& pid)>;

/// Storage class name ("FloatStorage") -> dtype; false when it is not a storage class.
bool storage_dtype(const std::string& class_name, torch::ScalarType* dtype);

class Unpickler {
 public:
  /// Reads one pickle from `bytes` starting at `offset`. `persistent_load` may be empty
  /// when the pickle must not contain persistent ids.
  Unpickler(ByteView bytes, uint64_t offset, PersistentLoad persistent_load = {});
  /// Breaks every container link first, so that deeply nested or cyclic values built by a
  /// hostile file are freed without recursion.
  ~Unpickler();
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  /// Runs to the STOP opcode and returns the value. Throws vtl::Error naming the file.
  ValuePtr load();
  /// Offset just past the STOP opcode (valid after load()).
  uint64_t end() const { return pos_; }

 private:
  ValuePtr make(Value::Kind kind);
  ValuePtr pop();
  ValuePtr& top();
  std::vector<ValuePtr> pop_to_mark();
  ValuePtr resolve_global(const std::string& module, const std::string& name);
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args, const std::string& function);
  [[noreturn]] void malformed(const std::string& what) const;
  uint8_t byte();
  uint64_t uint(int size);
  std::string_view read(uint64_t length);
  std::string_view line();

  ByteView bytes_;
  uint64_t pos_;
  uint64_t opcode_at_ = 0;
  PersistentLoad persistent_load_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::vector<ValuePtr> arena_;
};

}  // namespace vtl::weights::detail
