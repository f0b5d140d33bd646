#include "unpickler.h"

#include <cstring>

#include <fmt/ranges.h>

#include "vtl/core/error.h"

namespace vtl::weights::detail {
namespace {

using Kind = Value::Kind;

// Pickle opcodes (Lib/pickletools.py), protocols 0..5 as torch.save uses them.
enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  BINFLOAT = 'G',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  BINPERSID = 'Q',
  REDUCE = 'R',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  BINGET = 'h',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  PROTO = 0x80,
  NEWOBJ = 0x81,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BINPERSID_TEXT = 'P',
  GET = 'g',
  PUT = 'p',
};

// The callables a state dict needs. Everything else is refused at GLOBAL time.
const char* const kAllowedFunctions[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
};

struct StorageClass {
  const char* name;
  torch::ScalarType dtype;
};
const StorageClass kStorageClasses[] = {
    {"FloatStorage", torch::kFloat}, {"DoubleStorage", torch::kDouble},
    {"HalfStorage", torch::kHalf},   {"BFloat16Storage", torch::kBFloat16},
    {"LongStorage", torch::kLong},   {"IntStorage", torch::kInt},
    {"ShortStorage", torch::kShort}, {"CharStorage", torch::kChar},
    {"ByteStorage", torch::kByte},   {"BoolStorage", torch::kBool},
};

int64_t as_int(const ValuePtr& value, const char* what, const std::string& file) {
  VTL_CHECK(value && (value->kind == Kind::integer || value->kind == Kind::boolean),
            "{}: malformed tensor record: {} is a {}, expected an integer", file, what,
            value ? kind_name(*value) : "nothing");
  return value->integer;
}

std::vector<int64_t> as_int_tuple(const ValuePtr& value, const char* what,
                                  const std::string& file) {
  VTL_CHECK(value && (value->kind == Kind::tuple || value->kind == Kind::list),
            "{}: malformed tensor record: {} is a {}, expected a tuple", file, what,
            value ? kind_name(*value) : "nothing");
  std::vector<int64_t> out;
  for (const auto& item : value->items) out.push_back(as_int(item, what, file));
  return out;
}

}  // namespace

const char* kind_name(const Value& value) {
  switch (value.kind) {
    case Kind::none:
      return "None";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
    case Kind::big_integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return "str";
    case Kind::bytes:
      return "bytes";
    case Kind::tuple:
      return "tuple";
    case Kind::list:
      return "list";
    case Kind::dict:
      return "dict";
    case Kind::global:
      return "global";
    case Kind::storage:
      return "storage";
    case Kind::tensor:
      return "tensor";
  }
  return "value";
}

bool storage_dtype(const std::string& class_name, torch::ScalarType* dtype) {
  for (const auto& c : kStorageClasses) {
    if (class_name == c.name) {
      *dtype = c.dtype;
      return true;
    }
  }
  return false;
}

Unpickler::Unpickler(ByteView bytes, uint64_t offset, PersistentLoad persistent_load)
    : bytes_(std::move(bytes)), pos_(offset), persistent_load_(std::move(persistent_load)) {}

Unpickler::~Unpickler() {
  for (auto& value : arena_) {
    value->items.clear();
    value->entries.clear();
  }
}

void Unpickler::malformed(const std::string& what) const {
  fail("{}: not a valid PyTorch weights file: {} (pickle opcode at byte {})", bytes_.name(), what,
       opcode_at_);
}

ValuePtr Unpickler::make(Kind kind) {
  auto value = std::make_shared<Value>();
  value->kind = kind;
  arena_.push_back(value);
  return value;
}

ValuePtr Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
    malformed("stack underflow");
  }
  ValuePtr value = std::move(stack_.back());
  stack_.pop_back();
  return value;
}

ValuePtr& Unpickler::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
    malformed("stack underflow");
  }
  return stack_.back();
}

