#!/usr/bin/env bash
# study.sh — the comparison, one command: every causal mixer, with specs sized per context,
#   1. byte-level language modelling at contexts 1024 and 4096 (enwik8 sample), the same model
#      and tokens per step, trained to an equal wall-clock budget (a short calibration turns the
#      budget into a step count per spec, so each cosine schedule ends at the budget;
#      `train --time-budget` caps a run that turns out slower), with the equal-token point on
#      the way; final bits/byte from a full `mixlm eval` pass;
#   2. associative recall (`mixlm data recall`) at T = 256, 1024 and 4096, scored by `eval --recall`
#      next to the in-sequence guess (the score of a model that knows the values but not the keys);
#      a mixer not above the guess by more than RECALL_GATE at one T is not trained at the longer
#      ones (its rows there say so in recall.csv's note: the distance to recall only grows with
#      T); dense, the reference, is trained at every T;
#   3. cost: `mixlm bench` forward+backward time and peak memory of the same spec strings.
# Outputs in --out: study.csv, recall.csv, cost.csv, curves.csv, machine.txt, report.html,
# README_table.md, claims.md (bench/claims.sh: the literature's claims with this study's figures),
# charts/*.svg (bench/study_charts.py: the report's charts as files, for README)
# (and runs/, bench.csv, study.log). Not a benchmark of the whole model's speed
# against PyTorch (train_speed.sh) and no plots of its own (`mixlm report --study` draws them).
#
# usage: bench/study.sh [--quick | --smoke] [--out DIR] [--data FILE] [--threads N] [--list]
#                      [--parts 123] [--mixers "NAME ..."]
#   --list   print the rows the mode will produce ("lm|recall CONTEXT SPEC", "cost T,...") and exit
#   --parts, --mixers  a partial study (e.g. --parts 1 --mixers "dense shift" with a longer
#            LM_BUDGET): the CSVs of the parts run; no report.html or claims.md, which need all
#   full     72 min on 2 cores (Xeon model 207, avx512, 2026-12-02; Zen 3 ~85 estimated); --quick ~5 min (context 1024, recall
#            at 256, cost to 16k, a smaller model);
#   --smoke  ~2 min, tiny sizes: only proves the machinery (CTest bench.study_smoke)
# env: MIXLM_BIN (default build/mixlm), LM_BUDGET (seconds of training per LM run), LM_CONTEXTS
#      ("1024 4096": part 1's contexts), RECALL_T
#      ("T1 T2 ...": the recall lengths, default "256 1024 4096"), RECALL_BUDGETS ("S1 S2 ...":
#      seconds per recall run at each recall T, in the order of --list; needed when RECALL_T is
#      set), RECALL_GATE (0.05: the margin over the guess a mixer needs at one T to be trained at
#      the next; "none" trains every mixer at every T), LM_POS (part 1's position scheme:
#      rope (default) | learned | none; rope goes to the mixers with queries and keys, the others
#      keep learned positions), RECALL_POS (part 2's, the same choices; default LM_POS)
set -euo pipefail
trap 'echo "study.sh: failed at line $LINENO (see the log in the output directory)" >&2' ERR
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MIXLM_BIN:-$root/build/mixlm}
mode=full out=study data="" threads=2 list=0 parts=123 only=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --data) data=${2:?--data needs a file}; shift ;;
    --threads) threads=${2:?--threads needs a number}; shift ;;
    --list) list=1 ;;
    --parts) parts=${2:?--parts needs a list such as 1 or 13}; shift
             [[ $parts =~ ^[123]+$ ]] || { echo "study.sh: --parts takes digits 1-3 (e.g. 13), not '$parts'" >&2; exit 2; } ;;
    --mixers) only=${2:?--mixers needs names, e.g. \"dense shift\"}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "study.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$bin" ] || { echo "study.sh: no mixlm binary at '$bin'; build first or set MIXLM_BIN" >&2; exit 2; }

# ---- the mixers: one name per entry; spec_for sizes each for a context --------------------------
# A new mixer is one more name here and, when it takes sizes, one case in spec_for.
MIXERS=(dense window dilated strided fixed bigbird lsh linformer nystrom linear performer gla retnet longconv causal_fnet shift)

# The mixers with queries and keys, which `train --pos rope` can rotate (mixer_has_qk).
QK_MIXERS=" dense window dilated strided fixed bigbird lsh linformer nystrom linear performer "
# WHY rope by default: with learned positions the LM ranking measured position schemes more
# than mixers (session 8: dense 3.80 -> 3.53 bits/byte at 1,024 in the same 35 s with RoPE, every
# softmax mixer gained 0.16-0.54, the kernel mixers <= 0.03 when they rotated q and k before their
# feature maps; since 2026-12-03 they rotate the features after it, RoFormer §3.3), and RoPE is
# what current decoders use.
LM_POS=${LM_POS:-rope}
RECALL_POS=${RECALL_POS:-$LM_POS}
for v in LM_POS RECALL_POS; do
  case ${!v} in learned|none|rope) ;;
    *) echo "study.sh: $v='${!v}' is not a position scheme; use rope, learned or none" >&2; exit 2 ;;
  esac
