#!/usr/bin/env bash
cd "${1:-.}"  # a directory holding lm.txt (the first 3,000,000 bytes of enwik8_prefix.xml) and a mixlm binary
B=./mixlm
common=(--data lm.txt --tokenizer byte --layers 2 --dim 128 --heads 4 --context 1024 --batch 4 --lr 1e-3 --min-lr 1e-4 --beta2 0.99 --weight-decay 0.1 --grad-clip 1 --eval-batches 2 --val-frac 0.01 --seed 1337 --threads 2)
for m in dense linear; do
  rm -rf cal; $B train "${common[@]}" --attn $m --steps 5 --warmup 0 --eval-every 0 --eval-batches 1 --ckpt-every 0 --quiet --out cal > /dev/null 2>&1
  ms=$(grep -o '"ms_per_step_median":[[:space:]]*[0-9.]*' cal/summary.json | grep -o '[0-9.]*$')
  steps=$(awk -v ms=$ms 'BEGIN{printf "%d", 300000/ms}')
  for pos in learned none; do
    d=run-$m-$pos; rm -rf $d
    $B train "${common[@]}" --attn $m --pos $pos --steps $steps --warmup $((steps/10)) --eval-every 100 --log-every 20 --ckpt-every 0 --time-budget 600 --quiet --out $d > $d.out 2>&1
    $B eval $d --json --batch 4 > $d.eval.json 2>/dev/null
    echo "$m $pos calibrated ${ms} ms/step -> $steps steps: $(grep -o '"bits_per_byte":[[:space:]]*[0-9.]*' $d.eval.json) $(grep '^done' $d.out)"
  done
done
