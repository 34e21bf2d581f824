#!/usr/bin/env bash
# test_report.sh — `mixlm compare` and `mixlm report` end to end at tiny sizes: two real training
# runs and a real bench CSV; the table sorts by validation loss and its JSON parses; every SVG in
# the report is well-formed XML with one series per run and per mixer, and text is escaped; bad
# inputs give errors naming the file; a headless-Chromium screenshot when Chromium is installed.
# Not a test of training or benching themselves (test_train.sh, test_bench.sh).
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-report.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)

awk 'BEGIN{srand(3); split("the a one no",D," "); split("cat dog king queen",N," "); split("sees eats likes",V," ");
  for(i=0;i<1500;i++) printf "%s %s %s %s %s.\n", D[int(rand()*4)+1], N[int(rand()*4)+1], V[int(rand()*3)+1],
  D[int(rand()*4)+1], N[int(rand()*4)+1] }' > "$dir/corpus.txt"
common=(--data "$dir/corpus.txt" --layers 1 --heads 2 --dim 16 --context 16 --batch 4 --steps 6 --warmup 1
        --eval-every 3 --eval-batches 2 --log-every 1 --threads 1 --quiet)
# The second run's directory name needs XML escaping: it must not break the SVG.
runb="$dir/win&<b>"
"$bin" train "${common[@]}" --out "$dir/dense" > "$dir/a.out" 2>&1
check "train dense exits 0" "[ $? -eq 0 ]"
"$bin" train "${common[@]}" --attn window:w=4 --lr 3e-3 --out "$runb" > "$dir/b.out" 2>&1
check "train window exits 0" "[ $? -eq 0 ]"
"$bin" bench --attn dense --context 32,64 --dim 16 --heads 2 --repeats 1 --warmup 0 --no-sgemm \
    --csv-out "$dir/bench.csv" > /dev/null 2>&1
check "bench --csv-out exits 0" "[ $? -eq 0 ] && [ -s $dir/bench.csv ]"

# ---- compare -------------------------------------------------------------------------------------
"$bin" compare "$dir/dense" "$runb" > "$dir/cmp.txt" 2> "$dir/err"
check "compare exits 0" "[ $? -eq 0 ]"
cat "$dir/cmp.txt"
check "compare has a header and both runs" \
    "grep -q 'val loss' $dir/cmp.txt && grep -q '^dense ' $dir/cmp.txt && grep -q '^win&<b> ' $dir/cmp.txt"
check "compare shows each spec" "grep -q 'window:w=4' $dir/cmp.txt && grep -q ' dense ' $dir/cmp.txt"
"$bin" compare --json "$dir/dense" "$runb" > "$dir/cmp.json" 2> "$dir/err"
check "compare --json exits 0" "[ $? -eq 0 ]"
"$bin" compare --csv "$dir/dense" "$runb" > "$dir/cmp.csv" 2> "$dir/err"
check "compare --csv: header + 2 rows" "[ $? -eq 0 ] && [ \$(wc -l < $dir/cmp.csv) -eq 3 ] && head -1 $dir/cmp.csv | grep -q val_loss"
if [ -n "$PY" ]; then
    check "compare --json parses, sorted by val_loss, bits/char = loss/ln2" "$PY - $dir/cmp.json $dir/cmp.txt <<'EOF'
import json, math, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 2, a
v = [o['val_loss'] for o in a]
assert v == sorted(v), v
for o in a:
    assert o['tokenizer'] == 'char' and o['bits_per_byte'] is None, o
    assert abs(o['bits_per_char'] - o['val_loss'] / math.log(2)) < 1e-9, o
    assert o['params'] > 0 and o['steps'] == 6, o
rows = [l.split()[0] for l in open(sys.argv[2]).read().splitlines()[1:3]]
assert rows == [o['label'] for o in a], (rows, a)
EOF"
else
    echo "skip JSON parsing checks: no python3"
fi

