#include "vtl/weights/store.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <sys/stat.h>

#include "download.h"
#include "vtl/core/atomic_file.h"
#include "vtl/core/error.h"
#include "vtl/core/runtime.h"
#include "vtl/core/sha256.h"
#include "vtl/weights/weights_file.h"

namespace vtl::weights {
namespace {

namespace fs = std::filesystem;

/// Removes a temporary file unless released.
class TemporaryFile {
 public:
  explicit TemporaryFile(fs::path path) : path_(std::move(path)) {}
  ~TemporaryFile() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

/// Checks a file that sits at `temporary` before it becomes `entry`'s stored file.
/// `storing`: the file is on its way into the store (fetch, import), not already there.
void check_content(const fs::path& temporary, const std::string& sha256,
                   const PretrainedWeights& entry, const std::string& origin,
                   const WeightsCheck& check, bool storing = true) {
  if (!entry.sha256_prefix.empty()) {
    VTL_CHECK(sha256.compare(0, entry.sha256_prefix.size(), entry.sha256_prefix) == 0,
              "{} is not the published file of {}: its SHA-256 is {}..., expected {}... (corrupt "
              "or incomplete download, or another file){}",
              origin, entry.name, sha256.substr(0, 16), entry.sha256_prefix,
              storing ? "; nothing was stored" : "");
    return;
  }
  // No published hash: at least it must be a weights file for the architecture.
  StateDict state_dict;
  try {
    state_dict = load_weights_file(temporary);
  } catch (const Error& e) {
    fail("{} is not usable as {}: {}", origin, entry.name, e.what());
  }
  if (check) check(state_dict, entry, origin);
}

std::string store_target_check(const PretrainedWeights& entry) {
  VTL_CHECK(entry.file_name.find('/') == std::string::npos && !entry.file_name.empty(),
            "invalid file name '{}' for {}", entry.file_name, entry.name);
  return entry.file_name;
}

}  // namespace

fs::path weights_dir() { return vtl_home() / "weights"; }

void check_stored_weights(const PretrainedWeights& entry, const fs::path& path) {
  if (entry.sha256_prefix.empty()) return;
  struct stat info {};
  VTL_CHECK(::stat(path.c_str(), &info) == 0, "cannot read {}: {}", path.string(),
            std::strerror(errno));
  // This version of the file: its size, inode and time of last change (which no copy
  // or touch can set back).
  const std::string version = fmt::format("{} {} {}.{:09d}", info.st_size, info.st_ino,
                                          info.st_ctim.tv_sec, info.st_ctim.tv_nsec);
  const fs::path record = weights_dir() / ".checked" / entry.file_name;
  std::error_code ec;
  if (fs::is_regular_file(record, ec)) {
    try {
      if (read_file(record) == version + " " + entry.sha256_prefix + "\n") return;
    } catch (const Error&) {
    }
  }
  const std::string hash = sha256_file(path);
  VTL_CHECK(hash.compare(0, entry.sha256_prefix.size(), entry.sha256_prefix) == 0,
            "{} is not the published file of {}: its SHA-256 is {}..., expected {}... (changed "
            "or damaged since it was stored); delete it and run `vtl weights fetch {}`, or "
            "`vtl weights import FILE --as {}`",
            path.string(), entry.name, hash.substr(0, 16), entry.sha256_prefix, entry.name,
            entry.name);
  try {
    write_file_atomically(record, version + " " + entry.sha256_prefix + "\n");
  } catch (const Error&) {
    // A read-only store: the file is hashed again next time.
  }
}

std::optional<fs::path> locate_weights(const PretrainedWeights& entry) {
  const auto path = weights_dir() / store_target_check(entry);
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  return std::nullopt;
}

std::optional<fs::path> locate_weights(const std::string& name) {
  return locate_weights(find_weights(name));
}

std::string download_url(const PretrainedWeights& entry, const FetchOptions& options) {
  std::string base = options.base_url;
  if (base.empty()) {
    if (const char* env = std::getenv("VTL_WEIGHTS_URL"); env && *env) base = env;
  }
  if (base.empty()) return entry.url;
  VTL_CHECK(base.rfind("http://", 0) == 0 || base.rfind("https://", 0) == 0,
            "weights mirror {}: give an http:// or https:// address", base);
  while (!base.empty() && base.back() == '/') base.pop_back();
  const auto scheme = entry.url.find("://");
  VTL_CHECK(scheme != std::string::npos, "catalogue URL of {} has no scheme: {}", entry.name,
            entry.url);
  const auto path_start = entry.url.find('/', scheme + 3);
  return base + (path_start == std::string::npos ? "/" : entry.url.substr(path_start));
}

fs::path fetch_weights(const std::string& name, const FetchOptions& options) {
  return fetch_weights(find_weights(name), options);
}

fs::path fetch_weights(const PretrainedWeights& entry, const FetchOptions& options) {
  if (auto present = locate_weights(entry)) return *present;
  const std::string url = download_url(entry, options);
#ifndef VTL_HAVE_CURL
  fail(
      "this vtl was built without libcurl, so it cannot download {}; download {} yourself and "
      "run `vtl weights import FILE --as {}`",
      entry.name, url, entry.name);
#else
  const fs::path target = weights_dir() / entry.file_name;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  VTL_CHECK(!ec, "cannot create the weights store {}: {}", target.parent_path().string(),
            ec.message());
  TemporaryFile temporary(temporary_sibling(target));
  Sha256 hasher;
  {
    std::unique_ptr<std::FILE, decltype(&std::fclose)> out(
        std::fopen(temporary.path().c_str(), "wb"), std::fclose);
    VTL_CHECK(out, "cannot write {}: {}", temporary.path().string(), std::strerror(errno));
    detail::DownloadSettings settings;
    settings.progress = options.progress;
    settings.connect_timeout_s = options.connect_timeout_s;
    settings.stall_timeout_s = options.stall_timeout_s;
    settings.label = entry.file_name;
    settings.unreachable_hint = fmt::format(
        "without network access, download it on a machine that has it and run `vtl weights "
        "import {} --as {}` here{}",
        entry.file_name, entry.name,
        url == entry.url ? ", or point VTL_WEIGHTS_URL (or --base-url) at a mirror" : "");
    detail::download(url, out.get(), hasher, settings);
    VTL_CHECK(std::fflush(out.get()) == 0, "cannot write {}: {} (disk full?)",
              temporary.path().string(), std::strerror(errno));
  }
  check_content(temporary.path(), hasher.hex(), entry, "the download from " + url, options.check);
  commit_file(temporary.path(), target);
  temporary.release();
  return target;
#endif
}

fs::path import_weights(const fs::path& file, const std::string& as_name,
                        const WeightsCheck& check) {
  VTL_CHECK(!fs::is_directory(file), "cannot import {}: it is a folder; give the weights file",
            file.string());
  VTL_CHECK(fs::is_regular_file(file), "cannot import {}: no such file", file.string());
  if (!as_name.empty()) return import_weights(file, find_weights(as_name), check);
  const std::string base = file.filename().string();
  for (const auto& entry : catalogue()) {
    if (entry.file_name == base) return import_weights(file, entry, check);
  }
  const std::string hash = sha256_file(file);
  for (const auto& entry : catalogue()) {
    if (!entry.sha256_prefix.empty() &&
        hash.compare(0, entry.sha256_prefix.size(), entry.sha256_prefix) == 0) {
      return import_weights(file, entry, check);
    }
  }
  fail(
      "cannot tell which catalogue entry {} is (its name and SHA-256 {}... match none); pass "
      "--as NAME (see `vtl weights list`)",
      file.string(), hash.substr(0, 16));
}

fs::path import_weights(const fs::path& file, const PretrainedWeights& entry,
                        const WeightsCheck& check) {
  const fs::path target = weights_dir() / store_target_check(entry);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  VTL_CHECK(!ec, "cannot create the weights store {}: {}", target.parent_path().string(),
            ec.message());
  if (fs::exists(target) && fs::equivalent(file, target, ec)) return target;
  TemporaryFile temporary(temporary_sibling(target));
  Sha256 hasher;
  {
    std::ifstream in(file, std::ios::binary);
    VTL_CHECK(in, "cannot read {}: {}", file.string(), std::strerror(errno));
    std::ofstream out(temporary.path(), std::ios::binary | std::ios::trunc);
    VTL_CHECK(out, "cannot write {}: {}", temporary.path().string(), std::strerror(errno));
    std::vector<char> buffer(1 << 20);
    while (in) {
      in.read(buffer.data(), buffer.size());
      const auto n = in.gcount();
      if (n <= 0) break;
      hasher.update(buffer.data(), static_cast<size_t>(n));
      out.write(buffer.data(), n);
    }
    VTL_CHECK(in.eof(), "error while reading {}", file.string());
    out.flush();
    VTL_CHECK(out, "cannot write {} (disk full?)", temporary.path().string());
  }
  check_content(temporary.path(), hasher.hex(), entry, file.string(), check);
  commit_file(temporary.path(), target);
  temporary.release();
  return target;
}

std::vector<VerifyResult> verify_store(const WeightsCheck& check) {
  std::vector<VerifyResult> results;
  const fs::path dir = weights_dir();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return results;
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    if (item.is_regular_file()) files.push_back(item.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    VerifyResult result;
    result.file_name = path.filename().string();
    const PretrainedWeights* entry = nullptr;
    for (const auto& e : catalogue()) {
      if (e.file_name == result.file_name) entry = &e;
    }
    if (!entry) {
      result.message = result.file_name.find(".tmp-") != std::string::npos
                           ? "left over from an interrupted download; safe to delete"
                           : "not in the catalogue";
      results.push_back(result);
      continue;
    }
    result.name = entry->name;
    try {
      const std::string hash = entry->sha256_prefix.empty() ? "" : sha256_file(path);
      check_content(path, hash, *entry, path.string(), check, /*storing=*/false);
      result.status = VerifyResult::Status::ok;
      result.message = entry->sha256_prefix.empty() ? "parses as weights (no published hash)"
                                                    : "SHA-256 matches " + entry->sha256_prefix;
    } catch (const Error& e) {
      result.status = VerifyResult::Status::corrupt;
      result.message = e.what();
    }
    results.push_back(result);
  }
  return results;
}

}  // namespace vtl::weights
