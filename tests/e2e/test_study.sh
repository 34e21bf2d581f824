#!/usr/bin/env bash
# test_study.sh — bench/study.sh --smoke end to end (tiny models and budgets: the machinery, not
# the figures), then bench/check_study.sh on its outputs: every mixer present, every row
# complete (the recall rows with their in-sequence guess), the specs of quality and cost identical
# per row, the report, README table and claims (bench/claims.sh) written.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
src=${MIXLM_SOURCE_DIR:?MIXLM_SOURCE_DIR not set}
dir=$(mktemp -d /tmp/mixlm-study.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# Text for part 1: the enwik8 sample when present, else a generated one (the smoke run reads 60 kB).
data=$src/../shared/data/enwik8_prefix.xml
if [ ! -f "$data" ]; then
  data=$dir/text.txt
  awk 'BEGIN { srand(3); for (i = 0; i < 12000; i++) printf "<w id=\"%d\">word%d</w>%s", i, int(rand() * 50), i % 8 ? " " : "\n" }' > "$data"
fi
if ! MIXLM_BIN=$bin "$src/bench/study.sh" --smoke --out "$dir/out" --data "$data" > "$dir/study.out" 2>&1; then
  echo "FAIL study.sh --smoke"; tail -30 "$dir/study.out"; tail -30 "$dir/out/study.log" 2>/dev/null; exit 1
fi
tail -3 "$dir/study.out"
fail=0
"$src/bench/check_study.sh" "$dir/out" --smoke || fail=1
# The check itself fails on a missing row, an incomplete row and a cost row of another spec.
broken() { # name, then a command that damages a copy in $dir/bad
  local name=$1; shift
  rm -rf "$dir/bad"; cp -r "$dir/out" "$dir/bad"; "$@"
  if "$src/bench/check_study.sh" "$dir/bad" --smoke > "$dir/bad.out" 2>&1; then echo "FAIL check_study.sh passes with $name"; fail=1
  else echo "ok   check_study.sh refuses $name: $(grep -m1 FAIL "$dir/bad.out")"; fi
}
broken "a mixer's row removed" sed -i '/^shift,/d' "$dir/bad/study.csv"
broken "an empty bits/byte" sed -i -E '2s/^([^,]*,[^,]*,)[^,]*/\1/' "$dir/bad/study.csv"
broken "a recall accuracy above 1" sed -i -E '2s/^([^,]*,[^,]*,)[^,]*/\11.5/' "$dir/bad/recall.csv"
broken "an in-sequence guess below chance" sed -i -E '2s/^(([^,]*,){3})[^,]*/\10.001/' "$dir/bad/recall.csv"
broken "cost measured for another spec" sed -i 's/^dense,/dense:x,/' "$dir/bad/cost.csv"
# The recall gate (a mixer at the guess at T = 64 is not trained at 128): the smoke models learn
# nothing, so shift is gated at 128, while dense (the reference) is trained at every T; a gated
# row must say why and carry no accuracy, and its mixer must have been at the guess at the
# shorter T.
if grep -q '^shift,128,,.*not trained: accuracy' "$dir/out/recall.csv" &&
   grep -qE '^dense,128,[0-9]' "$dir/out/recall.csv"; then echo "ok   recall.csv: shift gated at T=128, dense trained"
else echo "FAIL recall.csv: shift not gated or dense not trained at 128: $(grep -E '^(dense|shift),' "$dir/out/recall.csv")"; fail=1; fi
broken "a gated mixer that beat the guess at the shorter T" bash -c \
  'awk -F, -v OFS=, '"'"'$1 == "shift" && $2 == 64 { $3 = 0.99 } { print }'"'"' "$1/out/recall.csv" > "$1/bad/recall.csv"' _ "$dir"
broken "an accuracy in a row the study did not train" sed -i -E 's/^shift,128,,/shift,128,0.5,/' "$dir/bad/recall.csv"
# The README table shows each recall row's guess beside its accuracy.
if grep -q 'in-sequence guess' "$dir/out/README_table.md" &&
   awk -F'|' '/Associative recall/ { r = 1 } r && /^\| `dense` / && $4 !~ /not trained/ { n++; if ($5 + 0 <= 0) bad = 1 }
              END { exit !(n && !bad) }' "$dir/out/README_table.md"; then
  echo "ok   README_table.md has the in-sequence guess column"
else echo "FAIL README_table.md lacks the in-sequence guess"; grep -A4 'Associative' "$dir/out/README_table.md"; fail=1; fi
# claims.md: the six claims, each a bullet with dense's own figure in it.
if [ "$(grep -c '^- \*' "$dir/out/claims.md" 2>/dev/null)" = 6 ] && grep -q 'dense [0-9.]* ms' "$dir/out/claims.md"; then
  echo "ok   claims.md has the six claims with figures"
else echo "FAIL claims.md: $(cat "$dir/out/claims.md" 2>&1 | head -8)"; fail=1; fi
# charts/: the report's charts as standalone SVG files (LM at one context: 2, recall, time, memory).
nc=$(ls "$dir/out/charts/"*.svg 2>/dev/null | wc -l)
if [ "$nc" -ge 5 ] && python3 -c 'import sys, xml.dom.minidom as m; [m.parse(f) for f in sys.argv[1:]]' "$dir/out/charts/"*.svg &&
   [ -s "$dir/out/charts/associative-recall-accuracy-against-sequence-length.svg" ]; then echo "ok   charts/: $nc standalone SVG files"
else echo "FAIL charts/: $nc files: $(ls "$dir/out/charts" 2>&1)"; fail=1; fi
# The default positions: rope for the mixers with q and k, learned for the others, in both parts.
pos_of() { grep -o '"pos":[[:space:]]*"[a-z]*"' "$dir/out/runs/$1/summary.json" | grep -o '[a-z]*"$' | tr -d '"'; }
got="$(pos_of lm-128-dense) $(pos_of lm-128-gla) $(pos_of recall-64-dense) $(pos_of recall-64-shift)"
if [ "$got" = "rope learned rope learned" ] && [ "$(grep -c 'positions rope (mixers without q and k: learned)' "$dir/out/machine.txt")" = 2 ]; then
  echo "ok   positions: rope for dense, learned for gla and shift, in both parts and in machine.txt"
else echo "FAIL positions: dense, gla (lm), dense, shift (recall) got '$got'"; grep positions "$dir/out/machine.txt"; fail=1; fi
RECALL_POS=alibi "$src/bench/study.sh" --smoke --out "$dir/pos" > "$dir/pos.out" 2>&1
if [ $? -eq 2 ] && grep -q "RECALL_POS='alibi' is not a position scheme" "$dir/pos.out"; then echo "ok   study.sh: a bad RECALL_POS is a clear error"
else echo "FAIL study.sh with RECALL_POS=alibi: $(cat "$dir/pos.out")"; fail=1; fi
LM_POS=sinus "$src/bench/study.sh" --smoke --out "$dir/pos" > "$dir/pos.out" 2>&1
if [ $? -eq 2 ] && grep -q "LM_POS='sinus' is not a position scheme" "$dir/pos.out"; then echo "ok   study.sh: a bad LM_POS is a clear error"
else echo "FAIL study.sh with LM_POS=sinus: $(cat "$dir/pos.out")"; fail=1; fi
# recall_runs.py on the same run twice: every mixer of the smoke study's T = 64 rows, spread 0.
rr=$(python3 "$src/bench/recall_runs.py" --T 64 "$dir/out" "$dir/out" 2>&1)
nm=$(grep -c '^| [a-z_]* | [0-9.]* | [0-9.]* | 0.000 | [0-2] of 2 |$' <<< "$rr")
nr=$(python3 -c 'import csv, sys; print(sum(1 for r in csv.DictReader(open(sys.argv[1])) if r["T"] == "64" and r["accuracy"]))' "$dir/out/recall.csv")
if [ "$nm" -gt 0 ] && [ "$nm" = "$nr" ]; then echo "ok   recall_runs.py: $nm mixers, spread 0 against itself"
else echo "FAIL recall_runs.py ($nm rows of $nr): $rr"; fail=1; fi
python3 "$src/bench/recall_runs.py" "$dir/nowhere" > "$dir/rr.out" 2>&1
if [ $? -ne 0 ] && grep -q 'cannot read' "$dir/rr.out"; then echo "ok   recall_runs.py: a missing run is a clear error"
else echo "FAIL recall_runs.py on a missing run: $(cat "$dir/rr.out")"; fail=1; fi
exit $fail