done
pos_for() { # mixer scheme -> its --pos
  if [ "$2" = rope ] && [[ $QK_MIXERS != *" $1 "* ]]; then echo learned; else echo "$2"; fi
}

isqrt() { awk -v t="$1" 'BEGIN { printf "%d", int(sqrt(t) + 0.5) }'; }
pow2_le() { awk -v x="$1" 'BEGIN { p = 1; while (p * 2 <= x) p *= 2; printf "%d", p }'; }
spec_for() { # mixer, context -> the spec string used for quality and cost alike
  local m=$1 T=$2 b
  case $m in
    window) echo "window:w=$((T / 8))" ;;                       # sees the last T/8
    dilated) echo "dilated:w=$((T / 16)),d=2" ;;                # T/16 taps spaced 2: reach T/8
    strided) echo "strided:s=$(isqrt "$T")" ;;                  # Sparse Transformer: s = sqrt(T)
    fixed) echo "fixed:s=$((T / 8)),c=8" ;;                     # blocks of T/8, 8 summary columns
    bigbird) b=$((T / 16 < 64 ? T / 16 : 64)); echo "bigbird:b=$b,w=3,r=3,g=2" ;;
    lsh) echo "lsh:h=2,nb=$((2 * T / 64)),c=64" ;;              # nb ~ 2T/c: buckets of ~c/2
    linformer) b=$(pow2_le "$(isqrt $((8 * T)))"); echo "linformer:k=8,b=$b" ;; # b ~ sqrt(kT)
    nystrom) b=$(pow2_le "$(isqrt $((8 * T)))"); echo "nystrom:m=8,b=$b" ;;
    performer) echo "performer:m=64" ;;
    *) echo "$m" ;;
  esac
}

if [ -n "$only" ]; then
  for m in $only; do
    [[ " ${MIXERS[*]} " == *" $m "* ]] || { echo "study.sh: --mixers: unknown mixer '$m' (the study's: ${MIXERS[*]})" >&2; exit 2; }
  done
  read -r -a MIXERS <<< "$only"
fi

# ---- sizes and budgets per mode -------------------------------------------------------------------
case $mode in
  full)
    LM_CTX=(${LM_CONTEXTS:-1024 4096}) LM_BUDGET=${LM_BUDGET:-35} LM_LAYERS=2 LM_DIM=128 LM_HEADS=4 LM_TOKENS=4096
    DATA_BYTES=3000000 VAL_FRAC=0.01
    RC_T=(${RECALL_T:-256 1024 4096}) RC_BUDGETS=(${RECALL_BUDGETS:-80 150 200}) RC_FILE_TOKENS=10000000
    COST_T=256,1k,2k,4k,8k,16k,32k,64k COST_REPEATS=3 COST_BUDGET=20 CAL_STEPS=3 ;;
  quick)
    LM_CTX=(${LM_CONTEXTS:-1024}) LM_BUDGET=${LM_BUDGET:-5} LM_LAYERS=2 LM_DIM=64 LM_HEADS=2 LM_TOKENS=2048
    DATA_BYTES=1000000 VAL_FRAC=0.03
    RC_T=(${RECALL_T:-256}) RC_BUDGETS=(${RECALL_BUDGETS:-6}) RC_FILE_TOKENS=1000000
    COST_T=256,1k,4k,16k COST_REPEATS=2 COST_BUDGET=10 CAL_STEPS=3 ;;
  smoke)
    LM_CTX=(128) LM_BUDGET=${LM_BUDGET:-1} LM_LAYERS=1 LM_DIM=32 LM_HEADS=2 LM_TOKENS=512
    DATA_BYTES=60000 VAL_FRAC=0.1
    RC_T=(${RECALL_T:-64 128}) RC_BUDGETS=(${RECALL_BUDGETS:-1 1}) RC_FILE_TOKENS=20000
    COST_T=64,128,256 COST_REPEATS=1 COST_BUDGET=10 CAL_STEPS=3 ;;
