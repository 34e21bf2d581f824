#!/usr/bin/env bash
# train_speed.sh — ms per training step of mixlm and of the nanoGPT-equivalent PyTorch script
# (tests/ref/nanogpt.py), same config, same threads, interleaved A B A B in one run; prints the
# medians, the ratio, model FLOPs/step and achieved GFLOP/s against a measured sgemm ceiling and the
# FMA peak (`mixlm bench`'s header).
# Usage: bench/train_speed.sh [baby|small|all]   (env: MIXLM_BIN, THREADS=2, ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MIXLM_BIN:-./build/mixlm}
py=${PYTHON:-/usr/bin/python3}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
data=${DATA:-../shared/data/tinyshakespeare.txt}
which=${1:-all}
tmp=$(mktemp -d /tmp/mixlm-speed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# PLATFORM.md: both peers get the same environment: AVX-512 kernels (no forced Haswell
# coretype), passive OpenMP waiting.
export OMP_WAIT_POLICY=PASSIVE
unset OPENBLAS_CORETYPE

# The hypervisor's steal over a run, in % of all CPU time (/proc/stat; "?" where unknown): a
# round in which one peer lost its CPUs and the other did not is not a comparison.
cpu_line() { head -1 /proc/stat 2>/dev/null || echo; }
steal_between() { # "cpu ..." lines before and after
  awk -v a="$1" -v b="$2" 'BEGIN{ na = split(a, x, " "); nb = split(b, y, " ");
    if (na < 9 || nb < 9) { print "?"; exit } t = 0; for (i = 2; i <= 9; i++) t += y[i] - x[i];
    if (t < 2) print "?"; else printf "%.0f", 100 * (y[9] - x[9]) / t }'
}

