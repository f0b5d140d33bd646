# Every dependency comes from the system (Debian packages); nothing is downloaded.
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)

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
