#!/usr/bin/env bash
# The GPU comparison of docs/performance.md in one call on a CUDA machine: configures vtl
# against the LibTorch inside the machine's Python torch (models only: no OpenCV, FAISS,
# curl, server, tests or examples), builds bench/model_throughput_bench and runs it, which
# runs PyTorch's side (bench/torch_throughput.py, eager and torch.compile) in the same run.
#
#   bash bench/run_gpu_comparison.sh [extra model_throughput_bench options]
#   OUT=/some/dir bash bench/run_gpu_comparison.sh    # also keeps the output there
#
# Needs: python3 with torch (CUDA) and torchvision; cmake, ninja, a C++17 compiler; the
# nlohmann-json, fmt and OpenSSL development files (cmake/dependencies.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${VTL_PYTHON:-python3}
prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
build=${VTL_GPU_BUILD_DIR:-build-gpu}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DVTL_WITH_OPENCV=OFF -DVTL_WITH_FAISS=OFF -DVTL_WITH_CURL=OFF -DVTL_WITH_SERVER=OFF \
  -DVTL_BUILD_TESTS=OFF -DVTL_BUILD_EXAMPLES=OFF -DVTL_BUILD_BENCH=ON
cmake --build "$build" --target model_throughput_bench
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
VTL_PYTHON="$python" "$build/bench/model_throughput_bench" --device cuda --cudnn-benchmark \
  --compile resnet50 "$@" | tee "${OUT:-/tmp}/model_throughput.txt"
