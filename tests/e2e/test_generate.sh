# test_generate.sh — `mixlm generate` and `mixlm eval` from the outside on a tiny trained run:
# every bad input exits non-zero with a message naming the problem (missing run, run without a
# checkpoint, empty prompt file, prompt longer than the context, unknown characters, --context
# or --stride too large for eval), --stop cuts the stream right after the stop string, the cached
# and --no-cache streams are identical (also past the context), and --bench reports its columns.
# Not the sampler's statistics or eval's arithmetic (test_infer.c).
set -u
BIN=${MIXLM_BIN:?MIXLM_BIN must point at the mixlm binary}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_WAIT_POLICY=PASSIVE

# A tiny run: 1 layer, context 16, char vocabulary of the text below (no 'Z', no 'q').
for i in $(seq 1 40); do echo "the cat sat on the mat and the dog ate the hat, $i times over."; done >"$TMP/text.txt"
"$BIN" train --data "$TMP/text.txt" --layers 1 --heads 2 --dim 16 --context 16 --batch 2 --steps 3 \
    --eval-every 0 --eval-batches 1 --threads 1 --quiet --out "$TMP/run" >"$TMP/train.log" 2>&1 ||
    fail "train exited $?: $(tail -3 "$TMP/train.log")"

# expect_error NAME PATTERN CMD... : CMD must exit non-zero and print PATTERN on stderr.
expect_error() {
    local name=$1 pat=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ $rc -ne 0 ] || fail "$name: exit status 0 (stdout: $(head -c 200 "$TMP/out"))"
    grep -q -- "$pat" "$TMP/err" || fail "$name: stderr lacks '$pat': $(cat "$TMP/err")"
    echo "ok   $name -> exit $rc: $(head -1 "$TMP/err")"
}
G=(generate --threads 1)
expect_error "generate: missing run" "does not exist" "$BIN" "${G[@]}" "$TMP/nope" --prompt "the"
mkdir "$TMP/empty_run"
expect_error "generate: run without checkpoint" "no checkpoint" "$BIN" "${G[@]}" "$TMP/empty_run" --prompt "the"
: >"$TMP/empty.txt"
expect_error "generate: empty prompt file" "is empty" "$BIN" "${G[@]}" "$TMP/run" --prompt-file "$TMP/empty.txt"
expect_error "generate: empty --prompt" "empty" "$BIN" "${G[@]}" "$TMP/run" --prompt ""
expect_error "generate: missing prompt file" "empty_not_there" "$BIN" "${G[@]}" "$TMP/run" --prompt-file "$TMP/empty_not_there"
expect_error "generate: prompt longer than context" "context is 16" "$BIN" "${G[@]}" "$TMP/run" \
    --prompt "the cat sat on the mat"
[ -s "$TMP/out" ] && fail "a refused prompt was echoed: $(cat "$TMP/out")"
expect_error "generate: unknown character" "U+005A" "$BIN" "${G[@]}" "$TMP/run" --prompt "the Zoo"
expect_error "generate: --no-cache with --slide" "slide" "$BIN" "${G[@]}" "$TMP/run" --no-cache --slide
expect_error "generate: bad --bench-modes" "unknown mode" "$BIN" "${G[@]}" "$TMP/run" --bench --bench-modes cache,fast
expect_error "eval: missing run" "does not exist" "$BIN" eval "$TMP/nope"
expect_error "eval: run without checkpoint" "no checkpoint" "$BIN" eval "$TMP/empty_run"
expect_error "eval: --context above the model's" "larger than the model's context 16" "$BIN" eval "$TMP/run" --context 8,32
expect_error "eval: --stride above --context" "stride" "$BIN" eval "$TMP/run" --context 8 --stride 9
echo "quite" >"$TMP/q.txt"
# eval --data writes nothing into the run directory (it may be read-only): the directory's
# mtime (changed by any file created or removed in it) stays, and the tokens go under $TMPDIR.
echo "the cat sat on the mat and the dog ate the hat, 1 times over." >"$TMP/ev.txt"
mkdir -p "$TMP/tmpdir"
before=$(stat -c %y "$TMP/run")
sleep 0.05
TMPDIR="$TMP/tmpdir" "$BIN" eval "$TMP/run" --data "$TMP/ev.txt" >"$TMP/out" 2>"$TMP/err" ||
    fail "eval --data exited $?: $(cat "$TMP/err")"
[ "$(stat -c %y "$TMP/run")" = "$before" ] || fail "eval --data wrote into the run directory"
[ -z "$(ls -A "$TMP/tmpdir")" ] || fail "eval --data left a temporary in TMPDIR: $(ls "$TMP/tmpdir")"
echo "ok   eval --data leaves the run directory untouched"
if [ "$(id -u)" != 0 ]; then
    chmod a-w "$TMP/run"
    "$BIN" eval "$TMP/run" --data "$TMP/ev.txt" >"$TMP/out" 2>"$TMP/err" ||
        fail "eval --data on a read-only run exited $?: $(cat "$TMP/err")"
    chmod u+w "$TMP/run"
    echo "ok   eval --data on a read-only run"
