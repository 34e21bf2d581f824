#!/usr/bin/env bash
# test_mpi_train.sh — data-parallel training over MPI (train/dist.h), the binary under mpirun:
# 2 ranks x --batch B take the same steps as 1 process with --grad-accum 2 (logged losses within
# 1e-5 relative, parameters within 1e-6 after 30 steps), also with --grad-accum on top; a run
# moves between 1 and 2 ranks on resume; a killed rank ends the job non-zero with its rank named
# and the last checkpoint intact; SIGTERM to mpirun saves one; bad launches (rank count, options
# differing between ranks) get clear errors.
# Case names as arguments run a subset: equal resume kill launch.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
diffbin=${MIXLM_CKPT_DIFF:?MIXLM_CKPT_DIFF not set}
mpirun=${MIXLM_MPIEXEC:-mpirun}
command -v "$mpirun" > /dev/null || { echo "skip: no $mpirun"; exit 77; }
# As root OpenMPI refuses to start without these (CI containers run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# More ranks than cores on a small machine; no binding (each rank gets --threads 1).
mpi=("$mpirun" --oversubscribe --bind-to none)
dir=$(mktemp -d /tmp/mixlm-mpi.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
cases=" $* "
run_case() { [ "$cases" = "  " ] || [[ "$cases" == *" $1 "* ]]; }

awk 'BEGIN{srand(3); split("the a one every no",D," "); split("cat dog bird fish king queen",N," ");
  split("sees eats likes finds",V," "); for(i=0;i<4000;i++) printf "%s %s %s %s %s.\n",
  D[int(rand()*5)+1], N[int(rand()*6)+1], V[int(rand()*4)+1], D[int(rand()*5)+1], N[int(rand()*6)+1] }' \
  > "$dir/corpus.txt"
common=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 32 --context 32 --batch 4 --lr 3e-3 --warmup 5
        --eval-every 10 --eval-batches 5 --log-every 1 --threads 1 --quiet --seed 11)

losses() { grep -o '"loss":[^,}]*' "$1/log.jsonl" | cut -d: -f2; }
vals() { grep -o '"val_loss":[^,}]*' "$1/log.jsonl" | cut -d: -f2; }
# Every logged loss (and validation loss) of run $2 within 1e-5 relative of run $1's, same count.
same_losses() {
  paste <(losses "$1") <(losses "$2") | awk -v n="$(losses "$1" | wc -l)" '
    { c++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * ($1 < 0 ? -$1 : $1)) bad++ }
    END { exit !(c == n && n > 0 && !bad) }' &&
  paste <(vals "$1") <(vals "$2") | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) bad++ } END { exit bad }'
}
# Parameters of the two checkpoints within 1e-6 (largest absolute difference).
same_params() {
  local out; out=$("$diffbin" "$1/model.safetensors" "$2/model.safetensors") || return 1
  echo "     $1 vs $2: $out"
  awk -v p="$(echo "$out" | cut -d' ' -f2)" 'BEGIN { exit !(p <= 1e-6) }'
}

if run_case equal; then
  "$bin" train "${common[@]}" --steps 30 --grad-accum 2 --out "$dir/one" > "$dir/one.out" 2>&1
  check "1 process, --grad-accum 2: exits 0" "[ $? -eq 0 ]"
  "${mpi[@]}" -np 2 "$bin" train "${common[@]}" --steps 30 --out "$dir/two" > "$dir/two.out" 2>&1
  check "2 ranks: exits 0" "[ $? -eq 0 ]" || cat "$dir/two.out"
  check "2 ranks: the header names 2 ranks x 1 threads" "grep -q '2 ranks x 1 threads' $dir/two.out"
  check "2 ranks: one progress output (rank 0's)" "[ \$(grep -c '^done:' $dir/two.out) -eq 1 ]"
  check "2 ranks: log.jsonl written once (30 lines)" "[ \$(wc -l < $dir/two/log.jsonl) -eq 30 ]"
  check "2 ranks: summary.json names 2 ranks" "grep -q '\"ranks\":[[:space:]]*2' $dir/two/summary.json"
  check "2 ranks = 1 process x --grad-accum 2: losses within 1e-5 relative" "same_losses $dir/one $dir/two"
  check "2 ranks = 1 process x --grad-accum 2: parameters within 1e-6 after 30 steps" "same_params $dir/one $dir/two"
  # --grad-accum on top: 2 ranks x 2 micro-batches = 1 process x 4.
  "$bin" train "${common[@]}" --steps 12 --grad-accum 4 --out "$dir/one4" > /dev/null 2>&1
  "${mpi[@]}" -np 2 "$bin" train "${common[@]}" --steps 12 --grad-accum 2 --out "$dir/two2" > /dev/null 2>&1
  check "2 ranks x --grad-accum 2 = 1 process x --grad-accum 4 (losses, parameters)" \
    "same_losses $dir/one4 $dir/two2 && same_params $dir/one4 $dir/two2"
