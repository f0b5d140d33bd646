#pragma once
// SHA-256 (FIPS 180-4) of bytes and files: weights files are checked against the hashes in
// their names and catalogue, extraction outputs are keyed by the hash of their inputs.
// OpenSSL's implementation where vtl was built with it, a portable one otherwise; both
// give the same digests.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace vtl {

/// Incremental hasher: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  /// 64 lower-case hex digits; the hasher cannot be updated afterwards.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The portable implementation, whatever vtl was built with (tests compare it to OpenSSL).
class PortableSha256 {
 public:
  void update(const void* data, size_t size);
  /// 32-byte digest; the hasher cannot be updated afterwards.
  std::array<uint8_t, 32> digest();

 private:
  void compress(const uint8_t* block);  // one 64-byte block

  std::array<uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<uint8_t, 64> pending_{};
  size_t pending_size_ = 0;
  uint64_t total_bytes_ = 0;
};

/// Lower-case hex of a digest's bytes.
std::string to_hex(const uint8_t* bytes, size_t size);

/// SHA-256 of `bytes`, 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

/// SHA-256 of a file's contents, read in 1 MiB blocks; vtl::Error naming the file if it
/// cannot be opened or read to the end.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace vtl
