#include "vtl/data/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "vtl/core/error.h"
#include "vtl/core/text.h"
#include "vtl/data/image.h"
#include "vtl/data/split_folders.h"

namespace vtl::data {
namespace fs = std::filesystem;

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(classes.size(), 0);
  for (const auto& sample : samples) ++counts.at(sample.label);
  return counts;
}

std::vector<int64_t> Dataset::labels() const {
  std::vector<int64_t> out;
  out.reserve(samples.size());
  for (const auto& sample : samples) out.push_back(sample.label);
  return out;
}

std::vector<std::filesystem::path> Dataset::paths() const {
  std::vector<std::filesystem::path> out;
  out.reserve(samples.size());
  for (const auto& sample : samples) out.push_back(sample.path);
  return out;
}

SkippedFile SkippedFile::from_error(const fs::path& path, const std::string& error) {
  const std::string named = path.string() + ": ";
  return {path, error.rfind(named, 0) == 0 ? error.substr(named.size()) : error};
}

std::string Dataset::describe_counts() const {
  const auto counts = class_counts();
  std::string text;
  for (size_t i = 0; i < classes.size(); ++i) {
    if (i) text += ", ";
    text += fmt::format("{} {}", classes[i], counts[i]);
  }
  return text;
}

namespace {

/// Maps the given class list (or none) to ids; returns -1 for unknown names.
class ClassIndex {
 public:
  explicit ClassIndex(const std::vector<std::string>& classes) {
    for (size_t i = 0; i < classes.size(); ++i) ids_[classes[i]] = static_cast<int64_t>(i);
  }
  int64_t find(const std::string& name) const {
    auto it = ids_.find(name);
    return it == ids_.end() ? -1 : it->second;
  }

 private:
  std::map<std::string, int64_t> ids_;
};

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  text = text.substr(first, last - first + 1);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
    text = text.substr(1, text.size() - 2);
  return text;
}

/// Whether the canonical path `path` lies under the canonical folder `dir`.
bool is_within(const fs::path& path, const fs::path& dir) {
  const auto [end, _] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return end == dir.end();
}

/// An image file met while listing a folder.
struct FoundImage {
  fs::path path, canonical;
  bool link = false;  ///< the path itself is a symbolic link
};

