#!/usr/bin/env bash
# Runs vtl's ONNX exports in ONNX Runtime and compares them with torchvision (on demand,
# not part of the test suite: it needs the npm registry). onnxruntime-node ships its CPU
# library in the package; its install script, which fetches GPU libraries, is skipped.
#   bash scripts/check_onnxruntime.sh [MODEL...]     (after building ./build/vtl)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${VTL_ORT_DIR:-/tmp/vtl-onnxruntime}
mkdir -p "$work"
if [[ ! -d $work/node_modules/onnxruntime-node ]]; then
  (cd "$work" && npm install --silent --ignore-scripts onnxruntime-node@1.20.1 >/dev/null)
fi
NODE_PATH="$work/node_modules" /usr/bin/python3 scripts/onnxruntime/compare.py \
  "$PWD/build/vtl" "$work" "$@"
