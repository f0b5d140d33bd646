#include "vtl/serve/server.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <unordered_map>

#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include "embed_queue.h"
#include "http.h"

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/data/image.h"
#include "vtl/models/device.h"
#include "vtl/search/image_index.h"

namespace vtl::serve {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Catalogued file names need not be UTF-8: odd bytes go out as U+FFFD (the thumbnail is
/// found by id, so the name is only shown).
void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

/// A bounded map id -> encoded thumbnail, least recently used out first.
class ThumbnailCache {
 public:
  explicit ThumbnailCache(size_t capacity) : capacity_(capacity) {}
  bool get(int64_t id, std::string* out) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(id);
    if (it == map_.end()) return false;
    order_.splice(order_.begin(), order_, it->second.second);
    *out = it->second.first;
    return true;
  }
  void put(int64_t id, std::string bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (capacity_ == 0 || map_.count(id)) return;
    order_.push_front(id);
    map_[id] = {std::move(bytes), order_.begin()};
    if (map_.size() > capacity_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::list<int64_t> order_;
  std::unordered_map<int64_t, std::pair<std::string, std::list<int64_t>::iterator>> map_;
};

}  // namespace

struct SearchServer::State {
  State(const fs::path& dir, ServerOptions opts)
      : options(std::move(opts)),
        index(search::ImageIndex::open(dir)),
        extractor(embed::extractor_for_spec(index.spec(), options.moved_weights)),
        thumbnails(options.thumbnail_cache) {
    extractor.to(models::parse_device(options.device));
    index.check_query_spec(extractor.spec());
  }
  ServerOptions options;
  search::ImageIndex index;
  embed::FeatureExtractor extractor;
  EmbedQueue queue{extractor};  ///< the only user of `extractor` after construction
  ThumbnailCache thumbnails;
  httplib::Server http;
  int port = 0;
  int listening_socket = -1;  ///< the socket httplib last created for bind(); httplib owns it
  // httplib's stop() does nothing before its listen loop runs; these let stop() that comes
  // first (or while listen() is starting) still end listen().
  std::mutex lifecycle_mutex;
  bool stop_requested = false;  ///< guarded by lifecycle_mutex
  bool listen_entered = false;  ///< guarded by lifecycle_mutex
  std::atomic<bool> listen_returned{false};

  void health(httplib::Response& res) {
    const auto& spec = index.spec();
    send_json(res, 200,
              {{"status", "ok"},
               {"images", index.size()},
               {"model", spec.model},
               {"weights", spec.weights},
               {"layer", spec.layer},
               {"dim", spec.dim},
               {"factory", index.factory()},
               {"metric", search::to_string(index.metric())},
               {"max_upload_bytes", options.max_upload_bytes},
               {"default_k", options.default_k}});
  }

  /// POST /api/search: an uploaded `image` file, or the `id` of a catalogued image ("more
  /// like this": its file is read again and the image itself is left out of the results);
  /// `k` results. `id` and `k` are form fields or query parameters (the form field wins).
  /// GET /api/search takes `id` and `k` as query parameters.
  void search(const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    const bool multipart = req.is_multipart_form_data();
    auto field = [&](const std::string& name) -> std::optional<std::string> {
      if (multipart && req.has_file(name)) return req.get_file_value(name).content;
      if (req.has_param(name)) return req.get_param_value(name);
      return std::nullopt;
    };
    auto integer = [](const std::string& text) {
      size_t used = 0;
      const int64_t value = std::stoll(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
      return value;
    };
    int64_t k = options.default_k;
    if (const auto text = field("k")) {
      try {
        k = integer(*text);
      } catch (const std::exception&) {
        send_error(res, 400, "k must be an integer, got '" + *text + "'");
        return;
      }
      if (k < 1 || k > options.max_k) {
        send_error(res, 400, fmt::format("k must be between 1 and {}", options.max_k));
        return;
      }
    }
    std::string bytes, label, leave_out;  // leave_out: SHA-256 of a catalogued query
    if (multipart && req.has_file("image")) {
      const auto file = req.get_file_value("image");
      bytes = file.content;
      label = file.filename.empty() ? "upload" : file.filename;
    } else if (const auto id_text = field("id")) {
      int64_t id = -1;
      try {
        id = integer(*id_text);
      } catch (const std::exception&) {
        send_error(res, 400, "id must be an integer, got '" + *id_text + "'");
        return;
      }
      const auto entry = index.catalog().get(id);
      if (!entry) {
        send_error(res, 404, fmt::format("no catalogued image with id {}", id));
        return;
      }
      try {
        bytes = read_file(entry->path);
      } catch (const Error&) {
        send_error(res, 404, fmt::format("catalogued image {} cannot be read any more", id));
        return;
      }
      label = fs::path(entry->path).filename().string();
      leave_out = entry->sha256;
    } else {
      send_error(res, 400,
                 multipart ? "the upload has no 'image' file field (or 'id' of a catalogued "
                             "image)"
                           : "expected a multipart/form-data upload with an 'image' file field, "
                             "or the 'id' of a catalogued image");
      return;
    }
    torch::Tensor input;
    try {
      data::DecodeOptions decode = extractor.decode_options();
      decode.max_pixels = options.max_image_pixels;
      input = extractor.preprocess(data::decode_image_rgb(bytes, label, decode));
    } catch (const Error& e) {
      send_error(res, 400, e.what());
      return;
    }
    const torch::Tensor vector = queue.embed(input);
    json results = json::array();
    const auto hits = index.search(vector, k, {leave_out});  // a catalogued query: not itself
    for (const auto& r : hits.at(0)) {
      results.push_back({{"id", r.entry.id},
                         {"score", r.score},
                         {"label", r.entry.label >= 0 ? json(r.entry.label) : json()},
                         {"class", r.entry.class_name},
                         {"name", fs::path(r.entry.path).filename().string()},
                         {"image", fmt::format("/api/image/{}", r.entry.id)}});
    }
    const double took =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    send_json(res, 200,
              {{"query", label},
               {"results", results},
               {"metric", search::to_string(index.metric())},
               {"took_ms", took}});
  }

  void image(const httplib::Request& req, httplib::Response& res) {
    int64_t id = -1;
    try {
      id = std::stoll(req.matches[1].str());
    } catch (const std::exception&) {
      send_error(res, 404, "no such image");
      return;
    }
    std::string bytes;
    if (!thumbnails.get(id, &bytes)) {
      const auto entry = index.catalog().get(id);
      if (!entry) {
        send_error(res, 404, fmt::format("no catalogued image with id {}", id));
        return;
      }
      cv::Mat rgb;
      try {
        data::DecodeOptions decode;
        decode.min_short_side = options.thumbnail_side;
        rgb = data::load_image_rgb(entry->path, decode);
      } catch (const Error& e) {
        send_error(res, 404, fmt::format("catalogued image {} cannot be read any more", id));
        return;
      }
      const double scale =
          std::min(1.0, double(options.thumbnail_side) / std::max(rgb.rows, rgb.cols));
      if (scale < 1.0) cv::resize(rgb, rgb, cv::Size(), scale, scale, cv::INTER_AREA);
      cv::Mat bgr;
      cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
      std::vector<uchar> encoded;
      cv::imencode(".jpg", bgr, encoded, {cv::IMWRITE_JPEG_QUALITY, 85});
      bytes.assign(encoded.begin(), encoded.end());
      thumbnails.put(id, bytes);
    }
    res.set_header("Cache-Control", "max-age=3600");
    res.set_content(bytes, "image/jpeg");
  }

  void install_routes() {
    http.set_payload_max_length(static_cast<size_t>(options.max_upload_bytes));
    http.set_read_timeout(options.timeout_seconds, 0);
    http.set_write_timeout(options.timeout_seconds, 0);
    // A keep-alive connection holds a worker thread, idle or not, and stop() waits for it:
    // idle connections close after 2 s, and rotating connections keeps clients beyond the
    // pool size from starving.
    http.set_keep_alive_timeout(std::min(options.timeout_seconds, 2));
    http.set_keep_alive_max_count(16);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server
    // bind the same port and silently take half of its connections.
    http.set_socket_options([this](socket_t sock) {
      const int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listening_socket = sock;
    });
    const int threads = std::max(1, options.threads);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(search_page_html(), "text/html; charset=utf-8");
    });
    http.Get("/api/health",
             [this](const httplib::Request&, httplib::Response& res) { health(res); });
    http.Post("/api/search",
              [this](const httplib::Request& req, httplib::Response& res) { search(req, res); });
    // "More like this" needs no upload: GET /api/search?id=7&k=5 (a link, or curl without -d).
    http.Get("/api/search",
             [this](const httplib::Request& req, httplib::Response& res) { search(req, res); });
    http.Get(R"(/api/image/(\d{1,18}))",
             [this](const httplib::Request& req, httplib::Response& res) { image(req, res); });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
          std::string message = "internal error";
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            message = e.what();
          } catch (...) {
          }
          send_error(res, 500, message);
        });
    // Errors httplib produces itself (unknown route, too large, bad request) get a JSON body.
    http.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 413) {
        send_error(res, 413, fmt::format("upload larger than {} bytes", options.max_upload_bytes));
      } else if (res.status == 404) {
        send_error(res, 404, "not found");
      } else {
        send_error(res, res.status,
                   res.status < 500 ? "bad request (malformed, or a POST without a body or "
                                      "Content-Length; GET /api/search?id=N&k=K needs neither)"
                                    : "server error");
      }
    });
  }
};

