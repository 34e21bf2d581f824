# generate_bench.sh — the generation benchmark: mixlm cached vs uncached (nanoGPT's sliding
# recompute) vs PyTorch with a KV cache, 1000 new tokens on the shakespeare_char shape
# (6 layers, 6 heads, 384 wide, context 256), interleaved rounds, same threads and environment.
# Not a quality benchmark: the model is trained for 5 steps only (speed does not depend on it).
# Usage: bash bench/generate_bench.sh [BUILD_DIR] [ROUNDS]   (prints every run; take medians)
set -eu
BUILD=${1:-build}
ROUNDS=${2:-3}
BIN=$BUILD/mixlm
RUN=${RUN:-/tmp/mixlm_genbench_run}
DATA=${DATA:-/work/shared/data/tinyshakespeare.txt}
export OMP_WAIT_POLICY=PASSIVE # a shared host: spinning OpenMP threads oversubscribe the cores
E="env -u OPENBLAS_CORETYPE"
if [ ! -f "$RUN/model.safetensors" ]; then
    $E "$BIN" train --data "$DATA" --layers 6 --heads 6 --dim 384 --context 256 --steps 5 --batch 4 \
        --eval-every 0 --eval-batches 1 --threads 2 --quiet --out "$RUN"
fi
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    $E "$BIN" generate "$RUN" --bench --bench-modes cache --tokens 1000 --threads 2 | tail -1
    $E /usr/bin/python3 bench/generate_ref.py "$RUN" --tokens 1000 --threads 2 --repeats 1 | tail -1
    $E "$BIN" generate "$RUN" --bench --bench-modes slide --tokens 1000 --threads 2 | tail -1
done