/// Every image file under `dir` (recursive, symbolic links followed, hidden names left
/// out), in listing order; unresolvable paths, links to nothing and unreadable folders go
/// to `skipped`, saying so. With `max_depth` >= 0, folders more than `max_depth` levels
/// below `dir` are not entered.
std::vector<FoundImage> find_images(const fs::path& dir, std::vector<SkippedFile>& skipped,
                                    int max_depth) {
  std::error_code ec;
  std::vector<FoundImage> found;
  const auto options = fs::directory_options::follow_directory_symlink |
                       fs::directory_options::skip_permission_denied;
  std::set<fs::path> folders = {fs::weakly_canonical(dir, ec)};
  ec.clear();
  for (auto it = fs::recursive_directory_iterator(dir, options, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& path = it->path();
    if (is_hidden_name(path.filename().string())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      ec.clear();
      continue;
    }
    if (it->is_directory(ec)) {
      if (max_depth >= 0 && it.depth() >= max_depth) {
        it.disable_recursion_pending();
        continue;
      }
      // A link back to a folder already listed (a symlink loop) is not entered again.
      auto canonical = fs::weakly_canonical(path, ec);
      if (ec || !folders.insert(canonical).second) {
        skipped.push_back({path, ec ? "cannot resolve the folder: " + ec.message()
                                    : "a link to a folder already listed (symlink loop?)"});
        it.disable_recursion_pending();
        ec.clear();
      } else if (::access(path.c_str(), R_OK | X_OK) != 0) {
        skipped.push_back({path, "cannot read the folder: permission denied"});
        it.disable_recursion_pending();
      }
      continue;
    }
    ec.clear();
    if (!it->is_regular_file(ec)) {
      // A link whose file is gone (or a loop of links) would otherwise vanish unsaid.
      std::error_code link_error;
      if (it->is_symlink(link_error) && has_image_extension(path)) {
        const fs::path target = fs::read_symlink(path, link_error);
        skipped.push_back({path, fmt::format("a symbolic link to {}, which cannot be opened ({})",
                                             target.string(), ec ? ec.message() : "no such file")});
      }
      ec.clear();
      continue;
    }
    if (!has_image_extension(path)) {
      if (auto why = unreadable_image_kind(path); !why.empty()) skipped.push_back({path, why});
      continue;
    }
    auto canonical = fs::weakly_canonical(path, ec);
    if (ec) {
      skipped.push_back({path, "cannot resolve the path: " + ec.message()});
      ec.clear();
      continue;
    }
    std::error_code link_error;
    found.push_back({path, std::move(canonical), it->is_symlink(link_error)});
  }
  VTL_CHECK(!ec, "{}: cannot list the folder: {}", dir.string(), ec.message());
  return found;
}

/// Of what find_images found under `dir`, the paths to use, sorted: one per file whose
/// canonical path is not yet in `seen`; the other paths of a file go to `skipped`, which
/// is then sorted by path from `skipped_before` on. `real_files` (canonical path -> path
/// of the file itself, under any class folder): a link to one of them from outside `dir`
/// is left out, the file counting in its own folder.
std::vector<fs::path> choose_images(const fs::path& dir, std::vector<FoundImage> found,
                                    std::set<fs::path>& seen, std::vector<SkippedFile>& skipped,
                                    size_t skipped_before,
                                    const std::map<fs::path, fs::path>* real_files) {
  std::error_code ec;
  std::vector<fs::path> files;
  // One path per file, whatever order the folder lists them in: the file itself rather
  // than a symbolic link to it, else the first path in sorted order.
  std::sort(found.begin(), found.end(), [](const FoundImage& a, const FoundImage& b) {
    return std::tie(a.link, a.path) < std::tie(b.link, b.path);
  });
  std::map<fs::path, fs::path> kept;  // canonical path -> the path listed
  const fs::path here = fs::weakly_canonical(dir, ec);
  ec.clear();
  for (auto& file : found) {
    if (file.link && real_files) {
      // A link to a file that another folder holds itself: the file counts there, under
      // the class its own folder names.
      const auto real = real_files->find(file.canonical);
      if (real != real_files->end() && !is_within(file.canonical, here)) {
        skipped.push_back({file.path, fmt::format("a symbolic link to {}, which its own folder "
                                                  "lists; used once, there",
                                                  real->second.string())});
        continue;
      }
    }
    const auto [at, first] = kept.emplace(file.canonical, file.path);
    if (!first) {
      skipped.push_back({file.path, fmt::format("the same file as {} (a symbolic link); used once",
                                                at->second.string())});
    } else if (!seen.insert(file.canonical).second) {
      skipped.push_back({file.path,
                         "the same file as one already listed under another folder "
                         "(a symbolic link); used once"});
    } else {
      files.push_back(file.path);
    }
  }
  std::sort(files.begin(), files.end());
  std::sort(skipped.begin() + std::ptrdiff_t(skipped_before), skipped.end(),
            [](const SkippedFile& a, const SkippedFile& b) { return a.path < b.path; });
  return files;
}

/// The images of one folder: choose_images of find_images.
std::vector<fs::path> list_images_into(const fs::path& dir, std::set<fs::path>& seen,
                                       std::vector<SkippedFile>& skipped, int max_depth = -1) {
  const size_t skipped_before = skipped.size();
  return choose_images(dir, find_images(dir, skipped, max_depth), seen, skipped, skipped_before,
                       nullptr);
}

/// "; if a CSV list holds the labels, give its path instead of the folder (found: a.csv)"
/// when `root` or its parent holds CSV files (Kaggle's `labels.csv` beside `train/`), else "".
std::string csv_list_hint(const fs::path& root) {
  fs::path folder = root;
  if (!folder.has_filename()) folder = folder.parent_path();  // "train/" -> "train"
  const fs::path parent = folder.has_parent_path() ? folder.parent_path() : folder / "..";
  std::vector<fs::path> found;
  std::error_code ec;
  for (const fs::path& dir : {folder, parent})
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.is_regular_file(ec) && lowercase(entry.path().extension().string()) == ".csv")
        found.push_back(entry.path().lexically_normal());
  if (found.empty()) return "";
  // Names that sound like a labels list first (labels.csv, train.csv).
  const auto sounds_like_labels = [](const fs::path& path) {
    const std::string name = lowercase(path.filename().string());
    return name.find("label") != std::string::npos || name.find("train") != std::string::npos;
  };
  std::sort(found.begin(), found.end(), [&](const fs::path& a, const fs::path& b) {
    return std::make_pair(!sounds_like_labels(a), a) < std::make_pair(!sounds_like_labels(b), b);
  });
  std::string names;
  for (size_t i = 0; i < found.size() && i < 3; ++i) names += (i ? ", " : "") + found[i].string();
  if (found.size() > 3) names += ", ...";
  return fmt::format(
      "; if a CSV list holds the labels, give its path instead of the folder "
      "(found: {})",
      names);
}

}  // namespace

std::vector<fs::path> list_images(const fs::path& root, std::vector<SkippedFile>* skipped,
                                  bool every_name) {
  std::error_code ec;
  VTL_CHECK(fs::is_directory(root, ec), "{}: no such folder", root.string());
  std::set<fs::path> seen;
  std::vector<SkippedFile> unresolved;
  std::vector<fs::path> files;
  if (every_name) {
    for (auto& file : find_images(root, unresolved, -1)) files.push_back(std::move(file.path));
    std::sort(files.begin(), files.end());
    std::sort(unresolved.begin(), unresolved.end(),
              [](const SkippedFile& a, const SkippedFile& b) { return a.path < b.path; });
  } else {
    files = list_images_into(root, seen, unresolved);
  }
  if (skipped) skipped->insert(skipped->end(), unresolved.begin(), unresolved.end());
  return files;
}

