#pragma once
// HTTP(S) download of one URL into an open file (libcurl), hashing the bytes as they
// arrive. Only compiled in with VTL_HAVE_CURL.

#include <cstdio>
#include <string>

#include "vtl/core/sha256.h"

namespace vtl::weights::detail {

struct DownloadSettings {
  bool progress = true;  ///< bytes and percent on stderr
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;  ///< abort when no byte arrives for this long
  std::string label;          ///< shown in the progress line
  /// Appended to the error when the server cannot be reached at all (no route, no name,
  /// refused, timed out): what to do on a machine without network access.
  std::string unreachable_hint;
};

/// Follows redirects; fails (vtl::Error with the URL and the reason: HTTP status, timeout,
/// truncated transfer) unless the whole body arrived. Returns the byte count.
uint64_t download(const std::string& url, std::FILE* out, vtl::Sha256& hasher,
                  const DownloadSettings& settings);

}  // namespace vtl::weights::detail
