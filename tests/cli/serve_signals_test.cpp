// `vtl serve` stopped as a user stops it: Ctrl-C (SIGINT) or SIGTERM lets the request in
// progress finish and exits with status 0, an idle keep-alive connection does not hold
// the exit up, and a second signal exits at once.
#if defined(VTL_HAVE_SERVE)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include "serve/http.h"

#include "cli/run_cli.h"
#include "cli/serve_process.h"
#include "embed/sample_images.h"
#include "vtl/core/atomic_file.h"

namespace vtl::testing {
namespace {
namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    return -1;
  timeval wait{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
}

class ServeSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_sample_images()) GTEST_SKIP() << "openclipart-png images not installed";
    make_class_tree(dir_ / "images", 2);
    auto built =
        run_cli("index build " + (dir_ / "images").string() +
                " --model resnet18 --weights random --image-size 64 --out " + index().string());
    ASSERT_EQ(built.exit_code, 0) << built.output;
  }
  fs::path index() const { return dir_ / "index"; }
  TempDir dir_{"vtl_serve_signals"};
};

TEST_F(ServeSignals, TheRequestInProgressIsAnsweredThenTheServerExitsWithZero) {
  const std::string image = read_file(sample_items()[0].path);
  for (int signal : {SIGINT, SIGTERM}) {
    ServeProcess server({"serve", index().string(), "--port", "0"});
    ASSERT_GT(server.port(), 0) << "vtl serve did not print its port";
    // An upload whose body is sent in two parts, with the signal in between.
    const std::string head =
        "--x\r\nContent-Disposition: form-data; name=\"image\"; "
        "filename=\"q.png\"\r\nContent-Type: image/png\r\n\r\n";
    const std::string tail = "\r\n--x--\r\n";
    const std::string body = head + image + tail;
    const std::string request =
        "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    const size_t first_part = body.size() / 2;
    ASSERT_TRUE(send_all(fd, request + body.substr(0, first_part)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server.signal(signal);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(server.wait(0), -2) << "the server exited with a request in progress";
    ASSERT_TRUE(send_all(fd, body.substr(first_part)));
    std::string response;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
    ::close(fd);
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 200);
    EXPECT_NE(response.find("\"results\""), std::string::npos);
    EXPECT_EQ(server.wait(20), 0) << "signal " << signal;
  }
}

TEST_F(ServeSignals, AnIdleKeepAliveConnectionDoesNotHoldTheExitUp) {
  ServeProcess server({"serve", index().string(), "--port", "0"});
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_keep_alive(true);
  auto health = client.Get("/api/health");
  ASSERT_TRUE(health);
  ASSERT_EQ(health->status, 200);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGINT), 0);
  // The idle connection closes after the server's 2 s keep-alive; 10 s before.
  EXPECT_LT(seconds_since(start), 6.0);
}

TEST_F(ServeSignals, ASecondSignalExitsAtOnce) {
  ServeProcess server({"serve", index().string(), "--port", "0"});
  ASSERT_GT(server.port(), 0);
  // Half an upload holds the graceful stop up (until the 10 s read timeout).
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: multipart/form-data; boundary=x\r\n"
                       "Content-Length: 100000\r\n\r\n--x\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.signal(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(server.wait(0), -2) << "the first signal should wait for the upload";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGINT), 128 + SIGINT);
  EXPECT_LT(seconds_since(start), 1.5);
  ::close(fd);
}

}  // namespace
}  // namespace vtl::testing

#endif
