#include "vtl/core/text.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace vtl {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& candidate : candidates) {
    size_t distance = edit_distance(name, candidate);
    bool prefix = !name.empty() && candidate.rfind(name, 0) == 0;
    if (prefix) distance = std::min<size_t>(distance, 1);
    if (distance <= std::max<size_t>(2, name.size() / 3)) scored.emplace_back(distance, candidate);
  }
  if (scored.empty()) return "";
  std::sort(scored.begin(), scored.end());
  std::string text = "; did you mean '" + scored[0].second + "'";
  for (size_t i = 1; i < std::min<size_t>(scored.size(), 3); ++i) {
    text +=
        (i + 1 == std::min<size_t>(scored.size(), 3) ? " or '" : ", '") + scored[i].second + "'";
  }
  return text + "?";
}

std::string with_thousands(long long value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::vector<std::string> split_list(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return text;
}

}  // namespace vtl
