#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include "serve/http.h"  // httplib with the switches Debian built it with

#include "fixtures.h"
#include "vtl/core/error.h"
#include "vtl/weights/store.h"
#include "vtl/weights/weights_file.h"

namespace vtl::weights {
namespace {

namespace fs = std::filesystem;
using testing::pth_fixtures;
using testing::slurp;
using testing::TempDir;
using testing::write_bytes;

/// Points VTL_HOME at a fresh folder for one test.
class ScopedHome {
 public:
  ScopedHome() : dir_("home") {
    if (const char* old = std::getenv("VTL_HOME")) old_ = old;
    ::setenv("VTL_HOME", dir_.path().c_str(), 1);
    ::unsetenv("VTL_WEIGHTS_URL");
  }
  ~ScopedHome() {
    if (old_.empty()) {
      ::unsetenv("VTL_HOME");
    } else {
      ::setenv("VTL_HOME", old_.c_str(), 1);
    }
  }
  fs::path store() const { return dir_.path() / "weights"; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    if (fs::exists(store())) {
      for (const auto& e : fs::directory_iterator(store())) names.push_back(e.path().filename());
    }
    return names;
  }

 private:
  TempDir dir_;
  std::string old_;
};

/// An HTTP server on 127.0.0.1 (a free port) serving `body` at /models/good.pth, a
/// corrupted copy at /models/corrupt.pth, a redirect, a transfer that stops half-way and
/// 404 for anything else.
class Server {
 public:
  explicit Server(std::string body) : body_(std::move(body)) {
    server_.Get("/models/good.pth", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_content(body_, "application/octet-stream");
    });
    server_.Get("/models/corrupt.pth", [this](const httplib::Request&, httplib::Response& res) {
      std::string bad = body_;
      bad[bad.size() / 2] ^= 0x55;
      res.set_content(bad, "application/octet-stream");
    });
    server_.Get("/old/good.pth", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/models/good.pth");
    });
    server_.Get("/models/short.pth", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(body_.size(), "application/octet-stream",
                               [this](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset > 0) return false;  // drop the connection
                                 sink.write(body_.data(), body_.size() / 2);
                                 return true;
                               });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Server() {
    server_.stop();
    thread_.join();
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int hits() const { return hits_; }

 private:
  std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::atomic<int> hits_{0};
  std::thread thread_;
};

PretrainedWeights entry_for(const std::string& path, const std::string& sha256_prefix) {
  PretrainedWeights e;
  e.name = "tiny.test";
  e.architecture = "tiny";
  e.tag = "test";
  e.file_name = "tiny-" + (sha256_prefix.empty() ? std::string("nohash") : sha256_prefix) + ".pth";
  e.url = "https://download.example.invalid" + path;
  e.sha256_prefix = sha256_prefix;
  return e;
}

FetchOptions quiet(const Server& server) {
  FetchOptions options;
  options.base_url = server.base();
  options.progress = false;
  options.connect_timeout_s = 5;
  options.stall_timeout_s = 5;
  return options;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no vtl::Error";
  return "";
}

TEST(Store, Sha256MatchesKnownValue) {
  TempDir dir("vtl_weights_sha");
  write_bytes(dir / "abc", "abc");
  EXPECT_EQ(sha256_file(dir / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Store, DownloadUrlOverride) {
  const auto e = entry_for("/models/x-1234.pth", "1234");
  FetchOptions options;
  options.base_url = "http://mirror:8080/";
  EXPECT_EQ(download_url(e, options), "http://mirror:8080/models/x-1234.pth");
  ::setenv("VTL_WEIGHTS_URL", "http://env-mirror", 1);
  EXPECT_EQ(download_url(e), "http://env-mirror/models/x-1234.pth");
  ::unsetenv("VTL_WEIGHTS_URL");
  EXPECT_EQ(download_url(e), e.url);
}

#ifdef VTL_HAVE_CURL
TEST(Store, FetchVerifiesAndStores) {
  ScopedHome home;
  const std::string body = slurp(pth_fixtures() / "sd_zip.pth");
  TempDir tmp("vtl_weights_body");
  write_bytes(tmp / "body", body);
  const std::string hash = sha256_file(tmp / "body");
  Server server(body);
  const auto entry = entry_for("/models/good.pth", hash.substr(0, 8));
  EXPECT_FALSE(locate_weights(entry).has_value());
  const auto path = fetch_weights(entry, quiet(server));
  EXPECT_EQ(path, home.store() / entry.file_name);
  EXPECT_EQ(slurp(path), body);
  EXPECT_EQ(locate_weights(entry), path);
  EXPECT_EQ(load_weights_file(path).size(), 11u);
  // Present: no second download.
  fetch_weights(entry, quiet(server));
  EXPECT_EQ(server.hits(), 1);
  EXPECT_EQ(home.files(), std::vector<std::string>{entry.file_name});
}

TEST(Store, FetchFollowsRedirects) {
  ScopedHome home;
  const std::string body = slurp(pth_fixtures() / "sd_legacy.pth");
  TempDir tmp("vtl_weights_body");
  write_bytes(tmp / "body", body);
  Server server(body);
  const auto entry = entry_for("/old/good.pth", sha256_file(tmp / "body").substr(0, 10));
  EXPECT_EQ(slurp(fetch_weights(entry, quiet(server))), body);
}

TEST(Store, CorruptDownloadLeavesNothing) {
  ScopedHome home;
  const std::string body = slurp(pth_fixtures() / "sd_zip.pth");
  TempDir tmp("vtl_weights_body");
  write_bytes(tmp / "body", body);
  Server server(body);
  const auto entry = entry_for("/models/corrupt.pth", sha256_file(tmp / "body").substr(0, 8));
  const auto message = error_of([&] { fetch_weights(entry, quiet(server)); });
  EXPECT_NE(message.find("SHA-256"), std::string::npos) << message;
  EXPECT_NE(message.find("/models/corrupt.pth"), std::string::npos) << message;
  EXPECT_TRUE(home.files().empty());
}

TEST(Store, AStoredFileIsHashedOnceAndAgainWhenItChanges) {
  ScopedHome home;
  const std::string body = slurp(pth_fixtures() / "sd_zip.pth");
  TempDir tmp("vtl_weights_stored");
  write_bytes(tmp / "body", body);
  const auto entry = entry_for("/models/good.pth", sha256_file(tmp / "body").substr(0, 8));
  const fs::path stored = home.store() / entry.file_name;
  fs::create_directories(home.store());
  write_bytes(stored, body);

  check_stored_weights(entry, stored);  // hashed, and recorded
  const fs::path record = home.store() / ".checked" / entry.file_name;
  ASSERT_TRUE(fs::is_regular_file(record));
  EXPECT_NE(slurp(record).find(" " + entry.sha256_prefix + "\n"), std::string::npos);
  check_stored_weights(entry, stored);  // the record stands for the hash

  // Replaced by other bytes of the same size: the record no longer fits, the hash fails.
  std::string other = body;
  other[other.size() / 2] ^= 0x55;
  write_bytes(stored, other);
  const auto message = error_of([&] { check_stored_weights(entry, stored); });
  EXPECT_NE(message.find(stored.string()), std::string::npos) << message;
  EXPECT_NE(message.find("vtl weights fetch tiny.test"), std::string::npos) << message;
  EXPECT_EQ(message.find("nothing was stored"), std::string::npos) << message;
}

TEST(Store, HttpErrorAndTruncatedTransferLeaveNothing) {
  ScopedHome home;
  const std::string body(200000, 'x');
  Server server(body);
  auto message =
      error_of([&] { fetch_weights(entry_for("/models/nothing.pth", "abcd"), quiet(server)); });
  EXPECT_NE(message.find("HTTP 404"), std::string::npos) << message;
  EXPECT_NE(message.find("/models/nothing.pth"), std::string::npos) << message;
  message = error_of([&] { fetch_weights(entry_for("/models/short.pth", "abcd"), quiet(server)); });
  EXPECT_NE(message.find("failed"), std::string::npos) << message;
  EXPECT_TRUE(home.files().empty());
}

TEST(Store, UnreachableServerSaysHowToImportInstead) {
  ScopedHome home;
  FetchOptions options;
  {
    Server closed("");
    options = quiet(closed);
  }  // nothing listens on that port any more
  const auto message =
      error_of([&] { fetch_weights(entry_for("/models/good.pth", "abcd"), options); });
  EXPECT_NE(message.find("download of " + options.base_url + "/models/good.pth failed"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("vtl weights import tiny-abcd.pth --as tiny.test"), std::string::npos)
      << message;
  EXPECT_TRUE(home.files().empty());
}

TEST(Store, FetchWithoutPublishedHashParsesTheFile) {
  ScopedHome home;
  Server server("definitely not weights");
  const auto message =
      error_of([&] { fetch_weights(entry_for("/models/good.pth", ""), quiet(server)); });
  EXPECT_NE(message.find("not usable as tiny.test"), std::string::npos) << message;
  EXPECT_TRUE(home.files().empty());
}
#else
TEST(Store, FetchWithoutCurlExplains) {
  ScopedHome home;
  const auto message = error_of([&] { fetch_weights(entry_for("/models/good.pth", "ab")); });
  EXPECT_NE(message.find("vtl weights import"), std::string::npos) << message;
}
#endif

TEST(Store, ImportChecksHash) {
  ScopedHome home;
  const auto source = pth_fixtures() / "sd_zip.pth";
  const std::string hash = sha256_file(source);
  const auto good = entry_for("/models/good.pth", hash.substr(0, 8));
  const auto path = import_weights(source, good);
  EXPECT_EQ(slurp(path), slurp(source));
  EXPECT_TRUE(fs::exists(source));  // copied, not moved

  ScopedHome other;
  auto wrong = entry_for("/models/good.pth", hash[0] == '0' ? "1" : "0");
  const auto message = error_of([&] { import_weights(source, wrong); });
  EXPECT_NE(message.find(source.string()), std::string::npos) << message;
  EXPECT_TRUE(other.files().empty());
}

TEST(Store, ImportWithoutHashRunsTheArchitectureCheck) {
  ScopedHome home;
  const auto entry = entry_for("/models/good.pth", "");
  int calls = 0;
  WeightsCheck reject = [&](const StateDict& sd, const PretrainedWeights& e, const fs::path& file) {
    ++calls;
    EXPECT_EQ(sd.size(), 11u);
    fail("{} has the wrong keys for {}", file.string(), e.architecture);
  };
  const auto message =
      error_of([&] { import_weights(pth_fixtures() / "sd_zip.pth", entry, reject); });
  EXPECT_NE(message.find("wrong keys for tiny"), std::string::npos) << message;
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(home.files().empty());
  WeightsCheck accept = [&](const StateDict&, const PretrainedWeights&, const fs::path&) {
    ++calls;
  };
  EXPECT_TRUE(fs::exists(import_weights(pth_fixtures() / "sd_zip.pth", entry, accept)));
  EXPECT_EQ(calls, 2);
}

TEST(Store, ImportWithoutNameNeedsAMatch) {
  ScopedHome home;
  const auto message = error_of([&] { import_weights(pth_fixtures() / "sd_zip.pth"); });
  EXPECT_NE(message.find("--as NAME"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { import_weights(pth_fixtures() / "nope.pth"); }).find("no such file"),
            std::string::npos);
}

TEST(Store, VerifyFindsCorruptAndUnknownFiles) {
  ScopedHome home;
  fs::create_directories(home.store());
  const auto& entry = find_weights("resnet18.tv_in1k");
  write_bytes(home.store() / entry.file_name, "not the real file");
  write_bytes(home.store() / "mine.pth", "x");
  const auto results = verify_store();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].file_name, "mine.pth");
  EXPECT_EQ(results[0].status, VerifyResult::Status::unknown);
  EXPECT_EQ(results[1].name, "resnet18.tv_in1k");
  EXPECT_EQ(results[1].status, VerifyResult::Status::corrupt);
  EXPECT_NE(results[1].message.find("SHA-256"), std::string::npos) << results[1].message;
}

}  // namespace
}  // namespace vtl::weights
