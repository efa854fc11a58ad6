#!/usr/bin/env bash
# aarch64_full.sh - ctest entry: the whole program cross-built for aarch64
# and run under qemu against this build (scripts/cross-aarch64.sh --full:
# generate gives the same tokens, a 2-rank mpiexec run of qemu-wrapped arm64
# ranks works). Runs only when the arm64 sysroot that script downloads is
# present (no network here), and builds into a temporary folder.
# Called as: bash aarch64_full.sh BINARY SHARED SOURCE
set -euo pipefail
bin=$1 shared=$2 src=$3
sysroot=$src/build-aarch64-full/sysroot

why=
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  why="aarch64-linux-gnu-gcc or qemu-aarch64-static is not installed"
elif [ ! -f "$sysroot/.packages" ]; then
  why="there is no arm64 sysroot at $sysroot"
fi
if [ -n "$why" ]; then
  echo "SKIP: whole-program aarch64 build not tested because $why;" \
       "run scripts/cross-aarch64.sh --full once (as root: it downloads the arm64 .debs)"
  exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
OUT=$out SYSROOT=$sysroot NATIVE=$bin SP_SHARED=$shared bash "$src/scripts/cross-aarch64.sh" --full