esac
# Recall: the same small model and task at every T: K pairs, Q = K queries of distinct keys
# (a key is asked once, so a query's only source is its pair: no mixer can copy a nearby
# earlier query's answer), the rest filler, so the distance between a pair and its query grows
# with T. The loss is on the answers only (--loss-on recall, as Zoology trains MQAR). Measured
# (bench/RESULTS.md, 2026-12-02 session 5): K = 4 pairs, since dense needs far longer to get
# beyond the in-sequence guess with 8 or more (more queries per sequence do not pay); lr 3e-3,
# which gets beyond it where 1e-3 stalls at it; RC_BATCH = 8 sequences per step. T starts at
# 256: there dense gets beyond the guess within ~1,000 steps (0.505 after 1,500), while at T = 64
# and 128 it sat at the guess after 16,000-24,000 sequences. RC_BUDGETS: the seconds of each T's
# runs (80 s at 256: ~1,900 dense steps on a quiet Zen 3, scaled from 3,600 in 150 s). Each T's
# file holds about RC_FILE_TOKENS tokens (10 M: 38,910 sequences at T = 256, so
# dense sees none twice; the fastest mixers take 2-3 passes).
# Longer T (session 7, bench/RESULTS.md): dense gets beyond the guess at 1,024 in 180-240 s; a
# mixer that stays at the guess at one T is not trained at the longer ones (RECALL_GATE), which
# keeps the three lengths inside the full study's 90 minutes. The gate reads one run per mixer,
# and single runs differ by up to 0.31 (session 6): a gated row is a measured skip, not a zero.
# Dense, the reference every row is compared with, is trained at every T: on an AVX-512 Xeon its
# T = 256 run scored 0.361 against the guess 0.339 (session 7) where Zen 3's two scored 0.548
# and 0.568, and the gate would have dropped it.
RC_LAYERS=2 RC_DIM=64 RC_HEADS=4 RC_PAIRS=4 RC_QUERIES=4 RC_VOCAB=16 RC_BATCH=8 RC_LR=3e-3
RC_GATE=${RECALL_GATE:-0.05}
[[ $RC_GATE == none || $RC_GATE =~ ^[0-9]*\.?[0-9]+$ ]] ||
  { echo "study.sh: RECALL_GATE is a margin such as 0.05, or none; not '$RC_GATE'" >&2; exit 2; }
# 10 calibration steps at T <= 256 (a step is short there: the median of 3 was often a slow
# first step, planning half the budget's steps).
RC_CAL_STEPS=10
[ "$mode" = smoke ] && RC_DIM=32 RC_HEADS=2 RC_BATCH=16 RC_CAL_STEPS=3
[ "${#RC_BUDGETS[@]}" -eq "${#RC_T[@]}" ] ||
  { echo "study.sh: RECALL_BUDGETS needs ${#RC_T[@]} figures (seconds at T = ${RC_T[*]}), not '${RC_BUDGETS[*]}'" >&2; exit 2; }
[[ $parts == *1* ]] || LM_CTX=()
[[ $parts == *2* ]] || RC_T=()
CAP=${CAP:-$([ "$mode" = smoke ] && echo 10 || echo 2)} # --time-budget = CAP x budget: the hard stop for a run slower than calibrated

if [ "$list" = 1 ]; then
  for T in "${LM_CTX[@]}"; do for m in "${MIXERS[@]}"; do echo "lm $T $(spec_for "$m" "$T")"; done; done
  for T in "${RC_T[@]}"; do for m in "${MIXERS[@]}"; do echo "recall $T $(spec_for "$m" "$T")"; done; done
  [[ $parts == *3* ]] && echo "cost $COST_T"
  exit 0
fi

# ---- data -----------------------------------------------------------------------------------------
if [ -z "$data" ]; then
  for d in "$root/../shared/data/enwik8_prefix.xml" \
           "$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared/data/enwik8_prefix.xml"; do
    [ -f "$d" ] && { data=$d; break; }
  done
