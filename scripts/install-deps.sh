#!/usr/bin/env bash
# Installs everything vtl needs to build, run and test on Debian 12 (run as root).
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # tensors, images, vector search, catalogue
  libtorch-dev libopenblas0-pthread libopencv-dev libjpeg-dev libgif-dev zlib1g-dev libtiff-dev libwebp-dev libfaiss-dev libsqlite3-dev
  # CLI, JSON, HTTP, formatting, downloads with hash check, c10d headers
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libfmt-dev libcurl4-openssl-dev libssl-dev
  libgloo-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference implementation for parity tests, real images for the demo and tests
  python3 python3-numpy python3-torchvision python3-pil openclipart-png
  # ONNX export: the ONNX checker (OpenCV's DNN module, in libopencv-dev, runs the files)
  python3-onnx
  # end-to-end test of the search page
  chromium
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "vtl: dependencies installed"
