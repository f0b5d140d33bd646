#!/usr/bin/env bash
# Builds vtl, its CLI and the whole test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC) into build-asan/ and runs the suite there. Any report
# fails the test that triggered it: UBSan does not recover, ASan aborts.
#
#   bash scripts/sanitize.sh              # build + run everything
#   bash scripts/sanitize.sh -R Pth       # extra arguments go to ctest
#
# consumer_project is left out: it installs the library and builds a separate project
# against it without the sanitizer runtime, which tests the install layout, not memory.
# Libraries vtl links (LibTorch, OpenCV, FAISS, cpp-httplib) are Debian's own builds, not
# instrumented: ASan sees vtl's code and every heap block, UBSan only vtl's code.
# -DNDEBUG as in Debian's LibTorch: some of its headers declare members only without
# NDEBUG, and a different class layout on each side of the library boundary is undefined
# behaviour of its own. -O0: vtl's code is thin around LibTorch's kernels, so the suite
# runs about as fast as at -O1 and builds much faster.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${VTL_SANITIZE_BUILD_DIR:-build-asan}
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O0 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS="$sanitizers" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DVTL_BUILD_BENCH=OFF
cmake --build "$build"

# container-overflow needs every library instrumented (it reports false positives when a
# std::vector crosses into Debian's LibTorch); leaks are checked (LeakSanitizer), with no
# suppressions.
export ASAN_OPTIONS="detect_container_overflow=0:detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$build" --output-on-failure -j2 -E '^consumer_project$' --timeout 1800 "$@"
