#pragma once
// What `vtl train`, `vtl extract` and `vtl index build` start from when --weights is not
// given: as Keras' weights="imagenet", the architecture's default pretrained weights.

#include <string>

namespace vtl::cli {

/// `weights` when given, or when `model` is a trained model folder. Otherwise the default
/// catalogue name of registry model `model` when the store ($VTL_HOME/weights) holds that
/// file, else "random", after a warning on stderr that says how to get the weights (a
/// frozen random base gives features of no use). `say`: false keeps stderr quiet (the
/// other ranks of a distributed job).
std::string base_weights_or_default(const std::string& model, const std::string& weights,
                                    bool say = true);

}  // namespace vtl::cli
