#!/usr/bin/env bash
# The GPU comparison of docs/performance.md in one call on a CUDA machine: configures vtl
# against the LibTorch inside the machine's Python torch (models only: no OpenCV, FAISS,
# curl, server, tests or examples), builds bench/model_throughput_bench and runs it, which
# runs PyTorch's side (bench/torch_throughput.py, eager and torch.compile) in the same run.
#
#   bash bench/run_gpu_comparison.sh [extra model_throughput_bench options]
#   OUT=/some/dir bash bench/run_gpu_comparison.sh    # also keeps the output there
#   VTL_GPU_PART=table|levers bash bench/run_gpu_comparison.sh   # one part per call (the
#     build is reused): the table, or the resnet50 runs with one lever changed each
#
# Needs: python3 with torch (CUDA) and torchvision; cmake, ninja, a C++ compiler (C++17, or
# C++20 for LibTorch 2.14 and later). nlohmann-json and fmt: their packages, or the headers
# that `bash bench/pack_header_deps.sh` copies into .deps/ on a machine that has them (with
# the device tool, carry ".deps"). OpenSSL is optional (vtl has a portable SHA-256).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${VTL_PYTHON:-python3}
prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
build=${VTL_GPU_BUILD_DIR:-build-gpu}
out=${OUT:-/tmp}
mkdir -p "$out"
{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  "$python" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "torchvision", torchvision.__version__)'
  nproc
} | tee "$out/machine.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DVTL_WITH_OPENCV=OFF -DVTL_WITH_FAISS=OFF -DVTL_WITH_CURL=OFF -DVTL_WITH_SERVER=OFF \
  -DVTL_BUILD_TESTS=OFF -DVTL_BUILD_EXAMPLES=OFF -DVTL_BUILD_BENCH=ON 2>&1 | tee "$out/configure.log"
cmake --build "$build" --target model_throughput_bench 2>&1 | tail -n 40 | tee "$out/build.log"
part=${VTL_GPU_PART:-all}
if [[ $part == all || $part == table ]]; then
# The table: four models, four modes, each also with the step in a CUDA graph.
PYTHONUNBUFFERED=1 VTL_PYTHON="$python" "$build/bench/model_throughput_bench" --device cuda \
  --cudnn-benchmark --compile resnet50 --cuda-graph "$@" 2>&1 | tee "$out/model_throughput.txt"
fi
[[ $part == all || $part == levers ]] || exit 0
# One lever on its own: LibTorch's per-parameter SGD step instead of the multi-tensor one.
"$build/bench/model_throughput_bench" --device cuda --cudnn-benchmark --models resnet50 \
  --modes train,finetune --libtorch-sgd --reference none 2>&1 | tee "$out/libtorch_sgd.txt"
# Another: ATen's fused SGD kernel (PyTorch's SGD(fused=True)) instead of the multi-tensor step.
"$build/bench/model_throughput_bench" --device cuda --cudnn-benchmark --models resnet50 \
  --modes train,finetune --fused-sgd --reference none 2>&1 | tee "$out/fused_sgd.txt"
# Another: BatchNorm as a layer of its own instead of folded into the convolutions.
"$build/bench/model_throughput_bench" --device cuda --cudnn-benchmark --models resnet50 \
  --modes infer,features,finetune --no-fold --reference none 2>&1 | tee "$out/no_fold.txt"
