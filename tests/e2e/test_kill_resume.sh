#!/usr/bin/env bash
# test_kill_resume.sh — crash safety of training: a run SIGKILLed again and again at seeded
# pseudo-random moments (some mid-checkpoint-write, some mid-step, some during start-up) and
# resumed with --resume each time ends with the same parameters and AdamW moments, bit for
# bit, as an uninterrupted run; no resume ever fails on a corrupt checkpoint, no more than the
# step being saved is lost at a kill, and no temporary file is left at the end.
# Exit 0 pass, 1 fail, 77 skip. MIXLM_KILL_SEED and MIXLM_KILL_MIN change the delays and the
# number of kills.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
[ -x "$bin" ] || { echo "skip: $bin is not executable"; exit 77; }
for t in od tail cmp; do command -v $t > /dev/null || { echo "skip: needs $t"; exit 77; }; done
dir=$(mktemp -d /tmp/mixlm-kill.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

seed=${MIXLM_KILL_SEED:-20261202}
min_kills=${MIXLM_KILL_MIN:-24}
RANDOM=$seed # bash's $RANDOM is a seeded LCG: the same delays on every run

# ~300 KB of deterministic text from a small grammar.
awk 'BEGIN{srand(11); split("the a one every no some",D," "); split("cat dog bird fish king queen river stone",N," ");
  split("sees eats likes finds follows carries",V," "); split("quickly slowly today again at-night",A," ");
  for(i=0;i<9000;i++){ printf "%s %s %s %s %s %s.\n", D[int(rand()*6)+1], N[int(rand()*8)+1],
  V[int(rand()*6)+1], D[int(rand()*6)+1], N[int(rand()*8)+1], A[int(rand()*5)+1] } }' > "$dir/corpus.txt"

steps=60
arch=(--layers 1 --heads 2 --dim 32 --context 32 --batch 4 --steps $steps --seed 1)
run_opts=(--ckpt-every 1 --eval-every 0 --log-every 1 --threads 1 --quiet)

# The safetensors data section (tensor bytes after the 8-byte length and the JSON header);
# the header differs between runs in its timing metadata only.
hdr_len() { od -An -tu8 -N8 "$1" | tr -d ' '; }
data_of() { tail -c +$(($(hdr_len "$1") + 9)) "$1"; }
# The step stored in a checkpoint's training state (-1 when there is no checkpoint).
ckpt_step() {
  [ -f "$1" ] || { echo -1; return; }
  head -c $(($(hdr_len "$1") + 8)) "$1" | grep -ao '\\"step\\":[0-9]*' | head -1 | grep -o '[0-9]*$'
}
last_logged() { local s; s=$(grep -o '^{"step":[0-9]*' "$1" 2> /dev/null | tail -1 | grep -o '[0-9]*$'); echo "${s:-0}"; }
losses() { grep -o '"step":[0-9]*,"loss":[0-9.]*' "$1"; }

"$bin" train --data "$dir/corpus.txt" --out "$dir/ref" "${arch[@]}" "${run_opts[@]}" > "$dir/ref.out" 2>&1
rc=$?
check "uninterrupted reference run exits 0" "[ $rc -eq 0 ]"
[ $rc -eq 0 ] || { cat "$dir/ref.out"; exit 1; }
data_of "$dir/ref/model.safetensors" > "$dir/ref.data"
start=$(date +%s.%N)
t0=$(date +%s%N)
cp -r "$dir/ref" "$dir/time"
"$bin" train --resume "$dir/time" --quiet > /dev/null 2>&1 # timing only: start-up of a resume and one save
t_resume_ms=$((($(date +%s%N) - t0) / 1000000))