std::vector<ValuePtr> Unpickler::pop_to_mark() {
  if (marks_.empty()) malformed("missing MARK");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + mark),
                              std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
}

uint8_t Unpickler::byte() {
  bytes_.require(pos_, 1, "pickle data");
  return bytes_.data()[pos_++];
}

uint64_t Unpickler::uint(int size) {
  bytes_.require(pos_, size, "pickle data");
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = (value << 8) | bytes_.data()[pos_ + i];
  pos_ += size;
  return value;
}

std::string_view Unpickler::read(uint64_t length) {
  auto view = bytes_.string(pos_, length, "pickle data");
  pos_ += length;
  return view;
}

std::string_view Unpickler::line() {
  const uint64_t start = pos_;
  while (true) {
    if (byte() == '\n') break;
    if (pos_ - start > 1024) malformed("text line too long");
  }
  return bytes_.string(start, pos_ - start - 1, "pickle data");
}

ValuePtr Unpickler::resolve_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  torch::ScalarType dtype;
  bool allowed = module == "torch" && storage_dtype(name, &dtype);
  for (const char* f : kAllowedFunctions) allowed = allowed || full == f;
  if (!allowed) {
    fail(
        "{}: refusing to load: the pickle references the global '{}', which a PyTorch state "
        "dict never needs (nothing was executed). Only tensors, storages and (Ordered)dicts "
        "are accepted; if you trust the file, re-save its state_dict() with torch.save or as "
        "safetensors",
        bytes_.name(), full);
  }
  auto value = make(Kind::global);
  value->text = full;
  return value;
}

ValuePtr Unpickler::rebuild_tensor(const std::vector<ValuePtr>& args, const std::string& function) {
  const std::string& file = bytes_.name();
  VTL_CHECK(args.size() >= 4, "{}: malformed tensor record: {} with {} arguments", file, function,
            args.size());
  VTL_CHECK(args[0]->kind == Kind::storage, "{}: malformed tensor record: argument 1 is a {}", file,
            kind_name(*args[0]));
  auto tensor = make(Kind::tensor);
  tensor->storage = args[0]->storage;
  tensor->storage_offset = as_int(args[1], "storage offset", file);
  tensor->sizes = as_int_tuple(args[2], "size", file);
  tensor->strides = as_int_tuple(args[3], "stride", file);
  VTL_CHECK(tensor->sizes.size() == tensor->strides.size() && tensor->sizes.size() <= 64,
            "{}: malformed tensor record: {} sizes but {} strides", file, tensor->sizes.size(),
            tensor->strides.size());
  // The view must lie inside its storage: offset + sum((size - 1) * stride) < numel.
  const int64_t numel = tensor->storage->numel;
  int64_t last = tensor->storage_offset;
  bool empty = false;
  bool ok = tensor->storage_offset >= 0;
  for (size_t d = 0; d < tensor->sizes.size() && ok; ++d) {
    const int64_t size = tensor->sizes[d], stride = tensor->strides[d];
    ok = size >= 0 && stride >= 0;
    if (size == 0) empty = true;
    int64_t step = 0;
    if (ok && size > 0) ok = !__builtin_mul_overflow(size - 1, stride, &step);
    if (ok) ok = !__builtin_add_overflow(last, step, &last);
  }
  int64_t count = 1;
  for (int64_t size : tensor->sizes) {
    if (ok) ok = !__builtin_mul_overflow(count, size, &count);
  }
  VTL_CHECK(ok && (empty || last < numel),
            "{}: malformed tensor record: view (offset {}, size {}, stride {}) does not fit in "
            "its storage '{}' of {} elements",
            file, tensor->storage_offset, fmt::join(tensor->sizes, ","),
            fmt::join(tensor->strides, ","), tensor->storage->key, numel);
  return tensor;
}