fi
[ -n "$data" ] && [ -f "$data" ] && data=$(realpath "$data") || {
  echo "study.sh: no text for part 1: ../shared/data/enwik8_prefix.xml is absent; give --data FILE" >&2; exit 2; }
mkdir -p "$out/runs" "$out/data"
out=$(cd "$out" && pwd)
log=$out/study.log
: > "$log"
say() { echo "$*" | tee -a "$log"; }
head -c "$DATA_BYTES" "$data" > "$out/data/lm.txt"
AWK_CSV=$(cat "$root/bench/csv.awk") # parse() and csv(): specs hold commas
jnum() { # file key -> the first number stored under "key" in a JSON file ("" when absent)
  { grep -o "\"$2\":[[:space:]]*[-+0-9.eE]*" "$1" || true; } | head -1 | sed 's/.*:[[:space:]]*//'
}

# ---- training one spec to the budget ----------------------------------------------------------------
# calibrate DIR ARGS...: median ms per step of a CAL_STEPS-step run with these flags.
calibrate() {
  local dir=$1; shift
  rm -rf "$dir"
  "$bin" train "$@" --steps "$CAL_STEPS" --warmup 0 --eval-every 0 --eval-batches 1 --ckpt-every 0 \
      --threads "$threads" --quiet --out "$dir" >> "$log" 2>&1 ||
    { echo "study.sh: calibration failed: mixlm train $* (see $log)" >&2; exit 1; }
  jnum "$dir/summary.json" ms_per_step_median
  rm -rf "$dir"
}
steps_for() { # ms_per_step budget_s -> steps that fill the budget (at least 2)
  awk -v ms="$1" -v b="$2" 'BEGIN { s = int(b * 1000 / ms); printf "%d", s < 2 ? 2 : s }'
}
# train_to DIR STEPS BUDGET EVAL_EVERY ARGS...: the budgeted run, capped at CAP x budget.
train_to() {
  local dir=$1 steps=$2 budget=$3 every=$4; shift 4
  rm -rf "$dir"
  local warm=$((steps / 10))
  "$bin" train "$@" --steps "$steps" --warmup "$warm" --eval-every "$every" --log-every 5 --ckpt-every 0 \
      --time-budget "$(awk -v b="$budget" -v c="$CAP" 'BEGIN { print b * c }')" \
      --threads "$threads" --quiet --out "$dir" >> "$log" 2>&1 ||
    { echo "study.sh: training failed: mixlm train $* (see $log)" >&2; exit 1; }
}
# val_at DIR STEP -> the validation loss logged at that step ("" when none)
val_at() { { grep "\"step\":$2," "$1/log.jsonl" || true; } | { grep -o '"val_loss":[-+0-9.eE]*' || true; } | head -1 | cut -d: -f2; }

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
say "study ($mode): $(date -u +%FT%TZ), cpu: ${cpu:-unknown}, threads $threads, data $data"

