# The library: one source folder per layer (docs/architecture.md). Layers that need an
# optional dependency are compiled only when it is enabled.
set(VTL_LAYERS core weights models)
if(VTL_WITH_OPENCV)
  list(APPEND VTL_LAYERS dist data train embed)
endif()
if(VTL_WITH_FAISS)
  list(APPEND VTL_LAYERS search)
endif()
if(VTL_WITH_SERVER AND VTL_WITH_FAISS)
  list(APPEND VTL_LAYERS serve)
endif()

set(VTL_SOURCES)
foreach(layer IN LISTS VTL_LAYERS)
  file(GLOB_RECURSE layer_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*.cpp)
  list(APPEND VTL_SOURCES ${layer_sources})
endforeach()
if(NOT VTL_WITH_OPENCV)
  # Autocast, loss scaling, freezing and the optimizers need only LibTorch: kept for the
  # model benchmark on GPU builds (bench/model_throughput_bench).
  foreach(name mixed_precision freeze multi_tensor_optim)
    list(APPEND VTL_SOURCES ${PROJECT_SOURCE_DIR}/src/train/${name}.cpp)
  endforeach()
endif()

add_library(vtl ${VTL_SOURCES})
add_library(vtl::vtl ALIAS vtl)
target_include_directories(vtl PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:include>)
# Where data_dir() looks (src/core/runtime.cpp): the source tree's data/, then the share
# folder of the configured install prefix. Only runtime.cpp sees them: no build path is
# exported to programs that link an installed vtl.
include(GNUInstallDirs)
set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/core/runtime.cpp APPEND PROPERTY
             COMPILE_DEFINITIONS VTL_SOURCE_DATA_DIR="${PROJECT_SOURCE_DIR}/data"
                                 VTL_INSTALL_DATA_DIR="${CMAKE_INSTALL_FULL_DATADIR}/vtl")
# Headers private to the library (src/<layer>/*.h) are included as "<layer>/name.h".
target_include_directories(vtl PRIVATE ${PROJECT_SOURCE_DIR}/src)
# fmt is public: vtl/core/error.h formats its messages with it.
target_link_libraries(vtl PUBLIC ${TORCH_LIBRARIES} Threads::Threads fmt::fmt
  PRIVATE nlohmann_json::nlohmann_json)
if(OpenSSL_FOUND)
  target_link_libraries(vtl PRIVATE OpenSSL::Crypto)
  set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/core/sha256.cpp APPEND PROPERTY
               COMPILE_DEFINITIONS VTL_HAVE_OPENSSL=1)
endif()
target_compile_options(vtl PRIVATE -Wall -Wextra -Wno-unused-parameter)

foreach(layer IN LISTS VTL_LAYERS)
  string(TOUPPER ${layer} LAYER)
  target_compile_definitions(vtl PUBLIC VTL_HAVE_${LAYER}=1)
endforeach()
if(VTL_WITH_OPENCV)
  target_link_libraries(vtl PUBLIC ${OpenCV_LIBS} JPEG::JPEG GIF::GIF ZLIB::ZLIB TIFF::TIFF
                                    ${VTL_WEBPDEMUX_LIBRARY})
  target_include_directories(vtl PRIVATE ${VTL_WEBP_INCLUDE_DIR})
  target_include_directories(vtl PUBLIC ${OpenCV_INCLUDE_DIRS})
endif()
if(VTL_WITH_FAISS)
  target_link_libraries(vtl PRIVATE faiss SQLite::SQLite3 PUBLIC OpenMP::OpenMP_CXX)
endif()
if(VTL_WITH_CURL)
  target_link_libraries(vtl PRIVATE CURL::libcurl)
  target_compile_definitions(vtl PUBLIC VTL_HAVE_CURL=1)
endif()
if(VTL_WITH_SERVER)
  # Debian builds cpp-httplib as a library whose struct layouts depend on its pkg-config
  # switches: include it only through src/serve/http.h, which defines them.
  target_include_directories(vtl PUBLIC ${HTTPLIB_INCLUDE_DIR})
  target_link_libraries(vtl PUBLIC cpp-httplib)
endif()
if(VTL_WITH_OPENCV)
  # dist: c10d's Gloo process group (Debian's LibTorch is built with it; libgloo-dev has
  # its headers); NCCL where the LibTorch has CUDA and nccl.h is found. Only src/dist
  # includes c10d, so only it sees these definitions.
  file(GLOB dist_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/dist/*.cpp)
  set(dist_definitions USE_C10D_GLOO)
  target_include_directories(vtl PRIVATE ${VTL_GLOO_INCLUDE_DIR})
  if(VTL_NCCL_INCLUDE_DIR)
    target_include_directories(vtl PRIVATE ${VTL_NCCL_INCLUDE_DIR})
    list(APPEND dist_definitions USE_C10D_NCCL VTL_WITH_NCCL=1)
  endif()
  set_source_files_properties(${dist_sources} PROPERTIES COMPILE_DEFINITIONS "${dist_definitions}")
endif()
if(VTL_USE_PCH)
  target_precompile_headers(vtl PRIVATE <torch/torch.h>)
endif()
# The MAC counter reads at::RecordFunction, whose layout has an extra member without
# NDEBUG; Debian's LibTorch is built with NDEBUG, so this file is too in every build type
# (a Debug build would otherwise read the library's objects with the wrong layout).
set_source_files_properties(${PROJECT_SOURCE_DIR}/src/models/stats.cpp PROPERTIES
  COMPILE_DEFINITIONS NDEBUG SKIP_PRECOMPILE_HEADERS ON)