fi
# A byte-tokenizer run samples bytes one at a time: the stream must still be valid UTF-8
# (characters held back until complete, U+FFFD for bytes that can never complete).
printf 'caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac \xf0\x9f\x98\x80 %.0s' $(seq 1 60) >"$TMP/utf8.txt"
"$BIN" train --data "$TMP/utf8.txt" --tokenizer byte --layers 1 --heads 2 --dim 16 --context 16 --batch 2 --steps 2 \
    --eval-every 0 --eval-batches 1 --threads 1 --quiet --out "$TMP/byterun" >"$TMP/train2.log" 2>&1 ||
    fail "byte train exited $?: $(tail -3 "$TMP/train2.log")"
"$BIN" generate "$TMP/byterun" --threads 1 --prompt "caf" --tokens 300 --temperature 2 --seed 3 >"$TMP/gen_bytes" 2>"$TMP/err" ||
    fail "byte generate exited $?: $(cat "$TMP/err")"
if command -v iconv >/dev/null; then
    iconv -f UTF-8 -t UTF-8 "$TMP/gen_bytes" >/dev/null 2>&1 || fail "generate streamed invalid UTF-8: $(od -An -tx1 "$TMP/gen_bytes" | head -3)"
    echo "ok   byte-level generation streams valid UTF-8"
fi
expect_error "eval: --data with unknown characters" "U+0071" "$BIN" eval "$TMP/run" --data "$TMP/q.txt"

# Cached and --no-cache streams are the same text, also past the context (60 > 16 tokens);
# --slide agrees while the context is not yet full.
"$BIN" "${G[@]}" "$TMP/run" --prompt "the " --tokens 60 --seed 3 >"$TMP/cache.txt" || fail "generate exited $?"
"$BIN" "${G[@]}" "$TMP/run" --prompt "the " --tokens 60 --seed 3 --no-cache >"$TMP/nocache.txt" ||
    fail "generate --no-cache exited $?"
cmp -s "$TMP/cache.txt" "$TMP/nocache.txt" || fail "cached and --no-cache text differ:
$(cat "$TMP/cache.txt")
$(cat "$TMP/nocache.txt")"
"$BIN" "${G[@]}" "$TMP/run" --prompt "the " --tokens 13 --seed 3 --slide >"$TMP/slide.txt" || fail "--slide exited $?"
[ "$(head -c 17 "$TMP/cache.txt")" = "$(head -c 17 "$TMP/slide.txt")" ] ||
    fail "--slide differs from the cache inside the context: $(cat "$TMP/slide.txt")"
[ "$(wc -c <"$TMP/cache.txt")" -eq 65 ] || fail "expected 4 + 60 characters and a newline, got $(wc -c <"$TMP/cache.txt")"
echo "ok   cached == --no-cache over 60 tokens past a context of 16; --slide agrees inside it"

# --stop: the output ends right after the first occurrence of the stop string in the new text.
full=$(cat "$TMP/cache.txt")
gen=${full:4}
stop=${gen:20:2}
want="the ${gen%%"$stop"*}$stop"
"$BIN" "${G[@]}" "$TMP/run" --prompt "the " --tokens 60 --seed 3 --stop "$stop" >"$TMP/stop.txt" ||
    fail "generate --stop exited $?"
got=$(cat "$TMP/stop.txt")
[ "$got" = "$want" ] || fail "--stop '$stop': got '$got', want '$want'"
echo "ok   --stop '$stop' ends the stream after its first occurrence (${#got} of ${#full} characters)"

# --bench: JSON with both modes, positive rates, identical tokens for cache vs recompute.
"$BIN" "${G[@]}" "$TMP/run" --bench --bench-modes cache,recompute,slide --tokens 40 --repeats 2 --json \
    >"$TMP/bench.json" 2>"$TMP/err" || fail "--bench exited $?: $(cat "$TMP/err")"
PY=$(command -v python3 || command -v /usr/bin/python3 || true)
if [ -n "$PY" ]; then
    "$PY" - "$TMP/bench.json" <<'EOF' || fail "--bench JSON check"
import json, sys
a = json.load(open(sys.argv[1]))
assert [o["mode"] for o in a] == ["cache", "recompute", "slide"], a
for o in a:
    for k in ["prompt_tokens_per_s", "gen_tokens_per_s", "ms_per_token", "peak_rss_mb"]:
        assert o[k] > 0, (k, o)
    assert o["gen_tokens"] == 40 and o["repeats"] == 2, o
    assert o["same_tokens_as_first"] is True, o
    for k in ["host_steal_pct", "host_other_pct"]:  # null when too short to measure
        assert k in o and (o[k] is None or 0 <= o[k] <= 100), (k, o)
assert a[0]["cache_mb"] > 0 and a[0]["shifts"] >= 2 and a[1]["activations_mb"] > 0, a
assert a[1]["tokens_compared"] == 40 and a[2]["tokens_compared"] == 16 - 1 + 1, a
print("ok   --bench --json:", ", ".join("%s %.0f tok/s" % (o["mode"], o["gen_tokens_per_s"]) for o in a))
EOF
else
    grep -q '"gen_tokens_per_s"' "$TMP/bench.json" || fail "--bench JSON lacks gen_tokens_per_s"
fi
"$BIN" "${G[@]}" "$TMP/run" --bench --tokens 20 >"$TMP/bench.txt" || fail "--bench (text) exited $?"
grep -q "^cache " "$TMP/bench.txt" && grep -q "^slide " "$TMP/bench.txt" || fail "--bench text: $(cat "$TMP/bench.txt")"
echo "all ok"
