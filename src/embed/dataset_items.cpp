#include "vtl/core/error.h"
#include "vtl/data/dataset.h"
#include "vtl/data/image.h"
#include "vtl/embed/extract.h"

namespace vtl::embed {
namespace fs = std::filesystem;

std::vector<ImageItem> dataset_items(const fs::path& data, std::vector<std::string>* classes,
                                     std::vector<data::SkippedFile>* left_out,
                                     const data::LabelSource& source) {
  std::vector<ImageItem> items;
  std::error_code ec;
  if (fs::is_directory(data, ec) && !data::has_subfolders(data) && source.empty()) {
    for (const auto& path : data::list_images(data, left_out))
      items.push_back({fs::absolute(path).lexically_normal(), -1, ""});
    VTL_CHECK(!items.empty(),
              "{}: no images (jpg, jpeg, png, bmp, webp, tif, gif) and no class folders",
              data.string());
    if (classes) classes->clear();
    return items;
  }
  if (fs::is_regular_file(data, ec) && data::has_image_extension(data) && source.empty()) {
    // One image (`vtl index add IDX photo.jpg`): unlabelled.
    items.push_back({fs::absolute(data).lexically_normal(), -1, ""});
    if (classes) classes->clear();
    return items;
  }
  if (fs::is_regular_file(data, ec) && source.name_pattern.empty() &&
      !data::csv_list_is_labelled(data, source)) {
    // A CSV that only lists images (Kaggle's test.csv of ids): unlabelled, in its order.
    for (const auto& path : data::read_image_list(data, left_out, source.path_column))
      items.push_back({fs::absolute(path).lexically_normal(), -1, ""});
    VTL_CHECK(!items.empty(), "{}: none of the images it lists exists", data.string());
    if (classes) classes->clear();
    return items;
  }
  const auto dataset = data::open_dataset(data, {}, source);
  items.reserve(dataset.samples.size());
  for (const auto& sample : dataset.samples) {
    items.push_back({fs::absolute(sample.path).lexically_normal(), sample.label,
                     dataset.classes.at(static_cast<size_t>(sample.label))});
  }
  if (classes) *classes = dataset.classes;
  if (left_out) left_out->insert(left_out->end(), dataset.skipped.begin(), dataset.skipped.end());
  return items;
}

}  // namespace vtl::embed
