#!/usr/bin/env bash
# kernel_selftest.sh - ctest entry: cross-build the quant kernels for aarch64
# and run tests/kernel_selftest.c under qemu with and without the dot
# product extension (scripts/cross-aarch64.sh). Skips when the cross tools
# are not installed. Called as: bash kernel_selftest.sh BINARY SHARED SOURCE
set -euo pipefail
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
   ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "SKIP: aarch64 kernel self-test needs aarch64-linux-gnu-gcc and qemu-aarch64-static" \
       "(install gcc-aarch64-linux-gnu qemu-user-static)"
  exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
OUT=$out bash "$src/scripts/cross-aarch64.sh"
