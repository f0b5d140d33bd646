#include "download.h"

#ifdef VTL_HAVE_CURL

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include <curl/curl.h>
#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/core/progress_line.h"

namespace vtl::weights::detail {
namespace {

struct Transfer {
  std::FILE* out = nullptr;
  vtl::Sha256* hasher = nullptr;
  uint64_t bytes = 0;
  bool write_failed = false;
  const DownloadSettings* settings = nullptr;
  std::chrono::steady_clock::time_point last_print{};
  std::optional<ProgressLine> progress;  ///< from the first byte, when settings->progress
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (std::fwrite(data, 1, n, t->out) != n) {
    t->write_failed = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  t->hasher->update(data, n);
  t->bytes += n;
  return n;
}

std::string megabytes(curl_off_t bytes) { return fmt::format("{:.1f} MB", bytes / 1e6); }

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  const auto time = std::chrono::steady_clock::now();
  if (!t->settings->progress || time - t->last_print < std::chrono::milliseconds(250) || now == 0) {
    return 0;
  }
  t->last_print = time;
  if (!t->progress) t->progress.emplace();
  if (total > 0) {
    t->progress->show(
        fmt::format("downloading {}: {} / {} ({}%)", t->settings->label, megabytes(now),
                    megabytes(total), static_cast<int>(100.0 * now / total)),
        now == total);
  } else {
    t->progress->show(fmt::format("downloading {}: {}", t->settings->label, megabytes(now)));
  }
  return 0;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

uint64_t download(const std::string& url, std::FILE* out, vtl::Sha256& hasher,
                  const DownloadSettings& settings) {
  global_init();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  VTL_CHECK(curl, "cannot download {}: libcurl failed to initialise", url);
  Transfer transfer;
  transfer.out = out;
  transfer.hasher = &hasher;
  transfer.settings = &settings;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, settings.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, settings.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "vtl-weights/0.1");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  const CURLcode code = curl_easy_perform(c);
  transfer.progress.reset();  // ends its line
  if (code != CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    std::string reason = error[0] ? error : curl_easy_strerror(code);
    if (code == CURLE_HTTP_RETURNED_ERROR)
      reason = fmt::format("the server answered HTTP {}", status);
    if (transfer.write_failed) reason = "cannot write the downloaded data (disk full?)";
    if (code == CURLE_PARTIAL_FILE) {
      reason = fmt::format("the transfer stopped after {} bytes ({})", transfer.bytes, reason);
    }
    const bool unreachable = code == CURLE_COULDNT_RESOLVE_HOST ||
                             code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_COULDNT_CONNECT ||
                             (code == CURLE_OPERATION_TIMEDOUT && transfer.bytes == 0);
    if (unreachable && !settings.unreachable_hint.empty())
      reason += "; " + settings.unreachable_hint;
    fail("download of {} failed: {}", url, reason);
  }
  return transfer.bytes;
}

}  // namespace vtl::weights::detail

#endif  // VTL_HAVE_CURL
