# test_bench.sh — `mixlm bench` at tiny sizes: the CSV and JSON parse with the documented columns
# and positive numbers, the budgets skip runs with a note instead of crashing, bad input exits 2.
# Not a performance test: no timing is compared with anything.
set -u
BIN=${MIXLM_BIN:?MIXLM_BIN must point at the mixlm binary}
PY=$(command -v python3 || command -v /usr/bin/python3 || true)
if [ -z "$PY" ]; then echo "SKIP: no python3 to parse CSV/JSON"; exit 77; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. CSV: columns, one row per length, positive numbers.
"$BIN" bench --attn dense --context 32,64 --dim 16 --heads 2 --layers 1 --repeats 1 --csv \
    >"$TMP/out.csv" 2>"$TMP/err" || fail "bench --csv exited $?: $(cat "$TMP/err")"
"$PY" - "$TMP/out.csv" <<'EOF' || fail "CSV check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
need = ["attn", "context", "forward_ms", "train_ms", "peak_mb", "tokens_per_s", "gflops",
        "skipped", "batch", "dim", "heads", "layers", "threads"]
missing = [c for c in need if c not in rows[0]] if rows else need
assert not missing, f"missing columns {missing}"
assert [int(r["context"]) for r in rows] == [32, 64], [r["context"] for r in rows]
for r in rows:
    assert r["attn"] == "dense" and r["skipped"] == "", r
    for c in ["forward_ms", "train_ms", "peak_mb", "tokens_per_s", "gflops", "sgemm_gflops"]:
        assert float(r[c]) > 0, (c, r[c])
    assert float(r["train_ms"]) >= float(r["forward_ms"]), r
    assert (int(r["batch"]), int(r["dim"]), int(r["heads"]), int(r["layers"])) == (1, 16, 2, 1), r
    # the attention core alone (no projections): positive, backward included
    assert 0 < float(r["core_forward_ms"]) and 0 < float(r["core_train_ms"]), r
    assert float(r["core_train_ms"]) >= float(r["core_forward_ms"]), r
    # what the host took meanwhile (empty only where /proc/stat cannot be read)
    for c in ["host_steal_pct", "host_other_pct"]:
        assert c in r and (r[c] == "" or 0 <= float(r[c]) <= 100), (c, r.get(c))
print("csv ok:", len(rows), "rows")
EOF

# 1b. A mixer without an attention core (longconv, by its old name fourier) leaves the core columns empty; lsh, an
# attention core behind the shared-QK projection, fills them.
"$BIN" bench --attn fourier --attn lsh --context 64 --dim 16 --heads 2 --repeats 1 --no-sgemm --csv \
    >"$TMP/nocore.csv" 2>"$TMP/err" || fail "bench fourier/lsh exited $?: $(cat "$TMP/err")"
"$PY" - "$TMP/nocore.csv" <<'EOF' || fail "core column check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 and all(r["skipped"] == "" for r in rows), rows
four, lsh = rows
assert four["core_forward_ms"] == "" and four["core_train_ms"] == "", four
assert 0 < float(lsh["core_forward_ms"]) and 0 < float(lsh["core_train_ms"]), lsh
print("core columns ok")
EOF

# 2. JSON: an array of objects, two mixers' worth (the same spec twice is allowed), nulls where
#    nothing is defined; a memory budget that nothing fits gives skipped rows, not a crash.
"$BIN" bench --attn dense --attn dense --context 32 --dim 16 --heads 2 --repeats 2 --warmup 0 --no-sgemm --json \
    >"$TMP/out.json" 2>"$TMP/err" || fail "bench --json exited $?: $(cat "$TMP/err")"
"$BIN" bench --attn dense --context 32,1k --dim 16 --heads 2 --mem-budget 1 --no-sgemm --json \
    >"$TMP/skip.json" 2>"$TMP/err" || fail "bench --mem-budget exited $?: $(cat "$TMP/err")"
