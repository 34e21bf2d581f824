#!/usr/bin/env bash
# test_oom.sh — running out of memory is a clear error (exit 1, what was being allocated, the
# size, a remedy), never an abort, a signal or a hang:
#  1. the test-only hook MIXLM_FAULT_ALLOC_MIN=BYTES fails every checked allocation of at least
#     BYTES: each subcommand is swept over thresholds so every allocation it makes fails once in
#     some run (the fatal path of mx_xmalloc, the error path of mx_try_calloc, cJSON's hook);
#  2. a request beyond the machine's RAM + swap is refused before the allocator is asked;
#  3. a real allocator failure under `ulimit -v` (skipped under ASan, which reserves terabytes of
#     virtual memory for its shadow, and where OpenBLAS's start-up cannot get its buffers: it then
#     retries forever, a hang of theirs, not ours).
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-oom.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
# WHY no leak check: an out-of-memory exit leaves what was allocated; the point here is the exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 # last wins

awk 'BEGIN{srand(5); for(i=0;i<4000;i++){ printf "%s ", substr("abcdefgh", int(rand()*8)+1, int(rand()*3)+1) } }' \
  > "$dir/corpus.txt"
small=(--layers 1 --heads 1 --dim 16 --context 8 --batch 2 --eval-batches 2 --threads 2 --quiet)
"$bin" train --data "$dir/corpus.txt" "${small[@]}" --steps 3 --out "$dir/run" > /dev/null 2>&1
check "a small run trains" "[ -f $dir/run/model.safetensors ]"

# 1. Every allocation failing in turn: exit 0 (the threshold was above everything) or exit 1 with
# "out of memory"; never a signal (rc > 128), never another error.
sweep=0 hit=0
for th in 1 64 1000 30000 100000 1000000 60000000; do
  i=0
  while IFS= read -r cmd; do
    i=$((i + 1))
    rm -rf "$dir/s"
    out=$(MIXLM_FAULT_ALLOC_MIN=$th timeout -s KILL 60 bash -c "$cmd" 2>&1); rc=$?
    sweep=$((sweep + 1))
    if [ $rc -eq 1 ] && grep -q 'out of memory' <<< "$out" && grep -q 'smaller --batch' <<< "$out"; then
      hit=$((hit + 1))
    elif [ $rc -ne 0 ]; then
      echo "FAIL threshold $th, command $i (rc $rc): $cmd"; echo "$out" | tail -3; fail=1
    fi
  done <<EOF
"$bin" train --data "$dir/corpus.txt" ${small[*]} --steps 2 --out "$dir/s"
"$bin" train --resume "$dir/run" --steps 3 --quiet
"$bin" eval "$dir/run" --json
"$bin" generate "$dir/run" --prompt ab --tokens 16777216
"$bin" generate "$dir/run" --prompt ab --tokens 20 --bench
"$bin" compare "$dir/run"
"$bin" report "$dir/run" -o "$dir/r.html"
"$bin" bench --attn window:w=4 --context 64 --dim 16 --heads 1 --layers 1 --repeats 1
EOF
done
echo "     $hit of $sweep runs stopped on out of memory"
check "hook: every run exits 0 or 1 with 'out of memory' (no signal)" "[ $fail -eq 0 ]"
check "hook: most runs met a failing allocation" "[ $hit -ge 30 ]"
out=$(MIXLM_FAULT_ALLOC_MIN=50000000 "$bin" generate "$dir/run" --prompt ab --tokens 16777216 2>&1); rc=$?
check "hook: the message names the size and the function" \
  "[ $rc -eq 1 ] && grep -q 'could not allocate 64.0 MiB (67108864 bytes) for a buffer in cmd_generate()' <<< \"\$out\""
out=$(MIXLM_FAULT_ALLOC_MIN=1000000 "$bin" train --data "$dir/corpus.txt" --batch 64 --context 256 --out "$dir/t" --quiet 2>&1); rc=$?
check "hook: train names the parameters and the remedy" \
  "[ $rc -eq 1 ] && grep -q 'out of memory allocating the parameters, 3.1 MiB (.*); use a smaller --batch, --context or model' <<< \"\$out\""

# 2. Beyond the machine: 800 GB of parameters.
out=$(timeout -s KILL 60 "$bin" train --data "$dir/corpus.txt" --dim 65536 --layers 4 --heads 4 --out "$dir/huge" --quiet 2>&1); rc=$?
check "beyond RAM + swap: exit 1 at once with the size" \
  "[ $rc -eq 1 ] && grep -q 'out of memory allocating the parameters, 768.0 GiB' <<< \"\$out\""

# 3. ulimit -v: 4 GB of parameters under a 2 GB limit (enough for OpenBLAS's start-up buffers).
if [ "${MIXLM_SANITIZE:-OFF}" = ON ]; then
  echo "skip ulimit -v under ASan (its shadow memory needs terabytes of address space)"
else
  out=$( (ulimit -v 2000000 && timeout -s KILL 60 "$bin" train --data "$dir/corpus.txt" "${small[@]}" --steps 2 --out "$dir/u0") 2>&1); rc=$?
  if [ $rc -ne 0 ]; then
    echo "skip ulimit -v: a small run does not start under a 2 GB limit here (rc $rc): ${out: -200}"
  else
    out=$( (ulimit -v 2000000 && timeout -s KILL 60 "$bin" train --data "$dir/corpus.txt" --dim 4096 --layers 5 --heads 4 --context 16 --batch 2 --threads 2 --out "$dir/u1" --quiet) 2>&1); rc=$?
    check "ulimit -v: the allocator's failure is exit 1 naming the parameters (rc $rc)" \
      "[ $rc -eq 1 ] && grep -q 'out of memory allocating the parameters, 3.8 GiB' <<< \"\$out\""
  fi
fi
exit $fail
