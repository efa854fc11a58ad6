#!/usr/bin/env bash
# cross-aarch64.sh - cross-compile the quant kernels and tests/kernel_selftest.c
# for aarch64 and run the self-check under qemu twice: with qemu's default
# CPU ("max", has the dot product extension, so the neon-dotprod level runs)
# and as a Cortex-A53 (no dotprod: only the plain NEON level). Installs
# gcc-aarch64-linux-gnu and qemu-user-static first if they are missing.
#   scripts/cross-aarch64.sh            # build into build-aarch64/, run both
#   OUT=/tmp/x scripts/cross-aarch64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-aarch64}

scripts/install-packages.sh gcc-aarch64-linux-gnu qemu-user-static

mkdir -p "$OUT"
# Only the kernels cross-build: no OpenBLAS, MPI or Criterion needed.
aarch64-linux-gnu-gcc -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -static -Iinclude \
  -o "$OUT/kernel_selftest" \
  src/base/*.c src/kernels/quant.c src/kernels/simd.c src/kernels/dot_neon.c \
  tests/kernel_selftest.c -lm

echo "== qemu-aarch64 default cpu (max: NEON + dotprod)"
env -u QEMU_CPU qemu-aarch64-static "$OUT/kernel_selftest"
echo "== qemu-aarch64 cortex-a53 (NEON only)"
QEMU_CPU=cortex-a53 qemu-aarch64-static "$OUT/kernel_selftest"
