#include "vtl/core/file_set_commit.h"

#include <nlohmann/json.hpp>

#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/fault_injection.h"

namespace vtl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Moves what the journal lists (a staged file that is gone was moved already), then
/// removes the journal.
void run_journal(const fs::path& journal, const json& moves) {
  const fs::path base = journal.parent_path();
  for (const auto& move : moves) {
    const fs::path target = base / move.at("to").get<std::string>();
    fault_point("commit-set:" + target.filename().string());
    std::error_code ec;
    if (move.at("from").is_null()) {
      fs::remove(target, ec);
    } else {
      const fs::path staged = base / move.at("from").get<std::string>();
      if (!fs::exists(staged, ec)) continue;
      fs::rename(staged, target, ec);
    }
    VTL_CHECK(!ec,
              "cannot move {} into place: {} (the update stays recorded in {} and is "
              "finished by the next run)",
              target.string(), ec.message(), journal.string());
  }
  fs::remove(journal);
}

std::string relative_to(const fs::path& path, const fs::path& base) {
  const fs::path relative = path.lexically_relative(base);
  VTL_CHECK(!relative.empty() && *relative.begin() != "..", "{} is not inside {}", path.string(),
            base.string());
  return relative.string();
}

}  // namespace

void commit_file_set(const fs::path& journal, const std::vector<FileMove>& moves) {
  const fs::path base = journal.parent_path();
  json list = json::array();
  for (const auto& move : moves) {
    list.push_back({{"from", move.staged ? json(relative_to(*move.staged, base)) : json()},
                    {"to", relative_to(move.target, base)}});
  }
  fault_point("commit-set:journal");
  write_file_atomically(journal, json{{"moves", list}}.dump(1) + "\n");
  run_journal(journal, list);
}

bool finish_interrupted_commit(const fs::path& journal) {
  std::error_code ec;
  if (!fs::exists(journal, ec)) return false;
  json description;
  try {
    description = json::parse(read_file(journal));
    run_journal(journal, description.at("moves"));
  } catch (const json::exception& e) {
    fail(
        "{}: unreadable record of an interrupted update ({}); the files beside it may be "
        "inconsistent",
        journal.string(), e.what());
  }
  return true;
}

}  // namespace vtl