std::string vtl_output_marker(const fs::path& dir) {
  std::error_code ec;
  for (const char* marker : {"features.json", ".partial", "index.json", "run.json", "model.json"})
    if (fs::exists(dir / marker, ec)) return marker;
  return "";
}

bool is_hidden_name(const std::string& name) {
  return starts_with(name, ".") || name == "__MACOSX";
}

bool has_subfolders(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory(ec) && !is_hidden_name(entry.path().filename().string())) return true;
  }
  return false;
}

Dataset scan_class_folders(const fs::path& root, const std::vector<std::string>& classes) {
  std::error_code ec;
  VTL_CHECK(fs::is_directory(root, ec), "{}: no such folder", root.string());
  std::vector<fs::path> class_dirs, loose_images;
  std::vector<SkippedFile> outputs;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (is_hidden_name(entry.path().filename().string())) continue;
    if (entry.is_directory(ec)) {
      const std::string output = vtl_output_marker(entry.path());
      if (output.empty())
        class_dirs.push_back(entry.path());
      else
        outputs.push_back(
            {entry.path(), "a folder vtl wrote (it holds " + output + "), not a class"});
    } else if (entry.is_regular_file(ec) && has_image_extension(entry.path()))
      loose_images.push_back(entry.path());
  }
  VTL_CHECK(!ec, "{}: cannot list the folder: {}", root.string(), ec.message());
  std::sort(class_dirs.begin(), class_dirs.end());
  std::sort(loose_images.begin(), loose_images.end());
  VTL_CHECK(!class_dirs.empty(),
            "{}: no class folders (expected one subfolder of images per class){}", root.string(),
            csv_list_hint(root));

  Dataset dataset;
  dataset.skipped = std::move(outputs);
  // Next to class folders an image has no class: it is listed, not guessed at.
  for (const auto& path : loose_images)
    dataset.skipped.push_back({path, "not in a class folder (one subfolder per class)"});
  if (classes.empty()) {
    for (const auto& dir : class_dirs) dataset.classes.push_back(dir.filename().string());
  } else {
    dataset.classes = classes;
  }
  const ClassIndex index(dataset.classes);
  std::set<fs::path> seen;  // canonical paths: symlinked duplicates count once
  // Every class folder is listed before any is chosen from: a link in one class folder to
  // a file in another counts under the file's own folder.
  std::vector<std::vector<FoundImage>> found(class_dirs.size());
  std::vector<std::vector<SkippedFile>> unlisted(class_dirs.size());
  std::map<fs::path, fs::path> real_files;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    const std::string name = class_dirs[c].filename().string();
    VTL_CHECK(index.find(name) >= 0, "{}: class '{}' is not one of the model's {} classes",
              class_dirs[c].string(), name, dataset.classes.size());
    found[c] = find_images(class_dirs[c], unlisted[c], -1);
    for (const auto& file : found[c])
      if (!file.link) real_files.emplace(file.canonical, file.path);
  }
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    const auto& dir = class_dirs[c];
    const std::string name = dir.filename().string();
    const int64_t label = index.find(name);
    const size_t skipped_before = dataset.skipped.size();
    dataset.skipped.insert(dataset.skipped.end(), unlisted[c].begin(), unlisted[c].end());
    auto files =
        choose_images(dir, std::move(found[c]), seen, dataset.skipped, skipped_before, &real_files);
    if (files.empty()) {
      const size_t unreadable = dataset.skipped.size() - skipped_before;
      fail("{}: class '{}' has no images (jpg, jpeg, png, bmp, webp, tif, gif){}", dir.string(),
           name,
           unreadable == 0 ? std::string()
                           : fmt::format("; left out: {}: {}",
                                         dataset.skipped[skipped_before].path.filename().string(),
                                         dataset.skipped[skipped_before].reason));
    }
    for (auto& file : files) dataset.samples.push_back({std::move(file), label});
  }
  return dataset;
}

namespace {

/// Removes the UTF-8 byte-order mark that spreadsheets write before a file's first line.
void strip_byte_order_mark(std::string& first_line) {
  if (first_line.rfind("\xEF\xBB\xBF", 0) == 0) first_line.erase(0, 3);
}

/// Fields of one CSV line: separated by commas, a field in double quotes may hold commas
/// and "" for a quote (RFC 4180, one line per row). Fields are trimmed.
std::vector<std::string> split_csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && trim(fields.back()).empty()) {
      fields.back().clear();
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  for (auto& field : fields) field = trim(field);
  return fields;
}

