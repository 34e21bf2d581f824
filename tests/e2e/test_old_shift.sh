#!/usr/bin/env bash
# test_old_shift.sh — a shift run written by the binary of commit ed85a8d (before the output
# gain, when `shift` had no options and was the bare copy y_t = x_{t-1}) still loads as that bare
# copy: the checked-in run fixtures/shift_run (1 layer, dim 8, context 8, 3 steps, seed 7, char
# vocabulary "abc \n") evaluates to the loss that binary printed, generates the same text,
# reports its mixer as `shift:gain=0`, and resumes storing that spec. Without the mapping in
# model/checkpoint.c the load fails (no 'gain' tensor). Not the mixer's arithmetic (mixers.*).
set -u
BIN=${MIXLM_BIN:?MIXLM_BIN must point at the mixlm binary}
FIX="$(cd "$(dirname "$0")" && pwd)/fixtures/shift_run"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/old_run.sh"
export OMP_WAIT_POLICY=PASSIVE
cp -r "$FIX" "$TMP/run"

# 1. eval: the old binary printed "loss": 1.5980180373062958 (1.5980180409309026 at MIXLM_ISA=scalar).
old_run_eval "$TMP/run" 1.5980180373062958 'shift:gain=0'
echo "ok   eval of the old run: same loss, mixer reported as shift:gain=0"

# 2. generate: the text the old binary produced.
old_run_generate "$TMP/run" $'abbb a a bc cbbbb\n\n\ncb\n'
echo "ok   generate from the old run: same text"

# 3. resume: trains on, and the new checkpoint stores the explicit spec.
"$BIN" train --resume "$TMP/run" --extend-to 5 --threads 1 --quiet >"$TMP/train.log" 2>&1 ||
    fail "resume exited $?: $(tail -3 "$TMP/train.log")"
grep -a -q 'shift:gain=0' "$TMP/run/model.safetensors" ||
    fail "the resumed checkpoint does not store shift:gain=0"
echo "ok   resume of the old run; its checkpoint now says shift:gain=0"