# Kill delays: uniform in [0, span) ms; span covers start-up plus a few steps with their
# checkpoint writes, so the kills spread over start-up, steps and writes.
span=$((t_resume_ms + 60))
kills=0 resumes=0 fresh=0 cycles=0 lost_total=0 lost_max=0 corrupt=0 nonident=0 leftover=0 noprogress=0
declare -A where=()
while [ $kills -lt "$min_kills" ] || [ "${where[mid-checkpoint-write]:-0}" -lt 3 ]; do
  cycles=$((cycles + 1))
  [ $cycles -gt 40 ] && { echo "FAIL gave up after 40 cycles ($kills kills, ${where[mid-checkpoint-write]:-0} mid-write)"; fail=1; break; }
  d="$dir/c$cycles"
  attempts=0
  while :; do
    attempts=$((attempts + 1))
    [ $attempts -gt 400 ] && { echo "FAIL cycle $cycles: no completion after 400 attempts"; noprogress=1; break; }
    before=$(ckpt_step "$d/model.safetensors")
    if [ "$before" -lt 0 ]; then
      fresh=$((fresh + 1))
      "$bin" train --data "$dir/corpus.txt" --out "$d" "${arch[@]}" "${run_opts[@]}" > "$d.out" 2>&1 &
    else
      resumes=$((resumes + 1))
      "$bin" train --resume "$d" --quiet > "$d.out" 2>&1 &
    fi
    pid=$!
    delay=$((RANDOM % span))
    sleep "$(printf '0.%03d' $delay)"
    kill -KILL $pid 2> /dev/null
    { wait $pid; } 2> /dev/null # (no "Killed" job notice)
    rc=$?
    if [ "$before" -ge 0 ] && grep -q '^resuming at step' "$d.out"; then
      got=$(grep -o '^resuming at step [0-9]*' "$d.out" | grep -o '[0-9]*$')
      [ "$got" -eq "$before" ] || { echo "FAIL cycle $cycles: resumed at step $got, checkpoint holds $before"; fail=1; }
    fi
    if [ $rc -eq 0 ]; then
      break # finished before the kill
    elif [ $rc -ne 137 ]; then
      echo "FAIL cycle $cycles: run exited $rc (a resume that does not start):"; cat "$d.out"; corrupt=$((corrupt + 1)); break
    fi
    kills=$((kills + 1))
    after=$(ckpt_step "$d/model.safetensors")
    [ -n "$after" ] || { echo "FAIL cycle $cycles: unreadable checkpoint after a kill"; corrupt=$((corrupt + 1)); after=-1; }
    if [ -e "$d/model.safetensors.tmp.$pid" ]; then w=mid-checkpoint-write
    elif ls "$d"/*.tmp.$pid > /dev/null 2>&1; then w=mid-other-write
    elif [ "$after" -lt 0 ]; then w=before-first-checkpoint
    elif [ "$after" -eq "$before" ]; then w=start-up-or-first-step
    else w=between-checkpoints; fi
    where[$w]=$((${where[$w]:-0} + 1))
    if [ "$after" -ge 0 ]; then
      # Lost work: steps logged (done) but not in the checkpoint; at most the one being saved.
      lost=$(($(last_logged "$d/log.jsonl") - after))
      [ $lost -lt 0 ] && lost=0
      lost_total=$((lost_total + lost))
      [ $lost -gt $lost_max ] && lost_max=$lost
    fi
  done
  [ $noprogress -eq 1 ] && { fail=1; break; }
  [ $corrupt -gt 0 ] && { fail=1; break; }
  final=$(ckpt_step "$d/model.safetensors")
  [ "$final" = "$steps" ] || { echo "FAIL cycle $cycles: final checkpoint at step $final, not $steps"; fail=1; }
  if ls "$d" | grep -q '\.tmp\.'; then echo "FAIL cycle $cycles: temporaries left: $(ls "$d" | grep '\.tmp\.')"; leftover=$((leftover + 1)); fi
  if ! cmp -s "$dir/ref.data" <(data_of "$d/model.safetensors"); then
    echo "FAIL cycle $cycles: final tensors differ from the uninterrupted run's"; nonident=$((nonident + 1))
  fi
  if ! diff <(losses "$dir/ref/log.jsonl") <(losses "$d/log.jsonl") > /dev/null; then
    echo "FAIL cycle $cycles: logged losses differ from the uninterrupted run's"; nonident=$((nonident + 1))
  fi
  [ $nonident -gt 0 ] && break
  rm -rf "$d"
done
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
echo "     seed $seed: $cycles run(s) to step $steps, $kills SIGKILLs (delays 0-$span ms), $resumes resumes, $fresh fresh starts, ${secs}s"
for w in before-first-checkpoint start-up-or-first-step between-checkpoints mid-checkpoint-write mid-other-write; do
  printf '     kills landing %-24s %d\n' "$w" "${where[$w]:-0}"
done
echo "     lost steps at kills: $lost_total in all, at most $lost_max at one kill (checkpoint every step)"
check "at least $min_kills kills" "[ $kills -ge $min_kills ]"
check "some kills landed mid-checkpoint-write" "[ ${where[mid-checkpoint-write]:-0} -ge 1 ]"
check "every resume started (no corrupt checkpoint)" "[ $corrupt -eq 0 ]"
check "no more than the step being saved lost at a kill" "[ $lost_max -le 1 ]"
check "no temporary file left at the end" "[ $leftover -eq 0 ]"
check "final tensors and losses bit-identical to the uninterrupted run" "[ $nonident -eq 0 ]"
exit $fail
