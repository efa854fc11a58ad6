#!/usr/bin/env bash
# aarch64_full.sh - ctest entry: the whole program cross-built for aarch64
# and run under qemu against this build (scripts/cross-aarch64.sh --full):
# the same tokens and bit-identical logits as x86-64 for the F32, Q8_0,
# Q4_0, IQ4_NL and K-quant (ktiny-*) models and the llama3, qwen2 and qwen3
# architectures, a 2-rank arm64 run, and mixed x86-64 + arm64 pipelines.
# The arm64 sysroot (about 100 Debian .debs, 260 MB unpacked) is kept in
# $SHARDPIPE_AARCH64_SYSROOT, default ~/.cache/shardpipe/aarch64-sysroot, and
# made on first use when this runs as root with network access; without it
# (or without the cross tools) the test says why and skips.
# Called as: bash aarch64_full.sh BINARY SHARED SOURCE
set -euo pipefail
bin=$1 shared=$2 src=$3
sysroot=${SHARDPIPE_AARCH64_SYSROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/shardpipe/aarch64-sysroot}
# an older checkout kept it in the source tree
[ -f "$sysroot/.packages" ] || [ ! -f "$src/build-aarch64-full/sysroot/.packages" ] || sysroot=$src/build-aarch64-full/sysroot

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
why=
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  why="aarch64-linux-gnu-gcc or qemu-aarch64-static is not installed"
elif [ ! -f "$sysroot/.packages" ] || [ ! -f "$sysroot/usr/include/jansson.h" ] || [ ! -f "$sysroot/usr/include/xxhash.h" ]; then
  # none yet, or one made before libjansson-dev and libxxhash-dev were dependencies
  if [ "$(id -u)" -ne 0 ]; then
    why="there is no arm64 sysroot at $sysroot and making one needs root (apt-get download)"
  else
    echo "== making the arm64 sysroot in $sysroot (once)"
    existed=0
    [ -e "$sysroot" ] && existed=1
    mkdir -p "$(dirname "$sysroot")"
    # cross-aarch64.sh keeps its apt state next to the build; --sysroot-only stops after the sysroot
    if ! OUT=$out/mk SYSROOT=$sysroot bash "$src/scripts/cross-aarch64.sh" --full --sysroot-only >"$out/mk.log" 2>&1; then
      tail -5 "$out/mk.log"
      [ "$existed" = 1 ] || rm -rf "$sysroot"
      why="making the arm64 sysroot failed (no network to deb.debian.org?), see above"
    fi
  fi
fi
if [ -n "$why" ]; then
  echo "SKIP: whole-program aarch64 check (x86-64 / arm64 bit-identity, mixed pipeline) not run because $why;" \
       "run scripts/cross-aarch64.sh --full once as root"
  exit 0
fi

OUT=$out/build SYSROOT=$sysroot NATIVE=$bin SP_SHARED=$shared bash "$src/scripts/cross-aarch64.sh" --full
