// The JSON descriptions vtl reads back from its own folders. They are outside data too:
// users copy, edit and hand-write them. Each reader must answer a missing key or a value
// of the wrong type with a vtl::Error naming the file; nlohmann's own exceptions
// (type_error, out_of_range, ...) escaping a reader are bugs.
//
// Input layout: data[0] % kReaderCount picks the reader, data[1..] is the file. The other
// files each reader needs (weights, .npy, classifier model) are made once per process,
// valid, so that a valid description is accepted end to end.

#include <nlohmann/json.hpp>

#include "core/json_document.h"
#include "input_file.h"
#include "targets.h"
#include "vtl/core/atomic_file.h"
#include "vtl/embed/classical.h"
#include "vtl/embed/extract.h"
#include "vtl/embed/npy.h"
#include "vtl/models/model_folder.h"
#include "vtl/models/registry.h"
#include "vtl/search/image_index.h"
#include "vtl/train/run.h"

namespace vtl::fuzz {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Readers, in the order of their selector byte.
enum class Reader {
  run_json,         ///< <run>/run.json, as resume_training reads it
  features_json,    ///< <features>/features.json (embed::load_features)
  manifest_jsonl,   ///< <features>/manifest.jsonl (embed::load_features)
  model_json,       ///< <model>/model.json (models::load_model_folder)
  index_json,       ///< <index>/index.json (search::ImageIndex::open; no FAISS file)
  classifier_json,  ///< <classifier>/classifier.json (embed::ClassicalClassifier::load)
  split_jsonl,      ///< <run>/split.jsonl (train::read_split)
};
constexpr uint8_t kReaderCount = 7;

// A features folder of 2 rows x 4 columns, valid as a whole.
constexpr const char* kFeaturesJson = R"json({"format": "vtl-features", "version": 1,
  "spec": {"model": "resnet18", "weights": "random(seed=0)", "layer": "avg_pool",
           "normalize": "none", "dim": 4,
           "preprocessing": {"resize": 73, "crop": 64, "mean": [0.485, 0.456, 0.406],
                             "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}},
  "rows": 2, "dtype": "f32", "classes": ["a", "b"], "items": 2, "items_sha256": "00",
  "shard": {"index": 0, "count": 1, "begin": 0, "end": 2}, "skipped": 0})json";
constexpr const char* kManifestJsonl =
    "{\"item\": 0, \"path\": \"/a/0.png\", \"label\": 0, \"class\": \"a\"}\n"
    "{\"item\": 1, \"path\": \"/b/1.png\", \"label\": 1, \"class\": \"b\"}\n";
constexpr const char* kModelArchitecture = "mobilenet_v3_small";

/// Folders whose other files are made once: features (npy), model (weights for
/// kModelArchitecture with classes "a", "b"), classifier (a kNN model for 4-d rows).
struct Folders {
  fs::path run = scratch_dir() / "json" / "run";
  fs::path features = scratch_dir() / "json" / "features";
  fs::path model = scratch_dir() / "json" / "model";
  fs::path index = scratch_dir() / "json" / "index";
  fs::path classifier = scratch_dir() / "json" / "classifier";

  Folders() {
    for (const auto& dir : {run, features, model, index, classifier}) fs::create_directories(dir);
    const auto rows = torch::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f}).reshape({2, 4});
    embed::write_npy(features / "features.npy", rows);

    models::TransferModel transfer(
        models::create_model(kModelArchitecture, models::ModelOptions().include_top(false)), 2,
        0.2);
    models::ModelFolderInfo info;
    info.class_names = {"a", "b"};
    models::save_model_folder(model, transfer, info);

    embed::ClassicalParams params;
    params.algo = embed::ClassicalAlgo::knn;
    params.k = 1;
    const auto train = torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f,  //
                                      0.f, 1.f, 0.f, 1.f, 1.f, 0.f, 1.f, 0.f})
                           .reshape({4, 4});
    embed::ClassicalClassifier::fit(train, {0, 1, 0, 1}, 2, params).save(classifier, json());
  }
};

const Folders& folders() {
  static const Folders made;
  return made;
}

/// What train::resume_training does with run.json before it trains: parse it and read
/// RunOptions, with JSON errors reported as vtl::Error naming the file.
void read_run_json(const fs::path& path) {
  const std::string text = read_file(path);
  try {
    (void)train::RunOptions::from_json(parse_json_document(text, path.string()));
  } catch (const json::exception& e) {
    fail("{}: malformed run description: {}", path.string(), e.what());
  }
}

}  // namespace

Outcome fuzz_json(const uint8_t* data, size_t size) {
  if (size == 0) return Outcome::rejected;
  const auto& dirs = folders();
  const auto reader = static_cast<Reader>(data[0] % kReaderCount);
  const uint8_t* file = data + 1;
  const size_t file_size = size - 1;
  switch (reader) {
    case Reader::run_json: {
      const auto path = write_input(dirs.run / "run.json", file, file_size);
      return accept_or_reject([&] { read_run_json(path); });
    }
    case Reader::features_json:
      write_input(dirs.features / "features.json", file, file_size);
      write_input(dirs.features / "manifest.jsonl", kManifestJsonl);
      return accept_or_reject([&] { embed::load_features(dirs.features); });
    case Reader::manifest_jsonl:
      write_input(dirs.features / "features.json", kFeaturesJson);
      write_input(dirs.features / "manifest.jsonl", file, file_size);
      return accept_or_reject([&] { embed::load_features(dirs.features); });
    case Reader::model_json:
      write_input(dirs.model / "model.json", file, file_size);
      return accept_or_reject([&] { models::load_model_folder(dirs.model); });
    case Reader::index_json:
      write_input(dirs.index / "index.json", file, file_size);
      return accept_or_reject([&] { search::ImageIndex::open(dirs.index); });
    case Reader::classifier_json:
      write_input(dirs.classifier / "classifier.json", file, file_size);
      return accept_or_reject([&] { embed::ClassicalClassifier::load(dirs.classifier); });
    case Reader::split_jsonl:
      write_input(dirs.run / "split.jsonl", file, file_size);
      return accept_or_reject([&] { train::read_split(dirs.run); });
  }
  return Outcome::rejected;  // unreachable: every selector value is a reader
}

}  // namespace vtl::fuzz
