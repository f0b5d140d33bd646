#include "vtl/embed/extract.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/json_document.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/fault_injection.h"
#include "vtl/core/file_set_commit.h"
#include "vtl/core/sha256.h"
#include "vtl/data/batch_reader.h"

namespace vtl::embed {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "vtl-features";

std::string chunk_name(int64_t chunk, const char* extension) {
  return fmt::format("chunk-{:06d}{}", chunk, extension);
}

/// Throws vtl::Error for a name that is not UTF-8 (JSON and the catalogue hold text),
/// naming the file with its odd bytes escaped.
void check_name_is_utf8(const fs::path& file) {
  const std::string path = file.string();
  try {
    (void)json(path).dump();
  } catch (const json::exception&) {
    fail("{}: the file name is not valid UTF-8; rename the file",
         json(path).dump(-1, ' ', true, json::error_handler_t::replace));
  }
}

/// The manifest row of an image; its name must be UTF-8 (check_name_is_utf8).
json manifest_line(int64_t item, const ImageItem& image) {
  check_name_is_utf8(image.path);
  json line = {{"item", item}, {"path", image.path.string()}};
  line["label"] = image.label >= 0 ? json(image.label) : json(nullptr);
  line["class"] = image.class_name;
  return line;
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  VTL_CHECK(in.good(), "cannot read {}", path.string());
  std::vector<json> lines;
  std::string text;
  int64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.empty()) continue;
    lines.push_back(parse_json_document(text, fmt::format("{}:{}", path.string(), number)));
  }
  return lines;
}

json read_json_file(const fs::path& path) {
  return parse_json_document(read_file(path), path.string());
}

std::string lines_text(const std::vector<json>& lines) {
  std::string text;
  for (const auto& line : lines)
    text += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return text;
}

/// Settings that must agree for a finished or partial job to be reused.
json job_identity(const FeatureSpec& spec, const std::string& fingerprint, int64_t items,
                  const ExtractOptions& options) {
  return {{"spec", to_json(spec)},
          {"items", items},
          {"items_sha256", fingerprint},
          {"shard_index", options.shard_index},
          {"shard_count", options.shard_count},
          {"dtype", to_string(options.dtype)},
          {"skip_bad", options.skip_bad}};
}

json identity_of_finished(const json& features_json) {
  return {{"spec", features_json.at("spec")},
          {"items", features_json.at("items")},
          {"items_sha256", features_json.at("items_sha256")},
          {"shard_index", features_json.at("shard").at("index")},
          {"shard_count", features_json.at("shard").at("count")},
          {"dtype", features_json.at("dtype")},
          {"skip_bad", features_json.value("skip_bad", false)}};
}

/// Journal of a features folder's commit (core/file_set_commit.h).
fs::path commit_journal(const fs::path& out) { return out / ".commit.json"; }

/// Moves a finished set written in `staging` (features.npy, manifest.jsonl, optional
/// skipped.jsonl, features.json) into `out` as one unit: a crash before the commit point
/// leaves the old set, a crash after it is finished by the next reader or run
/// (finish_features_commit). Removes `staging`.
void commit_staged_outputs(const fs::path& staging, const fs::path& out) {
  std::vector<FileMove> moves;
  for (const char* name : {"features.npy", "manifest.jsonl", "skipped.jsonl", "features.json"}) {
    const fs::path staged = staging / name;
    if (fs::exists(staged)) {
      moves.push_back({staged, out / name});
    } else {
      moves.push_back({std::nullopt, out / name});  // e.g. no skipped files this time
    }
  }
  commit_file_set(commit_journal(out), moves);
  fs::remove_all(staging);
}

/// Completes a commit that a crash interrupted, and drops the staging it came from.
void finish_features_commit(const fs::path& out) {
  if (!finish_interrupted_commit(commit_journal(out))) return;
  std::error_code ec;
  fs::remove_all(out / ".partial", ec);
  fs::remove_all(out / ".merging", ec);
}

