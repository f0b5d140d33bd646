# Sources of the fuzz targets (fuzz/targets.h), without a main: linked into vtl_fuzz
# (libFuzzer) and into vtl_tests (corpus replay). Needs the OpenCV and FAISS layers;
# the upload target also needs the server.
set(VTL_FUZZ_TARGET_SOURCES
  targets.cpp input_file.cpp pth_target.cpp safetensors_target.cpp npy_target.cpp
  json_target.cpp csv_target.cpp image_target.cpp)
if(VTL_WITH_SERVER)
  list(APPEND VTL_FUZZ_TARGET_SOURCES upload_target.cpp)
endif()
list(TRANSFORM VTL_FUZZ_TARGET_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/fuzz/)
