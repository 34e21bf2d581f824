#!/usr/bin/env bash
# quality.sh — the headline quality comparison: nanoGPT's CPU "baby" config (char, 4 layers,
# 4 heads, dim 128, context 64, batch 12, 2000 steps, lr 1e-3 -> 1e-4, warmup 100, beta2 0.99,
# wd 0.1, clip 1) on tinyshakespeare with each mixer, then a full-pass evaluation of every run,
# `mixlm compare` and `mixlm report`. Mixer specs are scaled to context 64 (e.g. window 32).
# Usage: bench/quality.sh [MIXER_SPEC ...]   (env: MIXLM_BIN, THREADS=2, STEPS=2000, OUT=runs/quality)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MIXLM_BIN:-./build/mixlm}
threads=${THREADS:-2}
steps=${STEPS:-2000}
out=${OUT:-runs/quality}
data=${DATA:-../shared/data/tinyshakespeare.txt}
export OMP_WAIT_POLICY=PASSIVE
unset OPENBLAS_CORETYPE
if [ $# -gt 0 ]; then specs=("$@"); else
  specs=(dense window:w=32 "dilated:w=16,d=1,1,2,4" strided:s=8 fixed:s=16,c=4 bigbird:b=8,w=3,r=2,g=1
         lsh:h=2,nb=8,c=16 linformer:k=4,b=16 nystrom:m=4,b=16 linear performer:m=64 longconv causal_fnet)
fi
mkdir -p "$out"
runs=()
for spec in "${specs[@]}"; do
  name=$(tr ':=,' '_~.' <<< "$spec" | tr '~' '-')
  dir="$out/$name"
  runs+=("$dir")
  if [ -f "$dir/summary.json" ]; then echo "skip $spec (done: $dir)"; continue; fi
  rm -rf "$dir"
  echo "== $spec"
  "$bin" train --data "$data" --tokenizer char --layers 4 --heads 4 --dim 128 --context 64 --batch 12 \
      --steps "$steps" --lr 1e-3 --min-lr 1e-4 --warmup 100 --beta2 0.99 --weight-decay 0.1 --grad-clip 1 \
      --eval-every 250 --eval-batches 20 --attn "$spec" --seed 1337 --threads "$threads" --out "$dir" --quiet \
      | grep -E '^done:'
done
"$bin" eval "${runs[@]}" --threads "$threads" | tee "$out/eval.txt"
"$bin" eval "${runs[@]}" --threads "$threads" --json > "$out/eval.json"
if "$bin" compare --help > /dev/null 2>&1; then
  "$bin" compare "${runs[@]}" | tee "$out/compare.txt"
  "$bin" report "${runs[@]}" -o "$out/report.html" && echo "report: $out/report.html"
fi
