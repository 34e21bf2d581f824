#!/usr/bin/env bash
# test_old_gain.sh MIXER — a run written before MIXER had its output gain, when the mixer had no
# options and stored its plain name, still loads as the bare map it holds (MIXER:gain=0): the
# checked-in run evaluates to the loss the old binary printed, generates the same text, reports
# its mixer as MIXER:gain=0, and resumes storing that spec. Without the mapping in
# model/checkpoint.c the load fails (no 'gain' tensor). Not the mixers' arithmetic (mixers.*).
#   causal_fnet: fixtures/causal_fnet_run, written at 583942e (1 layer, dim 8, context 8, 3 steps,
#                seed 7, char vocabulary "abc ")
#   shift:       fixtures/shift_run, written at ed85a8d (the same sizes, vocabulary "abc \n")
# And the same for a run whose spec gained an option with another meaning for old models:
#   linear_rope: fixtures/linear_rope_run, `linear --pos rope` written at d0de481 (1 layer, 2 heads,
#                dim 8, context 8, 3 steps, seed 7, vocabulary "abc \n"), when --pos rope rotated
#                linear's q and k before the feature map; it loads as linear:c=64,rope=qk (the
#                default now, rope=map, rotates the features after it and gives another loss).
set -u
BIN=${MIXLM_BIN:?MIXLM_BIN must point at the mixlm binary}
# The old binary's `eval --json --threads 1` loss (AVX2; at MIXLM_ISA=scalar within 1e-7, see
# old_run.sh) and its `generate --prompt ab --tokens 20 --seed 3 --threads 1` text.
case ${1:-} in
  causal_fnet) run=causal_fnet_run loss=1.3932793346735148 text=$'abbb baa bc cbbcb   cb\n' spec=causal_fnet:gain=0 ;;
  shift) run=shift_run loss=1.5980180373062958 text=$'abbb a a bc cbbbb\n\n\ncb\n' spec=shift:gain=0 ;;
  linear_rope) run=linear_rope_run loss=1.6603493605916564 text=$'abbb aaa bc cbbbb\n\n\ncb\n'
               spec=linear:c=64,rope=qk ;;
  *) echo "usage: test_old_gain.sh causal_fnet|shift|linear_rope"; exit 2 ;;
esac
FIX="$(cd "$(dirname "$0")" && pwd)/fixtures/$run"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/old_run.sh"
export OMP_WAIT_POLICY=PASSIVE
cp -r "$FIX" "$TMP/run"

old_run_eval "$TMP/run" "$loss" "$spec"
echo "ok   eval of the old run: same loss, mixer reported as $spec"

old_run_generate "$TMP/run" "$text"
echo "ok   generate from the old run: same text"

"$BIN" train --resume "$TMP/run" --extend-to 5 --threads 1 --quiet >"$TMP/train.log" 2>&1 ||
    fail "resume exited $?: $(tail -3 "$TMP/train.log")"
grep -a -q "$spec" "$TMP/run/model.safetensors" || fail "the resumed checkpoint does not store $spec"
echo "ok   resume of the old run; its checkpoint now says $spec"
