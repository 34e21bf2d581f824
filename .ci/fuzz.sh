#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer harnesses (tests/fuzz/) with clang, ASan and UBSan into build-fuzz
# and run each for a bounded time on a copy of its checked-in corpus (the corpus itself is never
# written: new inputs go to build-fuzz/corpus/<harness>). Crash, leak and timeout reproducers land in
# build-fuzz/artifacts/<harness>/; the script fails when any fuzzer does. Exit 77 (skipped) where
# clang or libFuzzer is missing.
#   FUZZ_TIME=<seconds per harness> (default 30)   FUZZ_HARNESSES="spec numbers" (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang not found; skipped (apt-get install clang libfuzzer-14-dev)"
  exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
  > "$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
  echo "fuzz.sh: clang cannot link libFuzzer (-fsanitize=fuzzer); skipped (apt-get install libfuzzer-14-dev)"
  exit 77
fi

time_s=${FUZZ_TIME:-30}
harnesses=${FUZZ_HARNESSES:-"safetensors spec numbers tokens"}
jobs=$(nproc 2>/dev/null || echo 2)
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIXLM_FUZZ=ON \
  -DMIXLM_WERROR=ON -DMIXLM_CUDA=OFF -DMIXLM_NATIVE=OFF >/dev/null || exit 1
targets=()
for h in $harnesses; do targets+=("fuzz_$h" "fuzz_replay_$h"); done
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}" || exit 1

fail=0
for h in $harnesses; do
  work=build-fuzz/corpus/$h art=build-fuzz/artifacts/$h/ log=build-fuzz/logs/$h.log
  rm -rf "$work" && mkdir -p "$work" "$art" build-fuzz/logs
  cp tests/fuzz/corpus/"$h"/* "$work"/
  echo "== fuzz_$h for ${time_s}s (log: $log)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    build-fuzz/tests/fuzz_"$h" -max_total_time="$time_s" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$art" "$work" > "$log" 2>&1
  rc=$?
  # The last status line (runs, cov, ft, corpus) and the final stats; a failure's report in full.
  if [ "$rc" -ne 0 ]; then tail -n 60 "$log"; else grep -E '#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1; grep '^stat::' "$log"; fi
  if [ "$rc" -ne 0 ]; then
    echo "FAIL fuzz_$h (exit $rc): reproducers in $art; replay one with build-fuzz/tests/fuzz_$h <file>"
    fail=1
  fi
done
exit $fail
