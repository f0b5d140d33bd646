#pragma once
// The ONNX file format (onnx.proto3) written by hand: the handful of messages a
// convolutional network needs, in protobuf's wire encoding, with no protobuf library.
// Field numbers are onnx.proto's; each message is built into a byte string and nested
// into its parent as a length-delimited field.

#include <cstdint>
#include <string>
#include <vector>

namespace vtl::models::onnx {

/// ONNX TensorProto.DataType values used here.
enum class DataType : int { float32 = 1, int64 = 7 };

/// One protobuf message under construction: fields are appended in call order.
class Message {
 public:
  Message& varint(int field, uint64_t value);
  Message& fixed32_float(int field, float value);
  Message& bytes(int field, const void* data, size_t size);
  Message& string(int field, const std::string& value) {
    return bytes(field, value.data(), value.size());
  }
  Message& message(int field, const Message& nested) { return string(field, nested.data_); }

  const std::string& data() const { return data_; }

 private:
  void key(int field, int wire_type);
  void raw_varint(uint64_t value);
  std::string data_;
};

/// TensorProto: `dims` and little-endian `raw` bytes of `type` elements.
Message tensor(const std::string& name, DataType type, const std::vector<int64_t>& dims,
               const void* raw, size_t raw_bytes);

/// AttributeProto of one kind each.
Message attribute_int(const std::string& name, int64_t value);
Message attribute_ints(const std::string& name, const std::vector<int64_t>& values);
Message attribute_float(const std::string& name, float value);

/// NodeProto in the default (ai.onnx) domain.
Message node(const std::string& op_type, const std::vector<std::string>& inputs,
             const std::vector<std::string>& outputs, const std::vector<Message>& attributes,
             const std::string& name);

/// ValueInfoProto of a float32 tensor; a dimension < 0 is symbolic, named by `symbols`
/// (one name per negative dimension, in order).
Message float_tensor_info(const std::string& name, const std::vector<int64_t>& dims,
                          const std::vector<std::string>& symbols = {});

}  // namespace vtl::models::onnx