# ---- part 1: language modelling ---------------------------------------------------------------------
lm_rows=$out/.lm_rows
: > "$lm_rows"
: > "$out/curves.csv.tmp"
for T in "${LM_CTX[@]}"; do
  B=$((LM_TOKENS / T)); [ "$B" -ge 1 ] || B=1
  common=(--data "$out/data/lm.txt" --tokenizer byte --layers "$LM_LAYERS" --dim "$LM_DIM" --heads "$LM_HEADS"
          --context "$T" --batch "$B" --lr 1e-3 --min-lr 1e-4 --beta2 0.99 --weight-decay 0.1 --grad-clip 1
          --eval-batches 2 --val-frac "$VAL_FRAC" --seed 1337)
  declare -A steps=()
  for m in "${MIXERS[@]}"; do
    spec=$(spec_for "$m" "$T")
    ms=$(calibrate "$out/runs/cal" "${common[@]}" --attn "$spec" --pos "$(pos_for "$m" "$LM_POS")")
    steps[$m]=$(steps_for "$ms" "$LM_BUDGET")
    say "lm T=$T $spec: calibrated $ms ms/step -> ${steps[$m]} steps in ${LM_BUDGET} s"
  done
  # The equal-token point: the steps of the slowest spec; every run evaluates there.
  eq=$(for m in "${MIXERS[@]}"; do echo "${steps[$m]}"; done | sort -n | head -1)
  for m in "${MIXERS[@]}"; do
    spec=$(spec_for "$m" "$T")
    dir=$out/runs/lm-$T-$m
    train_to "$dir" "${steps[$m]}" "$LM_BUDGET" "$eq" "${common[@]}" --attn "$spec" --pos "$(pos_for "$m" "$LM_POS")"
    "$bin" eval "$dir" --json --batch 4 --threads "$threads" > "$dir/eval.json" 2>> "$log"
    s=$dir/summary.json
    done_steps=$(jnum "$s" steps)
    veq=$(val_at "$dir" "$eq")
    awk -v spec="$spec" -v T="$T" -v bpb="$(jnum "$dir/eval.json" bits_per_byte)" \
        -v ms="$(jnum "$s" ms_per_step_median)" -v tps=$((B * T)) -v peak="$(jnum "$s" peak_rss_mb)" \
        -v steps="$done_steps" -v planned="${steps[$m]}" -v secs="$(jnum "$s" train_seconds)" \
        -v budget="$LM_BUDGET" -v veq="$veq" -v eq="$eq" -v params="$(jnum "$s" params)" -v B="$B" "$AWK_CSV"' BEGIN {
      printf "%s,%d,%.4f,%.5f,%.1f,%d,%d,%d,%.1f,%g,%s,%d,%d,%d\n", csv(spec), T, bpb, ms / tps, peak, steps, planned,
        steps * tps, secs, budget, veq == "" ? "" : sprintf("%.4f", veq / log(2)), eq * tps, params, B }' >> "$lm_rows"
    # validation bits/byte against training time, from the run's log
    grep '"val_loss"' "$dir/log.jsonl" | awk -v spec="$spec" -v T="$T" -v tps=$((B * T)) "$AWK_CSV"' {
      match($0, /"step":[0-9]+/); st = substr($0, RSTART + 7, RLENGTH - 7)
      match($0, /"elapsed_s":[-+0-9.eE]+/); el = substr($0, RSTART + 12, RLENGTH - 12)
      match($0, /"val_loss":[-+0-9.eE]+/); vl = substr($0, RSTART + 11, RLENGTH - 11)
      printf "%s,%d,%d,%d,%s,%.4f\n", csv(spec), T, st, st * tps, el, vl / log(2) }' >> "$out/curves.csv.tmp"
    say "lm T=$T $spec: $done_steps steps, bits/byte $(jnum "$dir/eval.json" bits_per_byte), at $eq steps ${veq:-n/a} nats"
    rm -f "$dir/tokens.bin"
  done
  unset steps
done