/// Column names a header may give the image path and the label.
bool names_path_column(const std::string& name) {
  static const std::set<std::string> names = {"path",       "file",      "filename",   "file_name",
                                              "filepath",   "file_path", "fname",      "image",
                                              "image_path", "img",       "img_path",   "id",
                                              "image_id",   "img_id",    "image_name", "img_name"};
  return names.count(lowercase(name)) > 0;
}

bool names_label_column(const std::string& name) {
  static const std::set<std::string> names = {"label", "class", "category", "target", "class_name"};
  return names.count(lowercase(name)) > 0;
}

/// A column that only numbers the rows: what pandas writes for its index ("" or
/// "Unnamed: 0" when read back and written again), or "index".
bool names_index_column(const std::string& name) {
  const std::string lower = lowercase(name);
  return lower.empty() || lower == "index" || starts_with(lower, "unnamed:");
}

/// A column that marks the validation rows (fastai's `is_valid`): true/false.
bool names_validation_flag_column(const std::string& name) {
  static const std::set<std::string> names = {"is_valid", "valid", "is_val", "is_validation"};
  return names.count(lowercase(name)) > 0;
}

/// A column that names each row's split: train/valid/test.
bool names_split_column(const std::string& name) {
  static const std::set<std::string> names = {"split", "subset", "set", "partition"};
  return names.count(lowercase(name)) > 0;
}

/// The column a header gives a role: the one named `chosen` (any case) when given, else
/// the first whose name `names_role` accepts, other than a column chosen for another role
/// (`taken`); fields.end() when there is none.
std::vector<std::string>::const_iterator find_column(const std::vector<std::string>& fields,
                                                     const std::string& chosen,
                                                     bool (*names_role)(const std::string&),
                                                     const std::string& taken) {
  if (!chosen.empty())
    return std::find_if(fields.begin(), fields.end(), [&](const std::string& name) {
      return lowercase(name) == lowercase(chosen);
    });
  return std::find_if(fields.begin(), fields.end(), [&](const std::string& name) {
    return names_role(name) && (taken.empty() || lowercase(name) != lowercase(taken));
  });
}

/// Throws unless the header `fields` of `csv` has the column chosen as `option`.
void check_chosen_column(const fs::path& csv, const std::vector<std::string>& fields,
                         const std::string& chosen, const char* option) {
  if (chosen.empty() || find_column(fields, chosen, nullptr, {}) != fields.end()) return;
  std::string header;
  for (const auto& name : fields) header += (header.empty() ? "'" : ", '") + name + "'";
  fail("{}:1: {} {}: the first line has no such column (it has {})", csv.string(), option, chosen,
       header);
}

/// The split a split column's `value` gives; std::nullopt for a value it cannot mean.
std::optional<Split> parse_split_value(const std::string& value, bool validation_flag) {
  static const std::map<std::string, bool> flags = {{"true", true},   {"1", true},  {"yes", true},
                                                    {"false", false}, {"0", false}, {"no", false}};
  if (!validation_flag) return split_named(value);
  const auto flag = flags.find(lowercase(value));
  if (flag == flags.end()) return std::nullopt;
  return flag->second ? Split::validation : Split::train;
}

/// Where a header puts the path, the label and, when it has one, the split.
struct CsvColumns {
  size_t path = 0, label = 1;
  std::optional<size_t> split;
  bool split_is_flag = false;  ///< an `is_valid` column rather than a `split` column
  size_t needed() const { return std::max({path, label, split.value_or(0)}) + 1; }
};

/// Finds the images that CSV rows name by a bare name, as Kaggle's lists do: an `id` or
/// `image_id` column holding "0a1b2c" or "0a1b2c.jpg", with the images in a folder beside
/// the CSV (train/, train_images/, HAM10000's HAM10000_images_part_1/, ...). Lists the
/// images under `root`, down to kMaxDepth folders below it, once, on the first lookup (a
/// CSV kept at the top of a home folder does not list the whole home).
class BareNameIndex {
 public:
  explicit BareNameIndex(fs::path root) : root_(std::move(root)) {}

  /// The one image under the root whose file name is `name` or, when `name` has no image
  /// extension, whose name without its extension is `name`; std::nullopt with `why` set
  /// when there is none or more than one.
  std::optional<fs::path> find(const std::string& name, std::string& why) {
    if (!listed_) list();
    const auto found = by_name_.find(name);
    if (found == by_name_.end() || found->second.empty()) {
      why = fmt::format("no such file, nor an image named '{}' under {} ({} folders deep)", name,
                        root_.string(), kMaxDepth);
      return std::nullopt;
    }
    if (found->second.size() > 1) {
      why = fmt::format("{} images under {} are named '{}' ({}, {}): give the folder in the CSV",
                        found->second.size(), root_.string(), name, found->second[0].string(),
                        found->second[1].string());
      return std::nullopt;
    }
    return found->second.front();
  }