run_cfg() { # name, steps, args...
  local name=$1 steps=$2; shift 2
  local m=() t=() prof=() quiet=()
  for r in $(seq 1 "$rounds"); do
    rm -rf "$tmp/run"
    c0=$(cpu_line)
    out=$("$bin" train --data "$data" "$@" --steps "$steps" --warmup 2 --eval-every 0 --eval-batches 1 \
           --ckpt-every 0 --threads "$threads" --out "$tmp/run" --quiet --profile)
    line=$(grep '^done:' <<< "$out")
    prof+=("$(grep '^profile:' <<< "$out")")
    m+=("$(sed -E 's/.*median ([0-9.]+) ms\/step.*/\1/' <<< "$line")")
    gf=$(sed -E 's/.*, ([0-9.]+) GFLOP\/step.*/\1/' <<< "$line")
    c1=$(cpu_line)
    pyout=$("$py" tests/ref/nanogpt.py --data "$data" "$@" --time-only "$steps" --threads "$threads" | tail -1)
    c2=$(cpu_line)
    t+=("$("$py" -c 'import json,sys; print(json.loads(sys.stdin.read())["ms_per_step_median"])' <<< "$pyout")")
    s1=$(steal_between "$c0" "$c1") s2=$(steal_between "$c1" "$c2")
    echo "  round $r: mixlm ${m[-1]} ms/step (host steal $s1%), pytorch ${t[-1]} ms/step (steal $s2%)"
    [ "$s1" != "?" ] && [ "$s2" != "?" ] && [ "$s1" -lt 5 ] && [ "$s2" -lt 5 ] &&
      quiet+=("$(awk -v a="${t[-1]}" -v b="${m[-1]}" 'BEGIN{printf "%.3f", a/b}')")
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
  mm=$(med "${m[@]}"); tm=$(med "${t[@]}")
  awk -v n="$name" -v mm="$mm" -v tm="$tm" -v gf="$gf" -v ceil="$ceil" -v peak="${peak:-0}" 'BEGIN{
    printf "%-6s mixlm %8.1f ms/step | pytorch %8.1f ms/step | pytorch/mixlm %.2fx | %.2f GFLOP/step: mixlm %.0f GFLOP/s (%.0f%% of sgemm %.0f", \
      n, mm, tm, tm/mm, gf, gf/mm*1000, 100*gf/mm*1000/ceil, ceil
    if (peak > 0) printf ", %.0f%% of FMA peak %.0f", 100*gf/mm*1000/peak, peak
    printf "), pytorch %.0f GFLOP/s\n", gf/tm*1000 }'
  if [ ${#quiet[@]} -gt 0 ]; then
    echo "  rounds in which neither peer lost 5% of the CPU time to the hypervisor: ${#quiet[@]} of $rounds, pytorch/mixlm median $(med "${quiet[@]}")x"
  else
    echo "  rounds in which neither peer lost 5% of the CPU time to the hypervisor: none of $rounds"
  fi
  # mixlm's step by kind of work (train --profile) in the round whose mixlm time is the median,
  # and the ratio its matmuls alone would give: OpenBLAS runs them for both peers, so no change
  # to mixlm's own code can take the ratio past pytorch / (mixlm's matmul time).
  local mid=0
  for i in "${!m[@]}"; do [ "${m[$i]}" = "$mm" ] && mid=$i; done
  local p=${prof[$mid]}
  echo "  mixlm step by kind of work (round $((mid + 1)), train --profile): ${p#*ms/step: }"
  # The profile gives means (a slow step counts fully); the floor takes the matmuls' share of
  # the mean step times the median step, so that it compares with the medians above.
  share=$(sed -nE 's/.*matmul [0-9.]+ ms ([0-9.]+)%.*/\1/p' <<< "$p")
  [ -n "$share" ] && awk -v tm="$tm" -v sh="$share" -v mm="$mm" 'BEGIN{
    printf "  matmul floor: %.0f%% of mixlm'"'"'s step is OpenBLAS, %.1f ms of the median step; pytorch / that = %.2fx, the most any change outside OpenBLAS could reach\n", sh, sh*mm/100, tm/(sh*mm/100) }'
}

probe() { "$bin" bench --attn dense --context 16 --dim 16 --heads 1 --repeats 1 --threads "$threads" 2>/dev/null; }
# Both peers run the same OpenBLAS core and vector level, each its best on this machine:
# - mixlm re-executes with OPENBLAS_CORETYPE=SkylakeX/Haswell where this OpenBLAS falls back to
#   its SSE3 Prescott kernels (0.3.21 on an unknown CPU, nn/nn.h); PyTorch links the same
#   OpenBLAS, so it gets the same core;
# - PyTorch 1.13 runs its own kernels at AVX2 unless ATEN_CPU_CAPABILITY=avx512 (measured on
#   an AVX-512 Xeon, baby config: 188 ms/step default, 89 with the core, 68 with both);
# - MIXLM_ISA=avx2 on an AVX-512 machine means AVX2 throughout: OpenBLAS's Haswell core and
#   PyTorch's AVX2 kernels for both peers.
hdr=$(probe)
isa=$(sed -nE 's/^cpu: .*\| kernels ([a-z0-9]+).*/\1/p' <<< "$hdr" | head -1)
if [ "${MIXLM_ISA:-}" = avx2 ]; then
  export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2
else
  forced=$(sed -nE 's/.*core ([A-Za-z0-9_]+) \(set by mixlm.*/\1/p' <<< "$hdr" | head -1)
  [ -n "$forced" ] && export OPENBLAS_CORETYPE=$forced
  [ "$isa" = avx512 ] && export ATEN_CPU_CAPABILITY=avx512
fi
hdr=$(probe)
ceil=$(sed -nE 's/^sgemm ceiling.*= ([0-9.]+) GFLOP\/s.*/\1/p' <<< "$hdr" | head -1)
peak=$(sed -nE 's/^arithmetic peak.*= ([0-9.]+) GFLOP\/s.*/\1/p' <<< "$hdr" | head -1)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads $threads; sgemm 1024^3 ceiling ${ceil} GFLOP/s; FMA peak ${peak:-n/a} GFLOP/s"
echo "date: $(date -u +%F\ %H:%M) UTC; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "both peers: $(sed -nE 's/^sgemm ceiling.*GFLOP\/s \(median of 9\), //p' <<< "$hdr" | head -1); mixlm kernels ${MIXLM_ISA:-$isa}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-(unset)}"
if [ "$which" = baby ] || [ "$which" = all ]; then
  echo "baby (4L 4H 128, T 64, B 12):"
  run_cfg baby 60 --layers 4 --heads 4 --dim 128 --context 64 --batch 12
fi
if [ "$which" = small ] || [ "$which" = all ]; then
  echo "small (6L 6H 384, T 256, B 8):"
  run_cfg small 8 --layers 6 --heads 6 --dim 384 --context 256 --batch 8
fi