# ---- part 2: associative recall -----------------------------------------------------------------------
rc_rows=$out/.rc_rows
: > "$rc_rows"
declare -A rc_gated=() # mixer -> why it is not trained at the longer T
for i in "${!RC_T[@]}"; do
  T=${RC_T[$i]} rb=${RC_BUDGETS[$i]}
  file=$out/data/recall-$T.txt
  "$bin" data recall --out "$file" --T "$T" --pairs "$RC_PAIRS" --queries "$RC_QUERIES" --vocab "$RC_VOCAB" \
      --seqs $((RC_FILE_TOKENS / (T + 1))) --seed 1 >> "$log"
  B=$RC_BATCH
  cs=$RC_CAL_STEPS; [ "$T" -gt 256 ] && cs=$CAL_STEPS
  common=(--data "$file" --tokenizer char --layers "$RC_LAYERS" --dim "$RC_DIM" --heads "$RC_HEADS"
          --context "$T" --align $((T + 1)) --loss-on recall --batch "$B" --lr "$RC_LR" --min-lr "$(awk -v l="$RC_LR" 'BEGIN { print l / 10 }')" --beta2 0.99 --weight-decay 0.1
          --grad-clip 1 --eval-batches 1 --seed 1337)
  for m in "${MIXERS[@]}"; do
    spec=$(spec_for "$m" "$T")
    dir=$out/runs/recall-$T-$m
    if [ -n "${rc_gated[$m]:-}" ]; then
      awk -v spec="$spec" -v T="$T" -v V="$RC_VOCAB" -v K="$RC_PAIRS" -v Q="$RC_QUERIES" -v budget="$rb" \
          -v note="${rc_gated[$m]}" "$AWK_CSV"' BEGIN {
        printf "%s,%d,,,,,,,%g,%.4f,%d,%d,%d,%s\n", csv(spec), T, budget, 1 / V, K, Q, V, csv(note) }' >> "$rc_rows"
      say "recall T=$T $spec: ${rc_gated[$m]}"
      continue
    fi
    ms=$(CAL_STEPS=$cs calibrate "$out/runs/cal" "${common[@]}" --attn "$spec" --pos "$(pos_for "$m" "$RECALL_POS")")
    st=$(steps_for "$ms" "$rb")
    train_to "$dir" "$st" "$rb" 0 "${common[@]}" --attn "$spec" --pos "$(pos_for "$m" "$RECALL_POS")"
    "$bin" eval "$dir" --recall --json --batch 8 --threads "$threads" > "$dir/recall.json" 2>> "$log"
    acc=$(jnum "$dir/recall.json" accuracy)
    awk -v spec="$spec" -v T="$T" -v acc="$acc" -v guess="$(jnum "$dir/recall.json" in_sequence_guess)" \
        -v n="$(jnum "$dir/recall.json" answers)" -v steps="$(jnum "$dir/summary.json" steps)" -v tps=$((B * T)) \
        -v secs="$(jnum "$dir/summary.json" train_seconds)" -v V="$RC_VOCAB" -v K="$RC_PAIRS" -v Q="$RC_QUERIES" \
        -v budget="$rb" "$AWK_CSV"' BEGIN {
      printf "%s,%d,%.4f,%.4f,%d,%d,%d,%.1f,%g,%.4f,%d,%d,%d,\n", csv(spec), T, acc, guess, n, steps, steps * tps, secs,
        budget, 1 / V, K, Q, V }' >> "$rc_rows"
    guess=$(jnum "$dir/recall.json" in_sequence_guess)
    say "recall T=$T $spec: $(jnum "$dir/summary.json" steps) steps, accuracy $acc (in-sequence guess $guess)"
    if [ "$RC_GATE" != none ] && [ "$m" != dense ] && awk -v a="$acc" -v g="$guess" -v m="$RC_GATE" 'BEGIN { exit !(a <= g + m) }'; then
      rc_gated[$m]=$(printf 'not trained: accuracy %.4f at T=%d is not above the in-sequence guess %.4f by more than %s' "$acc" "$T" "$guess" "$RC_GATE")
    fi
    rm -f "$dir/tokens.bin"
  done
done

# ---- part 3: cost of the same spec strings -------------------------------------------------------------
specs=()
while IFS= read -r sp; do specs+=("$sp"); done < <(awk "$AWK_CSV"'{ parse($0); if (!seen[F[1]]++) print F[1] }' "$lm_rows" "$rc_rows")
# Part 3 alone: the specs parts 1 and 2 would have used.
if [ "${#specs[@]}" -eq 0 ]; then
  while IFS= read -r sp; do specs+=("$sp"); done < <(
    for T in $( [ "$mode" = full ] && echo 1024 4096 || { [ "$mode" = quick ] && echo 1024 || echo 128; } ); do
      for m in "${MIXERS[@]}"; do spec_for "$m" "$T"; done; done | awk '!seen[$0]++')
fi
bargs=()
for sp in "${specs[@]}"; do bargs+=(--attn "$sp"); done
if [[ $parts == *3* ]]; then
  say "cost: ${#specs[@]} specs at T = $COST_T"
  "$bin" bench "${bargs[@]}" --context "$COST_T" --batch 1 --dim 128 --heads 4 --layers 1 --repeats "$COST_REPEATS" \
      --threads "$threads" --time-budget "$COST_BUDGET" --csv-out "$out/bench.csv" >> "$log" 2>&1
else
  say "cost: part 3 not run (--parts $parts)"
  "$bin" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 --no-sgemm --threads 1 --csv-out "$out/bench.csv" >> "$log" 2>&1
fi
# cost.csv from the bench CSV, its fields found by header name
awk "$AWK_CSV"'
  NR == 1 { n = parse($0); for (i = 1; i <= n; i++) H[F[i]] = i; print "spec,T,fwd_bwd_ms,forward_ms,peak_mb,skipped"; next }
  { parse($0); print csv(F[H["attn"]]) "," F[H["context"]] "," F[H["train_ms"]] "," F[H["forward_ms"]] "," \
      F[H["peak_mb"]] "," csv(F[H["skipped"]]) }' "$out/bench.csv" > "$out/cost.csv"
