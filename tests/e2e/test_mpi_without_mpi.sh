#!/usr/bin/env bash
# test_mpi_without_mpi.sh — a mixlm built without MPI, started as one of several processes by a
# launcher (mpirun's OMPI_COMM_WORLD_SIZE, PMI_SIZE, srun's SLURM_STEP_NUM_TASKS), refuses to
# train, says why and how to fix it, and writes no checkpoint; one process is unaffected.
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-nompi.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
for i in $(seq 300); do echo "line $i of some text to train on"; done > "$dir/d.txt"
args=(--data "$dir/d.txt" --layers 1 --heads 1 --dim 8 --context 8 --batch 2 --steps 2 --threads 1 --quiet)
for var in OMPI_COMM_WORLD_SIZE PMI_SIZE SLURM_STEP_NUM_TASKS; do
  env "$var=2" "$bin" train "${args[@]}" --out "$dir/$var" > "$dir/$var.out" 2>&1
  check "$var=2: exits 1" "[ $? -eq 1 ]"
  check "$var=2: says it was built without MPI and how to rebuild" \
    "grep -q 'built without MPI' $dir/$var.out && grep -q 'MIXLM_MPI=ON' $dir/$var.out"
  check "$var=2: no checkpoint" "[ ! -f $dir/$var/model.safetensors ]"
done
OMPI_COMM_WORLD_SIZE=1 "$bin" train "${args[@]}" --out "$dir/one" > /dev/null 2>&1
check "a launcher's single process trains" "[ $? -eq 0 ] && [ -f $dir/one/model.safetensors ]"
exit $fail