/// Streams the row data of several .npy files (same dtype and width) into one file.
void concatenate_npy(const std::vector<fs::path>& parts, const fs::path& target, int64_t dim,
                     FeatureDtype dtype) {
  int64_t rows = 0;
  for (const auto& part : parts) {
    const auto header = read_npy_header(part);
    VTL_CHECK(header.dtype == dtype && header.shape.size() == 2 && header.shape[1] == dim,
              "{}: expected {} rows of width {}", part.string(), to_string(dtype), dim);
    const auto expected =
        static_cast<uintmax_t>(header.data_offset) +
        static_cast<uintmax_t>(header.shape[0] * dim) * (dtype == FeatureDtype::f16 ? 2u : 4u);
    VTL_CHECK(fs::file_size(part) >= expected,
              "{}: truncated .npy data ({} bytes, the header promises {})", part.string(),
              fs::file_size(part), expected);
    rows += header.shape[0];
  }
  const std::string header = npy_header(dtype, {rows, dim});
  write_file_atomically(target, [&](std::ostream& out) {
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& part : parts) {
      const auto part_header = read_npy_header(part);
      std::ifstream in(part, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(part_header.data_offset));
      out << in.rdbuf();
    }
  });
}

}  // namespace

std::pair<int, int> parse_shard(const std::string& text) {
  int index = -1, count = 0;
  char extra = 0;
  VTL_CHECK(std::sscanf(text.c_str(), "%d/%d%c", &index, &count, &extra) == 2 && count >= 1 &&
                index >= 0 && index < count,
            "invalid shard '{}': expected i/n with 0 <= i < n, e.g. 0/4", text);
  return {index, count};
}

std::string items_fingerprint(const std::vector<ImageItem>& items) {
  std::string text;
  for (const auto& item : items) {
    text += item.path.string();
    text += '\t';
    text += std::to_string(item.label);
    text += '\n';
  }
  return sha256_hex(text);
}

