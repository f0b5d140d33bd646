#include "vtl/core/preprocessing.h"

#include <nlohmann/json.hpp>

#include "vtl/core/error.h"

namespace vtl {

nlohmann::json to_json(const Preprocessing& p) {
  return {{"resize", p.resize},
          {"crop", p.crop},
          {"mean", p.mean},
          {"std", p.std},
          {"interpolation", p.interpolation}};
}

Preprocessing preprocessing_from_json(const nlohmann::json& json) {
  Preprocessing p;
  try {
    p.resize = json.value("resize", p.resize);
    p.crop = json.value("crop", p.crop);
    p.mean = json.value("mean", p.mean);
    p.std = json.value("std", p.std);
    p.interpolation = json.value("interpolation", p.interpolation);
  } catch (const nlohmann::json::exception& e) {
    fail("invalid preprocessing description: {}", e.what());
  }
  VTL_CHECK(p.interpolation == "bilinear" || p.interpolation == "bicubic",
            "invalid preprocessing: interpolation must be bilinear or bicubic, got '{}'",
            p.interpolation);
  VTL_CHECK(p.crop > 0 && p.resize >= p.crop,
            "invalid preprocessing: need 0 < crop <= resize (crop {}, resize {})", p.crop,
            p.resize);
  return p;
}

}  // namespace vtl
