#!/usr/bin/env bash
# test_positions.sh — `train --pos none` (NoPE) and `--pos rope` (rotary): the checkpoint records
# "pos", the learned position table stays exactly 0 through training and resuming, the loss
# still falls on structured text, eval and generate load it; `--pos` cannot change on resume; a
# bad value, or rope with a mixer that has no queries and keys, is a clear error.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-positions.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
awk 'BEGIN{srand(11); split("the a one every no",D," "); split("cat dog bird fish king queen",N," ");
  split("sees eats likes finds",V," "); for(i=0;i<5000;i++) printf "%s %s %s %s %s.\n", D[int(rand()*5)+1],
  N[int(rand()*6)+1], V[int(rand()*4)+1], D[int(rand()*5)+1], N[int(rand()*6)+1] }' > "$dir/corpus.txt"
H=$(awk 'BEGIN{RS="\001"} {n=split($0,c,""); for(i=1;i<=n;i++) f[c[i]]++} END{for(k in f){p=f[k]/n; h-=p*log(p)} printf "%.4f", h}' "$dir/corpus.txt")
common=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 32 --context 32 --batch 8 --lr 3e-3 --min-lr 3e-4
        --warmup 10 --eval-every 100 --eval-batches 4 --threads 2 --quiet)
for pos in none rope; do
  "$bin" train "${common[@]}" --pos $pos --steps 200 --stop-after 120 --out "$dir/$pos" > "$dir/n.out" 2>&1
  check "train --pos $pos exits 0" "[ $? -eq 0 ]"
  "$bin" train --resume "$dir/$pos" --quiet > "$dir/r.out" 2>&1
  check "resume exits 0" "[ $? -eq 0 ]"
  # The safetensors header: config pos as asked; the wpe tensor all zero bytes.
  wpe=$(python3 - "$dir/$pos/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
cfg = json.loads(h['__metadata__']['config']) if 'config' in h.get('__metadata__', {}) else {}
s, e = h['transformer.wpe.weight']['data_offsets']
print(cfg.get('pos'), 'zero' if not any(b[8 + n + s:8 + n + e]) else 'nonzero')
PY
  )
  check "checkpoint says pos $pos and wpe is exactly 0 after training and resuming ($wpe)" "[ \"$wpe\" = '$pos zero' ]"
  val=$(grep -o '"val_loss":[0-9.]*' "$dir/$pos/log.jsonl" | tail -1 | cut -d: -f2)
  echo "     unigram entropy $H nats/char, final val loss $val"
  check "val loss < 0.75 x unigram entropy with --pos $pos" "awk -v v=$val -v h=$H 'BEGIN{exit !(v < 0.75*h)}'"
  check "eval loads it" "\"$bin\" eval \"$dir/$pos\" --json > \"$dir/e.json\" 2>&1 && grep -q '\"loss\"' \"$dir/e.json\""
  check "generate loads it" "\"$bin\" generate \"$dir/$pos\" --prompt 'the ' --tokens 20 > \"$dir/g.txt\" 2>&1"
  "$bin" train --resume "$dir/$pos" --pos learned --quiet > "$dir/x.out" 2>&1
  check "--pos cannot change on resume" "[ $? -eq 2 ] && grep -q -- '--pos cannot be changed' \"$dir/x.out\""
done
"$bin" train "${common[@]}" --pos sinus --steps 2 --out "$dir/bad" > "$dir/b.out" 2>&1
check "--pos sinus is a clear error" "[ $? -eq 2 ] && grep -q 'not a position scheme' \"$dir/b.out\""
"$bin" train "${common[@]}" --pos rope --attn shift --steps 2 --out "$dir/bad2" > "$dir/b2.out" 2>&1
check "--pos rope with shift is a clear error" "[ $? -ne 0 ] && grep -q 'has none' \"$dir/b2.out\""
exit $fail
