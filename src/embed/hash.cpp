#include "vtl/embed/hash.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include <openssl/evp.h>

#include "vtl/core/error.h"

namespace vtl::embed {
namespace {

struct Digest {
  Digest() : context(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    VTL_CHECK(context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1,
              "cannot initialise SHA-256");
  }
  void update(const void* data, size_t size) { EVP_DigestUpdate(context.get(), data, size); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), digest, &length);
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      out.push_back(kHex[digest[i] >> 4]);
      out.push_back(kHex[digest[i] & 15]);
    }
    return out;
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Digest digest;
  digest.update(bytes.data(), bytes.size());
  return digest.hex();
}

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  VTL_CHECK(in.good(), "cannot read {}: {}", path.string(), std::strerror(errno));
  Digest digest;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) digest.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  VTL_CHECK(in.eof(), "error while reading {}", path.string());
  return digest.hex();
}

}  // namespace vtl::embed