 private:
  void list() {
    listed_ = true;
    std::vector<SkippedFile> unresolved;  // reported by whoever lists the folder for use
    std::set<fs::path> seen;
    for (const auto& listed : list_images_into(root_, seen, unresolved, kMaxDepth)) {
      const fs::path path = listed.lexically_normal();  // "./train/x.jpg" -> "train/x.jpg"
      by_name_[path.filename().string()].push_back(path);
      by_name_[path.stem().string()].push_back(path);
    }
  }

  static constexpr int kMaxDepth = 3;
  fs::path root_;
  bool listed_ = false;
  std::map<std::string, std::vector<fs::path>> by_name_;  ///< file name and stem -> images
};

/// An image path as a CSV row writes it, relative to the CSV's folder `base`.
struct ListedPath {
  fs::path file;          ///< as written, joined to the CSV's folder when relative
  std::string bare_name;  ///< the field when it names no folder ("0a1b2c", "x.jpg")
};

ListedPath listed_path(std::string written, const fs::path& base) {
  // A list written on Windows (images\cat\1.jpg), unless a file is named so here.
  std::error_code ec;
  if (written.find('\\') != std::string::npos &&
      !fs::exists(fs::path(written).is_relative() ? base / written : fs::path(written), ec))
    std::replace(written.begin(), written.end(), '\\', '/');
  ListedPath listed;
  listed.file = written;
  if (!listed.file.has_parent_path()) listed.bare_name = written;
  if (listed.file.is_relative()) listed.file = base / listed.file;
  return listed;
}

/// The image a row means: its file, else the one image under the CSV's folder its bare name
/// names (only a bare name is looked for elsewhere: "cats/1.jpg" is never taken for
/// "dogs/1.jpg"); std::nullopt with `why` when there is none.
std::optional<fs::path> resolve_listed(const ListedPath& listed, BareNameIndex& bare_names,
                                       std::string& why) {
  std::error_code ec;
  if (fs::is_regular_file(listed.file, ec)) return listed.file;
  why = "no such file";
  if (listed.bare_name.empty()) return std::nullopt;
  return bare_names.find(listed.bare_name, why);
}

/// The CSV's folder, for resolving its relative paths ("." for a CSV named without one).
fs::path folder_of(const fs::path& csv) {
  return csv.parent_path().empty() ? fs::path(".") : csv.parent_path();
}

/// Opens a CSV list for reading; a file that cannot be opened, or whose first 4 KiB hold a
/// NUL byte (a weights file, an archive, an image without its extension), is a vtl::Error.
std::ifstream open_csv_list(const fs::path& csv) {
  std::ifstream in(csv, std::ios::binary);
  VTL_CHECK(in.good(), "{}: cannot open the CSV list: {}", csv.string(), std::strerror(errno));
  char head[4096];
  in.read(head, sizeof(head));
  const std::string_view start(head, size_t(in.gcount()));
  VTL_CHECK(start.rfind("\xFF\xFE", 0) != 0 && start.rfind("\xFE\xFF", 0) != 0,
            "{}: a UTF-16 text file; save the CSV list as UTF-8", csv.string());
  VTL_CHECK(start.find('\0') == std::string_view::npos,
            "{}: not a CSV list (it holds binary data); give a CSV of path,label or a folder "
            "of class folders",
            csv.string());
  in.clear();
  VTL_CHECK(in.seekg(0).good(), "{}: cannot read the CSV list from the start (a pipe?)",
            csv.string());
  return in;
}

}  // namespace

