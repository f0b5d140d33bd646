// SHA-256: FIPS 180-4 test vectors, and the portable implementation against the one vtl
// was built with (OpenSSL's on Debian) over many lengths and block splits.

#include "vtl/core/sha256.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace {

std::string portable_hex(std::string_view bytes, size_t piece) {
  vtl::PortableSha256 hasher;
  for (size_t at = 0; at < bytes.size(); at += piece)
    hasher.update(bytes.data() + at, std::min(piece, bytes.size() - at));
  const auto digest = hasher.digest();
  return vtl::to_hex(digest.data(), digest.size());
}

}  // namespace

TEST(Sha256, KnownVectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const auto& [message, expected] : vectors) {
    EXPECT_EQ(vtl::sha256_hex(message), expected) << message.size() << " bytes";
    EXPECT_EQ(portable_hex(message, 1 << 20), expected) << message.size() << " bytes";
  }
}

TEST(Sha256, PortableEqualsBuiltInForEveryPaddingCase) {
  std::mt19937 rng(7);
  std::string bytes(300, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  // Lengths 0..299 cross every padding case (55, 56, 63, 64 bytes in the last block);
  // pieces of 1, 7 and 64 bytes exercise the partial-block buffering.
  for (size_t length = 0; length < bytes.size(); ++length) {
    const std::string_view message(bytes.data(), length);
    const std::string expected = vtl::sha256_hex(message);
    for (size_t piece : {size_t(1), size_t(7), size_t(64), size_t(1000)})
      ASSERT_EQ(portable_hex(message, piece), expected) << length << " bytes, pieces of " << piece;
  }
}

TEST(Sha256, IncrementalHasherEqualsOneShot) {
  vtl::Sha256 hasher;
  hasher.update("ab", 2);
  hasher.update("c", 1);
  EXPECT_EQ(hasher.hex(), vtl::sha256_hex("abc"));
}

TEST(Sha256, UnreadableFileIsNamed) {
  try {
    vtl::sha256_file("/nonexistent/weights.pth");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/weights.pth"), std::string::npos);
  }
}