"$PY" - "$TMP/out.json" "$TMP/skip.json" <<'EOF' || fail "JSON check"
import json, sys
a = json.load(open(sys.argv[1]))
assert isinstance(a, list) and len(a) == 2, a
for o in a:
    for k in ["attn", "context", "forward_ms", "train_ms", "peak_mb", "tokens_per_s"]:
        assert k in o, k
    assert o["skipped"] is None and o["train_ms"] > 0 and o["tokens_per_s"] > 0, o
    assert o["repeats"] == 2, o
s = json.load(open(sys.argv[2]))
assert len(s) == 2 and all(o["skipped"] and "mem-budget" in o["skipped"] for o in s), s
assert all(o["train_ms"] is None and o["gflops"] is None for o in s), s
print("json ok")
EOF

# 3. A time budget too small for a run kills that child, notes it, and skips the larger length.
"$BIN" bench --attn dense --context 8192,16384 --dim 16 --heads 2 --time-budget 0.02 --no-sgemm --csv \
    >"$TMP/time.csv" 2>"$TMP/err" || fail "bench --time-budget exited $?: $(cat "$TMP/err")"
grep -q "over time budget" "$TMP/time.csv" || fail "no 'over time budget' note: $(cat "$TMP/time.csv")"
grep -q "16384.*already exceeded the time budget" "$TMP/time.csv" ||
    fail "larger context not skipped: $(cat "$TMP/time.csv")"

# 4. Text output: the sgemm ceiling line, the arithmetic peak (a positive rate) and the ratio summary.
"$BIN" bench --attn dense --attn dense --context 32 --dim 16 --heads 2 --repeats 1 >"$TMP/out.txt" 2>&1 ||
    fail "text output exited $?"
grep -q "sgemm ceiling" "$TMP/out.txt" || fail "no sgemm ceiling line"
grep -Eq "^arithmetic peak: FMA loop .* = [0-9]*[1-9][0-9]*\.[0-9] GFLOP/s; sgemm at [0-9]+% of it" "$TMP/out.txt" ||
    fail "no arithmetic peak line: $(grep -i peak "$TMP/out.txt")"
grep -q "relative to dense" "$TMP/out.txt" || fail "no ratio summary"
[ ! -r /proc/stat ] || grep -Eq "^host during the bench: [0-9.]+% of the CPU time stolen by the hypervisor, [0-9.]+% used by other processes$" "$TMP/out.txt" ||
    fail "no host line: $(tail -3 "$TMP/out.txt")"
grep -Eq "^sgemm ceiling: .*OpenBLAS [0-9.]+, core [A-Za-z0-9_]+" "$TMP/out.txt" ||
    fail "the sgemm line does not name OpenBLAS's core: $(grep 'sgemm ceiling' "$TMP/out.txt")"

# 4b. OpenBLAS's fall-back core: when OpenBLAS reports a pre-AVX2 core (MIXLM_TEST_BLAS_CORE
# pretends it) on a CPU with AVX2+FMA, mixlm re-executes once with a better OPENBLAS_CORETYPE and
# says so; a user's own OPENBLAS_CORETYPE is kept. Skipped on CPUs without AVX2 and FMA.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    env -u MIXLM_NO_REEXEC -u OPENBLAS_CORETYPE MIXLM_TEST_BLAS_CORE=Prescott \
        "$BIN" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 --no-sgemm >"$TMP/core.txt" 2>&1 ||
        fail "bench with a pretended Prescott core exited $?"
    grep -Eq "core (SkylakeX|Haswell) \(set by mixlm: OpenBLAS detected Prescott on this CPU\)" "$TMP/core.txt" ||
        fail "no re-execution with a better core: $(grep 'sgemm ceiling' "$TMP/core.txt")"
    grep -q "OPENBLAS_CORETYPE is set" "$TMP/core.txt" && fail "mixlm's own core choice flagged as the user's"
    env -u MIXLM_NO_REEXEC OPENBLAS_CORETYPE=Prescott MIXLM_TEST_BLAS_CORE=Prescott \
        "$BIN" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 --no-sgemm >"$TMP/core.txt" 2>&1 ||
        fail "bench with the user's OPENBLAS_CORETYPE exited $?"
    grep -q "core Prescott (OPENBLAS_CORETYPE=Prescott set by the user)" "$TMP/core.txt" ||
        fail "the user's OPENBLAS_CORETYPE was not kept: $(grep 'sgemm ceiling' "$TMP/core.txt")"
