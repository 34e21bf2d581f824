#!/usr/bin/env bash
# test_train.sh — end-to-end training through the binary: loss falls well below the unigram
# entropy of a generated corpus; stop-and-resume reproduces an uninterrupted run's losses
# exactly; Ctrl-C (SIGINT) saves a resumable checkpoint; bad input gives clear errors.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-train.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# A corpus with structure: sentences from a small grammar, fixed seed.
awk 'BEGIN{srand(7); split("the a one every no",D," "); split("cat dog bird fish king queen",N," ");
  split("sees eats likes finds follows",V," "); split("quickly slowly today again",A," ");
  for(i=0;i<6000;i++){ printf "%s %s %s %s %s %s.\n", D[int(rand()*5)+1], N[int(rand()*6)+1],
  V[int(rand()*5)+1], D[int(rand()*5)+1], N[int(rand()*6)+1], A[int(rand()*4)+1] } }' > "$dir/corpus.txt"
H=$(awk 'BEGIN{RS="\001"} {n=split($0,c,""); for(i=1;i<=n;i++) f[c[i]]++} END{for(k in f){p=f[k]/n; h-=p*log(p)} printf "%.4f", h}' "$dir/corpus.txt")

common=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 32 --context 32 --batch 8 --lr 3e-3 --min-lr 3e-4
        --warmup 10 --eval-every 50 --eval-batches 4 --log-every 1 --threads 2 --quiet)

"$bin" train "${common[@]}" --steps 300 --out "$dir/a" > "$dir/a.out" 2>&1
check "train exits 0" "[ $? -eq 0 ]"
val=$(grep -o '"val_loss":[0-9.]*' "$dir/a/log.jsonl" | tail -1 | cut -d: -f2)
echo "     unigram entropy $H nats/char, final val loss $val"
check "val loss < 0.6 x unigram entropy" "awk -v v=$val -v h=$H 'BEGIN{exit !(v < 0.6*h)}'"
# The run names the machine it ran on: CPU, SIMD level and OpenBLAS's core.
check "summary.json names cpu, isa and the OpenBLAS core" \
  "grep -q '\"cpu\"' $dir/a/summary.json && grep -q '\"isa\"' $dir/a/summary.json && grep -Eq '\"blas\":[[:space:]]*\"OpenBLAS [0-9.]+, core ' $dir/a/summary.json"
# ...and what the host did meanwhile: the hypervisor's steal and other processes' share, a
# "host:" line after "done:" and two numbers in [0, 100] in summary.json (null without /proc/stat).
host_ok() {
  if [ ! -r /proc/stat ]; then grep -Eq '"host_steal_pct":[[:space:]]*null' "$1/summary.json"; return; fi
  grep -Eq '^host: [0-9.]+% of the CPU time stolen by the hypervisor, [0-9.]+% used by other processes' "$2" &&
  awk '/"host_(steal|other)_pct"/ { gsub(/[^0-9.]/, "", $2); if ($2 == "" || $2 + 0 > 100) bad = 1; n++ }
       END { exit !(n == 2 && !bad) }' "$1/summary.json"
}
check "train prints the host's steal and other load; summary.json has both in [0, 100]" "host_ok $dir/a $dir/a.out"

# --profile: one line naming every kind of work, the same in summary.json, the categories adding
# up to a step, and the training itself unchanged (same losses, bit for bit).
pargs=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 32 --context 32 --batch 8 --steps 8 --eval-every 0
       --eval-batches 2 --ckpt-every 0 --threads 2 --quiet)
"$bin" train "${pargs[@]}" --out "$dir/p0" > "$dir/p0.out" 2>&1
"$bin" train "${pargs[@]}" --profile --out "$dir/p1" > "$dir/p1.out" 2>&1
check "--profile exits 0 and prints one profile line over 7 steps" \
  "[ \$? -eq 0 ] && [ \$(grep -c '^profile: mean of 7 steps after the first' $dir/p1.out) -eq 1 ]"
check "--profile names every kind of work, matmul with its GFLOP/s" \
  "grep '^profile:' $dir/p1.out | grep -q 'matmul [0-9.]* ms [0-9.]*% ([0-9.]* GFLOP/s), mixing .*, layernorm .*, gelu .*, softmax_ce .*, embed_resid .*, optimizer .*, data .*, other '"
