#!/usr/bin/env bash
# long_context.sh — byte-level long context: the same small model (4 layers, dim 128, 4 heads,
# context 1024, batch 4) trained on the enwik8-style sample with each mixer, then evaluated at
# several contexts (256, 512, 1024) on its validation split, and `mixlm report` over the runs.
# Usage: bench/long_context.sh [SPEC ...]  (env: MIXLM_BIN, THREADS=2, STEPS=400, OUT=runs/long)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MIXLM_BIN:-./build/mixlm}
threads=${THREADS:-2}
steps=${STEPS:-400}
out=${OUT:-runs/long}
data=${DATA:-../shared/data/enwik8_prefix.xml}
[ -f "$data" ] || { echo "long_context.sh: $data not found (set DATA=...)"; exit 77; }
unset OPENBLAS_CORETYPE
if [ $# -gt 0 ]; then specs=("$@"); else
  specs=(dense window:w=128 bigbird:b=32,w=3,r=2,g=1 lsh:h=2,nb=16,c=64 linformer:k=8,b=64 linear
         performer:m=64 longconv causal_fnet)
fi
mkdir -p "$out"
runs=()
for spec in "${specs[@]}"; do
  name=$(tr ':=,' '_~.' <<< "$spec" | tr '~' '-')
  dir="$out/$name"
  runs+=("$dir")
  if [ -f "$dir/summary.json" ]; then echo "skip $spec (done)"; continue; fi
  rm -rf "$dir"
  echo "== $spec"
  "$bin" train --data "$data" --tokenizer byte --layers 4 --heads 4 --dim 128 --context 1024 --batch 4 \
      --steps "$steps" --lr 1e-3 --min-lr 1e-4 --warmup 50 --beta2 0.99 --weight-decay 0.1 --grad-clip 1 \
      --eval-every 100 --eval-batches 4 --attn "$spec" --seed 1337 --threads "$threads" --out "$dir" --quiet \
      | grep -E '^done:'
done
"$bin" eval "${runs[@]}" --context 256,512,1024 --batch 4 --threads "$threads" | tee "$out/eval.txt"
"$bin" compare "${runs[@]}" | tee "$out/compare.txt"
"$bin" report "${runs[@]}" -o "$out/report.html"
