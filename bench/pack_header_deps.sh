#!/usr/bin/env bash
# Copies this machine's nlohmann-json and fmt headers (Debian's nlohmann-json3-dev and
# libfmt-dev) into .deps/include, for a machine that has LibTorch but not those packages:
# cmake/dependencies.cmake finds them there (VTL_EXTRA_INCLUDE_DIR). With the device tool,
# carry ".deps" (it is ignored by git, so it travels only when carried).
set -euo pipefail
cd "$(dirname "$0")/.."
for header in /usr/include/nlohmann/json.hpp /usr/include/fmt/format.h; do
  [[ -f $header ]] || { echo "$header missing: apt-get install nlohmann-json3-dev libfmt-dev" >&2; exit 1; }
done
rm -rf .deps/include
mkdir -p .deps/include
cp -r /usr/include/nlohmann /usr/include/fmt .deps/include/
echo "headers in .deps/include: $(du -sh .deps/include | cut -f1)"
