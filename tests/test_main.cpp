#include <gtest/gtest.h>

#include "vtl/core/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  vtl::configure_threads();
  return RUN_ALL_TESTS();
}