Dataset read_csv_list(const fs::path& csv, const std::vector<std::string>& classes,
                      const LabelSource& source) {
  VTL_CHECK(source.name_pattern.empty(),
            "{}: --label-pattern labels a folder of images by their file names; a CSV list "
            "names its label column (--label-column)",
            csv.string());
  const bool columns_chosen = !source.path_column.empty() || !source.label_column.empty();
  std::ifstream in = open_csv_list(csv);
  const fs::path base = csv.parent_path();
  struct Row {
    ListedPath listed;
    std::string label;
    Split split = Split::unmarked;
  };
  std::vector<Row> rows;
  std::string line;
  int line_number = 0;
  // With a header: the columns it names (other columns, such as an index, are ignored).
  // Without one: two columns, path and label.
  std::optional<CsvColumns> columns;
  std::string split_name;  // the split column's name, for messages
  while (std::getline(in, line)) {
    ++line_number;
    if (line_number == 1) strip_byte_order_mark(line);
    if (trim(line).empty()) continue;
    const auto fields = split_csv_fields(line);
    if (line_number == 1) {
      check_chosen_column(csv, fields, source.path_column, "--path-column");
      check_chosen_column(csv, fields, source.label_column, "--label-column");
    }
    if (line_number == 1 && fields.size() >= 2) {
      // A header names the path column, the label column or both (the other is then the
      // first remaining column); a first row whose path is a file is data, unless the
      // columns were chosen by name.
      const auto path_column =
          find_column(fields, source.path_column, names_path_column, source.label_column);
      const auto label_column =
          find_column(fields, source.label_column, names_label_column, source.path_column);
      if (path_column != fields.end() || label_column != fields.end()) {
        CsvColumns named;
        auto flag_column = std::find_if(fields.begin(), fields.end(), names_validation_flag_column);
        auto split_column = std::find_if(fields.begin(), fields.end(), names_split_column);
        if (flag_column != fields.end() || split_column != fields.end()) {
          named.split_is_flag = flag_column != fields.end();
          named.split = size_t((named.split_is_flag ? flag_column : split_column) - fields.begin());
          split_name = fields[*named.split];
        }
        // A column the header does not name is the only other one, not counting an index
        // column (pandas' unnamed first column, "index", "Unnamed: 0").
        std::vector<size_t> others;
        for (size_t i = 0; i < fields.size(); ++i)
          if (i != size_t(path_column - fields.begin()) &&
              i != size_t(label_column - fields.begin()) && i != named.split.value_or(SIZE_MAX) &&
              !names_index_column(fields[i]))
            others.push_back(i);
        const bool path_named = path_column != fields.end();
        const bool label_named = label_column != fields.end();
        named.path = path_named ? size_t(path_column - fields.begin())
                                : (others.empty() ? SIZE_MAX : others.front());
        named.label = label_named ? size_t(label_column - fields.begin())
                                  : (others.empty() ? SIZE_MAX : others.back());
        std::error_code exists_error;
        if (named.path != SIZE_MAX && named.label != SIZE_MAX && named.path != named.label) {
          const fs::path first = fields[named.path];
          if (columns_chosen ||
              !fs::is_regular_file(first.is_relative() ? base / first : first, exists_error)) {
            if (!(path_named && label_named) && others.size() > 1) {
              std::string candidates;
              for (const size_t i : others)
                candidates += (candidates.empty() ? "'" : ", '") + fields[i] + "'";
              fail(
                  "{}:1: which column is the {}? the header names {} but not the {}, and "
                  "could mean any of {}; choose it with {} NAME, or name it `{}` in the "
                  "header",
                  csv.string(), path_named ? "label" : "image path",
                  path_named ? "the image column" : "the label column",
                  path_named ? "label" : "image path", candidates,
                  path_named ? "--label-column" : "--path-column", path_named ? "label" : "path");
            }
            columns = named;
            continue;
          }
        }
      }
    }
    Row row;
    std::string path;
    if (columns) {
      VTL_CHECK(columns->needed() <= fields.size(),
                "{}:{}: expected {} columns as the header says, got {}: '{}'", csv.string(),
                line_number, columns->needed(), fields.size(), trim(line));
      path = fields[columns->path];
      row.label = fields[columns->label];
      if (columns->split) {
        const auto split = parse_split_value(fields[*columns->split], columns->split_is_flag);
        VTL_CHECK(
            split, "{}:{}: the {} column says '{}': expected {}", csv.string(), line_number,
            split_name, fields[*columns->split],
            columns->split_is_flag ? "true or false (1 or 0, yes or no)" : "train, valid or test");
        row.split = *split;
      }
    } else {
      VTL_CHECK(fields.size() >= 2,
                "{}:{}: expected `path,label`, got '{}' (a header row `path,label` may name the "
                "columns)",
                csv.string(), line_number, trim(line));
      // An unquoted path may hold commas: the label is the last field.
      const auto comma = line.find('"') == std::string::npos ? line.rfind(',') : std::string::npos;
      path = comma != std::string::npos ? trim(line.substr(0, comma)) : fields[0];
      row.label = fields.back();
    }
    VTL_CHECK(!path.empty() && !row.label.empty(), "{}:{}: empty path or label", csv.string(),
              line_number);
    row.listed = listed_path(path, base);
    rows.push_back(std::move(row));
  }
  VTL_CHECK(!rows.empty(), "{}: the CSV list has no rows", csv.string());

  Dataset dataset;
  if (classes.empty()) {
    std::set<std::string> names;
    for (const auto& row : rows) names.insert(row.label);
    dataset.classes.assign(names.begin(), names.end());
  } else {
    dataset.classes = classes;
  }
  const ClassIndex index(dataset.classes);
  dataset.marks_splits = columns && columns->split;
  BareNameIndex bare_names(folder_of(csv));
  for (const auto& row : rows) {
    const int64_t id = index.find(row.label);
    VTL_CHECK(id >= 0, "{}: label '{}' is not one of the model's {} classes", csv.string(),
              row.label, dataset.classes.size());
    std::string why;
    const auto file = resolve_listed(row.listed, bare_names, why);
    if (!file) {
      dataset.skipped.push_back({row.listed.file, why});
      continue;
    }
    dataset.samples.push_back({*file, id, row.split});
  }
  const auto counts = dataset.class_counts();
  if (classes.empty()) {
    for (size_t i = 0; i < counts.size(); ++i)
      VTL_CHECK(counts[i] > 0, "{}: class '{}' has no existing images{}", csv.string(),
                dataset.classes[i],
                dataset.skipped.empty()
                    ? std::string()
                    : fmt::format("; left out: {}: {}", dataset.skipped.front().path.string(),
                                  dataset.skipped.front().reason));
  }
  return dataset;
}

