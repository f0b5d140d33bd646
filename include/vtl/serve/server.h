#pragma once
// `vtl serve`: the HTTP API and web page for similarity search over one index folder.
//   GET  /                 the search page (embedded in the binary)
//   GET  /api/health       {"status": "ok", "images": N, "model", "weights", "layer", ...}
//   POST /api/search       multipart/form-data with an "image" file (and optional "k"):
//                          {"results": [{"id", "score", "label", "class", "name",
//                          "image": "/api/image/<id>"}], "metric", "took_ms"}
//   GET  /api/image/<id>   JPEG thumbnail of catalogued image <id> (only catalogued files
//                          are ever read: the id is looked up, no path comes from the URL)
// Errors are JSON {"error": "..."} with a 4xx status (400 bad upload, 404 unknown id or
// route, 413 too large). Decoding, search and thumbnails run in parallel on the server's
// worker threads; the model runs on one thread of its own, which embeds the uploads waiting
// for it as one batch, first come first served.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace vtl::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  ///< 0: any free port (see SearchServer::port())
  int64_t max_upload_bytes = 16 << 20;
  int64_t max_image_pixels = 50'000'000;  ///< decoded size limit of an upload
  int timeout_seconds = 10;               ///< read and write timeouts per request
  int threads = 8;                        ///< worker threads
  std::string device = "cpu";             ///< where uploads are embedded: cpu, cuda or cuda:N
  /// Where the weights file or model folder that made the index is now, if it moved
  /// (embed::extractor_for_spec); empty: where the index says.
  std::filesystem::path moved_weights;
  int64_t max_k = 100;
  int64_t default_k = 12;
  int thumbnail_side = 256;       ///< longer side of thumbnails, pixels
  size_t thumbnail_cache = 1024;  ///< thumbnails kept in memory
};

class SearchServer {
 public:
  /// Opens the index and rebuilds its feature extractor; errors (missing files, unknown
  /// weights) are vtl::Error naming the problem.
  SearchServer(const std::filesystem::path& index_dir, ServerOptions options);
  ~SearchServer();

  /// Binds the socket; returns the port (useful with port 0). Throws vtl::Error when the
  /// address cannot be bound.
  int bind();
  /// Serves until stop() (call bind() first).
  void listen();
  /// Ends listen() from another thread, whether or not listen() has started yet (a
  /// listen() after stop() returns at once).
  void stop();
  int port() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The search page's HTML (web/search/index.html, embedded at build time).
const std::string& search_page_html();

}  // namespace vtl::serve
