# Every dependency comes from the system (Debian packages); nothing is downloaded.
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)

# LibTorch records the C++ standard its headers need on its target (C++20 from 2.14 on);
# vtl compiles with that standard where it is newer than C++17.
if(TARGET torch)
  get_target_property(VTL_TORCH_CXX_STANDARD torch CXX_STANDARD)
  if(VTL_TORCH_CXX_STANDARD AND VTL_TORCH_CXX_STANDARD GREATER CMAKE_CXX_STANDARD)
    set(CMAKE_CXX_STANDARD ${VTL_TORCH_CXX_STANDARD})
  endif()
endif()
message(STATUS "vtl: LibTorch ${Torch_VERSION}, C++${CMAKE_CXX_STANDARD}")

# nlohmann-json and fmt are header-only for vtl. Where their packages are missing (a CUDA
# machine with only Python's torch) they are found as headers: fmt in LibTorch's include
# folder (its wheels ship it), both in VTL_EXTRA_INCLUDE_DIR (bench/pack_header_deps.sh
# copies this machine's into .deps/include).
set(VTL_EXTRA_INCLUDE_DIR "${PROJECT_SOURCE_DIR}/.deps/include" CACHE PATH
    "Folder holding nlohmann/json.hpp and fmt/ where their packages are not installed")

# Imported target `target` for a header-only dependency whose package is missing: the
# folder holding `header` (found in HINTS, cached as `variable`) and DEFINITIONS.
function(vtl_header_only_target target header variable debian_package)
  cmake_parse_arguments(arg "" "" "HINTS;DEFINITIONS" ${ARGN})
  find_path(${variable} ${header} HINTS ${arg_HINTS})
  if(NOT ${variable})
    message(FATAL_ERROR "${header} not found: install ${debian_package}, or run "
                        "bench/pack_header_deps.sh where it is installed and carry .deps/")
  endif()
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${${variable}}
                                             INTERFACE_COMPILE_DEFINITIONS "${arg_DEFINITIONS}")
  message(STATUS "vtl: ${header} from ${${variable}}")
endfunction()

find_package(nlohmann_json QUIET)
if(NOT nlohmann_json_FOUND)
  vtl_header_only_target(nlohmann_json::nlohmann_json nlohmann/json.hpp
                         VTL_NLOHMANN_JSON_INCLUDE_DIR nlohmann-json3-dev
                         HINTS ${VTL_EXTRA_INCLUDE_DIR})
endif()
find_package(fmt QUIET)
if(NOT fmt_FOUND)
  vtl_header_only_target(fmt::fmt fmt/format.h VTL_FMT_INCLUDE_DIR libfmt-dev
                         HINTS ${TORCH_INCLUDE_DIRS} ${VTL_EXTRA_INCLUDE_DIR}
                         DEFINITIONS FMT_HEADER_ONLY=1)
endif()

# SHA-256: OpenSSL's where it is installed, vtl's portable implementation otherwise.
find_package(OpenSSL QUIET COMPONENTS Crypto)
if(NOT OpenSSL_FOUND)
  message(STATUS "vtl: OpenSSL not found: SHA-256 uses vtl's portable implementation")
endif()

if(VTL_WITH_OPENCV)
  # The dist layer: Gloo's headers for c10d's ProcessGroupGloo, NCCL's with a CUDA LibTorch.
  find_path(VTL_GLOO_INCLUDE_DIR gloo/algorithm.h
            DOC "libgloo-dev: headers of the Gloo library inside LibTorch")
  if(NOT VTL_GLOO_INCLUDE_DIR)
    message(FATAL_ERROR "gloo/algorithm.h not found: install libgloo-dev (distributed training)")
  endif()
  if(TORCH_CUDA_LIBRARIES)
    find_path(VTL_NCCL_INCLUDE_DIR nccl.h
              HINTS ${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include ${CUDAToolkit_INCLUDE_DIRS})
  endif()
  find_package(OpenCV REQUIRED COMPONENTS core imgcodecs imgproc ml)
  find_package(JPEG REQUIRED)  # JPEGs are decoded with libjpeg directly (src/data/jpeg_decoder.h)
  find_package(GIF REQUIRED)   # and GIFs with giflib (src/data/gif_decoder.h)
  find_package(ZLIB REQUIRED)  # CRCs of PNG chunks (src/data/png_chunks.h)
  find_package(TIFF REQUIRED)  # TIFFs checked quietly before OpenCV decodes them (src/data/tiff_review.h)
  # Animated WebPs' first frames (src/data/webp_animation.h): libwebp-dev's demux library.
  find_library(VTL_WEBPDEMUX_LIBRARY webpdemux)
  find_path(VTL_WEBP_INCLUDE_DIR webp/demux.h)
  if(NOT VTL_WEBPDEMUX_LIBRARY OR NOT VTL_WEBP_INCLUDE_DIR)
    message(FATAL_ERROR "libwebpdemux not found: install libwebp-dev")
  endif()
endif()
if(VTL_WITH_FAISS)
  find_package(OpenMP REQUIRED)  # Debian's faiss config needs it first
  find_package(faiss REQUIRED)
  find_package(SQLite3 REQUIRED)
endif()
if(VTL_WITH_CURL)
  find_package(CURL REQUIRED)
endif()
if(VTL_WITH_SERVER)
  find_path(HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
endif()
