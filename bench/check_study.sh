#!/usr/bin/env bash
# check_study.sh — checks the outputs of bench/study.sh against the rows its mode promises
# (`study.sh --list`): every mixer present at every context in study.csv and recall.csv, every
# row complete (no empty figure, accuracies in [0, 1], bits/byte finite and positive), and the
# specs of quality and cost identical per row (each row's spec string has its cost.csv rows at
# every cost length, measured or skipped with a reason, and its figures at its own context), the
# recall rows' in-sequence guess (`eval --recall`) in [chance, 1], and each row the study's gate
# left untrained empty of figures and justified (its mixer not above the guess by more than the
# gate, or gated, at the next shorter T).
# Not a judge of the figures themselves. Exit 0 when all hold, 1 (listing each failure) otherwise.
# usage: bench/check_study.sh DIR [--quick | --smoke]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: bench/check_study.sh DIR [--quick | --smoke]}
mode=${2:-}
fail=0
bad() { echo "FAIL $*"; fail=1; }
for f in study.csv recall.csv cost.csv curves.csv machine.txt report.html README_table.md claims.md; do
  [ -s "$dir/$f" ] || bad "$dir/$f is missing or empty"
done
[ "$fail" = 0 ] || exit 1
# shellcheck disable=SC2086
"$root/bench/study.sh" $mode --list > "$dir/.expected" || { bad "study.sh $mode --list failed"; exit 1; }
AWK_CSV=$(cat "$root/bench/csv.awk")'
function cols(file,   n, i) { n = parse($0); for (i = 1; i <= n; i++) H[file, F[i]] = i; return n }
function get(file, name) { return (file SUBSEP name) in H ? F[H[file, name]] : "\001missing column " name }
function k2(n) { return n ~ /k$/ ? substr(n, 1, length(n) - 1) * 1024 : n + 0 }'
gate=$(sed -nE 's/^recall: .*, gate ([0-9.]+|none)$/\1/p' "$dir/machine.txt")
awk -v dir="$dir" -v gate="${gate:-0.05}" "$AWK_CSV"'
  FILENAME ~ /\.expected$/ {
    if ($1 == "cost") { nct = split($2, CT, ","); for (i = 1; i <= nct; i++) CT[i] = k2(CT[i]); next }
    spec = $0; sub(/^[a-z]+ [0-9]+ /, "", spec); want[$1, $2, spec] = 1; wantlist[++nw] = $1 SUBSEP $2 SUBSEP spec
    next }
  FILENAME ~ /cost\.csv$/ {
    if (FNR == 1) { cols("cost"); next }
    parse($0); s = get("cost", "spec"); T = get("cost", "T")
    if (get("cost", "fwd_bwd_ms") == "" && get("cost", "skipped") == "")
      { print "FAIL cost.csv: " s " at T=" T ": neither a time nor a skip reason"; bad = 1 }
    cost[s, T] = get("cost", "fwd_bwd_ms"); next }
  FILENAME ~ /study\.csv$/ {
    if (FNR == 1) { cols("study"); next }
    n = parse($0); s = get("study", "spec"); T = get("study", "context"); got["lm", T, s]++
    split("bits_per_byte train_ms_per_token peak_mb steps tokens train_seconds bpb_equal_tokens equal_tokens", need, " ")
    for (i in need) { v = get("study", need[i])
      if (v == "" || v ~ /^\001/ || v ~ /nan|inf/) { print "FAIL study.csv: " s " at " T ": " need[i] " is empty (" v ")"; bad = 1 } }
    if (!(get("study", "bits_per_byte") + 0 > 0)) { print "FAIL study.csv: " s " at " T ": bits/byte not positive"; bad = 1 }
    for (i = 1; i <= nct; i++) if (!((s, CT[i]) in cost)) { print "FAIL cost.csv lacks the quality spec " s " at T=" CT[i]; bad = 1 }
    if (cost[s, T] == "" || cost[s, T] != get("study", "fwd_bwd_ms"))
      { print "FAIL study.csv: " s " at " T ": fwd_bwd_ms \"" get("study", "fwd_bwd_ms") "\" is not cost.csv'"'"'s \"" cost[s, T] "\""; bad = 1 }
    next }
  FILENAME ~ /recall\.csv$/ {
    if (FNR == 1) { cols("recall"); next }
    parse($0); s = get("recall", "spec"); T = get("recall", "T"); got["recall", T, s]++; a = get("recall", "accuracy")
    m = s; sub(/:.*/, "", m); RA[m, T] = a; RG[m, T] = get("recall", "in_seq_guess"); RN[m, T] = get("recall", "note")
    if (!(T in RT)) { RT[T] = 1; rts[++nrt] = T + 0 }
    for (i = 1; i <= nct; i++) if (!((s, CT[i]) in cost)) { print "FAIL cost.csv lacks the recall spec " s " at T=" CT[i]; bad = 1 }
    if (RN[m, T] ~ /^not trained: /) {
      if (a != "") { print "FAIL recall.csv: " s " at T=" T ": not trained, yet accuracy \"" a "\""; bad = 1 }
      gated[++ngt] = m SUBSEP T; next }
    if (a == "" || a < 0 || a > 1 || get("recall", "answers") + 0 < 1 || get("recall", "steps") + 0 < 1)
      { print "FAIL recall.csv: " s " at T=" T ": accuracy \"" a "\", answers " get("recall", "answers"); bad = 1 }
    g = get("recall", "in_seq_guess")
    if (g == "" || g ~ /^\001/ || g < get("recall", "chance") || g > 1)
      { print "FAIL recall.csv: " s " at T=" T ": in_seq_guess \"" g "\" is not in [chance, 1]"; bad = 1 }
    next }
  END {
    # A gated row: the same mixer at the next shorter T was gated too, or scored within the gate
    # of its guess there (machine.txt records the gate).
    for (i = 1; i <= ngt; i++) { split(gated[i], w, SUBSEP); prev = 0
      for (j = 1; j <= nrt; j++) if (rts[j] < w[2] + 0 && rts[j] > prev) prev = rts[j]
      if (!prev) { print "FAIL recall.csv: " w[1] " at T=" w[2] ": not trained at the shortest T"; bad = 1; continue }
      pa = RA[w[1], prev]; pg = RG[w[1], prev]
      if (gate == "none" || (RN[w[1], prev] !~ /^not trained: / && !(pa != "" && pg != "" && pa + 0 <= pg + gate + 1e-9)))
        { print "FAIL recall.csv: " w[1] " at T=" w[2] ": not trained, but at T=" prev " it scored " pa " against the guess " pg " (gate " gate ")"; bad = 1 } }
    for (i = 1; i <= nw; i++) { split(wantlist[i], w, SUBSEP)
      if (got[w[1], w[2], w[3]] != 1) { print "FAIL " (w[1] == "lm" ? "study.csv" : "recall.csv") ": " got[w[1], w[2], w[3]] + 0 " rows for " w[3] " at " w[2] " (expected 1)"; bad = 1 } }
    for (k in got) if (!(k in want)) { split(k, w, SUBSEP); print "FAIL unexpected row " w[3] " at " w[2] " in " w[1]; bad = 1 }
    exit bad }' "$dir/.expected" "$dir/cost.csv" "$dir/study.csv" "$dir/recall.csv" || fail=1
# The report and the README table name every quality spec.
while read -r kind T spec; do
  [ "$kind" = cost ] && continue
  grep -qF -- "\`$spec\`" "$dir/README_table.md" || bad "README_table.md lacks \`$spec\` ($kind at $T)"
  esc=$(sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g' <<< "$spec")
  grep -qF -- "$esc" "$dir/report.html" || bad "report.html lacks $spec ($kind at $T)"
done < "$dir/.expected"
grep -q '<svg' "$dir/report.html" || bad "report.html has no chart"
grep -qE '^(cpu|isa|threads): .+' "$dir/machine.txt" || bad "machine.txt lacks the cpu, isa or threads"
rm -f "$dir/.expected"
[ "$fail" = 0 ] && echo "ok   $dir: every mixer present, every row complete, one spec per row for quality and cost"
exit $fail
