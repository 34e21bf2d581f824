#!/usr/bin/env bash
# bundle_tests.sh — gather the CUDA parity test binaries built HERE (no GPU) and the non-system
# shared libraries they need into one ignored folder, so a session with a lent GPU can carry
# it to the device machine (whose image may lack OpenBLAS) and run cuda/gpu_check.sh there.
# Not a build script and not an installer. Usage: cuda/bundle_tests.sh [BUILD_DIR] (default build-cuda)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-cuda}
[[ $build = /* ]] || build=$root/$build
out=$build/gpu-bundle
rm -rf "$out"
mkdir -p "$out/lib"
shopt -s nullglob
tests=("$build"/tests/test_cuda_*)
if ((${#tests[@]} == 0)); then
    echo "no test_cuda_* in $build/tests: configure with -DMIXLM_CUDA=ON and build them first" >&2
    exit 1
fi
cp "${tests[@]}" "$out/"
# Everything ldd resolves except glibc, the C++ runtime and CUDA's libraries (the device has CUDA 13).
for t in "${tests[@]}"; do
    ldd "$t" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
    case $(basename "$lib") in
    libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libcuda*.so* | libcublas*.so*) ;;
    libstdc++.so* | libgcc_s.so*) ;; # the device's own are newer; ours would shadow them for compute-sanitizer
    *) cp -L "$lib" "$out/lib/" ;;
    esac
done
du -sh "$out"
echo "carry: ${out#"$root"/}   then on the device: bash cuda/gpu_check.sh ${out#"$root"/}"
