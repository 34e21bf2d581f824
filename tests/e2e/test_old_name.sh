# test_old_name.sh — a run written by the binary of commit 930048f (main before `fourier` was
# renamed `longconv`) still loads: the checked-in run fixtures/fourier_run (2 layers,
# `fourier:filter=learned,vproj=1` and `fourier:filter=fixed,vproj=0`, dim 8, context 8, 3 steps,
# seed 7, char vocabulary "abc \n") evaluates to the loss that binary printed, generates the same
# text, reports its mixers as `longconv`, and resumes; `--attn fourier` still trains.
# Not longconv's arithmetic (mixers.fft_vs_brute_force) — only the name's compatibility.
set -u
BIN=${MIXLM_BIN:?MIXLM_BIN must point at the mixlm binary}
FIX="$(cd "$(dirname "$0")" && pwd)/fixtures/fourier_run"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/old_run.sh"
export OMP_WAIT_POLICY=PASSIVE
cp -r "$FIX" "$TMP/run"

# 1. eval: the old binary printed "loss": 1.6390671415461435 for this run (1.6390671376828794 at
# MIXLM_ISA=scalar).
old_run_eval "$TMP/run" 1.6390671415461435 'longconv:filter=learned,vproj=1'
echo "ok   eval of the old run: same loss, mixer reported as longconv"

# 2. generate: the text the old binary produced.
old_run_generate "$TMP/run" $'abbb aaa bc\ncbbbb\n\n\ncb\n'
echo "ok   generate from the old run: same text"

# 3. resume: trains on, and the new checkpoint stores the new name.
"$BIN" train --resume "$TMP/run" --extend-to 5 --threads 1 --quiet >"$TMP/train.log" 2>&1 ||
    fail "resume exited $?: $(tail -3 "$TMP/train.log")"
"$BIN" eval "$TMP/run" --json --threads 1 >"$TMP/eval2.json" 2>"$TMP/err" || fail "eval after resume: $(cat "$TMP/err")"
grep -q '"step":[[:space:]]*5' "$TMP/eval2.json" || fail "resume did not reach step 5: $(cat "$TMP/eval2.json")"
grep -a -q 'longconv:filter=fixed,vproj=0' "$TMP/run/model.safetensors" ||
    fail "the resumed checkpoint does not store layer 1 as longconv"
grep -a -q 'fourier' "$TMP/run/model.safetensors" && fail "the resumed checkpoint still names fourier"
echo "ok   resume of the old run; its checkpoint now says longconv"

# 4. the old command line.
printf 'abc ab ca bca cab %.0s' $(seq 1 40) >"$TMP/text.txt"
"$BIN" train --data "$TMP/text.txt" --layers 1 --heads 2 --dim 8 --context 8 --batch 2 --steps 2 --eval-every 0 \
    --attn fourier:filter=fixed --threads 1 --quiet --out "$TMP/new" >"$TMP/train.log" 2>&1 ||
    fail "train --attn fourier:filter=fixed exited $?: $(tail -3 "$TMP/train.log")"
grep -q 'longconv:filter=fixed,vproj=1' "$TMP/new/summary.json" || fail "summary does not say longconv"
echo "ok   --attn fourier:filter=fixed trains as longconv:filter=fixed,vproj=1"