ExtractResult extract_features(FeatureExtractor& extractor, const std::vector<ImageItem>& items,
                               const fs::path& out, const ExtractOptions& options) {
  VTL_CHECK(!items.empty(), "no images to extract features from");
  VTL_CHECK(options.shard_count >= 1 && options.shard_index >= 0 &&
                options.shard_index < options.shard_count,
            "invalid shard {}/{}: expected 0 <= index < count", options.shard_index,
            options.shard_count);
  VTL_CHECK(options.batch_size > 0, "batch size must be positive");
  VTL_CHECK(options.chunk_rows > 0, "chunk size must be positive");
  const int64_t total = static_cast<int64_t>(items.size());
  const int64_t begin = options.shard_index * total / options.shard_count;
  const int64_t end = (options.shard_index + 1) * total / options.shard_count;
  const int64_t count = end - begin;
  const FeatureSpec& spec = extractor.spec();
  const std::string fingerprint = items_fingerprint(items);
  const json identity = job_identity(spec, fingerprint, total, options);
  fs::create_directories(out);
  finish_features_commit(out);
  remove_stale_temporaries(out);

  ExtractResult result;
  if (fs::exists(out / "features.json")) {
    const json finished = read_json_file(out / "features.json");
    json finished_identity;
    try {
      finished_identity = identity_of_finished(finished);
    } catch (const json::exception&) {
    }
    if (finished_identity == identity) {
      result.rows = finished.at("rows").get<int64_t>();
      result.resumed_items = count;
      result.skipped = finished.value("skipped", int64_t{0});
      return result;
    }
    VTL_CHECK(options.overwrite,
              "{} already holds features made from other images or settings; pass "
              "--overwrite to replace them or choose another output folder",
              out.string());
    // The old set stays until the new one is complete (a failed run, e.g. on a full disk,
    // loses nothing); see the commit below.
  }

  const fs::path partial = out / ".partial";
  // The chunks done hold the same rows with or without --skip-bad (a run stopped by a bad
  // file continues with --skip-bad from there).
  json partial_identity = identity;
  partial_identity.erase("skip_bad");
  const json state = {{"identity", partial_identity}, {"chunk_rows", options.chunk_rows}};
  if (fs::exists(partial / "state.json")) {
    if (read_json_file(partial / "state.json") != state) {
      VTL_CHECK(options.overwrite,
                "{} holds an unfinished extraction with other images or settings; pass "
                "--overwrite to discard it or choose another output folder",
                out.string());
      fs::remove_all(partial);
    }
  }
  fs::create_directories(partial);
  remove_stale_temporaries(partial);
  if (!fs::exists(partial / "state.json"))
    write_file_atomically(partial / "state.json", state.dump(2) + "\n");

  const int64_t chunks = (count + options.chunk_rows - 1) / options.chunk_rows;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t first = begin + chunk * options.chunk_rows;
    const int64_t last = std::min(end, first + options.chunk_rows);
    const fs::path npy_path = partial / chunk_name(chunk, ".npy");
    const fs::path lines_path = partial / chunk_name(chunk, ".jsonl");
    if (fs::exists(npy_path) && fs::exists(lines_path)) {
      result.resumed_items += last - first;
      continue;
    }
    std::vector<json> lines;
    std::vector<torch::Tensor> rows;
    std::vector<fs::path> paths;
    for (int64_t i = first; i < last; ++i) paths.push_back(items[i].path);
    data::BatchReader reader(std::move(paths), size_t(options.batch_size),
                             [&](const fs::path& path) {
                               check_name_is_utf8(path);
                               return extractor.load(path);
                             });
    while (auto batch = reader.next()) {
      for (size_t b = 0; b < batch->size(); ++b) {
        const int64_t i = first + int64_t(batch->first + b);
        if (batch->errors[b].empty()) {
          lines.push_back(manifest_line(i, items[i]));
          continue;
        }
        VTL_CHECK(options.skip_bad,
                  "{} (with --skip-bad such files are listed in skipped.jsonl and the others "
                  "extracted; this run's finished images are kept for it)",
                  batch->errors[b]);
        lines.push_back(
            {{"item", i}, {"path", items[i].path.string()}, {"skipped", batch->errors[b]}});
      }
      if (batch->readable() > 0) rows.push_back(extractor.embed(batch->stacked()));
    }
    torch::Tensor features = rows.empty() ? torch::zeros({0, spec.dim}) : torch::cat(rows);
    if (options.dtype == FeatureDtype::f16) features = features.to(torch::kHalf);
    write_file_atomically(lines_path, lines_text(lines));
    write_npy(npy_path, features);  // the chunk's commit point
    result.computed_items += last - first;
    if (options.progress) options.progress(last - begin, count);
  }

  // Assemble: manifest and skipped list from the chunk lines, rows streamed from chunks.
  std::vector<json> manifest, skipped;
  std::vector<fs::path> parts;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    for (auto& line : read_jsonl(partial / chunk_name(chunk, ".jsonl"))) {
      (line.contains("skipped") ? skipped : manifest).push_back(std::move(line));
    }
    parts.push_back(partial / chunk_name(chunk, ".npy"));
  }
  // Everything that takes disk space is written inside .partial first; the commit below
  // only renames.
  concatenate_npy(parts, partial / "features.npy", spec.dim, options.dtype);
  write_file_atomically(partial / "manifest.jsonl", lines_text(manifest));
  if (!skipped.empty()) write_file_atomically(partial / "skipped.jsonl", lines_text(skipped));
  json features_json = {{"format", kFormat},
                        {"version", 1},
                        {"spec", to_json(spec)},
                        {"rows", static_cast<int64_t>(manifest.size())},
                        {"dtype", to_string(options.dtype)},
                        {"classes", options.classes},
                        {"items", total},
                        {"items_sha256", fingerprint},
                        {"shard",
                         {{"index", options.shard_index},
                          {"count", options.shard_count},
                          {"begin", begin},
                          {"end", end}}},
                        {"skip_bad", options.skip_bad},
                        {"skipped", static_cast<int64_t>(skipped.size())}};
  write_file_atomically(partial / "features.json", features_json.dump(2) + "\n");
  commit_staged_outputs(partial, out);
  result.rows = static_cast<int64_t>(manifest.size());
  result.skipped = static_cast<int64_t>(skipped.size());
  return result;
}

void check_finite_rows(const torch::Tensor& rows, const std::string& source) {
  const auto bad = torch::isfinite(rows.reshape({rows.size(0), -1})).all(1).logical_not();
  const int64_t count = bad.sum().item<int64_t>();
  if (count == 0) return;
  const int64_t first = bad.nonzero()[0][0].item<int64_t>();
  fail(
      "{}: row {} holds NaN or infinite values ({} of {} rows do); these vectors cannot be "
      "used (extract the features again)",
      source, first, count, rows.size(0));
}

