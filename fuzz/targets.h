#pragma once
// Fuzz targets: one function per parser of outside data (weights files, feature matrices,
// the JSON descriptions vtl reads back, images, HTTP uploads). Each takes arbitrary bytes
// and feeds them to the parser the way vtl meets them (as a file, an upload, a request).
//
// Contract of every target: it returns `accepted` when the parser took the input,
// `rejected` when the parser refused it with vtl::Error (the expected answer to bad
// input). Anything else -- another exception type, a crash, a sanitizer report -- is a bug
// and escapes the target. Targets keep state only in their own scratch folder and may be
// called any number of times, in any order, from one thread.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "vtl/core/error.h"

namespace vtl::fuzz {

enum class Outcome { accepted, rejected };

/// weights::load_pth on a file holding the input.
Outcome fuzz_pth(const uint8_t* data, size_t size);
/// weights::load_safetensors on a file holding the input.
Outcome fuzz_safetensors(const uint8_t* data, size_t size);
/// embed::read_npy on a file holding the input.
Outcome fuzz_npy(const uint8_t* data, size_t size);
/// The JSON files vtl reads from its own folders; data[0] picks the reader (see
/// json_target.cpp), the rest is the file.
Outcome fuzz_json(const uint8_t* data, size_t size);
/// data::read_image_list, data::read_csv_list (and, with a split column,
/// data::open_training_split) on a file
/// holding the input, beside two small images img/a.png and img/b.png.
Outcome fuzz_csv(const uint8_t* data, size_t size);
/// data::decode_image_rgb on the input as an upload, 4 megapixels at most.
Outcome fuzz_image(const uint8_t* data, size_t size);
#if defined(VTL_HAVE_SERVE)
/// The input as raw bytes of an HTTP connection to a SearchServer over a small index.
Outcome fuzz_upload(const uint8_t* data, size_t size);
#endif

struct FuzzTarget {
  const char* name;
  Outcome (*run)(const uint8_t* data, size_t size);
};

/// Every target, by name ("pth", "safetensors", "npy", "json", "csv", "image", "upload").
const std::vector<FuzzTarget>& fuzz_targets();

/// The target called `name`, or nullptr.
const FuzzTarget* find_fuzz_target(std::string_view name);

/// Runs `parse`; `accepted` when it returns, `rejected` when it throws vtl::Error. Other
/// exceptions propagate.
template <typename Parse>
Outcome accept_or_reject(Parse&& parse) {
  try {
    parse();
    return Outcome::accepted;
  } catch (const Error&) {
    return Outcome::rejected;
  }
}

}  // namespace vtl::fuzz