ValuePtr Unpickler::call(const ValuePtr& callable, const ValuePtr& args) {
  if (callable->kind != Kind::global) malformed(std::string("call of a ") + kind_name(*callable));
  if (args->kind != Kind::tuple) malformed("call arguments are not a tuple");
  const std::string& f = callable->text;
  const auto& a = args->items;
  if (f == "collections.OrderedDict") {
    auto dict = make(Kind::dict);
    if (!a.empty()) malformed("OrderedDict called with arguments");
    return dict;
  }
  if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
    return rebuild_tensor(a, f);
  }
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty() || a[0]->kind != Kind::tensor) malformed(f + " without a tensor");
    return a[0];
  }
  // Storage classes are only valid inside persistent ids.
  malformed("call of '" + f + "'");
}

ValuePtr Unpickler::load() {
  while (true) {
    opcode_at_ = pos_;
    const uint8_t op = byte();
    switch (op) {
      case PROTO: {
        const uint8_t protocol = byte();
        if (protocol < 2 || protocol > 5) malformed(fmt::format("pickle protocol {}", protocol));
        break;
      }
      case FRAME:
        uint(8);
        break;
      case STOP: {
        if (!marks_.empty() || stack_.size() != 1) malformed("unbalanced stack at STOP");
        return stack_.back();
      }
      case MARK:
        marks_.push_back(stack_.size());
        break;
      case POP:
        pop();
        break;
      case POP_MARK:
        pop_to_mark();
        break;
      case DUP:
        stack_.push_back(top());
        break;
      case NONE:
        stack_.push_back(make(Kind::none));
        break;
      case NEWTRUE:
      case NEWFALSE: {
        auto v = make(Kind::boolean);
        v->integer = op == NEWTRUE;
        stack_.push_back(v);
        break;
      }
      case BININT: {
        auto v = make(Kind::integer);
        v->integer = static_cast<int32_t>(uint(4));
        stack_.push_back(v);
        break;
      }
      case BININT1:
      case BININT2: {
        auto v = make(Kind::integer);
        v->integer = static_cast<int64_t>(uint(op == BININT1 ? 1 : 2));
        stack_.push_back(v);
        break;
      }
      case LONG1:
      case LONG4: {
        const uint64_t length = op == LONG1 ? byte() : uint(4);
        const std::string_view raw = read(length);
        auto v = make(Kind::integer);
        if (length > 8) {
          v->kind = Kind::big_integer;
          v->text = std::string(raw);
        } else if (length > 0) {
          uint64_t bits = 0;
          for (size_t i = length; i-- > 0;) bits = (bits << 8) | static_cast<uint8_t>(raw[i]);
          if (length < 8 && (static_cast<uint8_t>(raw[length - 1]) & 0x80)) {
            bits |= ~uint64_t{0} << (8 * length);  // sign-extend
          }
          v->integer = static_cast<int64_t>(bits);
        }
        stack_.push_back(v);
        break;
      }
      case BINFLOAT: {
        uint64_t bits = 0;
        for (char c : read(8)) bits = (bits << 8) | static_cast<uint8_t>(c);  // big-endian
        auto v = make(Kind::floating);
        std::memcpy(&v->floating, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case BINUNICODE:
      case SHORT_BINUNICODE:
      case BINUNICODE8:
      case BINSTRING:
      case SHORT_BINSTRING:
      case BINBYTES:
      case SHORT_BINBYTES:
      case BINBYTES8: {
        uint64_t length = 0;
        if (op == SHORT_BINUNICODE || op == SHORT_BINSTRING || op == SHORT_BINBYTES) {
          length = byte();
        } else if (op == BINUNICODE8 || op == BINBYTES8) {
          length = uint(8);
        } else {
          length = uint(4);
        }
        const bool text = op == BINUNICODE || op == SHORT_BINUNICODE || op == BINUNICODE8 ||
                          op == BINSTRING || op == SHORT_BINSTRING;
        auto v = make(text ? Kind::string : Kind::bytes);
        v->text = std::string(read(length));
        stack_.push_back(v);
        break;
      }
      case EMPTY_TUPLE:
        stack_.push_back(make(Kind::tuple));
        break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const int n = op - TUPLE1 + 1;
        auto v = make(Kind::tuple);
        v->items.resize(n);
        for (int i = n - 1; i >= 0; --i) v->items[i] = pop();
        stack_.push_back(v);
        break;
      }
      case TUPLE: {
        auto v = make(Kind::tuple);
        v->items = pop_to_mark();
        stack_.push_back(v);
        break;
      }
      case EMPTY_LIST:
        stack_.push_back(make(Kind::list));
        break;
      case LIST: {
        auto v = make(Kind::list);
        v->items = pop_to_mark();
        stack_.push_back(v);
        break;
      }
      case APPEND: {
        auto item = pop();
        auto& list = top();
        if (list->kind != Kind::list) malformed("APPEND to a non-list");
        list->items.push_back(std::move(item));
        break;
      }
      case APPENDS: {
        auto items = pop_to_mark();
        auto& list = top();
        if (list->kind != Kind::list) malformed("APPENDS to a non-list");
        for (auto& item : items) list->items.push_back(std::move(item));
        break;
      }
      case EMPTY_DICT:
        stack_.push_back(make(Kind::dict));
        break;
      case DICT:
      case SETITEMS: {
        auto items = pop_to_mark();
        if (items.size() % 2) malformed("odd number of dict items");
        ValuePtr dict = op == DICT ? make(Kind::dict) : top();
        if (dict->kind != Kind::dict) malformed("SETITEMS on a non-dict");
        for (size_t i = 0; i < items.size(); i += 2) {
          dict->entries.emplace_back(std::move(items[i]), std::move(items[i + 1]));
        }
        if (op == DICT) stack_.push_back(dict);
        break;
      }
      case SETITEM: {
        auto value = pop();
        auto key = pop();
        auto& dict = top();
        if (dict->kind != Kind::dict) malformed("SETITEM on a non-dict");
        dict->entries.emplace_back(std::move(key), std::move(value));
        break;
      }
      case BINPUT:
        memo_[byte()] = top();
        break;
      case LONG_BINPUT:
        memo_[uint(4)] = top();
        break;
      case MEMOIZE:
        memo_[memo_.size()] = top();
        break;
      case BINGET:
      case LONG_BINGET: {
        const uint64_t index = op == BINGET ? byte() : uint(4);
        auto it = memo_.find(index);
        if (it == memo_.end()) malformed(fmt::format("memo entry {} is not defined", index));
        stack_.push_back(it->second);
        break;
      }
      case GLOBAL: {
        const std::string module(line());
        const std::string name(line());
        stack_.push_back(resolve_global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        auto name = pop();
        auto module = pop();
        if (module->kind != Kind::string || name->kind != Kind::string) {
          malformed("STACK_GLOBAL operands are not strings");
        }
        stack_.push_back(resolve_global(module->text, name->text));
        break;
      }
      case REDUCE:
      case NEWOBJ: {
        auto args = pop();
        auto callable = pop();
        stack_.push_back(call(callable, args));
        break;
      }
      case BUILD: {
        auto state = pop();
        auto& object = top();
        // OrderedDict carries `_metadata` (module versions) as instance state; parameters
        // rebuilt through _rebuild_parameter_with_state may carry attributes. Neither
        // matters for the values.
        if (object->kind != Kind::dict && object->kind != Kind::tensor) {
          malformed(std::string("BUILD on a ") + kind_name(*object));
        }
        break;
      }
      case BINPERSID: {
        auto pid = pop();
        if (!persistent_load_) malformed("unexpected persistent id");
        auto v = make(Kind::storage);
        v->storage = persistent_load_(*pid);
        stack_.push_back(v);
        break;
      }
      default:
        malformed(fmt::format("unsupported pickle opcode 0x{:02x}", op));
    }
  }
}

}  // namespace vtl::weights::detail