FeatureSet load_features(const fs::path& dir) {
  std::error_code ec;
  VTL_CHECK(fs::exists(dir, ec), "{}: no such features folder (vtl extract writes one)",
            dir.string());
  VTL_CHECK(fs::is_directory(dir, ec),
            "{}: a file, not a features folder (give the folder vtl extract wrote)", dir.string());
  finish_features_commit(dir);
  const fs::path json_path = dir / "features.json";
  VTL_CHECK(fs::exists(json_path),
            "{} is not a finished features folder: features.json is missing (run vtl extract, "
            "or rerun it to finish an interrupted extraction)",
            dir.string());
  FeatureSet set;
  set.json = read_json_file(json_path);
  VTL_CHECK(set.json.is_object() && set.json.value("format", json()) == kFormat,
            "{}: not a vtl features file", json_path.string());
  int64_t rows = 0;
  try {
    set.spec = feature_spec_from_json(set.json.at("spec"), json_path.string());
    set.classes = set.json.value("classes", std::vector<std::string>{});
    rows = set.json.at("rows").get<int64_t>();
  } catch (const json::exception& e) {
    fail("{}: malformed features description: {}", json_path.string(), e.what());
  }
  set.features = read_npy(dir / "features.npy").to(torch::kFloat32);
  VTL_CHECK(set.features.size(0) == rows && set.features.size(1) == set.spec.dim,
            "{}: holds {} x {} values but features.json says {} x {}",
            (dir / "features.npy").string(), set.features.size(0), set.features.size(1), rows,
            set.spec.dim);
  check_finite_rows(set.features, (dir / "features.npy").string());
  const auto lines = read_jsonl(dir / "manifest.jsonl");
  VTL_CHECK(static_cast<int64_t>(lines.size()) == rows, "{}: {} lines for {} feature rows",
            (dir / "manifest.jsonl").string(), lines.size(), rows);
  for (const auto& line : lines) {
    ImageItem item;
    try {
      item.path = line.at("path").get<std::string>();
      item.label = line.at("label").is_null() ? -1 : line.at("label").get<int64_t>();
      item.class_name = line.value("class", "");
      set.items.push_back(line.at("item").get<int64_t>());
    } catch (const json::exception& e) {
      fail("{}: malformed manifest line: {}", (dir / "manifest.jsonl").string(), e.what());
    }
    set.rows.push_back(std::move(item));
  }
  return set;
}

