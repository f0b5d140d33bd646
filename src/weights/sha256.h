#pragma once
// Incremental SHA-256 (OpenSSL EVP).

#include <cstddef>
#include <string>

namespace vtl::weights::detail {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  /// Lower-case hex digest; the hasher cannot be updated afterwards.
  std::string hex();

 private:
  void* context_;
};

}  // namespace vtl::weights::detail