else
    echo "skip 4b: this CPU has no AVX2+FMA"
fi

# 4c. MIXLM_ISA=avx2 on an AVX-512 CPU stands for an AVX2 machine: OpenBLAS is brought to its
# Haswell (AVX2) core, said as mixlm's choice; a user's OPENBLAS_CORETYPE still wins.
if grep -qw avx512f /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    env -u MIXLM_NO_REEXEC -u OPENBLAS_CORETYPE MIXLM_ISA=avx2 \
        "$BIN" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 >"$TMP/isa.txt" 2>&1 ||
        fail "bench at MIXLM_ISA=avx2 exited $?"
    grep -q "core Haswell (set by mixlm for MIXLM_ISA=avx2)" "$TMP/isa.txt" ||
        fail "MIXLM_ISA=avx2 left OpenBLAS on: $(grep 'sgemm ceiling' "$TMP/isa.txt")"
    grep -q "OPENBLAS_CORETYPE is set" "$TMP/isa.txt" && fail "mixlm's core for MIXLM_ISA flagged as the user's"
    env -u MIXLM_NO_REEXEC OPENBLAS_CORETYPE=SkylakeX MIXLM_ISA=avx2 \
        "$BIN" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 --no-sgemm >"$TMP/isa.txt" 2>&1 ||
        fail "bench at MIXLM_ISA=avx2 with the user's core exited $?"
    grep -q "core SkylakeX (OPENBLAS_CORETYPE=SkylakeX set by the user)" "$TMP/isa.txt" ||
        fail "the user's OPENBLAS_CORETYPE lost to MIXLM_ISA: $(grep 'sgemm ceiling' "$TMP/isa.txt")"
else
    echo "skip 4c: this CPU has no AVX-512"
fi

# 5. Errors: an unknown mixer names itself and exits 2; so do bad flags and lengths.
"$BIN" bench --attn nosuchmixer:w=3 --context 32 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] || fail "unknown mixer exited $rc, want 2"
grep -q "nosuchmixer" "$TMP/err" || fail "error does not name the mixer: $(cat "$TMP/err")"
"$BIN" bench --attn dense --context 32 --frobnicate 1 >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q -- "--frobnicate" "$TMP/err" || fail "unknown flag: $(cat "$TMP/err")"
"$BIN" bench --attn dense --context 0 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--context 0 accepted"
"$BIN" bench --attn dense --context 32 --dim 10 --heads 3 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--dim 10 --heads 3 accepted"
# A spec valid only at the longer context (window:w=48 at 32 and 64): the short row is skipped
# with the reason, the long one measured, exit 0 (bench/study.sh sizes specs for 4,096 and
# benches them from 256); a spec valid at no context is an error naming it.
"$BIN" bench --attn window:w=48 --context 32,64 --dim 16 --heads 2 --repeats 1 --csv >"$TMP/out" 2>"$TMP/err" ||
    fail "a spec valid at one of two contexts exited $?: $(cat "$TMP/err")"
grep -q '^window:w=48,.*,32,.*skipped: not valid at this context: .*w: 48 is out of range' "$TMP/out" ||
    fail "the short row is not skipped with its reason: $(cat "$TMP/out")"
grep '^window:w=48,.*,64,' "$TMP/out" | grep -q skipped && fail "the valid row was skipped: $(cat "$TMP/out")"
"$BIN" bench --attn window:w=480 --context 32,64 >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "window:w=480" "$TMP/err" || fail "a spec valid nowhere: $(cat "$TMP/err")"

# 6. --list names every registered mixer (at least dense); --help documents the FLOP model.
"$BIN" bench --list | grep -q "^dense" || fail "--list lacks dense"
"$BIN" bench --help | grep -q "FLOP model" || fail "--help lacks the FLOP model"
echo "test_bench: ok"
