// `vtl serve` as a user runs it, under a bounded load of good and bad requests mixed: no
// crash, every request gets its expected status, the server's memory stays flat, and p50 /
// p99 latencies are printed (docs/reliability.md, "Server under load").
// VTL_LOAD_REQUESTS / VTL_LOAD_CONCURRENCY size a longer run (default 400 at 8).
#if defined(VTL_HAVE_SERVE)

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include "serve/http.h"

#include "cli/run_cli.h"
#include "cli/serve_process.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

/// One kind of request in the mix, and the status it must get.
struct RequestKind {
  std::string name;
  int expected_status;
  std::function<httplib::Result(httplib::Client&)> send;
};

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, size_t(p * values.size()))];
}

TEST(ReliabilityServeLoad, MixedGoodAndBadRequestsGetTheirAnswersAndMemoryStaysFlat) {
  if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
  TempDir dir("vtl_rel_load");
  make_class_tree(dir / "images", 4);
  const fs::path index = dir / "index";
  auto built =
      run_cli("index build " + (dir / "images").string() +
              " --model resnet18 --weights random --image-size 64 --out " + index.string());
  ASSERT_EQ(built.exit_code, 0) << built.output;
  ServeProcess server({"serve", index.string(), "--port", "0", "--workers", "4", "--timeout", "5",
                       "--max-upload-mb", "1"});
  ASSERT_GT(server.port(), 0) << "vtl serve did not print its port";

  const auto peach = read_file(dir / "images" / "fruit" / "peach_simple.png");
  std::string truncated_jpeg;
  {
    std::vector<uchar> buffer;
    cv::Mat noise(64, 64, CV_8UC3);
    cv::randu(noise, 0, 255);
    cv::imencode(".jpg", noise, buffer);
    truncated_jpeg.assign(buffer.begin(), buffer.begin() + buffer.size() / 2);
  }
  const std::string oversized(1536 << 10, 'x');
  const auto upload = [](httplib::Client& c, const std::string& bytes, const std::string& k) {
    httplib::MultipartFormDataItems items = {{"image", bytes, "q.png", "image/png"}};
    if (!k.empty()) items.push_back({"k", k, "", ""});
    return c.Post("/api/search", items);
  };
  const std::vector<RequestKind> kinds = {
      {"search", 200, [&](httplib::Client& c) { return upload(c, peach, "5"); }},
      {"search", 200, [&](httplib::Client& c) { return upload(c, peach, ""); }},
      {"search", 200, [&](httplib::Client& c) { return upload(c, peach, "3"); }},
      {"health", 200, [](httplib::Client& c) { return c.Get("/api/health"); }},
      {"thumbnail", 200, [](httplib::Client& c) { return c.Get("/api/image/1"); }},
      {"not an image", 400, [&](httplib::Client& c) { return upload(c, "hello", ""); }},
      {"truncated JPEG", 400, [&](httplib::Client& c) { return upload(c, truncated_jpeg, ""); }},
      {"bad k", 400, [&](httplib::Client& c) { return upload(c, peach, "-4"); }},
      {"not multipart", 400,
       [](httplib::Client& c) { return c.Post("/api/search", "{}", "application/json"); }},
      {"unknown id", 404, [](httplib::Client& c) { return c.Get("/api/image/999999"); }},
      {"unknown route", 404, [](httplib::Client& c) { return c.Get("/api/nothing"); }},
      {"oversized", 413, [&](httplib::Client& c) { return upload(c, oversized, ""); }},
  };

  const auto bad_kinds = std::count_if(
      kinds.begin(), kinds.end(), [](const RequestKind& k) { return k.expected_status >= 400; });
  const char* requests_env = std::getenv("VTL_LOAD_REQUESTS");
  const char* concurrency_env = std::getenv("VTL_LOAD_CONCURRENCY");
  const int requests = requests_env ? std::atoi(requests_env) : 400;
  const int concurrency = concurrency_env ? std::atoi(concurrency_env) : 8;
  std::atomic<int> next{0};
  std::mutex mutex;
  std::map<std::string, int> unexpected;  // "kind: got status" -> count
  std::vector<double> all_ms, search_ms;
  double rss_after_warmup = 0;
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < concurrency; ++t) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", server.port());
      c.set_read_timeout(60, 0);
      for (int i; (i = next++) < requests;) {
        if (i == requests / 4) rss_after_warmup = server.rss_mib();
        const RequestKind& kind = kinds[size_t(i) % kinds.size()];
        const auto t0 = std::chrono::steady_clock::now();
        auto res = kind.send(c);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        std::lock_guard<std::mutex> lock(mutex);
        all_ms.push_back(ms);
        if (kind.name == "search") search_ms.push_back(ms);
        const int status = res ? res->status : -1;
        bool ok = status == kind.expected_status;
        if (ok && status >= 400) ok = json::parse(res->body, nullptr, false).contains("error");
        if (ok && kind.name == "search") {
          ok = json::parse(res->body).at("results")[0].at("class") == "fruit";
        }
        if (!ok) ++unexpected[kind.name + ": got " + std::to_string(status)];
      }
    });
  }
  for (auto& c : clients) c.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double rss_end = server.rss_mib(), rss_peak = server.rss_mib(/*peak=*/true);

  std::cout << "[ load     ] " << requests << " requests (" << kinds.size() << " kinds, "
            << bad_kinds << " of them bad) at concurrency " << concurrency << ": "
            << requests / seconds << " req/s; all p50 " << percentile(all_ms, 0.5) << " ms, p99 "
            << percentile(all_ms, 0.99) << " ms; searches p50 " << percentile(search_ms, 0.5)
            << " ms, p99 " << percentile(search_ms, 0.99) << " ms; server RSS " << rss_after_warmup
            << " MiB after 1/4 of the run, " << rss_end << " MiB at the end (peak " << rss_peak
            << " MiB)\n";
  for (const auto& [what, count] : unexpected) ADD_FAILURE() << what << " (" << count << "x)";
  EXPECT_TRUE(server.running()) << "the server died";
  httplib::Client c("127.0.0.1", server.port());
  auto health = c.Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // Flat: what the first quarter (models, pools, caches) set up is all it needs.
  EXPECT_LT(rss_end - rss_after_warmup, 32.0)
      << "server memory grew from " << rss_after_warmup << " to " << rss_end << " MiB";
}

}  // namespace
}  // namespace vtl::testing

#endif  // VTL_HAVE_SERVE
