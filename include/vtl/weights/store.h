#pragma once
// The local weights store: `$VTL_HOME/weights/<file_name>` (file names as published, e.g.
// resnet50-0676ba61.pth). Files get there by fetch (download) or import (a file the user
// already has); both write to a temporary file beside the target, check the SHA-256
// prefix from the catalogue and rename into place only on success, so the store never
// holds a partial or corrupt file.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vtl/core/sha256.h"
#include "vtl/weights/catalogue.h"
#include "vtl/weights/state_dict.h"

namespace vtl::weights {

/// Extra check of a file whose catalogue entry has no SHA-256 prefix (e.g. Hugging Face
/// files): called with the parsed tensors; throws vtl::Error when they do not fit the
/// entry's architecture. models::check_weights_for_architecture is the usual one.
using WeightsCheck = std::function<void(const StateDict& state_dict, const PretrainedWeights& entry,
                                        const std::filesystem::path& file)>;

struct FetchOptions {
  /// Replaces scheme and host of the entry's URL (a mirror): "http://127.0.0.1:8000" turns
  /// https://download.pytorch.org/models/x.pth into http://127.0.0.1:8000/models/x.pth.
  /// Empty: $VTL_WEIGHTS_URL if set, else the published URL.
  std::string base_url;
  /// Progress (bytes and percent) on stderr.
  bool progress = true;
  /// Seconds allowed to connect, and to go without any byte arriving.
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;
  WeightsCheck check;
};

/// `$VTL_HOME/weights`.
std::filesystem::path weights_dir();

/// Path of the entry's file in the store, if present.
std::optional<std::filesystem::path> locate_weights(const PretrainedWeights& entry);
/// Same for a catalogue name or architecture name (unknown names throw vtl::Error).
std::optional<std::filesystem::path> locate_weights(const std::string& name);

/// Throws vtl::Error (saying how to replace it) unless `path`, the stored file of `entry`,
/// has the entry's published SHA-256 prefix. Each version of the file is hashed once: its
/// size, inode and change time are recorded under `weights_dir()/.checked/` and a file
/// changed since is hashed again. Entries without a published prefix pass (their files
/// were parsed as weights when stored).
void check_stored_weights(const PretrainedWeights& entry, const std::filesystem::path& path);

/// The URL fetch downloads `entry` from, after the base-URL override.
std::string download_url(const PretrainedWeights& entry, const FetchOptions& options = {});

/// Downloads the entry into the store unless present; returns its path. HTTP errors,
/// timeouts, truncated transfers and hash mismatches throw vtl::Error and leave nothing
/// behind. Without libcurl (VTL_HAVE_CURL unset) throws vtl::Error explaining how to
/// download the file by hand and import it.
std::filesystem::path fetch_weights(const PretrainedWeights& entry,
                                    const FetchOptions& options = {});
std::filesystem::path fetch_weights(const std::string& name, const FetchOptions& options = {});

/// Copies `file` into the store as the entry `as_name` (catalogue or architecture name).
/// An empty `as_name` picks the entry by file name, else by SHA-256 prefix. The hash is
/// checked (entries without a prefix are parsed as weights and given to `check`).
/// Returns the stored path.
std::filesystem::path import_weights(const std::filesystem::path& file,
                                     const std::string& as_name = "",
                                     const WeightsCheck& check = {});
std::filesystem::path import_weights(const std::filesystem::path& file,
                                     const PretrainedWeights& entry,
                                     const WeightsCheck& check = {});

struct VerifyResult {
  enum class Status { ok, corrupt, unknown };
  std::string file_name;
  std::string name;  ///< catalogue entry, empty for unknown files
  Status status = Status::unknown;
  std::string message;  ///< what was checked or what is wrong
};

/// Re-checks every file in the store against the catalogue (hash, or parse for entries
/// without one); files the catalogue does not know are reported as unknown.
std::vector<VerifyResult> verify_store(const WeightsCheck& check = {});

/// Lower-case hex SHA-256 of a file (vtl/core/sha256.h). Throws vtl::Error naming the file.
using vtl::sha256_file;

}  // namespace vtl::weights
