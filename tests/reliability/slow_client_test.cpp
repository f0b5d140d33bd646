// A client that sends half a request and stalls is cut off after the server's read
// timeout, and the server keeps answering others (docs/reliability.md).
#if defined(VTL_HAVE_SERVE)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include "serve/http.h"

#include "embed/sample_images.h"
#include "vtl/search/image_index.h"
#include "vtl/serve/server.h"

namespace vtl::serve {
namespace {

namespace fs = std::filesystem;

TEST(ReliabilityServe, SlowClientIsCutOffAfterTheReadTimeout) {
  testing::TempDir dir("vtl_rel_slow");
  std::vector<embed::ImageItem> items;
  for (int i = 0; i < 4; ++i) {
    cv::Mat image(24, 32, CV_8UC3);
    cv::randu(image, 0, 255);
    const fs::path path = dir / (std::to_string(i) + ".png");
    cv::imwrite(path.string(), image);
    items.push_back({path, i % 2, i % 2 ? "b" : "a"});
  }
  embed::BackboneOptions backbone;
  backbone.model = "resnet18";
  backbone.image_size = 64;
  embed::FeatureExtractor extractor(embed::load_backbone(backbone), "avg_pool", false);
  search::ImageIndex::build(dir / "index", extractor, items, {});
  ServerOptions options;
  options.port = 0;
  options.timeout_seconds = 1;
  SearchServer server(dir / "index", options);
  const int port = server.bind();
  std::thread thread([&] { server.listen(); });

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string partial =
      "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
      "Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  timeval wait{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  const auto started = std::chrono::steady_clock::now();
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ::close(fd);
  EXPECT_EQ(n, 0) << "the server should close the connection";
  EXPECT_LT(seconds, 5.0);

  httplib::Client client("127.0.0.1", port);
  auto health = client.Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  server.stop();
  thread.join();
}

}  // namespace
}  // namespace vtl::serve

#endif  // VTL_HAVE_SERVE