void merge_feature_shards(const std::vector<fs::path>& shards, const fs::path& out) {
  VTL_CHECK(!shards.empty(), "no shard folders to merge");
  std::vector<std::pair<json, fs::path>> parts;
  for (const auto& dir : shards) {
    finish_features_commit(dir);
    VTL_CHECK(fs::exists(dir / "features.json"),
              "{} is not a finished features folder (features.json is missing)", dir.string());
    parts.emplace_back(read_json_file(dir / "features.json"), dir);
  }
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
    return a.first.at("shard").at("index").template get<int>() <
           b.first.at("shard").at("index").template get<int>();
  });
  const json& first = parts.front().first;
  const int count = first.at("shard").at("count").get<int>();
  VTL_CHECK(static_cast<int>(parts.size()) == count,
            "extraction was split into {} shards but {} folders were given", count, parts.size());
  for (int i = 0; i < count; ++i) {
    const json& part = parts[i].first;
    const std::string name = parts[i].second.string();
    VTL_CHECK(
        part.at("shard").at("index").get<int>() == i, "shard {} of {} is missing{}", i, count,
        i > 0 && part.at("shard").at("index") == parts[i - 1].first.at("shard").at("index")
            ? fmt::format(" ({} holds shard {}, as does {})", name,
                          part.at("shard").at("index").get<int>(), parts[i - 1].second.string())
            : std::string());
    VTL_CHECK(part.at("shard").at("count").get<int>() == count,
              "{}: belongs to a split into {} shards, not {}", name,
              part.at("shard").at("count").get<int>(), count);
    VTL_CHECK(part.at("items_sha256") == first.at("items_sha256"),
              "{}: was extracted from another image list than {}", name,
              parts.front().second.string());
    const std::string mismatch =
        spec_mismatch(feature_spec_from_json(part.at("spec"), name),
                      feature_spec_from_json(first.at("spec"), parts.front().second.string()));
    VTL_CHECK(mismatch.empty() && part.at("dtype") == first.at("dtype"),
              "{}: made with other settings than {} ({})", name, parts.front().second.string(),
              mismatch.empty() ? "dtype" : mismatch);
  }
  const auto spec = feature_spec_from_json(first.at("spec"), "features.json");
  const auto dtype = parse_feature_dtype(first.at("dtype").get<std::string>());
  // Written beside the old outputs first (a failed merge, e.g. a full disk, keeps them).
  finish_features_commit(out);
  const fs::path staging = out / ".merging";
  fs::remove_all(staging);
  fs::create_directories(staging);
  std::string manifest, skipped;
  std::vector<fs::path> npys;
  int64_t rows = 0, skipped_count = 0;
  for (const auto& [part, dir] : parts) {
    manifest += read_file(dir / "manifest.jsonl");
    if (fs::exists(dir / "skipped.jsonl")) skipped += read_file(dir / "skipped.jsonl");
    npys.push_back(dir / "features.npy");
    rows += part.at("rows").get<int64_t>();
    skipped_count += part.value("skipped", int64_t{0});
  }
  concatenate_npy(npys, staging / "features.npy", spec.dim, dtype);
  write_file_atomically(staging / "manifest.jsonl", manifest);
  if (!skipped.empty()) write_file_atomically(staging / "skipped.jsonl", skipped);
  json merged = first;
  merged["rows"] = rows;
  merged["skipped"] = skipped_count;
  merged["shard"] = {{"index", 0}, {"count", 1}, {"begin", 0}, {"end", first.at("items")}};
  write_file_atomically(staging / "features.json", merged.dump(2) + "\n");
  fs::remove_all(out / ".partial");
  commit_staged_outputs(staging, out);
}

ExtractResult extract_features_distributed(FeatureExtractor& extractor,
                                           const std::vector<ImageItem>& items, const fs::path& out,
                                           ExtractOptions options, dist::ProcessGroup& group) {
  VTL_CHECK(options.shard_count == 1, "--distributed splits the images itself; drop --shard");
  // Rank 0 decides whether `out` may be written, so that every rank stops alike.
  std::string refusal;
  if (group.is_writer() && fs::exists(out / "features.json") && !options.overwrite)
    refusal = fmt::format(
        "{} already holds features; pass --overwrite to replace them or choose another output "
        "folder",
        out.string());
  refusal = group.broadcast_bytes(refusal);
  VTL_CHECK(refusal.empty(), "{}", refusal);

  const int ranks = group.size();
  const fs::path shards = out / ".ranks";
  auto shard_dir = [&](int r) { return shards / fmt::format("{}-of-{}", r, ranks); };
  options.shard_index = group.rank();
  options.shard_count = ranks;
  if (!group.is_writer()) options.progress = nullptr;
  ExtractResult result = extract_features(extractor, items, shard_dir(group.rank()), options);
  group.wait_for_all();  // ranks finish their shards at different times
  fault_point("distributed-extract:shard-done");
  json outcome = {{"error", ""}, {"rows", 0}};
  if (group.is_writer()) {
    try {
      std::vector<fs::path> parts;
      for (int r = 0; r < ranks; ++r) parts.push_back(shard_dir(r));
      merge_feature_shards(parts, out);
      fs::remove_all(shards);
      outcome["rows"] = read_json_file(out / "features.json").at("rows");
    } catch (const std::exception& e) {
      outcome["error"] = std::string(e.what()).empty() ? "merging the shards failed" : e.what();
    }
  }
  std::string told = outcome.dump();
  try {
    told = group.broadcast_bytes(told);
  } catch (const Error&) {
    // A rank gone after the merge (killed once its shard was done) changes nothing in rank
    // 0's complete result: rank 0 reports it rather than an error.
    if (!group.is_writer() || !outcome.at("error").get<std::string>().empty()) throw;
  }
  outcome = json::parse(told);
  VTL_CHECK(outcome.at("error").get<std::string>().empty(), "{}",
            outcome.at("error").get<std::string>());
  result.rows = outcome.at("rows").get<int64_t>();
  return result;
}

}  // namespace vtl::embed
