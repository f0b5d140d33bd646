#include "models/onnx_proto.h"

#include <cstring>

namespace vtl::models::onnx {

namespace {
constexpr int kVarint = 0, kLengthDelimited = 2, kFixed32 = 5;

// AttributeProto.AttributeType
constexpr int kAttributeFloat = 1, kAttributeInt = 2, kAttributeInts = 7;
}  // namespace

void Message::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

void Message::key(int field, int wire_type) {
  raw_varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

Message& Message::varint(int field, uint64_t value) {
  key(field, kVarint);
  raw_varint(value);
  return *this;
}

Message& Message::fixed32_float(int field, float value) {
  key(field, kFixed32);
  char bytes[4];
  std::memcpy(bytes, &value, 4);  // x86-64 and aarch64 are little-endian, as protobuf is
  data_.append(bytes, 4);
  return *this;
}

Message& Message::bytes(int field, const void* data, size_t size) {
  key(field, kLengthDelimited);
  raw_varint(size);
  data_.append(static_cast<const char*>(data), size);
  return *this;
}

Message tensor(const std::string& name, DataType type, const std::vector<int64_t>& dims,
               const void* raw, size_t raw_bytes) {
  Message m;
  for (int64_t dim : dims) m.varint(1, static_cast<uint64_t>(dim));  // dims
  m.varint(2, static_cast<uint64_t>(type));                          // data_type
  m.string(8, name);                                                 // name
  m.bytes(9, raw, raw_bytes);                                        // raw_data
  return m;
}

Message attribute_int(const std::string& name, int64_t value) {
  Message m;
  m.string(1, name).varint(3, static_cast<uint64_t>(value)).varint(20, kAttributeInt);
  return m;
}

Message attribute_ints(const std::string& name, const std::vector<int64_t>& values) {
  Message m;
  m.string(1, name);
  for (int64_t value : values) m.varint(8, static_cast<uint64_t>(value));
  m.varint(20, kAttributeInts);
  return m;
}

Message attribute_float(const std::string& name, float value) {
  Message m;
  m.string(1, name).fixed32_float(2, value).varint(20, kAttributeFloat);
  return m;
}

Message node(const std::string& op_type, const std::vector<std::string>& inputs,
             const std::vector<std::string>& outputs, const std::vector<Message>& attributes,
             const std::string& name) {
  Message m;
  for (const auto& input : inputs) m.string(1, input);
  for (const auto& output : outputs) m.string(2, output);
  m.string(3, name).string(4, op_type);
  for (const auto& attribute : attributes) m.message(5, attribute);
  return m;
}

Message float_tensor_info(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<std::string>& symbols) {
  Message shape;
  size_t symbol = 0;
  for (int64_t dim : dims) {
    Message dimension;
    if (dim >= 0)
      dimension.varint(1, static_cast<uint64_t>(dim));  // dim_value
    else
      dimension.string(2, symbol < symbols.size() ? symbols[symbol++] : "dim");  // dim_param
    shape.message(1, dimension);
  }
  Message tensor_type;
  tensor_type.varint(1, static_cast<uint64_t>(DataType::float32)).message(2, shape);
  Message type;
  type.message(1, tensor_type);
  Message info;
  info.string(1, name).message(2, type);
  return info;
}

}  // namespace vtl::models::onnx
