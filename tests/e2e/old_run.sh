# old_run.sh — the checks shared by the tests that load a run written by an older binary
# (test_old_name.sh, test_old_gain.sh): its eval loss and its generated text against what that
# binary printed. Sourced, not run; the caller sets BIN and TMP and defines fail().

# run dir, the old binary's `eval --json --threads 1` loss, the mixer spec eval must report now.
# The loss came from the AVX2 kernels; another ISA level (MIXLM_ISA=scalar in CI) rounds
# differently in the last bits, so it must agree to 1e-7 relative: a wrong reading of the old
# spec (another option, a missing part of the map) moves it by far more.
old_run_eval() {
  "$BIN" eval "$1" --json --threads 1 >"$TMP/eval.json" 2>"$TMP/err" || fail "eval exited $?: $(cat "$TMP/err")"
  local loss
  loss=$(sed -n 's/.*"loss":[[:space:]]*\([-0-9.eE+]*\),.*/\1/p' "$TMP/eval.json")
  [ -n "$loss" ] && awk -v l="$loss" -v r="$2" 'BEGIN { d = (l - r) / r; exit !(d < 1e-7 && d > -1e-7) }' ||
    fail "eval loss differs from $2: $(cat "$TMP/eval.json")"
  grep -q "\"attn\":[[:space:]]*\"$3\"" "$TMP/eval.json" ||
    fail "eval does not report the mixer as $3: $(grep attn "$TMP/eval.json")"
}

# run dir, then the text the old binary generated (--prompt ab --tokens 20 --seed 3 --threads 1).
old_run_generate() {
  printf '%s' "$2" >"$TMP/gen_old.txt"
  "$BIN" generate "$1" --prompt "ab" --tokens 20 --seed 3 --threads 1 >"$TMP/gen.txt" 2>"$TMP/err" ||
    fail "generate exited $?: $(cat "$TMP/err")"
  cmp -s "$TMP/gen.txt" "$TMP/gen_old.txt" || fail "generated text differs: $(od -c "$TMP/gen.txt" | head -3)"
}
