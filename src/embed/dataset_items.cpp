#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/embed/extract.h"

namespace vtl::embed {
namespace fs = std::filesystem;

std::vector<ImageItem> dataset_items(const fs::path& data, std::vector<std::string>* classes) {
  const auto dataset = data::open_dataset(data);
  std::vector<ImageItem> items;
  items.reserve(dataset.samples.size());
  for (const auto& sample : dataset.samples) {
    items.push_back({fs::absolute(sample.path).lexically_normal(), sample.label,
                     dataset.classes.at(static_cast<size_t>(sample.label))});
  }
  if (classes) *classes = dataset.classes;
  return items;
}

}  // namespace vtl::embed
