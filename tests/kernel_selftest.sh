#!/usr/bin/env bash
# kernel_selftest.sh - ctest entry: tests/kernel_selftest.c built for this
# machine (against the build's kernel library) and cross-built for aarch64
# and run under qemu with and without the dot product extension
# (scripts/cross-aarch64.sh). Each run checks every SIMD level against the
# scalar level bit for bit; then all runs must print the same digest of the
# scalar level's outputs, i.e. x86-64 and aarch64 compute the same bits.
# Skips the aarch64 part (loudly) when the cross tools are not installed.
# Called as: bash kernel_selftest.sh BINARY SHARED SOURCE
set -euo pipefail
bin=$1
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
build=$(cd "$(dirname "$bin")" && pwd)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -std=gnu11 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -I"$src/include" \
  -o "$out/kernel_selftest" "$src/tests/kernel_selftest.c" "$build/libsp_kernels.a" "$build/libsp_base.a" -lm
echo "== native ($(uname -m))"
"$out/kernel_selftest" | tee "$out/native.txt"

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
   ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "SKIP: aarch64 kernel self-test needs aarch64-linux-gnu-gcc and qemu-aarch64-static" \
       "(install gcc-aarch64-linux-gnu qemu-user-static)"
  exit 0
fi
OUT=$out/aarch64 bash "$src/scripts/cross-aarch64.sh" | tee "$out/arm.txt"

want=$(grep '^canonical digest:' "$out/native.txt")
n=0
while read -r line; do
  n=$((n + 1))
  if [ "$line" != "$want" ]; then
    echo "FAIL: aarch64 run $n printed '$line', the native build '$want': the two architectures sum differently" >&2
    exit 1
  fi
done < <(grep '^canonical digest:' "$out/arm.txt")
if [ "$n" -ne 2 ]; then
  echo "FAIL: expected 2 aarch64 digests (dotprod and plain NEON), got $n" >&2
  exit 1
fi
echo "ok: native and both aarch64 runs print the same digest ($want)"
