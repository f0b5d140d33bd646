#pragma once
// Small text helpers for messages a user reads and options a user types.

#include <string>
#include <vector>

namespace vtl {

/// Levenshtein edit distance.
size_t edit_distance(const std::string& a, const std::string& b);

/// "; did you mean 'resnet50' or 'resnet101'?" for the candidates closest to `name`,
/// or "" when none is close.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

/// "1,234,567"
std::string with_thousands(long long value);

/// Whether `text` begins with `prefix`.
bool starts_with(const std::string& text, const std::string& prefix);

/// ASCII letters in lower case ("Filename" -> "filename", ".PNG" -> ".png").
std::string lowercase(std::string text);

/// "a,b,,c" -> {"a", "b", "c"}: the non-empty parts of a `separator`-separated list.
std::vector<std::string> split_list(const std::string& text, char separator = ',');

}  // namespace vtl
