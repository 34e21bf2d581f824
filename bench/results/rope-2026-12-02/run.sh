#!/usr/bin/env bash
# Rotary positions (train --pos rope) against session 7's learned / NoPE runs
# (bench/results/nope-2026-12-02/: same settings, same steps, so the same tokens), plus longconv
# at the same budget on this machine (the mixer the dense-LM gap is measured against).
cd "${1:-.}"  # a directory holding lm.txt (the first 3,000,000 bytes of enwik8_prefix.xml) and a mixlm binary
B=./mixlm
common=(--data lm.txt --tokenizer byte --layers 2 --dim 128 --heads 4 --context 1024 --batch 4 --lr 1e-3 --min-lr 1e-4 --beta2 0.99 --weight-decay 0.1 --grad-clip 1 --eval-batches 2 --val-frac 0.01 --seed 1337 --threads 2)
run() { # name, steps, args...
  local d=run-$1 steps=$2; shift 2; rm -rf $d
  $B train "${common[@]}" "$@" --steps $steps --warmup $((steps/10)) --eval-every 100 --log-every 20 --ckpt-every 0 --time-budget 600 --quiet --out $d > $d.out 2>&1
  $B eval $d --json --batch 4 > $d.eval.json 2>/dev/null
  echo "$d $steps steps: $(grep -o '"bits_per_byte":[[:space:]]*[0-9.]*' $d.eval.json) $(grep '^done' $d.out)"
}
# the steps of session 7's calibration (300 s on this machine at avx512)
run dense-rope 2834 --attn dense --pos rope
run linear-rope 4303 --attn linear --pos rope
# longconv: calibrated here to 300 s like the others
rm -rf cal; $B train "${common[@]}" --attn longconv --steps 5 --warmup 0 --eval-every 0 --eval-batches 1 --ckpt-every 0 --quiet --out cal > /dev/null 2>&1
ms=$(grep -o '"ms_per_step_median":[[:space:]]*[0-9.]*' cal/summary.json | grep -o '[0-9.]*$')
run longconv-learned "$(awk -v ms=$ms 'BEGIN{printf "%d", 300000/ms}')" --attn longconv
