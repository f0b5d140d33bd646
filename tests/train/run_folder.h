#pragma once
// Reading what a training run wrote into its folder, for the train, CLI and distributed
// tests.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vtl::testing {

/// The rows of run/metrics.jsonl, one JSON object per finished epoch.
inline std::vector<nlohmann::json> read_metrics(const std::filesystem::path& run) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace vtl::testing
