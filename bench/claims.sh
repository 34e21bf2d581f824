#!/usr/bin/env bash
# claims.sh — the literature's claims about efficient attention (issue 18's list), each with the
# figures of one study directory: bench/study.sh's cost.csv (forward+backward ms and peak MB of
# one sublayer per spec and T), study.csv (bits/byte per spec and context) and recall.csv. Prints
# markdown bullets with the numbers a verdict rests on; the verdict itself is the reader's (the
# README states it). Only the study's own rows are used: the specs sized for context 1,024 for the
# short-length claims, those sized for 4,096 for the 4K claim, dense everywhere.
# usage: bench/claims.sh DIR
set -euo pipefail
dir=${1:?usage: bench/claims.sh STUDY_DIR}
for f in cost.csv study.csv recall.csv; do
  [ -f "$dir/$f" ] || { echo "claims.sh: $dir/$f is missing (run bench/study.sh --out $dir first)" >&2; exit 2; }
done
AWK_CSV=$(cat "$(dirname "$0")/csv.awk")
awk "$AWK_CSV"'
  function ms(s, T) { return ((s, T) in MS) ? MS[s, T] : -1 }
  function mb(s, T) { return ((s, T) in MB) ? MB[s, T] : -1 }
  function f1(x) { return x < 0 ? "n/a" : sprintf("%.1f", x) }
  function nm(s) { return "`" s "`" }
  FILENAME ~ /cost.csv$/ { if (FNR == 1) next; parse($0)
    if (F[6] == "" && F[3] != "") { MS[F[1], F[2]] = F[3] + 0; MB[F[1], F[2]] = F[5] + 0 }; next }
  FILENAME ~ /study.csv$/ { if (FNR == 1) next; parse($0)
    ctx = F[2]; n = ++NS[ctx]; SP[ctx, n] = F[1]; BPB[ctx, n] = F[3] + 0; EQ[ctx, n] = F[11]; next }
  FILENAME ~ /recall.csv$/ { if (FNR == 1) { nh = parse($0); for (i = 1; i <= nh; i++) H[F[i]] = i; next }
    parse($0); if (F[H["accuracy"]] == "") { NT[F[2]]++; next } # not trained (the gate of study.sh)
    nr++; QS[nr] = F[1]; QT[nr] = F[2]; QA[nr] = F[H["accuracy"]] + 0
    QG[nr] = ("in_seq_guess" in H) ? F[H["in_seq_guess"]] : ""; QC[nr] = F[H["chance"]] + 0; next }
  END {
    # 1. 512-2,048: every efficient mixer beats dense in time and memory; 128-256 dense as fast
    short = 1024; d256 = ms("dense", 256)
    printf "- *Every efficient mixer beats dense at 512-2,048 tokens in time and memory; at 128-256 dense is as fast* (the %d-sized specs):\n", short
    for (T = 1024; T <= 2048; T *= 2) {
      faster = 0; tot = 0; lo = 1e30; hi = -1; slow = ""; mlo = 1e30; mhi = -1
      for (i = 1; i <= NS[short]; i++) { s = SP[short, i]; if (s == "dense" || ms(s, T) < 0) continue
        tot++; t = ms(s, T); if (t < ms("dense", T)) faster++; else slow = slow " " nm(s)
        if (t < lo) lo = t; if (t > hi) { hi = t; hs = s }
        if (mb(s, T) < mlo) mlo = mb(s, T); if (mb(s, T) > mhi) mhi = mb(s, T) }
      printf "  - T = %d: dense %s ms, %s MB; %d of %d faster (the others %s-%s ms, slowest %s)%s; their peak %s-%s MB\n",
        T, f1(ms("dense", T)), f1(mb("dense", T)), faster, tot, f1(lo), f1(hi), nm(hs),
        slow == "" ? "" : "; not faster:" slow, f1(mlo), f1(mhi)
    }
    slower = ""; ns = 0
    for (i = 1; i <= NS[short]; i++) { s = SP[short, i]; if (s == "dense" || ms(s, 256) < 0) continue
      if (ms(s, 256) > d256) { ns++; slower = slower sprintf(" %s %s,", nm(s), f1(ms(s, 256))) } }
    printf "  - T = 256: dense %s ms; %d specs slower than dense:%s\n", f1(d256), ns, slower == "" ? " none" : slower
    # 2. Nystromformer slowest at short lengths
    printf "- *Nystromformer is the slowest at short lengths*:"
    for (T = 256; T <= 1024; T *= 4) { w = ""; wt = -1; ny = ""
      for (i = 1; i <= NS[short]; i++) { s = SP[short, i]; t = ms(s, T); if (s != "dense" && t > wt) { wt = t; w = s }
        if (s ~ /^nystrom/) ny = s }
      printf " T = %d: slowest efficient spec %s %s ms, %s %s ms (%d of %d by time, dense included);", T, nm(w), f1(wt), nm(ny), f1(ms(ny, T)), rank(ny, T), NS[short] }
    printf "\n"
    # 3. FNet-style mixing nearly flat in T (per token)
    fs = ""; for (i = 1; i <= NS[short]; i++) if (SP[short, i] ~ /^causal_fnet/) fs = SP[short, i]
    printf "- *FNet-style mixing is nearly flat in T* (microseconds per token): %s %s at 256, %s at 4,096, %s at 65,536; dense %s at 256, %s at 4,096, %s at 16,384\n",
      nm(fs), f1(ms(fs, 256) / 256 * 1000), f1(ms(fs, 4096) / 4096 * 1000), f1(ms(fs, 65536) < 0 ? -1 : ms(fs, 65536) / 65536 * 1000),
      f1(ms("dense", 256) / 256 * 1000), f1(ms("dense", 4096) / 4096 * 1000), f1(ms("dense", 16384) < 0 ? -1 : ms("dense", 16384) / 16384 * 1000)
    # 4. Reformer pays off only beyond ~2,048
    ls = ""; for (i = 1; i <= NS[short]; i++) if (SP[short, i] ~ /^lsh/) ls = SP[short, i]
    printf "- *Reformer pays off only beyond ~2,048 tokens* (%s against dense, dense ms / lsh ms):", nm(ls)
    for (T = 256; T <= 8192; T *= 2) if (ms(ls, T) > 0 && ms("dense", T) > 0) printf " %d: %.2fx;", T, ms("dense", T) / ms(ls, T)
    printf "\n"
    # 5. At 4K: Performer/linear/Linformer ~5.5x dense speed at ~1/9 memory, Reformer 0.8x, BigBird 1.1x
    long = 4096; printf "- *At 4K, Performer/linear/Linformer ~5.5x dense speed with ~1/9 of its memory, Reformer 0.8x, BigBird 1.1x* (the %d-sized specs; dense %s ms, %s MB):", long, f1(ms("dense", long)), f1(mb("dense", long))
    for (i = 1; i <= NS[long]; i++) { s = SP[long, i]
      if (s ~ /^(performer|linear|linformer|lsh|bigbird)/ && ms(s, long) > 0)
        printf " %s %.1fx speed, %.2fx memory;", nm(s), ms("dense", long) / ms(s, long), mb(s, long) / mb("dense", long) }
    printf "\n"
    # 6. Dense remains competitive in quality
    printf "- *Dense Transformers remain competitive in quality*:"
    for (c in NS) { r = 1; re = 1; db = -1
      for (i = 1; i <= NS[c]; i++) if (SP[c, i] == "dense") { db = BPB[c, i]; de = EQ[c, i] }
      best = 1e9; for (i = 1; i <= NS[c]; i++) { if (BPB[c, i] < db) r++; if (EQ[c, i] != "" && de != "" && EQ[c, i] + 0 < de + 0) re++
        if (BPB[c, i] < best) { best = BPB[c, i]; bs = SP[c, i] } }
      printf " context %d: dense %.3f bits/byte, rank %d of %d at equal time (best %s %.3f), rank %d at equal tokens;", c, db, r, NS[c], nm(bs), best, re, NS[c] }
    # recall, per T: dense against the guess, the mixers clearly above the guess, those near chance
    for (i = 1; i <= nr; i++) if (!(QT[i] in seenT)) { seenT[QT[i]] = 1; Ts[++nT] = QT[i] }
    for (T in NT) if (!(T in seenT)) { seenT[T] = 1; Ts[++nT] = T }
    for (k = 2; k <= nT; k++) for (j = k; j > 1 && Ts[j - 1] + 0 > Ts[j] + 0; j--) { t = Ts[j]; Ts[j] = Ts[j - 1]; Ts[j - 1] = t }
    for (k = 1; k <= nT; k++) { T = Ts[k]; above = ""; nc = 0; tot = 0; g = ""; da = ""
      for (i = 1; i <= nr; i++) { if (QT[i] != T) continue; tot++; g = QG[i]
        if (QS[i] == "dense") da = QA[i]
        if (g != "" && QA[i] > g + 0.05) above = above sprintf(" %s %.3f,", nm(QS[i]), QA[i])
        if (QA[i] < 2 * QC[i]) nc++ }
      printf " recall at T = %d: dense %s%s; above the guess by > 0.05:%s %d of %d below twice chance%s;", T,
        da == "" ? "not trained" : sprintf("%.3f", da), g == "" ? "" : sprintf(" (in-sequence guess %.3f)", g),
        above == "" ? " none;" : above, nc, tot, NT[T] ? sprintf(", %d not trained (not above the guess at a shorter T)", NT[T]) : "" }
    printf "\n"
  }
  function rank(s, T,   i, r) { r = 1; for (i = 1; i <= NS[short]; i++) if (ms(SP[short, i], T) > ms(s, T)) r++; return r }
' "$dir/cost.csv" "$dir/study.csv" "$dir/recall.csv"
