#!/usr/bin/env bash
# ARM check: cross-compile nn's SIMD layer and kernels and the attention engine's for aarch64
# (NEON and scalar levels, as CMake's mixlm_isa_variants would) with their tests, and run them
# under qemu-aarch64.
# No BLAS, no CMake: only the .c files those tests need. Debian packages: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user (in .ci/packages.txt). Exits 77 when the tools are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC_AARCH64:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CC" >/dev/null || ! command -v "$QEMU" >/dev/null; then
  echo "arm.sh: $CC or $QEMU not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user); skipped"
  exit 77
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cflags=(-std=c11 -O2 -fopenmp -ffp-contract=off -Wall -Wextra -Wshadow -Werror -D_GNU_SOURCE -I.)
common=(core/error.c core/mem.c core/rng.c core/sys.c core/file.c core/prof.c nn/isa.c nn/kernels.c nn/layers.c)

echo "== aarch64: compiling every file of core/ and nn/ (-Werror)"
# nn/linear.c needs cblas.h: the host's copy serves for a compile check (no ARM BLAS to link).
blas_inc=$(find /usr/include -name cblas.h -path '*openblas*' -printf '%h\n' 2>/dev/null | head -1 || true)
for f in core/*.c nn/*.c; do
  if [ "$f" = nn/linear.c ] && [ -z "$blas_inc" ]; then
    echo "   (nn/linear.c not compiled: no cblas.h found)"
    continue
  fi
  "$CC" "${cflags[@]}" ${blas_inc:+-idirafter "$blas_inc"} -c "$f" -o "$out/obj.o"
done

echo "== aarch64: compiling the per-ISA kernels (neon, scalar)"
"$CC" "${cflags[@]}" -DMX_ISA_SUFFIX=neon -DMX_ISA_EXPECT_VW=4 -c nn/isa/kernels_isa.c -o "$out/k_neon.o"
"$CC" "${cflags[@]}" -DMX_ISA_SUFFIX=scalar -DMX_ISA_EXPECT_VW=1 -DMX_SIMD_SCALAR -c nn/isa/kernels_isa.c -o "$out/k_scalar.o"
for t in test_simd test_nn_kernels; do
  "$CC" "${cflags[@]}" -Itests "tests/unit/$t.c" tests/check.c "${common[@]}" "$out/k_neon.o" "$out/k_scalar.o" -lm -o "$out/$t"
done

echo "== aarch64: the attention engine and the mixers' kernels (neon, scalar) with their BLAS-free tests"
for f in bsa_engine_isa attn_kernels_isa; do
  "$CC" "${cflags[@]}" -DMX_ISA_SUFFIX=neon -DMX_ISA_EXPECT_VW=4 -c "attention/isa/$f.c" -o "$out/${f}_neon.o"
  "$CC" "${cflags[@]}" -DMX_ISA_SUFFIX=scalar -DMX_ISA_EXPECT_VW=1 -DMX_SIMD_SCALAR -c "attention/isa/$f.c" \
    -o "$out/${f}_scalar.o"
done
"$CC" "${cflags[@]}" -Itests tests/mixers/test_attn_kernels.c tests/check.c "${common[@]}" attention/attn_kernels.c \
  "$out/attn_kernels_isa_neon.o" "$out/attn_kernels_isa_scalar.o" "$out/k_neon.o" "$out/k_scalar.o" -lm \
  -o "$out/test_attn_kernels"
# bsa.c's mixer-facing half (FLOP counts, the core table) refers to attn_common.c and through it to
# the whole model and BLAS; the test uses none of it: sections nothing reaches are dropped.
"$CC" "${cflags[@]}" -ffunction-sections -fdata-sections -Wl,--gc-sections -Itests tests/mixers/test_bsa_engine.c \
  tests/check.c "${common[@]}" attention/bsa.c \
  "$out/bsa_engine_isa_neon.o" "$out/bsa_engine_isa_scalar.o" "$out/k_neon.o" "$out/k_scalar.o" -lm \
  -o "$out/test_bsa_engine"

echo "== aarch64: running under qemu"
export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
for t in test_simd test_nn_kernels test_attn_kernels test_bsa_engine; do
  echo "-- $t"
  OMP_NUM_THREADS=2 "$QEMU" "$out/$t"
done
echo "arm.sh: all passed"
