#!/usr/bin/env bash
# test_nonfinite.sh — non-finite steps through the binary, made at chosen steps by the test-only
# hook MIXLM_FAULT_NAN_STEP (a NaN in one gradient after the backward pass, so the real detection
# runs): by default training stops naming the step and the tensor; --skip-nonfinite N skips up to
# N such steps (no update, warning on the terminal and in log.jsonl, count in summary.json), stops
# at the next; the skip count and the option survive a resume, which stays bit-exact.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-nonfinite.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
# The tensor data of a checkpoint (everything after the safetensors header): parameters and moments.
data() { [ -s "$1" ] || { echo "missing $1"; return; }; local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1" | md5sum | cut -d' ' -f1; }
losses() { grep -o '"step":[0-9]*,"loss":[0-9.a-z]*' "$1" || echo "no log $1"; }

awk 'BEGIN{srand(3); for(i=0;i<3000;i++){ printf "%s ", substr("abcdefgh", int(rand()*8)+1, int(rand()*3)+1) } }' \
  > "$dir/corpus.txt"
common=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 32 --context 16 --batch 4 --lr 3e-3 --warmup 2
        --eval-every 0 --eval-batches 2 --log-every 1 --ckpt-every 4 --threads 2 --quiet)
last=transformer.ln_f.weight # the tensor the hook poisons: the last trainable one

# Default: the first bad step stops training, naming the step and the tensor; the checkpoint of
# step 4 is intact.
out=$(MIXLM_FAULT_NAN_STEP=6 "$bin" train "${common[@]}" --steps 20 --out "$dir/stop" 2>&1); rc=$?
check "default: a non-finite step stops with exit 1" "[ $rc -eq 1 ]"
check "default: the message names the step and the first bad tensor" \
  "grep -q 'diverged at step 6: .*first non-finite tensor: $last' <<< \"\$out\""
check "default: the last checkpoint (step 4) survives and resumes" \
  "\"$bin\" train --resume $dir/stop --steps 20 --quiet > /dev/null 2>&1 && grep -q '\"step\":20,' $dir/stop/log.jsonl"

# --skip-nonfinite 2 with bad steps 5 and 11: both skipped, training ends normally.
MIXLM_FAULT_NAN_STEP=5,11 "$bin" train "${common[@]}" --steps 20 --skip-nonfinite 2 --out "$dir/full" \
  > "$dir/full.out" 2>&1
check "skip: the run finishes (exit 0)" "[ $? -eq 0 ]"
check "skip: a warning line on the terminal for each skipped step" \
  "[ \$(grep -c 'warning: step \(5\|11\) skipped: .*first non-finite tensor: $last' $dir/full.out) -eq 2 ]"
check "skip: log.jsonl marks steps 5 and 11 with the tensor, and only them" \
  "[ \"\$(grep -o '\"step\":[0-9]*,.*\"skipped_nonfinite\":\"$last\"' $dir/full/log.jsonl | cut -d, -f1)\" = \"\$(printf '\"step\":5\n\"step\":11')\" ]"
check "skip: no 'nan' in log.jsonl (non-finite numbers are null)" "[ -s $dir/full/log.jsonl ] && ! grep -qi 'nan' $dir/full/log.jsonl"
check "skip: summary.json counts 2 skipped steps" "grep -q '\"skipped_nonfinite\":[[:space:]]*2' $dir/full/summary.json"

# A skipped step updates nothing: a run whose last step (20) is skipped ends with the same
# parameters and moments as the same run stopped after step 19.
MIXLM_FAULT_NAN_STEP=20 "$bin" train "${common[@]}" --steps 20 --skip-nonfinite 1 --out "$dir/s20" > /dev/null 2>&1
"$bin" train "${common[@]}" --steps 20 --stop-after 19 --out "$dir/s19" > /dev/null 2>&1
check "skip: a skipped step leaves parameters and AdamW moments untouched" \
  "[ -f $dir/s20/model.safetensors ] && [ \"\$(data $dir/s20/model.safetensors)\" = \"\$(data $dir/s19/model.safetensors)\" ]"

# Resume is exact: stop after 8 (one skip done), resume without the flag (the option is stored).
MIXLM_FAULT_NAN_STEP=5,11 "$bin" train "${common[@]}" --steps 20 --skip-nonfinite 2 --stop-after 8 \
  --out "$dir/half" > /dev/null 2>&1
MIXLM_FAULT_NAN_STEP=5,11 "$bin" train --resume "$dir/half" --quiet > "$dir/half.out" 2>&1
check "resume: finishes with the stored --skip-nonfinite" "[ $? -eq 0 ] && grep -q 'step 11 skipped' $dir/half.out"
check "resume: losses equal the uninterrupted run's" "[ -s $dir/full/log.jsonl ] && diff <(losses $dir/full/log.jsonl) <(losses $dir/half/log.jsonl) > /dev/null"
check "resume: final parameters and moments bit-identical" \
  "[ \"\$(data $dir/full/model.safetensors)\" = \"\$(data $dir/half/model.safetensors)\" ]"
check "resume: summary.json counts the skips of both sessions" "grep -q '\"skipped_nonfinite\":[[:space:]]*2' $dir/half/summary.json"

# The count survives the checkpoint: with --skip-nonfinite 1, a skip before the stop and one
# after the resume make the second stop the run.
MIXLM_FAULT_NAN_STEP=5,11 "$bin" train "${common[@]}" --steps 20 --skip-nonfinite 1 --stop-after 8 \
  --out "$dir/used" > /dev/null 2>&1
out=$(MIXLM_FAULT_NAN_STEP=5,11 "$bin" train --resume "$dir/used" --quiet 2>&1); rc=$?
check "resume: the N+1-th bad step of the run stops it (exit 1)" \
  "[ $rc -eq 1 ] && grep -q 'diverged at step 11: .*--skip-nonfinite 1 is used up (1 steps skipped)' <<< \"\$out\""
# The budget may be raised on resume (a stored option, like --grad-clip).
MIXLM_FAULT_NAN_STEP=5,11 "$bin" train --resume "$dir/used" --skip-nonfinite 2 --quiet > /dev/null 2>&1
check "resume: --skip-nonfinite raised on resume lets the run finish" "[ $? -eq 0 ] && grep -q '\"step\":20,' $dir/used/log.jsonl"

exit $fail
