// vtl serve INDEX [--host 127.0.0.1] [--port 8080] [--device cpu|cuda[:N]]
//
// Built when the serve layer is (VTL_WITH_SERVER and VTL_WITH_FAISS).

#if defined(VTL_HAVE_SERVE)

#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/core/stop_signals.h"
#include "vtl/serve/server.h"

namespace vtl::cli {
namespace {

struct ServeArgs {
  std::string index;
  serve::ServerOptions options;
  double max_upload_mb = 16;
};

void run_serve(ServeArgs args) {
  VTL_CHECK(args.max_upload_mb > 0, "--max-upload-mb must be positive");
  args.options.max_upload_bytes = static_cast<int64_t>(args.max_upload_mb * (1 << 20));
  serve::SearchServer server(args.index, args.options);
  const int port = server.bind();
  // Declared after `server`, so it ends (and no callback runs) before `server` goes.
  StopSignals signals("stopping after the requests in progress");
  signals.on_stop([&server] { server.stop(); });
  std::cout << fmt::format("serving {} at http://{}:{}/ (Ctrl-C to stop)", args.index,
                           args.options.host, port)
            << std::endl;
  server.listen();
  std::cerr << "vtl: stopped" << std::endl;
}

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Web page and HTTP API for similarity search");
  cmd->add_option("index", args->index, "Index folder (vtl index build)")->required();
  cmd->add_option("--host", args->options.host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", args->options.port, "Port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-upload-mb", args->max_upload_mb, "Upload size limit (default 16)");
  cmd->add_option("--timeout", args->options.timeout_seconds,
                  "Read/write timeout per request, seconds (default 10)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--max-image-pixels", args->options.max_image_pixels,
                  "Refuse uploads with more pixels than this (default 50000000)")
      ->check(positive());
  cmd->add_option("--workers", args->options.threads, "Worker threads (default 8)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--device", args->options.device,
                  "Where uploaded images are embedded: cpu (default), cuda or cuda:N");
  cmd->add_option("--weights", args->options.moved_weights,
                  "Where the weights file or trained model folder that made the index is now, if "
                  "it moved (the same bytes)");
  cmd->callback([args] { run_serve(*args); });
}

}  // namespace

VTL_COMMAND(48, add_serve_command);

}  // namespace vtl::cli

#endif
