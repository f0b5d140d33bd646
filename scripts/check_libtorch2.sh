#!/usr/bin/env bash
# Syntax-checks all of vtl against a LibTorch 2.x's headers from Debian (libtorch-dev of
# another suite, unpacked under /tmp, not installed), with that suite's fmt. Needs a
# configured build (compile_commands.json) of this checkout. On 2 cores: about 40 minutes.
#
#   bash scripts/check_libtorch2.sh [SUITE [BUILD_DIR [PATH_PREFIX ...]]]
#     SUITE: sid (default; LibTorch 2.14, C++20) or trixie (LibTorch 2.6, C++17)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-sid}
build=${2:-build}
shift $(($# > 2 ? 2 : $#))
work=/tmp/vtl-libtorch-$suite
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb http://deb.debian.org/debian $suite main" > "$work/sources.list"
apt_options=(-oDir::Etc::SourceList="$work/sources.list" -oDir::Etc::SourceParts=/dev/null
  -oDir::State::Lists="$work/lists" -oDir::Cache::Archives="$work/archives")
if [[ ! -d $work/root/usr/include/torch ]]; then
  apt-get "${apt_options[@]}" update -qq
  (cd "$work" && apt-get "${apt_options[@]}" download libtorch-dev libfmt-dev)
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
fi
std=gnu++17
grep -q "CXX_STANDARD 20" "$work"/root/usr/lib/*/cmake/Torch/TorchConfig.cmake && std=gnu++20
grep -h "define TORCH_VERSION_M" "$work"/root/usr/include/torch/headeronly/version.h \
  "$work"/root/usr/include/torch/csrc/api/include/torch/version.h 2>/dev/null | head -2 || true
echo "checking with -std=$std"
nice python3 scripts/check_libtorch_headers.py "$build" "$work/root/usr/include" --std "$std" \
  --jobs "$(nproc)" "$@"