SearchServer::SearchServer(const fs::path& index_dir, ServerOptions options)
    : state_(std::make_unique<State>(index_dir, std::move(options))) {
  state_->install_routes();
}

SearchServer::~SearchServer() { stop(); }

int SearchServer::bind() {
  auto& s = *state_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
    VTL_CHECK(s.port > 0, "cannot listen on {} (any port)", s.options.host);
  } else {
    VTL_CHECK(s.http.bind_to_port(s.options.host, s.options.port),
              "cannot listen on {}:{} (in use, or not an address of this machine?)", s.options.host,
              s.options.port);
    s.port = s.options.port;
  }
  // httplib listens with a backlog of 5. Connections beyond it while every worker is busy
  // have their handshake dropped (a 1 s retransmission) or, once SYN cookies are in play,
  // reset: clients see "connection reset" under load. Listening again only resizes the queue.
  VTL_CHECK(::listen(s.listening_socket, SOMAXCONN) == 0, "cannot listen on {}:{}: {}",
            s.options.host, s.port, std::strerror(errno));
  return s.port;
}

void SearchServer::listen() {
  auto& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.lifecycle_mutex);
    if (s.stop_requested) return;
    s.listen_entered = true;
  }
  s.http.listen_after_bind();
  s.listen_returned = true;
}

void SearchServer::stop() {
  if (!state_) return;
  auto& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.lifecycle_mutex);
    s.stop_requested = true;
    if (!s.listen_entered) return;  // a later listen() returns at once
  }
  // listen() has begun: wait until its loop runs (or it failed), then end the loop.
  while (!s.http.is_running() && !s.listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.http.stop();
}

int SearchServer::port() const { return state_->port; }

}  // namespace vtl::serve
