// Pretrained features for classical machine learning and image similarity search:
//
//   features = extractor.predict(images)                      # avg_pool, (N, 2048)
//   SVC(kernel="linear").fit(train_features, train_labels).score(test_features, test_labels)
//   RandomForestClassifier().fit(...).score(...)
//   NearestNeighbors(metric="cosine").fit(train_features).kneighbors(query, 3)
//
//   classify_and_search DATA [--model resnet18] [--weights random] [--img-size 96]
//
// DATA is a class-folder tree (DATA/<class>/<image>); 25% of each class is test data.
// For an index kept on disk with its image catalogue, see vtl/search/image_index.h.

#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <vtl/core/error.h>
#include <vtl/core/runtime.h>
#include <vtl/data/dataset.h>
#include <vtl/embed/classical.h>
#include <vtl/embed/extractor.h>
#include <vtl/search/vector_index.h>

int main(int argc, char** argv) try {
  if (argc < 2 || argc % 2 != 0) {
    std::cerr << "usage: classify_and_search DATA [--model NAME] [--weights W] [--img-size PX]\n";
    return 2;
  }
  std::map<std::string, std::string> option = {
      {"--model", "resnet18"}, {"--weights", "random"}, {"--img-size", "96"}};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!option.count(argv[i])) return std::cerr << "unknown option " << argv[i] << "\n", 2;
    option[argv[i]] = argv[i + 1];
  }
  vtl::configure_threads();

  // avg_pool features of every image.
  vtl::embed::BackboneOptions backbone{option["--model"], option["--weights"]};
  backbone.image_size = std::stoi(option["--img-size"]);
  vtl::embed::FeatureExtractor extractor(vtl::embed::load_backbone(backbone), "avg_pool");
  const auto [train, test] =
      vtl::data::split_stratified(vtl::data::scan_class_folders(argv[1]), 0.25, /*seed=*/0);
  const torch::Tensor train_features = extractor.embed_files(train.paths());
  const torch::Tensor test_features = extractor.embed_files(test.paths());
  std::printf("features: %lld training and %lld test images, %lld values each\n",
              static_cast<long long>(train_features.size(0)),
              static_cast<long long>(test_features.size(0)),
              static_cast<long long>(extractor.dim()));

  // Classical classifiers on the features.
  for (auto algo :
       {vtl::embed::ClassicalAlgo::svm_linear, vtl::embed::ClassicalAlgo::random_forest}) {
    auto classifier = vtl::embed::ClassicalClassifier::fit(train_features, train.labels(),
                                                           train.num_classes(), {algo});
    auto result = vtl::embed::evaluate_predictions(classifier.predict(test_features), test.labels(),
                                                   test.num_classes());
    std::printf("%s: test accuracy %.4f\n", vtl::embed::to_string(algo).c_str(), result.accuracy);
  }

  // Nearest neighbours of the first test image among the training images (exact search,
  // cosine similarity).
  vtl::search::VectorIndex index(extractor.dim(), "Flat", vtl::search::Metric::cosine);
  index.add(train_features);
  const auto& query = test.samples.front();
  std::printf("most similar to %s (%s):\n", query.path.filename().c_str(),
              test.classes[query.label].c_str());
  for (const auto& hit : index.search_one(test_features[0], 3)) {
    const auto& match = train.samples[hit.id];
    std::printf("  %.4f  %s (%s)\n", hit.score, match.path.filename().c_str(),
                train.classes[match.label].c_str());
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