# ---- report --------------------------------------------------------------------------------------
# A resumed run: its log goes back to step 3 and repeats 4..6; the curve keeps one of each step.
cp -r "$dir/dense" "$dir/resumed"
{ cat "$dir/dense/log.jsonl"; grep -E '"step":(4|5|6),' "$dir/dense/log.jsonl"; } > "$dir/resumed/log.jsonl"
"$bin" report "$dir/dense" "$runb" "$dir/resumed" --bench "$dir/bench.csv" --title 'Tiny <runs> & "mixers"' \
    -o "$dir/report.html" > "$dir/rep.out" 2> "$dir/err"
check "report exits 0" "[ $? -eq 0 ] && [ -s $dir/report.html ]"
cat "$dir/err"
check "report is one HTML page" "head -1 $dir/report.html | grep -qi '<!DOCTYPE html>' && tail -1 $dir/report.html | grep -q '</html>'"
check "report is self-contained (no scripts, no external resources)" \
    "! grep -Eqi '<script|<link|src=|href=\"?https?:|url\\(' $dir/report.html"
check "title escaped" "grep -q 'Tiny &lt;runs&gt; &amp; &quot;mixers&quot;' $dir/report.html"
check "report has the compare and bench tables" "grep -q 'class=\"compare\"' $dir/report.html && grep -q 'class=\"bench\"' $dir/report.html"
check "bench table shows the attention core column" "grep -q 'core ms' $dir/report.html"
if [ -n "$PY" ]; then
    check "every SVG is well-formed XML; one series per run and per mixer" "$PY - $dir/report.html <<'EOF'
import re, sys, xml.etree.ElementTree as ET
html = open(sys.argv[1], encoding='utf-8').read()
svgs = re.findall(r'<svg\b.*?</svg>', html, re.S)
assert len(svgs) == 3, len(svgs)
NS = '{http://www.w3.org/2000/svg}'
roots = [ET.fromstring(s) for s in svgs]
ids = [r.get('id') for r in roots]
assert ids == ['loss', 'bench-time', 'bench-memory'], ids
def series(root, kind):
    return [g for g in root.iter(NS + 'g') if g.get('class') == 'series ' + kind]
train = series(roots[0], 'train')
assert sorted(g.get('data-series') for g in train) == sorted(['dense', 'win&<b>', 'resumed']), [g.get('data-series') for g in train]
val = series(roots[0], 'val')
assert len(val) == 3, len(val)
for g in train:
    d = g.find(NS + 'path').get('d')
    pts = re.findall(r'[ML]', d)
    assert len(pts) == 6, (g.get('data-series'), d)   # steps 1..6, resumed run deduplicated
for root, kind in ((roots[1], 'time'), (roots[2], 'memory')):
    s = series(root, kind)
    assert [g.get('data-series') for g in s] == ['dense'], s
    assert len(re.findall(r'[ML]', s[0].find(NS + 'path').get('d'))) == 2
    labels = [t.text for t in root.iter(NS + 'text')]
    assert '32' in labels and '64' in labels, labels     # power-of-2 context ticks
EOF"
else
    echo "skip SVG well-formedness checks: no python3"
fi
if command -v xmllint > /dev/null; then
    check "xmllint accepts every SVG" "$PY -c 'import re,sys; [open(sys.argv[2]+\"/svg%d.svg\"%i,\"w\").write(s) for i,s in enumerate(re.findall(r\"<svg\\b.*?</svg>\", open(sys.argv[1]).read(), re.S))]' $dir/report.html $dir && xmllint --noout $dir/svg*.svg"
fi