check "--profile leaves the losses unchanged" \
  "[ \"\$(grep '^done:' $dir/p0.out | cut -d'|' -f1)\" = \"\$(grep '^done:' $dir/p1.out | cut -d'|' -f1)\" ]"
# summary.json's profile: 9 kinds, matmul and mixing > 0, their sum (a mean step) within 0.5..3
# median steps.
profile_sums_ok() {
  tr -d ' \t\n' < "$1" | awk '{
    if (!match($0, /"ms_per_step":\{[^}]*\}/)) exit 1
    body = substr($0, RSTART + 15, RLENGTH - 16); n = split(body, kv, ",")
    for (i = 1; i <= n; i++) { split(kv[i], p, ":"); gsub(/"/, "", p[1]); v[p[1]] = p[2] + 0; s += p[2] }
    if (!match($0, /"ms_per_step_median":[0-9.e+-]+/)) exit 1
    med = substr($0, RSTART + 21, RLENGTH - 21) + 0
    exit !(n == 9 && v["matmul"] > 0 && v["mixing"] > 0 && s >= 0.5 * med && s <= 3 * med) }'
}
check "summary.json: profile's 9 kinds add up to 0.5-3 median steps, matmul and mixing > 0" \
  "profile_sums_ok $dir/p1/summary.json"
grep -q '"profile"' "$dir/p0/summary.json" && { echo "FAIL summary.json has a profile without --profile"; fail=1; }

# A huge --steps with --time-budget ends at the budget in little memory (the step-time arrays
# were once sized by --steps: 34 GB at 2^31 steps, killed by the OOM killer).
"$bin" train --data "$dir/corpus.txt" --layers 1 --heads 1 --dim 16 --context 16 --batch 2 --steps 2000000000 \
    --time-budget 1 --eval-every 0 --eval-batches 1 --ckpt-every 0 --threads 2 --quiet --out "$dir/huge" > "$dir/huge.out" 2>&1
check "--steps 2e9 with --time-budget 1 exits 0 in under 2 GB (ASan builds: ~260 MB)" \
  "[ $? -eq 0 ] && rss=\$(grep -o '\"peak_rss_mb\":[[:space:]]*[0-9.]*' $dir/huge/summary.json | grep -o '[0-9.]*\$') &&
   awk -v r=\"\$rss\" 'BEGIN { exit !(r != \"\" && r + 0 < 2000) }'"

# Resume equality: 60 steps straight vs 25 + resume to 60, same threads.
"$bin" train "${common[@]}" --steps 60 --out "$dir/full" > /dev/null 2>&1
"$bin" train "${common[@]}" --steps 60 --stop-after 25 --out "$dir/half" > /dev/null 2>&1
check "stop-after leaves a checkpoint" "[ -f $dir/half/model.safetensors ]"
# Temporaries of a writer killed mid-checkpoint (kill -9): a dead PID's goes at the next start,
# a live process's stays.
dead=$(sh -c 'echo $$')
echo partial > "$dir/half/model.safetensors.tmp.$dead"
echo partial > "$dir/half/model.safetensors.tmp.$$"
"$bin" train --resume "$dir/half" --quiet > "$dir/resume.out" 2>&1
check "resume exits 0" "[ $? -eq 0 ]"
check "resume removes a dead writer's temporary" "[ ! -e $dir/half/model.safetensors.tmp.$dead ] && grep -q 'stale temporary' $dir/resume.out"
check "resume keeps a live process's temporary" "[ -e $dir/half/model.safetensors.tmp.$$ ]"
rm -f "$dir/half/model.safetensors.tmp.$$"
strip() { grep -o '"step":[0-9]*,"loss":[0-9.]*' "$1"; }
check "resumed losses equal uninterrupted losses bit for bit" "diff <(strip $dir/full/log.jsonl) <(strip $dir/half/log.jsonl) > /dev/null"
check "final checkpoints identical in parameters" "cmp -s <(tail -c 4000 $dir/full/model.safetensors) <(tail -c 4000 $dir/half/model.safetensors)"

# SIGINT mid-run: a checkpoint is saved and the run resumes.
"$bin" train "${common[@]}" --steps 100000 --ckpt-every 0 --out "$dir/sig" > "$dir/sig.out" 2>&1 &
pid=$!
for i in $(seq 1 100); do grep -q '"step":3,' "$dir/sig/log.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
check "SIGINT exits 130" "[ $rc -eq 130 ]"
check "SIGINT saved a checkpoint" "[ -f $dir/sig/model.safetensors ] && grep -q 'interrupted' $dir/sig.out"
"$bin" train --resume "$dir/sig" --steps 5 --quiet > /dev/null 2>&1 || true
"$bin" eval "$dir/sig" --json > "$dir/sig.json" 2>&1
check "interrupted run evaluates" "grep -q '\"loss\"' $dir/sig.json"