[[ $parts == *3* ]] || sed -i 1q "$out/cost.csv" # the machine's CPU and ISA only
bench_field() { awk -v k="$1" "$AWK_CSV"' NR == 1 { n = parse($0); for (i = 1; i <= n; i++) H[F[i]] = i; next }
  { parse($0); print F[H[k]]; exit }' "$out/bench.csv"; }
isa=$(bench_field isa)
cpu=$(bench_field cpu)

# ---- the tables ------------------------------------------------------------------------------------------
{
  echo "spec,context,bits_per_byte,train_ms_per_token,peak_mb,steps,planned_steps,tokens,train_seconds,budget_s,bpb_equal_tokens,equal_tokens,params,batch,fwd_bwd_ms,cost_peak_mb,cost_note"
  awk "$AWK_CSV"'
    FNR == NR { if (FNR > 1) { parse($0); k = F[1] SUBSEP F[2]; ms[k] = F[3]; pk[k] = F[5]; nt[k] = F[6] } next }
    { parse($0); k = F[1] SUBSEP F[2]; print $0 "," ms[k] "," pk[k] "," csv(nt[k]) }' "$out/cost.csv" "$lm_rows"
} > "$out/study.csv"
{ echo "spec,T,accuracy,in_seq_guess,answers,steps,tokens,train_seconds,budget_s,chance,pairs,queries,vocab,note"; cat "$rc_rows"; } > "$out/recall.csv"
{ echo "spec,context,step,tokens,elapsed_s,val_bpb"; cat "$out/curves.csv.tmp"; } > "$out/curves.csv"
rm -f "$out/curves.csv.tmp" "$lm_rows" "$rc_rows"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$out/machine.txt" <<EOF
date: $(date -u +%FT%TZ)
mode: $mode
command: $(for v in LM_BUDGET LM_CONTEXTS LM_POS RECALL_POS RECALL_T RECALL_BUDGETS RECALL_GATE; do [ -n "${!v:-}" ] && printf '%s="%s" ' "$v" "${!v}"; done; true)bench/study.sh $( [ "$mode" = full ] || echo "--$mode ")$( [ "$parts" = 123 ] || echo "--parts $parts ")$( [ -z "$only" ] || printf -- '--mixers "%s" ' "$only")--out $out
commit: $commit
cpu: ${cpu:-unknown}
isa: ${isa:-unknown}
threads: $threads
cores: $(nproc)
data: $data (first $DATA_BYTES bytes, validation fraction $VAL_FRAC)
lm: contexts ${LM_CTX[*]:-none}, $LM_LAYERS layers, dim $LM_DIM, $LM_HEADS heads, $LM_TOKENS tokens per step, ${LM_BUDGET} s of training per run (cap ${CAP}x), positions $LM_POS$( [ "$LM_POS" = rope ] && echo ' (mixers without q and k: learned)' || true)
recall: $RC_LAYERS layers, dim $RC_DIM, $RC_HEADS heads, $RC_BATCH sequences per step, ${RC_BUDGETS[*]} s per run at T = ${RC_T[*]}; answer-only loss; positions $RECALL_POS$( [ "$RECALL_POS" = rope ] && echo ' (mixers without q and k: learned)' || true); $RC_PAIRS pairs, $RC_QUERIES queries, vocab $RC_VOCAB, files of $RC_FILE_TOKENS tokens, lr $RC_LR, gate $RC_GATE
cost: mixlm bench, 1 layer, dim 128, 4 heads, batch 1, $COST_REPEATS repeats (median), T = $COST_T
EOF
if [ "$parts" = 123 ] && [ -z "$only" ]; then
  "$bin" report --study "$out" -o "$out/report.html" >> "$log"
  "$root/bench/claims.sh" "$out" > "$out/claims.md"
  python3 "$root/bench/study_charts.py" "$out" >> "$log"
  say "wrote $out/study.csv, recall.csv, cost.csv, curves.csv, README_table.md, report.html, claims.md, charts/"
else
  say "wrote $out/study.csv, recall.csv, cost.csv, curves.csv (a partial study: parts $parts${only:+, mixers $only}; no report)"
fi
