// CSV image lists (`vtl train data.csv`, `vtl predict list.csv`): users export them from
// spreadsheets and pandas, so they are outside data. read_csv_list must answer any bytes
// with a dataset or a vtl::Error naming the file and line; the split of a list with a split
// column (open_training_split), read_image_list and a sample submission's reading
// (read_image_list_as_written with a header) and a list read with chosen columns likewise.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "input_file.h"
#include "targets.h"
#include "vtl/data/dataset.h"
#include "vtl/data/splits.h"

namespace vtl::fuzz {

Outcome fuzz_csv(const uint8_t* data, size_t size) {
  // Images the seed lists name (img/a.png, img/b.png), next to the list, made once.
  static const bool images = [] {
    std::vector<uchar> png;
    cv::imencode(".png", cv::Mat(4, 6, CV_8UC3, cv::Scalar(10, 200, 90)), png);
    write_input("img/a.png", png.data(), png.size());
    write_input("img/b.png", png.data(), png.size());
    return true;
  }();
  (void)images;
  const auto path = write_input("list.csv", data, size);
  // The same bytes as an unlabelled list (`vtl predict sample_submission.csv`): a list of
  // images or a vtl::Error, whatever the labelled reading says.
  accept_or_reject([&] { data::read_image_list(path); });
  accept_or_reject([&] { data::read_image_list_as_written(path, /*first_line_is_header=*/true); });
  // Columns chosen by name (--label-column label --path-column id).
  accept_or_reject([&] { data::read_csv_list(path, {}, {"id", "label", ""}); });
  return accept_or_reject([&] {
    const auto dataset = data::read_csv_list(path);
    if (dataset.marks_splits) data::open_training_split(path, {}, 0.5, 0);
  });
}

}  // namespace vtl::fuzz