# ---- bad inputs ----------------------------------------------------------------------------------
expect_err() { # name, grep pattern for stderr, command...
    local name=$1 pat=$2
    shift 2
    "$@" > /dev/null 2> "$dir/err"
    local rc=$?
    check "$name (exit $rc: $(head -c 150 "$dir/err"))" "[ $rc -ne 0 ] && grep -q -- \"$pat\" $dir/err"
}
expect_err "missing run dir" "nosuchrun" "$bin" compare "$dir/nosuchrun"
expect_err "report: missing run dir" "nosuchrun" "$bin" report "$dir/nosuchrun" -o "$dir/x.html"
cp -r "$dir/dense" "$dir/nolog" && rm "$dir/nolog/log.jsonl"
expect_err "run without log.jsonl" "nolog/log.jsonl" "$bin" report "$dir/nolog" -o "$dir/x.html"
expect_err "compare: run without log.jsonl" "nolog/log.jsonl" "$bin" compare "$dir/dense" "$dir/nolog"
cp -r "$dir/dense" "$dir/nosum" && rm "$dir/nosum/summary.json"
expect_err "run without summary.json" "nosum/summary.json" "$bin" compare "$dir/nosum"
cp -r "$dir/dense" "$dir/badsum" && head -c 40 "$dir/dense/summary.json" > "$dir/badsum/summary.json"
expect_err "truncated summary.json" "badsum/summary.json: not valid JSON" "$bin" compare "$dir/badsum"
cp -r "$dir/dense" "$dir/badlog" && echo '{"step":7,"loss":' >> "$dir/badlog/log.jsonl"
expect_err "corrupt log line names file:line" "badlog/log.jsonl:7" "$bin" report "$dir/badlog" -o "$dir/x.html"
printf 'attn,context,forward_ms\ndense,32,1.0\n' > "$dir/nocol.csv"
expect_err "bench CSV without train_ms" "no 'train_ms' column" "$bin" report "$dir/dense" --bench "$dir/nocol.csv" -o "$dir/x.html"
{ cat "$dir/bench.csv"; echo 'dense,dense,128'; } > "$dir/short.csv"
expect_err "bench CSV row with too few fields" "short.csv:4: 3 fields" "$bin" report --bench "$dir/short.csv" -o "$dir/x.html"
sed '2s/^dense,dense,32,/dense,dense,abc,/' "$dir/bench.csv" > "$dir/nan.csv"
expect_err "bench CSV non-number" "nan.csv:2: column 'context' holds 'abc'" "$bin" report --bench "$dir/nan.csv" -o "$dir/x.html"
expect_err "missing bench CSV" "nosuch.csv" "$bin" report "$dir/dense" --bench "$dir/nosuch.csv" -o "$dir/x.html"
expect_err "report without -o" "-o report.html" "$bin" report "$dir/dense"
expect_err "compare --json --csv" "exclude" "$bin" compare --json --csv "$dir/dense"
cp "$dir/report.html" "$dir/keep.html"
"$bin" report "$dir/nolog" -o "$dir/report.html" > /dev/null 2>&1
check "a failed report leaves the old file untouched" "cmp -s $dir/report.html $dir/keep.html && ! ls $dir/report.html.tmp* > /dev/null 2>&1"

# ---- screenshot -----------------------------------------------------------------------------------
chrome=""
for c in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
    [ -x "$c" ] && chrome=$c && break
done
if [ -n "$chrome" ]; then
    timeout 60 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1600 \
        --user-data-dir="$dir/chrome-profile" \
        --screenshot="$dir/shot.png" "file://$dir/report.html" > /dev/null 2>&1
    check "headless $chrome renders a screenshot" "[ -s $dir/shot.png ] && [ \$(stat -c %s $dir/shot.png) -gt 20000 ]"
    if [ -n "$PY" ] && "$PY" -c 'import PIL' 2> /dev/null; then
        check "the screenshot is not blank (many colours)" \
            "$PY -c 'import sys; from PIL import Image; im=Image.open(sys.argv[1]).convert(\"RGB\"); sys.exit(len(set(im.getdata())) < 50)' $dir/shot.png"
    fi
else
    echo "skip screenshot: no Chromium (apt-get install chromium)"
fi

[ $fail -eq 0 ] && echo "test_report: ok" || echo "test_report: FAILED"
exit $fail