bool csv_list_is_labelled(const fs::path& csv, const LabelSource& source) {
  std::ifstream in = open_csv_list(csv);
  if (!source.label_column.empty()) return true;
  std::string line;
  while (std::getline(in, line) && trim(line).empty()) {
  }
  strip_byte_order_mark(line);
  const auto fields = split_csv_fields(line);
  if (fields.size() < 2) return false;
  if (std::any_of(fields.begin(), fields.end(), names_label_column)) return true;
  if (std::none_of(fields.begin(), fields.end(), names_path_column)) return true;
  // A header naming the path: labelled when another column is left for the label.
  return std::any_of(fields.begin(), fields.end(), [](const std::string& name) {
    return !names_path_column(name) && !names_index_column(name) &&
           !names_validation_flag_column(name) && !names_split_column(name);
  });
}

ImageList read_image_list_as_written(const fs::path& csv, bool first_line_is_header,
                                     const std::string& path_column) {
  std::ifstream in = open_csv_list(csv);
  const fs::path base = csv.parent_path();
  BareNameIndex bare_names(folder_of(csv));
  ImageList list;
  std::string line;
  int line_number = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_number;
    if (line_number == 1) strip_byte_order_mark(line);
    if (trim(line).empty()) continue;
    const auto fields = split_csv_fields(line);
    if (std::exchange(first, false)) {
      check_chosen_column(csv, fields, path_column, "--path-column");
      const auto named = find_column(fields, path_column, names_path_column, {});
      if (named != fields.end()) list.path_column = size_t(named - fields.begin());
      if (first_line_is_header || named != fields.end() ||
          std::any_of(fields.begin(), fields.end(), names_label_column)) {
        list.header = fields;
        continue;
      }
    }
    VTL_CHECK(list.path_column < fields.size(),
              "{}:{}: expected at least {} columns as the header says, got '{}'", csv.string(),
              line_number, list.path_column + 1, trim(line));
    const std::string& text = fields[list.path_column];
    VTL_CHECK(!text.empty(), "{}:{}: empty path", csv.string(), line_number);
    ListedImage row{text, std::nullopt, {}};
    row.image = resolve_listed(listed_path(text, base), bare_names, row.why_missing);
    list.rows.push_back(std::move(row));
  }
  return list;
}

std::vector<fs::path> read_image_list(const fs::path& csv, std::vector<SkippedFile>* skipped,
                                      const std::string& path_column) {
  std::vector<fs::path> images;
  for (const auto& row : read_image_list_as_written(csv, false, path_column).rows) {
    if (row.image)
      images.push_back(*row.image);
    else if (skipped)
      skipped->push_back({listed_path(row.listed, csv.parent_path()).file, row.why_missing});
  }
  return images;
}

namespace {

/// One dataset of every labelled split folder; classes are the sorted union of their class
/// folders unless `classes` is given.
Dataset merge_split_folders(const SplitFolders& folders, const std::vector<std::string>& classes) {
  std::vector<fs::path> roots;
  for (const auto* root : {&folders.train, &folders.validation, &folders.test})
    if (!root->empty()) roots.push_back(*root);
  std::vector<std::string> class_list = classes;
  if (class_list.empty()) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& root : roots)
      for (const auto& entry : fs::directory_iterator(root, ec))
        if (entry.is_directory(ec) && !is_hidden_name(entry.path().filename().string()))
          names.insert(entry.path().filename().string());
    class_list.assign(names.begin(), names.end());
  }
  Dataset merged;
  merged.classes = class_list;
  for (const auto& root : roots) {
    Dataset part = scan_class_folders(root, class_list);
    merged.samples.insert(merged.samples.end(), part.samples.begin(), part.samples.end());
    merged.skipped.insert(merged.skipped.end(), part.skipped.begin(), part.skipped.end());
  }
  return merged;
}

}  // namespace

