#!/usr/bin/env bash
# gpu_check.sh — on a machine WITH a GPU: run the CUDA parity tests, then compute-sanitizer's
# memcheck and racecheck on them, and print one summary line per run. Takes the folder made by
# cuda/bundle_tests.sh (or a build's tests/ folder when the project was built on that machine).
# Not a benchmark. Usage: bash cuda/gpu_check.sh build-cuda/gpu-bundle
set -uo pipefail
dir=${1:?usage: gpu_check.sh BUNDLE_OR_TESTS_DIR}
export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
nvidia-smi -L || true
status=0
summary=()
for t in "$dir"/test_cuda_*; do
    name=$(basename "$t")
    MIXLM_CUDA_SYNC=1 "$t"
    rc=$?
    summary+=("$name: exit $rc")
    ((rc == 0)) || status=1
    if command -v compute-sanitizer > /dev/null; then
        for tool in memcheck racecheck; do
            compute-sanitizer --tool "$tool" --error-exitcode 99 "$t" > "/tmp/$name.$tool.log" 2>&1
            rc=$?
            summary+=("$name under $tool: exit $rc ($(tail -1 "/tmp/$name.$tool.log"))")
            ((rc == 0)) || status=1
        done
    else
        summary+=("compute-sanitizer not found: memcheck/racecheck not run")
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
