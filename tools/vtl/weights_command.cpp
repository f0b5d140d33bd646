// `vtl weights {list,fetch,import,verify}`: the pretrained catalogue and the local store.

#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vtl/core/error.h"
#include "vtl/models/pretrained.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/store.h"

namespace vtl::cli {
namespace {

std::string size_text(const std::optional<std::filesystem::path>& path) {
  if (!path) return "-";
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(*path, ec);
  return ec ? "?" : fmt::format("{:.1f} MB", bytes / 1e6);
}

/// Checks files without a published hash by loading them into the architecture.
void check_architecture(const weights::StateDict& state_dict,
                        const weights::PretrainedWeights& entry,
                        const std::filesystem::path& file) {
  models::check_weights_for_architecture(entry.architecture, state_dict, file.string());
}

void list_weights(bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : weights::catalogue()) {
      const auto path = weights::locate_weights(w);
      out.push_back({{"name", w.name},
                     {"architecture", w.architecture},
                     {"tag", w.tag},
                     {"file_name", w.file_name},
                     {"url", w.url},
                     {"sha256_prefix", w.sha256_prefix},
                     {"format", w.format},
                     {"top1", w.top1},
                     {"top5", w.top5},
                     {"num_classes", w.num_classes},
                     {"is_default", w.is_default},
                     {"preprocessing", to_json(w.preprocessing)},
                     {"present", path.has_value()},
                     {"path", path ? path->string() : ""},
                     {"size_bytes", path ? std::filesystem::file_size(*path) : 0}});
    }
    std::cout << out.dump(1) << "\n";
    return;
  }
  size_t width = 4;  // the longest name with its default mark
  for (const auto& w : weights::catalogue()) width = std::max(width, w.name.size() + 2);
  std::cout << fmt::format("{:<{}} {:<20} {:>7} {:>7} {:>4} {:>10}  {}\n", "name", width,
                           "architecture", "acc@1", "acc@5", "crop", "stored", "file");
  for (const auto& w : weights::catalogue()) {
    const auto path = weights::locate_weights(w);
    std::cout << fmt::format("{:<{}} {:<20} {:>7.3f} {:>7.3f} {:>4} {:>10}  {}\n",
                             w.name + (w.is_default ? " *" : ""), width, w.architecture, w.top1,
                             w.top5, w.preprocessing.crop, path ? size_text(path) : "no",
                             w.file_name);
  }
  std::cout << fmt::format(
      "\n* default for its architecture; crop: input size in pixels; stored: file size in the "
      "store ({})\n",
      weights::weights_dir().string());
}

void add_weights_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "weights", "Pretrained weights: the catalogue and the local store ($VTL_HOME/weights)");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list",
                                   "List the published weights, their ImageNet "
                                   "accuracy and whether they are in the store");
  static bool json = false;
  list->add_flag("--json", json, "Print the catalogue as JSON");
  list->callback([] { list_weights(json); });

  auto* fetch =
      cmd->add_subcommand("fetch",
                          "Download weights into the store and check their SHA-256 (mirror: set "
                          "VTL_WEIGHTS_URL=http://host:port to replace the scheme and host)");
  static std::vector<std::string> names;
  static std::string base_url;
  fetch
      ->add_option("NAME", names,
                   "Catalogue names (resnet50.tv2_in1k) or architectures "
                   "(their default weights)")
      ->required();
  fetch->add_option("--base-url", base_url, "Download from this scheme://host[:port] instead");
  fetch->callback([] {
    for (const auto& name : names) {
      const auto& entry = weights::find_weights(name);
      if (auto present = weights::locate_weights(entry)) {
        try {
          weights::check_stored_weights(entry, *present);
          std::cout << entry.name << ": already in the store: " << present->string() << "\n";
          continue;
        } catch (const Error& e) {
          // A damaged file is of no use: it is replaced by a fresh download.
          std::cerr << entry.name << ": " << present->string()
                    << " fails its SHA-256 check; removed, downloading it again\n";
          std::filesystem::remove(*present);
        }
      }
      weights::FetchOptions options;
      options.base_url = base_url;
      options.check = check_architecture;
      const auto path = weights::fetch_weights(entry, options);
      std::cout << entry.name << ": " << path.string() << "\n";
    }
  });

  auto* import = cmd->add_subcommand(
      "import", "Copy a weights file you already have into the store, checking its SHA-256");
  static std::string file;
  static std::string as_name;
  import->add_option("FILE", file, "The downloaded file (e.g. resnet50-0676ba61.pth)")->required();
  import->add_option("--as", as_name,
                     "Catalogue name to store it as (default: told by the "
                     "file name or its SHA-256)");
  import->callback([] {
    const auto path = weights::import_weights(file, as_name, check_architecture);
  std::cout << "imported " << file << " as " << path.string() << "\n";
});

auto* verify = cmd->add_subcommand("verify", "Re-check the SHA-256 of every file in the store");
verify->callback([] {
  const auto results = weights::verify_store(check_architecture);
  int corrupt = 0;
  for (const auto& r : results) {
    const char* status = r.status == weights::VerifyResult::Status::ok        ? "ok"
                         : r.status == weights::VerifyResult::Status::corrupt ? "CORRUPT"
                                                                              : "unknown";
    std::cout << fmt::format("{:<8} {:<45} {}\n", status, r.file_name, r.message);
    corrupt += r.status == weights::VerifyResult::Status::corrupt;
  }
  if (results.empty())
    std::cout << "the store " << weights::weights_dir().string() << " is empty\n";
  if (corrupt) {
    fail("{} corrupt file(s) in {}; delete them and fetch again", corrupt,
         weights::weights_dir().string());
  }
});
}  // namespace

}  // namespace vtl::cli

VTL_COMMAND(20, add_weights_command);

}  // namespace vtl::cli
