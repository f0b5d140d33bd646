#include "sha256.h"

#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "vtl/core/error.h"
#include "vtl/weights/store.h"

namespace vtl::weights {
namespace detail {

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  VTL_CHECK(
      context_ && EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(context_), EVP_sha256(), nullptr) == 1,
      "cannot initialise SHA-256 (OpenSSL)");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(context_)); }

void Sha256::update(const void* data, size_t size) {
  VTL_CHECK(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(context_), data, size) == 1,
            "SHA-256 update failed (OpenSSL)");
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  VTL_CHECK(EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(context_), digest, &length) == 1,
            "SHA-256 finalisation failed (OpenSSL)");
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

}  // namespace detail

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  VTL_CHECK(in, "cannot read {} to check its SHA-256", path.string());
  detail::Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), buffer.size());
    if (in.gcount() > 0) hasher.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  VTL_CHECK(in.eof(), "error while reading {} to check its SHA-256", path.string());
  return hasher.hex();
}

}  // namespace vtl::weights
