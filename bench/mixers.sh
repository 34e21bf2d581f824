#!/usr/bin/env bash
# mixers.sh — the long-context cost comparison of every registered mixer: one mixer sublayer,
# B=1, C=128, H=4, forward and forward+backward at T = 1k, 4k, 16k (and 64k for every mixer whose
# --list summary does not say O(T^2) time), written to bench/results/mixers-<date>.{csv,json,txt}.
# Not a quality comparison (no training) and not a model benchmark (mixers only).
#
# usage: bench/mixers.sh            (env: MIXLM_BIN, THREADS, REPEATS, TIME_BUDGET, STAMP,
#                                    CONTEXTS, LONG_CONTEXTS, SPEC_<name> to override a spec)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MIXLM_BIN:-./build-bench/mixlm}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-3}
TIME_BUDGET=${TIME_BUDGET:-600}
CONTEXTS=${CONTEXTS:-1024,4096,16384}
LONG_CONTEXTS=${LONG_CONTEXTS:-65536}
STAMP=${STAMP:-$(date +%Y-%m-%d)}
OUT=bench/results/mixers-$STAMP
COMMON=(--batch 1 --dim 128 --heads 4 --layers 1 --threads "$THREADS" --repeats "$REPEATS"
        --warmup 1 --time-budget "$TIME_BUDGET")

[ -x "$BIN" ] || { echo "mixers.sh: no binary at $BIN (build: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target mixlm, or set MIXLM_BIN)" >&2; exit 2; }
mkdir -p bench/results

# The registry decides what is compared: every mixer `mixlm bench --list` prints, with its
# default spec (override one with SPEC_<name>='window:w=512').
all=() long=()
while read -r name rest; do
    [ -n "$name" ] || continue
    var="SPEC_$name"
    spec=${!var:-$name}
    all+=(--attn "$spec")
    case "$rest" in
        *"O(T^2) time"* | *"O(T²) time"*) ;;  # quadratic: 64k would take hours
        *) long+=(--attn "$spec") ;;
    esac
done < <("$BIN" bench --list)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "# mixlm bench/mixers.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, threads $THREADS"
    echo "# command: env -u OPENBLAS_CORETYPE $BIN bench ${all[*]} --context $CONTEXTS ${COMMON[*]}"
    env -u OPENBLAS_CORETYPE "$BIN" bench "${all[@]}" --context "$CONTEXTS" "${COMMON[@]}" \
        --csv-out "$tmp/a.csv" --json-out "$tmp/a.json"
    if [ ${#long[@]} -gt 0 ] && [ -n "$LONG_CONTEXTS" ]; then
        echo
        echo "# command: env -u OPENBLAS_CORETYPE $BIN bench ${long[*]} --context $LONG_CONTEXTS ${COMMON[*]}"
        env -u OPENBLAS_CORETYPE "$BIN" bench "${long[@]}" --context "$LONG_CONTEXTS" "${COMMON[@]}" \
            --csv-out "$tmp/b.csv" --json-out "$tmp/b.json"
    fi
} | tee "$OUT.txt"

# Merge the two runs: CSV rows and JSON arrays, sorted by mixer order then context.
cp "$tmp/a.csv" "$OUT.csv"
[ -f "$tmp/b.csv" ] && tail -n +2 "$tmp/b.csv" >>"$OUT.csv"
if [ -f "$tmp/b.json" ]; then
    PY=$(command -v python3 || echo /usr/bin/python3)
    "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); a+=json.load(open(sys.argv[2])); json.dump(a, open(sys.argv[3],"w"), indent=1)' \
        "$tmp/a.json" "$tmp/b.json" "$OUT.json"
else
    cp "$tmp/a.json" "$OUT.json"
fi
echo "wrote $OUT.csv $OUT.json $OUT.txt"
