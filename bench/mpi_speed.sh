#!/usr/bin/env bash
# mpi_speed.sh — data-parallel training on one machine: 2 MPI ranks x 1 thread against 1 process x
# 2 threads doing the same work (--grad-accum 2), and 1 process x 1 thread doing half of it (the
# base of the scaling efficiency), interleaved A B C A B C; prints median ms/step, tokens/s, the
# median time a rank spent blocked in MPI per step (communication not hidden by compute) and the
# efficiencies. Needs a build with MPI (MIXLM_MPI).
# Usage: bench/mpi_speed.sh [baby|small]   (env: MIXLM_BIN, ROUNDS=3, STEPS, DATA, MPIRUN)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MIXLM_BIN:-./build/mixlm}
mpirun=${MPIRUN:-mpirun}
rounds=${ROUNDS:-3}
data=${DATA:-../shared/data/tinyshakespeare.txt}
which=${1:-small}
tmp=$(mktemp -d /tmp/mixlm-mpispeed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OPENBLAS_CORETYPE
case $which in
  baby) shape=(--layers 4 --heads 4 --dim 128 --context 64 --batch 12); steps=${STEPS:-40} ;;
  small) shape=(--layers 6 --heads 6 --dim 384 --context 256 --batch 8); steps=${STEPS:-8} ;;
  *) echo "usage: $0 [baby|small]" >&2; exit 2 ;;
esac
common=(--data "$data" "${shape[@]}" --steps "$steps" --warmup 2 --eval-every 0 --eval-batches 1 --ckpt-every 0
        --check-sync 0 --quiet)
field() { grep -o "\"$2\":[^,}]*" "$1/summary.json" | head -1 | cut -d: -f2 | tr -d ' \t'; }
one() { # name, launcher words..., -- mixlm args...
  local name=$1; shift
  rm -rf "$tmp/$name"
  "$@" --out "$tmp/$name" > "$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; exit 1; }
  echo "$(field "$tmp/$name" ms_per_step_median) $(field "$tmp/$name" tokens_per_s) $(field "$tmp/$name" comm_wait_ms_per_step)" \
    >> "$tmp/$name.txt"
  echo "  $name: $(tail -1 "$tmp/$name.txt") (ms/step tok/s mpi-wait-ms) | $(grep -m1 '^cpu:' "$tmp/$name.out")"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $($mpirun --version | head -1)"
echo "date: $(date -u +%F\ %H:%M) UTC; load average $(cut -d' ' -f1-3 /proc/loadavg); shape $which: ${shape[*]}, $steps steps"
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  one A_1x1 "$bin" train "${common[@]}" --threads 1
  one B_1x2_accum2 "$bin" train "${common[@]}" --threads 2 --grad-accum 2
  one C_2ranks_x1 "$mpirun" --oversubscribe --bind-to none -np 2 "$bin" train "${common[@]}" --threads 1
done
med() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for n in A_1x1 B_1x2_accum2 C_2ranks_x1; do
  echo "$n $(cut -d' ' -f1 "$tmp/$n.txt" | med) $(cut -d' ' -f2 "$tmp/$n.txt" | med) $(cut -d' ' -f3 "$tmp/$n.txt" | med)"
done > "$tmp/med.txt"
awk '{ ms[$1] = $2; tok[$1] = $3; w[$1] = $4 }
  END {
    printf "%-14s %10s %10s %14s\n", "config", "ms/step", "tok/s", "MPI wait ms";
    for (n in ms) printf "%-14s %10.1f %10.0f %14s\n", n, ms[n], tok[n], (n ~ /ranks/ ? sprintf("%.1f", w[n]) : "-");
    printf "scaling efficiency, 2 ranks x 1 thread:    %.1f%% (tok/s over 2 x the 1-thread process)\n", 100 * tok["C_2ranks_x1"] / (2 * tok["A_1x1"]);
    printf "scaling efficiency, 1 process x 2 threads: %.1f%%\n", 100 * tok["B_1x2_accum2"] / (2 * tok["A_1x1"]);
    printf "2 ranks / 2 threads throughput: %.3fx; MPI wait %.1f%% of the 2-rank step\n", tok["C_2ranks_x1"] / tok["B_1x2_accum2"], 100 * w["C_2ranks_x1"] / ms["C_2ranks_x1"];
  }' "$tmp/med.txt"