fi

if run_case resume; then
  # 1 rank (--grad-accum 2) for 10 steps, 2 ranks for 10, 1 rank to the end = 30 steps on 1 rank.
  [ -d "$dir/one" ] || "$bin" train "${common[@]}" --steps 30 --grad-accum 2 --out "$dir/one" > /dev/null 2>&1
  "$bin" train "${common[@]}" --steps 30 --grad-accum 2 --stop-after 10 --out "$dir/mv" > /dev/null 2>&1
  "${mpi[@]}" -np 2 "$bin" train --resume "$dir/mv" --stop-after 10 --quiet > "$dir/mv2.out" 2>&1
  check "resume on 2 ranks from a 1-rank checkpoint: exits 0 at step 20" \
    "[ $? -eq 0 ] && grep -q 'resuming at step 10' $dir/mv2.out && grep -q 'checkpoint saved at step 20' $dir/mv2.out"
  "$bin" train --resume "$dir/mv" --quiet > /dev/null 2>&1
  check "and back on 1 rank to the end: exits 0" "[ $? -eq 0 ]"
  check "1 -> 2 -> 1 ranks = 30 steps on 1 rank: losses within 1e-5, parameters within 1e-6" \
    "same_losses $dir/one $dir/mv && same_params $dir/one $dir/mv"
fi

if run_case kill; then
  # Kill rank 1 (SIGKILL) once a checkpoint exists: the job must end non-zero, naming the rank.
  timeout 120 "${mpi[@]}" -np 2 "$bin" train "${common[@]}" --steps 100000 --ckpt-every 20 --eval-every 0 \
    --out "$dir/kill" > "$dir/kill.out" 2>&1 &
  job=$!
  for _ in $(seq 600); do [ -f "$dir/kill/model.safetensors" ] && break; sleep 0.1; done
  victim=""
  for p in $(pgrep -f "$dir/kill"); do # mpirun's ranks carry OMPI_COMM_WORLD_RANK
    if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then victim=$p; fi
  done
  check "found rank 1's process" "[ -n '$victim' ]"
  sleep 0.3
  [ -n "$victim" ] && kill -9 "$victim"
  wait $job
  rc=$?
  echo "     mpirun exit code $rc; its message: $(grep -m1 -i 'rank 1' "$dir/kill.out")"
  check "killed rank: the job ends non-zero (not by the timeout)" "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
  check "killed rank: the message names rank 1" "grep -qi 'rank 1' $dir/kill.out"
  check "killed rank: the last checkpoint loads" "$diffbin $dir/kill/model.safetensors $dir/kill/model.safetensors > /dev/null"
  "$bin" train --resume "$dir/kill" --stop-after 1 --quiet > "$dir/kill2.out" 2>&1
  check "killed rank: the run resumes from it" "[ $? -eq 0 ] && grep -q 'checkpoint saved' $dir/kill2.out"
  # SIGTERM to mpirun reaches every rank: they stop at the same step and rank 0 saves.
  "${mpi[@]}" -np 2 "$bin" train "${common[@]}" --steps 100000 --ckpt-every 0 --eval-every 0 \
    --out "$dir/term" > "$dir/term.out" 2>&1 &
  job=$!
  for _ in $(seq 600); do [ -s "$dir/term/log.jsonl" ] && break; sleep 0.1; done
  sleep 0.5
  kill -TERM $job
  wait $job
  check "SIGTERM to mpirun: the ranks stop together and rank 0 saves a checkpoint" \
    "grep -q 'interrupted (signal 15): checkpoint saved' $dir/term.out && $diffbin $dir/term/model.safetensors $dir/term/model.safetensors > /dev/null"
fi

if run_case launch; then
  [ -d "$dir/one" ] || "$bin" train "${common[@]}" --steps 30 --grad-accum 2 --out "$dir/one" > /dev/null 2>&1
  "${mpi[@]}" -np 3 "$bin" train --resume "$dir/one" --extend-to 40 --quiet > "$dir/l3.out" 2>&1
  check "3 ranks cannot share a run's 2 micro-batches: non-zero, says why" \
    "[ $? -ne 0 ] && grep -q '3 ranks cannot share the run.s 2 micro-batches' $dir/l3.out"
  "${mpi[@]}" -np 1 "$bin" train "${common[@]}" --steps 5 --lr 1e-3 --out "$dir/opt" : \
    -np 1 "$bin" train "${common[@]}" --steps 5 --lr 2e-3 --out "$dir/opt" > "$dir/lopt.out" 2>&1
  check "different options on different ranks: non-zero, names the rank" \
    "[ $? -ne 0 ] && grep -q 'rank 1 of 2 has different options than rank 0' $dir/lopt.out"
  check "different options: nothing was trained" "[ ! -f $dir/opt/model.safetensors ]"
fi

exit $fail