Dataset scan_file_name_labels(const fs::path& root, const LabelSource& source,
                              const std::vector<std::string>& classes) {
  std::regex pattern;
  try {
    pattern = std::regex(source.name_pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("--label-pattern '{}' is not a regular expression: {}", source.name_pattern, e.what());
  }
  std::error_code ec;
  VTL_CHECK(fs::is_directory(root, ec), "{}: --label-pattern needs a folder of images",
            root.string());
  Dataset dataset;
  std::vector<std::pair<fs::path, std::string>> labelled;
  for (const auto& path : list_images(root, &dataset.skipped)) {
    const std::string name = path.filename().string();
    std::smatch match;
    if (!std::regex_search(name, match, pattern) || match.str(match.size() > 1 ? 1 : 0).empty()) {
      dataset.skipped.push_back({path, fmt::format("its name gives no label (--label-pattern '{}')",
                                                   source.name_pattern)});
      continue;
    }
    labelled.emplace_back(path, match.str(match.size() > 1 ? 1 : 0));
  }
  VTL_CHECK(!labelled.empty(), "{}: no image name matches --label-pattern '{}'{}", root.string(),
            source.name_pattern,
            dataset.skipped.empty()
                ? std::string()
                : " (for one: " + dataset.skipped.back().path.filename().string() + ")");
  if (classes.empty()) {
    std::set<std::string> names;
    for (const auto& [path, label] : labelled) names.insert(label);
    dataset.classes.assign(names.begin(), names.end());
  } else {
    dataset.classes = classes;
  }
  const ClassIndex index(dataset.classes);
  for (const auto& [path, label] : labelled) {
    const int64_t id = index.find(label);
    VTL_CHECK(id >= 0, "{}: label '{}' (from --label-pattern) is not one of the model's {} classes",
              path.string(), label, dataset.classes.size());
    dataset.samples.push_back({path, id, Split::unmarked});
  }
  return dataset;
}

void check_dataset_path(const fs::path& path) {
  std::error_code ec;
  VTL_CHECK(fs::exists(path, ec), "{}: no such folder or CSV file", path.string());
  VTL_CHECK(fs::is_directory(path, ec) || !has_image_extension(path),
            "{}: an image, not a dataset; give the folder of class folders (one subfolder of "
            "images per class) or a CSV list of path,label",
            path.string());
}

Dataset open_dataset(const fs::path& path, const std::vector<std::string>& classes,
                     const LabelSource& source) {
  std::error_code ec;
  if (!source.name_pattern.empty()) {
    VTL_CHECK(source.path_column.empty() && source.label_column.empty(),
              "--label-pattern labels a folder's images by file name; --path-column and "
              "--label-column choose the columns of a CSV list: give one or the other");
    return scan_file_name_labels(path, source, classes);
  }
  if (!source.empty())
    VTL_CHECK(!fs::is_directory(path, ec),
              "{}: --path-column and --label-column choose the columns of a CSV list, and this "
              "is a folder",
              path.string());
  if (auto folders = find_split_folders(path)) return merge_split_folders(*folders, classes);
  if (fs::is_directory(path, ec)) return scan_class_folders(path, classes);
  check_dataset_path(path);
  return read_csv_list(path, classes, source);
}

Dataset select_split(const Dataset& dataset, Split split) {
  Dataset part;
  part.classes = dataset.classes;
  for (const auto& sample : dataset.samples)
    if (sample.split == split) part.samples.push_back(sample);
  if (split == Split::train) part.skipped = dataset.skipped;
  return part;
}

std::optional<Split> split_named(const std::string& folder_name) {
  const std::string name = lowercase(folder_name);
  if (name == "train" || name == "training") return Split::train;
  if (name == "val" || name == "valid" || name == "validation" || name == "dev")
    return Split::validation;
  if (name == "test" || name == "testing") return Split::test;
  return std::nullopt;
}

const char* to_string(Split split) {
  switch (split) {
    case Split::train:
      return "train";
    case Split::validation:
      return "validation";
    case Split::test:
      return "test";
    case Split::unmarked:
      break;
  }
  return "unmarked";
}

std::pair<Dataset, Dataset> split_stratified(const Dataset& dataset, double val_fraction,
                                             uint64_t seed) {
  VTL_CHECK(val_fraction >= 0.0 && val_fraction < 1.0,
            "validation split must be at least 0 and below 1 (got {})", val_fraction);
  std::vector<std::vector<size_t>> by_class(dataset.classes.size());
  for (size_t i = 0; i < dataset.samples.size(); ++i)
    by_class.at(dataset.samples[i].label).push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<bool> is_val(dataset.samples.size(), false);
  for (auto& members : by_class) {
    std::shuffle(members.begin(), members.end(), rng);
    size_t count = static_cast<size_t>(std::llround(members.size() * val_fraction));
    if (members.size() >= 2 && val_fraction > 0.0)
      count = std::clamp<size_t>(count, 1, members.size() - 1);
    else
      count = 0;
    for (size_t k = 0; k < count; ++k) is_val[members[k]] = true;
  }
  Dataset train, val;
  train.classes = val.classes = dataset.classes;
  train.skipped = dataset.skipped;
  for (size_t i = 0; i < dataset.samples.size(); ++i)
    (is_val[i] ? val : train).samples.push_back(dataset.samples[i]);
  return {std::move(train), std::move(val)};
}

}  // namespace vtl::data
