// The HTTP server's request and upload handling. On first use a SearchServer is started
// in this process over a small index (four generated PNGs embedded by a 32-px resnet18
// with random weights), listening on a free port of 127.0.0.1. Each input is written to a
// fresh TCP connection as raw bytes and the first answer read (see exchange()). Then the
// server must still answer GET /api/health.
//
// Outcomes: `accepted` for a 2xx answer, `rejected` for a 4xx answer or none (an
// incomplete request). A 5xx answer means an exception other than vtl::Error reached
// httplib's handler, and a dead server means worse: both throw std::runtime_error.
#if defined(VTL_HAVE_SERVE)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "input_file.h"
#include "targets.h"
#include "vtl/embed/extractor.h"
#include "vtl/search/image_index.h"
#include "vtl/serve/server.h"

namespace vtl::fuzz {
namespace fs = std::filesystem;

namespace {

/// How long a fuzz input may go unanswered before the server is told it is complete
/// (write side shut down), and how long any answer may take after that.
constexpr int kFirstByteMs = 500;
constexpr int kReplySeconds = 20;

/// The server and the thread running it; lives until the process exits.
class RunningServer {
 public:
  RunningServer() {
    const fs::path dir = scratch_dir() / "upload";
    std::vector<embed::ImageItem> items;
    for (int i = 0; i < 4; ++i) {
      cv::Mat image(24 + 8 * i, 32, CV_8UC3, cv::Scalar(60 * i, 255 - 50 * i, 128));
      cv::circle(image, {16, 12}, 4 + 2 * i, cv::Scalar(255, 255 * (i % 2), 0), -1);
      const fs::path path = dir / "images" / ("image" + std::to_string(i) + ".png");
      fs::create_directories(path.parent_path());
      cv::imwrite(path.string(), image);
      items.push_back({path, i % 2, i % 2 ? "odd" : "even"});
    }
    embed::BackboneOptions backbone;
    backbone.model = "resnet18";
    backbone.image_size = 32;
    embed::FeatureExtractor extractor(embed::load_backbone(backbone), "avg_pool", false);
    search::ImageIndex::build(dir / "index", extractor, items, {});

    serve::ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.timeout_seconds = 2;
    options.max_upload_bytes = 1 << 20;
    options.max_image_pixels = 4'000'000;
    server_ = std::make_unique<serve::SearchServer>(dir / "index", options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->listen(); });
  }
  ~RunningServer() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<serve::SearchServer> server_;
  std::thread thread_;
  int port_ = 0;
};

const RunningServer& running_server() {
  static RunningServer server;
  return server;
}

/// True when `reply` holds a whole response: headers and the Content-Length body.
bool complete_response(const std::string& reply) {
  const size_t end = reply.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string headers = reply.substr(0, end + 2);
  for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t field = headers.find("\r\ncontent-length:");
  if (field == std::string::npos) return false;  // wait for the server to close
  const long long length = std::atoll(headers.c_str() + field + 17);
  return reply.size() - (end + 4) >= static_cast<size_t>(std::max(0LL, length));
}

/// Appends what arrives on `fd` to `reply` until a whole response is there (true), the
/// server closes (true) or nothing arrives for `wait_ms` (false).
bool read_reply(int fd, std::string* reply, int wait_ms) {
  char buffer[8192];
  while (!complete_response(*reply)) {
    pollfd readable{fd, POLLIN, 0};
    const int ready = ::poll(&readable, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;  // libFuzzer's timers interrupt calls
    if (ready <= 0) return false;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    reply->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

/// Connects `fd` to `address`; a connect() interrupted by a signal completes in the
/// background, so its outcome is awaited.
bool connect_to(int fd, const sockaddr_in& address) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) return true;
  if (errno != EINTR) return false;
  pollfd writable{fd, POLLOUT, 0};
  for (int ready; (ready = ::poll(&writable, 1, kReplySeconds * 1000)) <= 0;) {
    if (ready == 0 || errno != EINTR) return false;
  }
  int error = 0;
  socklen_t length = sizeof error;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
}

/// Sends `request` on a new connection to 127.0.0.1:port and returns the server's first
/// response (or what it sent before closing). A request still unanswered after
/// `first_reply_ms` gets the write side shut down, so the server sees its end. The write side is
/// not shut down first: httplib treats a half-closed connection as gone and would not
/// answer.
std::string exchange(int port, const uint8_t* request, size_t size, int first_reply_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!connect_to(fd, address)) {
    ::close(fd);
    throw std::runtime_error("the server does not accept connections any more");
  }
  // The server may answer (and close) before reading everything: a failed send is fine.
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, request + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  if (!read_reply(fd, &reply, first_reply_ms)) {
    ::shutdown(fd, SHUT_WR);
    read_reply(fd, &reply, kReplySeconds * 1000);
  }
  ::close(fd);
  return reply;
}

/// The status code of an HTTP/1.x reply, 0 when there is none.
int status_of(const std::string& reply) {
  if (reply.rfind("HTTP/1.", 0) != 0 || reply.size() < 12) return 0;
  return std::atoi(reply.c_str() + 9);
}

}  // namespace

Outcome fuzz_upload(const uint8_t* data, size_t size) {
  const int port = running_server().port();
  const int status = status_of(exchange(port, data, size, kFirstByteMs));
  if (status >= 500) {
    throw std::runtime_error("the server answered " + std::to_string(status) +
                             ": an exception other than vtl::Error reached its handler");
  }
  const std::string health = "GET /api/health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
  const std::string reply = exchange(port, reinterpret_cast<const uint8_t*>(health.data()),
                                     health.size(), kReplySeconds * 1000);
  if (status_of(reply) != 200) {
    throw std::runtime_error("the server no longer answers GET /api/health; it said: '" +
                             reply.substr(0, 200) + "'");
  }
  return status >= 200 && status < 300 ? Outcome::accepted : Outcome::rejected;
}

}  // namespace vtl::fuzz

#endif  // VTL_HAVE_SERVE
