// The server's model thread: concurrent callers get their own image's vector, and a
// failed forward pass reaches every caller of that batch.
#if defined(VTL_HAVE_SERVE)

#include "serve/embed_queue.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "vtl/core/error.h"

namespace vtl::serve {
namespace {

embed::FeatureExtractor small_extractor() {
  embed::BackboneOptions backbone;
  backbone.model = "resnet18";
  backbone.image_size = 32;
  return embed::FeatureExtractor(embed::load_backbone(backbone), "avg_pool", false);
}

TEST(EmbedQueue, ConcurrentCallersGetTheirOwnImagesVector) {
  auto extractor = small_extractor();
  torch::manual_seed(3);
  const int64_t count = 48;
  const auto images = torch::randn({count, 3, 32, 32});
  const auto expected = extractor.embed(images);
  std::vector<torch::Tensor> got(count);
  {
    EmbedQueue queue(extractor, /*max_batch=*/8);
    std::vector<std::thread> callers;
    for (int t = 0; t < 6; ++t) {
      callers.emplace_back([&, t] {
        for (int64_t i = t; i < count; i += 6) got[i] = queue.embed(images[i]);
      });
    }
    for (auto& caller : callers) caller.join();
    EXPECT_EQ(queue.images(), count);
    EXPECT_LE(queue.passes(), count);
    EXPECT_GE(queue.passes(), count / 8);
  }
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_TRUE(got[i].defined()) << i;
    EXPECT_TRUE(torch::allclose(got[i], expected[i], 1e-4, 1e-5)) << "image " << i;
  }
}

TEST(EmbedQueue, AFailedForwardPassIsThrownToItsCaller) {
  auto extractor = small_extractor();
  EmbedQueue queue(extractor);
  // One channel instead of three: the first convolution refuses it.
  EXPECT_ANY_THROW(queue.embed(torch::zeros({1, 32, 32})));
  EXPECT_THROW(queue.embed(torch::zeros({32, 32})), vtl::Error);
  // The model thread is still there for the next request.
  EXPECT_EQ(queue.embed(torch::zeros({3, 32, 32})).size(0), extractor.dim());
}

}  // namespace
}  // namespace vtl::serve

#endif  // VTL_HAVE_SERVE