# Bad input: clear message, non-zero exit, no crash (exit codes > 128 would be signals).
err() { # name, expected substring, command...
  local name=$1 want=$2; shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qi -- "$want" <<< "$out"; then echo "ok   $name (rc $rc)";
  else echo "FAIL $name (rc $rc): $out"; fail=1; fi
}
: > "$dir/empty.txt"
err "missing data file" "cannot open" "$bin" train --data "$dir/nope.txt" --out "$dir/e1" --quiet
err "empty data file" "empty" "$bin" train --data "$dir/empty.txt" --out "$dir/e2" --quiet
err "no --data" "--data" "$bin" train --out "$dir/e3"
err "unknown flag" "unknown option '--lerning-rate'" "$bin" train --data "$dir/corpus.txt" --lerning-rate 1
err "unknown mixer" "unknown mixer 'dnese'" "$bin" train "${common[@]}" --attn dnese --steps 1 --out "$dir/e4"
err "bidirectional mixer refused" "sees the future" "$bin" train "${common[@]}" --attn fnet --steps 1 --out "$dir/e7"
err "bad number" "not a number" "$bin" train "${common[@]}" --lr fast --out "$dir/e5"
head -c 200 "$dir/corpus.txt" > "$dir/small.txt"
err "context too long for data" "too few" "$bin" train --data "$dir/small.txt" --context 512 --out "$dir/e6" --quiet
err "existing run without --resume" "already holds a checkpoint" "$bin" train "${common[@]}" --steps 1 --out "$dir/a"
err "changing architecture on resume" "cannot be changed" "$bin" train --resume "$dir/a" --layers 3
cp "$dir/a/model.safetensors" "$dir/trunc.safetensors"
mkdir -p "$dir/t"; head -c 5000 "$dir/a/model.safetensors" > "$dir/t/model.safetensors"
err "truncated checkpoint" "corrupt or truncated" "$bin" eval "$dir/t"
mkdir -p "$dir/c"; cp "$dir/a/model.safetensors" "$dir/c/model.safetensors"
printf '\xff\xff\xff\xff' | dd of="$dir/c/model.safetensors" bs=1 seek=20000 conv=notrunc 2>/dev/null
err "corrupted checkpoint" "checksum" "$bin" eval "$dir/c"
err "missing run" "does not exist" "$bin" eval "$dir/none"

# The schedule is part of the run: a new --steps on resume is refused (it would recompute the
# cosine and the LR would jump); --extend-to moves the end with no jump; --val-frac is fixed.
err "resume with another --steps" "use --extend-to 90" "$bin" train --resume "$dir/half" --steps 90 --quiet
err "resume with another --val-frac" "would move trained tokens" "$bin" train --resume "$dir/half" --val-frac 0.2 --quiet
err "--extend-to not past the end" "already ends at step 60" "$bin" train --resume "$dir/half" --extend-to 60 --quiet
"$bin" train "${common[@]}" --steps 60 --stop-after 30 --out "$dir/ext" > /dev/null 2>&1
"$bin" train --resume "$dir/ext" --extend-to 90 --quiet > "$dir/ext.out" 2>&1
check "--extend-to trains on to the new end" "grep -q '\"step\":90,' $dir/ext/log.jsonl"
lrs() { grep -o '"step":[0-9]*,"loss":[0-9.]*,"lr":[0-9.e-]*' "$1" | sed 's/"step":\([0-9]*\),"loss":[0-9.]*,"lr":/\1 /'; }
lrs "$dir/ext/log.jsonl" > "$dir/ext.lr"
check "--extend-to: no LR jump at the resume step, non-increasing after, min-lr at the end" \
  "awk 'NR>1 && \$1>11 && \$2>p*1.0000001 {bad=1} {p=\$2; last=\$2} END{exit bad || last > 0.00031}' $dir/ext.lr"
"$bin" train --resume "$dir/ext" --quiet > /dev/null 2>&1
check "a resumed extended run keeps its end" "[ \$(grep -c '\"step\":9[0-9],' $dir/ext/log.jsonl) -eq 1 ]"

exit $fail
