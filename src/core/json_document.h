#pragma once
// The description files vtl writes and reads back (run.json, split.jsonl, features.json,
// manifest.jsonl, index.json, model.json, classifier.json) are outside data once on disk.
// They are parsed through here so that their integer fields, read with get<int>() or
// value(key, int), never meet a float outside int's range: nlohmann converts floats with
// a plain cast, which is undefined behaviour there. No field vtl writes holds such a float.

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "vtl/core/error.h"

namespace vtl {

/// Throws vtl::Error naming `source` when `document` holds a float that is not finite or
/// not within +-2^31.
inline void check_json_numbers(const nlohmann::json& document, const std::string& source) {
  if (document.is_number_float()) {
    const double value = document.get<double>();
    VTL_CHECK(std::isfinite(value) && std::fabs(value) < 2147483648.0,
              "{}: the number {} is out of range for any field of this file", source,
              document.dump());
    return;
  }
  if (document.is_structured()) {
    for (const auto& item : document) check_json_numbers(item, source);
  }
}

/// json::parse plus check_json_numbers; malformed JSON is a vtl::Error naming `source`.
inline nlohmann::json parse_json_document(const std::string& text, const std::string& source) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed JSON: {}", source, e.what());
  }
  check_json_numbers(document, source);
  return document;
}

}  // namespace vtl
