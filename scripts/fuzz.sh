#!/usr/bin/env bash
# Fuzzing campaign over every parser of outside data (fuzz/targets.h): builds
# build-fuzz/fuzz/vtl_fuzz with Clang (libFuzzer + AddressSanitizer + UBSan, the library
# instrumented too), then fuzzes each target for SECONDS seconds starting from its corpus
# fuzz/corpus/<target>/. New inputs go to a scratch folder and are merged back into the
# corpus with -merge=1 (only inputs that add coverage are kept). Crash, leak and timeout
# reproducers are saved in fuzz/crashes/<target>/ (not committed); the script exits
# non-zero when any target produced one.
#
#   bash scripts/fuzz.sh                 # 120 s per target, every target
#   bash scripts/fuzz.sh 600             # 10 min per target
#   bash scripts/fuzz.sh 60 pth npy      # only these targets
#
# Reproduce a crash:  VTL_FUZZ_TARGET=pth build-fuzz/fuzz/vtl_fuzz fuzz/crashes/pth/crash-...
# Every corpus file is also replayed by the ordinary test suite
# (tests/reliability/fuzz_corpus_test.cpp), so a fixed crash stays fixed once its
# reproducer is copied into fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-120}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(pth safetensors npy json image upload); fi
build=build-fuzz
jobs=${VTL_FUZZ_BUILD_JOBS:-2}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DVTL_BUILD_FUZZERS=ON \
    -DVTL_BUILD_TESTS=OFF -DVTL_BUILD_BENCH=OFF -DVTL_BUILD_EXAMPLES=OFF \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1"
fi
cmake --build "$build" --target vtl_fuzz -j "$jobs"
fuzzer=$PWD/$build/fuzz/vtl_fuzz

# container-overflow needs every library instrumented (LibTorch, OpenCV are not); leaks
# are left to the sanitizer test suite (scripts/sanitize.sh), which can tell Debian's
# libraries' caches from ours.
export ASAN_OPTIONS="detect_container_overflow=0:detect_leaks=0:abort_on_error=1"
# fuzz/ubsan.supp lists known undefined behaviour outside vtl's control; a caller's
# UBSAN_OPTIONS replaces these.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-"print_stacktrace=1:halt_on_error=1:suppressions=$PWD/fuzz/ubsan.supp"}
export OMP_NUM_THREADS=1

failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  crashes=fuzz/crashes/$target
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/vtl-fuzz-$target.XXXXXX")
  mkdir -p "$corpus" "$crashes"
  echo "== $target: ${seconds}s from $(ls "$corpus" | wc -l) corpus files"
  set +e
  VTL_FUZZ_TARGET=$target "$fuzzer" "$scratch" "$corpus" \
    -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | tee "$crashes/last-run.log" \
    | grep -E "^(#[0-9]+ +(INITED|DONE)|==[0-9]+==|SUMMARY|stat::|Test unit written)"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ] || ls "$crashes" | grep -qE '^(crash|leak|timeout|oom)-'; then
    failed+=("$target")
  fi
  # Keep what adds coverage: merge the scratch finds into the corpus, counting new edges
  # only (not new hit counts), which keeps the committed corpora small.
  VTL_FUZZ_TARGET=$target "$fuzzer" -merge=1 -use_counters=0 -max_len=65536 -timeout=30 \
    -rss_limit_mb=4096 \
    "$corpus" "$scratch" >"$crashes/last-merge.log" 2>&1 || failed+=("$target(merge)")
  rm -rf "$scratch"
  echo "   corpus now $(ls "$corpus" | wc -l) files, $(($(du -sb "$corpus" | cut -f1) / 1024)) KiB"
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (reproducers in fuzz/crashes/)" >&2
  exit 1
fi
echo "no crashes in: ${targets[*]}"
