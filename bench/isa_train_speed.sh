#!/usr/bin/env bash
# Training-step time of the baby config, interleaved: an older binary (BEFORE) and this build at
# its best SIMD level and at each lower MIXLM_ISA level, ROUNDS rounds of A B C ... so the host's
# noise hits every variant alike; prints each run's `done:` median ms/step and the medians.
# Usage: BEFORE=/path/to/old/mixlm AFTER=./build/mixlm LEVELS="avx2 sse scalar" bench/isa_train_speed.sh
# Not a correctness check (losses are printed for a glance only).
set -euo pipefail
BEFORE=${BEFORE:-}
AFTER=${AFTER:-./build/mixlm}
LEVELS=${LEVELS:-"avx2 sse scalar"}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-60}
DATA=${DATA:-/work/shared/data/tinyshakespeare.txt}
export OMP_WAIT_POLICY=PASSIVE
args=(train --data "$DATA" --layers 4 --heads 4 --dim 128 --context 64 --batch 12 --steps "$STEPS" --warmup 2
      --eval-every 0 --eval-batches 1 --ckpt-every 0 --threads 2 --quiet)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
variants=()
[ -n "$BEFORE" ] && variants+=(before)
variants+=(best $LEVELS)
declare -A times
for round in $(seq "$ROUNDS"); do
  for v in "${variants[@]}"; do
    bin=$AFTER; isa=
    case $v in before) bin=$BEFORE ;; best) ;; *) isa=$v ;; esac
    rm -rf "$out/run"
    line=$(env ${isa:+MIXLM_ISA=$isa} "$bin" "${args[@]}" --out "$out/run" 2>&1 | grep 'done:' | tail -1)
    ms=$(sed -n 's/.*median \([0-9.]*\) ms\/step.*/\1/p' <<<"$line")
    loss=$(sed -n 's/.*final train loss \([0-9.]*\).*/\1/p' <<<"$line")
    echo "round $round $v: $ms ms/step (train loss $loss)"
    times[$v]="${times[$v]:-} $ms"
  done
done
echo "medians over $ROUNDS rounds (ms/step):"
for v in "${variants[@]}"; do
  med=$(tr ' ' '\n' <<<"${times[$v]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "  $v: $med"
done
