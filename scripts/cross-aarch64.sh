#!/usr/bin/env bash
# cross-aarch64.sh - build for aarch64 (Raspberry Pi 4/5, Orange Pi 5) on an
# x86-64 Debian 12 machine and run the result under qemu-user.
#
# Default: cross-compile the quant kernels and tests/kernel_selftest.c and
# run the self-check twice: with qemu's default CPU ("max", has the dot
# product extension, so the neon-dotprod level runs) and as a Cortex-A53 (no
# dotprod: only the plain NEON level). Needs no arm64 libraries.
#
# --full: the whole program. Downloads the arm64 .debs of libc6-dev,
# libopenblas-dev, libyaml-dev, libpcre2-dev, libutf8proc-dev, libjansson-dev, libxxhash-dev,
# libmicrohttpd-dev, libcurl4-openssl-dev, libmpich12 and libmpich-dev (with
# their dependencies, about 100 packages, 260 MB unpacked, once) through a
# private apt configuration and
# unpacks them into $OUT/sysroot: the system's package state is not touched
# (the download runs apt-get as root, or through sudo: as a normal user apt
# cannot verify the archive signatures of a private apt state). (libmpich-dev:arm64 cannot be
# installed next to the amd64 one with multiarch: it depends on gcc, g++ and
# gfortran for arm64, which would remove the amd64 compilers.) Then builds
# $OUT/shardpipe with scripts/aarch64-linux-gnu.cmake and checks it under
# qemu-aarch64-static against a native build of the same source:
#   inspect; greedy `generate` (same token ids); a 1-rank `run` (same tokens,
#   bit-identical logits); a 2-rank `mpiexec ... qemu-aarch64-static
#   shardpipe run` (the host's hydra launches the arm64 ranks: same tokens,
#   logits bit-identical to the arm64 1-rank run); a mixed pipeline, an
#   x86-64 rank and an arm64 rank in one job (bit-identical to x86-64
#   alone); the Q8_0 and Q4_0 models (same tokens, bit-identical logits);
#   the K-quant mixes, Llama 3, Qwen2, Qwen3 and an IQ4_NL model (the same,
#   and mixed pipelines for some).
#
# Installs gcc-aarch64-linux-gnu and qemu-user-static first if missing.
#   scripts/cross-aarch64.sh            # kernels: build into build-aarch64/, run both
#   scripts/cross-aarch64.sh --full     # whole program into build-aarch64-full/
#   scripts/cross-aarch64.sh --full --sysroot-only   # only make $SYSROOT
# Environment: OUT (build dir), SYSROOT (default $OUT/sysroot; an existing one
# is reused), NATIVE (a native shardpipe to compare with; default: build
# build-native-xcheck/), SP_SHARED (models, default ../shared),
# DEBIAN_MIRROR (default http://deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

mode=kernels sysroot_only=0
case "${1:-}" in
  "") ;;
  --full) mode=full ;;
  *) echo "usage: scripts/cross-aarch64.sh [--full [--sysroot-only]]" >&2; exit 2 ;;
esac
[ "${2:-}" = --sysroot-only ] && sysroot_only=1

# libc6-dev-arm64-cross is only a Recommends of gcc-aarch64-linux-gnu, which
# install-packages.sh does not take: name it, or -static links find no libc.
scripts/install-packages.sh gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static

if [ "$mode" = kernels ]; then
  OUT=${OUT:-build-aarch64}
  mkdir -p "$OUT"
  # Only the kernels cross-build: no OpenBLAS, MPI or Criterion needed.
  aarch64-linux-gnu-gcc -std=gnu11 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -static -Iinclude \
    -o "$OUT/kernel_selftest" \
    src/base/*.c src/kernels/quant.c src/kernels/quant_k.c src/kernels/quant_kx16.c src/kernels/simd.c src/kernels/dot_neon.c src/kernels/dot_k_neon.c \
    src/kernels/quant_iq4nl.c src/kernels/dot_iq4nl_neon.c \
    tests/kernel_selftest.c -lm

  echo "== qemu-aarch64 default cpu (max: NEON + dotprod)"
  env -u QEMU_CPU qemu-aarch64-static "$OUT/kernel_selftest"
  echo "== qemu-aarch64 cortex-a53 (NEON only)"
  QEMU_CPU=cortex-a53 qemu-aarch64-static "$OUT/kernel_selftest"
  exit 0
fi

# ---- --full ----
# the native side: cmake, the native build to compare with, hydra's mpiexec
scripts/install-packages.sh build-essential cmake pkg-config mpich libmpich-dev libopenblas-dev libyaml-dev libpcre2-dev libutf8proc-dev libjansson-dev libxxhash-dev libmicrohttpd-dev libcurl4-openssl-dev
OUT=$(mkdir -p "${OUT:-build-aarch64-full}" && cd "${OUT:-build-aarch64-full}" && pwd)
SYSROOT=${SYSROOT:-$OUT/sysroot}
shared=${SP_SHARED:-$src/../shared}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org}

# The runtime closure is resolved by apt; libmpich-dev (mpi.h, libmpich.so)
# is fetched alone, because its dependencies are the arm64 compilers.
# (libmicrohttpd for serve, libcurl for chat)
pkgs=(libc6-dev libopenblas-dev libyaml-dev libmpich12 libpcre2-dev libutf8proc-dev libjansson-dev libxxhash-dev libmicrohttpd-dev
      libcurl4-openssl-dev)

make_sysroot() {
  # only a folder this script made (it has .packages) is ever replaced
  if [ -d "$SYSROOT" ] && [ -n "$(ls -A "$SYSROOT")" ] && [ ! -f "$SYSROOT/.packages" ]; then
    echo "cross-aarch64.sh: $SYSROOT exists and is not a sysroot this script made; remove it or set SYSROOT" >&2
    exit 1
  fi
  local apt=$OUT/apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/cache"
  : >"$apt/status" # nothing installed: apt resolves the whole closure
  local s
  for s in "debian bookworm" "debian bookworm-updates" "debian-security bookworm-security"; do
    set -- $s
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror/$1 $2 main"
  done >"$apt/sources.list"
  local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::State::Lists="$apt/lists" -o Dir::State::status="$apt/status" -o Dir::Cache="$apt/cache"
    -o Dir::Cache::archives="$apt/archives" -o APT::Architecture=arm64 -o APT::Architectures::=arm64
    -o APT::Install-Recommends=false -o Debug::NoLocking=1
    # as root apt fetches as user _apt, who may not be able to enter $OUT
    -o APT::Sandbox::User=root)
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "downloading the arm64 .debs needs root (apt-get); run scripts/cross-aarch64.sh --full" \
           "once as root, later runs reuse $SYSROOT" >&2
      exit 1
    fi
  fi
  echo "== arm64 sysroot: downloading ${pkgs[*]} libmpich-dev (private apt state in $apt)"
  $sudo apt-get "${opts[@]}" update -qq
  $sudo apt-get "${opts[@]}" install -y -qq --download-only "${pkgs[@]}" >/dev/null
  (cd "$apt/archives" && $sudo apt-get "${opts[@]}" download -qq libmpich-dev)

  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  local deb
  for deb in "$apt"/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  # Absolute symlinks (libm.so -> /lib/aarch64-linux-gnu/libm.so.6) would
  # point into the host: make them relative to the sysroot.
  local link target
  while IFS= read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
  done < <(find "$SYSROOT" -type l -lname '/*')
  # What update-alternatives does when libopenblas0-pthread is installed on
  # a board: the generic names point at the pthread build.
  local lib=$SYSROOT/usr/lib/aarch64-linux-gnu f
  for f in libopenblas.so.0 libopenblas.so libblas.so.3 libblas.so liblapack.so.3 liblapack.so; do
    ln -sfn "openblas-pthread/$f" "$lib/$f"
  done
  (cd "$apt/archives" && ls ./*.deb) >"$SYSROOT/.packages"
  echo "== arm64 sysroot ready: $SYSROOT ($(wc -l <"$SYSROOT/.packages") packages, $(du -sh "$SYSROOT" | cut -f1))"
}

# a sysroot made before a dependency was added lacks its header: made again
if [ -f "$SYSROOT/.packages" ] && [ -f "$SYSROOT/usr/include/aarch64-linux-gnu/mpich/mpi.h" ] &&
   [ -f "$SYSROOT/usr/include/pcre2.h" ] && [ -f "$SYSROOT/usr/include/utf8proc.h" ] &&
   [ -f "$SYSROOT/usr/include/jansson.h" ] && [ -f "$SYSROOT/usr/include/xxhash.h" ] &&
   [ -f "$SYSROOT/usr/include/microhttpd.h" ] && [ -f "$SYSROOT/usr/include/aarch64-linux-gnu/curl/curl.h" ]; then
  echo "== arm64 sysroot: reusing $SYSROOT"
else
  command -v dpkg-deb >/dev/null && [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || {
    echo "cross-aarch64.sh --full needs apt, dpkg-deb and debian-archive-keyring (a Debian machine)" >&2
    exit 1
  }
  make_sysroot
fi
[ "$sysroot_only" = 1 ] && exit 0

echo "== cross build: $OUT/shardpipe"
start=$(date +%s)
cmake -S . -B "$OUT" -DCMAKE_TOOLCHAIN_FILE="$src/scripts/aarch64-linux-gnu.cmake" \
  -DSHARDPIPE_AARCH64_SYSROOT="$SYSROOT" -DSHARDPIPE_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OUT" -j2 --target shardpipe >/dev/null
echo "   built in $(($(date +%s) - start)) s: $(file -b "$OUT/shardpipe" 2>/dev/null | cut -d, -f1-2)"

if [ -z "${NATIVE:-}" ]; then
  echo "== native build for the comparison: build-native-xcheck/shardpipe"
  cmake -S . -B build-native-xcheck -DSHARDPIPE_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-native-xcheck -j2 --target shardpipe >/dev/null
  NATIVE=$src/build-native-xcheck/shardpipe
fi
cc -O2 -o "$OUT/sp_logits_diff" tests/tools/logits_diff.c -lm

. tests/tools/lib.sh
arm() { qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" "$@"; }
model=$src/models/stories260K.gguf # shipped in the repository
if [ ! -r "$model" ]; then
  skip "arm64 runs: $model is missing (set SP_SHARED to the folder with models/)"
  finish
  exit
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prompt="Once upon a time"

ms() { echo $(($(date +%s%N) / 1000000)); }
inspect_ok() { arm inspect "$model" >"$tmp/inspect.txt" && grep -q "block_count *5" "$tmp/inspect.txt"; }
generate() { # binary-runner out-prefix
  "$@" generate -m "$model" -p "$prompt" -n 32 --tokens-out "$out.tok" >"$out.txt" 2>"$out.err"
}
check "arm64 inspect (qemu)" inspect_ok
out=$tmp/native check "x86-64 generate -n 32" generate "$NATIVE"
t0=$(ms)
out=$tmp/arm check "arm64 generate -n 32 (qemu)" generate arm
echo "   $(tail -1 "$tmp/arm.err") | wall $(($(ms) - t0)) ms under qemu"
echo "   text: $(head -c 200 "$tmp/arm.txt")"
check "arm64 generate: same $(wc -l <"$tmp/native.tok") token ids as x86-64" cmp "$tmp/native.tok" "$tmp/arm.tok"

# Logits through `run`: 1 rank native, 1 and 2 ranks arm64 (hydra's mpiexec
# from the host starts qemu; PMI and the ranks' traffic are sockets and
# shared memory, the same whichever CPU the ranks emulate).
write_plan "$tmp/p1.yaml" "$model" 128 1 1 f32 "0:0:4"
write_plan "$tmp/p2.yaml" "$model" 128 1 1 f32 "0:0:1" "1:2:4"
runargs=(--prompt "$prompt" -n 32 -q)
mpirun_bounded 120 -n 1 "$NATIVE" run --plan "$tmp/p1.yaml" "${runargs[@]}" \
  --tokens-out "$tmp/n1.tok" --logits-out "$tmp/n1.logits" </dev/null
check "arm64 run, 1 rank (mpiexec + qemu)" mpirun_bounded 300 -n 1 qemu-aarch64-static -L "$SYSROOT" \
  "$OUT/shardpipe" run --plan "$tmp/p1.yaml" "${runargs[@]}" --tokens-out "$tmp/a1.tok" \
  --logits-out "$tmp/a1.logits" </dev/null
t0=$(ms)
check "arm64 run, 2 ranks (mpiexec -n 2 qemu-aarch64-static ...)" mpirun_bounded 300 -n 2 \
  qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" run --plan "$tmp/p2.yaml" "${runargs[@]}" \
  --tokens-out "$tmp/a2.tok" --logits-out "$tmp/a2.logits" </dev/null
echo "   2 ranks under qemu: wall $(($(ms) - t0)) ms"
check "arm64 run 1 rank: same tokens as x86-64" cmp "$tmp/n1.tok" "$tmp/a1.tok"
check "arm64 run 2 ranks: same tokens as x86-64" cmp "$tmp/n1.tok" "$tmp/a2.tok"
check "arm64 run 2 ranks: logits bit-identical to arm64 1 rank" "$OUT/sp_logits_diff" "$tmp/a1.logits" "$tmp/a2.logits" 512
# The same bits on both architectures: every kernel adds in the order the
# scalar level defines (src/kernels/quant.c) and the plain C is built
# without fma contraction (CMakeLists.txt). (Before, the NEON dots summed in
# another order and aarch64 fused a*b+c in plain C: max |dlogit| 2.5e-4.)
check "arm64 vs x86-64 logits bit-identical (stories260K, F32)" "$OUT/sp_logits_diff" "$tmp/n1.logits" "$tmp/a1.logits" 512

# A mixed cluster: stage 0 on an x86-64 rank, stage 1 on an arm64 rank in
# one MPI job (MPMD), against the x86-64 single rank.
t0=$(ms)
check "mixed x86-64 + arm64 pipeline (mpiexec -n 1 x86 : -n 1 qemu arm64)" mpirun_bounded 300 \
  -n 1 "$NATIVE" run --plan "$tmp/p2.yaml" "${runargs[@]}" --tokens-out "$tmp/m2.tok" --logits-out "$tmp/m2.logits" \
  : -n 1 qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" run --plan "$tmp/p2.yaml" "${runargs[@]}" \
  --logits-out "$tmp/m2.logits" </dev/null
echo "   mixed pipeline: wall $(($(ms) - t0)) ms"
check "mixed pipeline: same tokens as x86-64 alone" cmp "$tmp/n1.tok" "$tmp/m2.tok"
check "mixed pipeline: logits bit-identical to x86-64 alone" "$OUT/sp_logits_diff" "$tmp/n1.logits" "$tmp/m2.logits" 512

# Every quant type and architecture: a prompt through `run` on 1 rank (its
# prefill takes the int8 tiles), then greedy decode; the arm64 rank must
# give the x86-64 tokens and bit-identical logits, and with MIXED=1 a
# 2-stage pipeline with its second stage (the second half of the layers and
# the head) on arm64 those of x86-64 alone, and with PLAIN=1 the arm64 rank
# at the plain NEON level too (qemu's CPU has SDOT, which the default level
# uses). Random-weight models: near-flat logits, so a last bit anywhere
# would soon change a token.
#   cross_model LABEL MODEL PROMPT N MIXED PLAIN
cross_model() {
  local label=$1 m=$2 p=$3 n=$4 mixed=$5 plain=$6 v last
  v=$(bin=$NATIVE model_vocab "$m")
  last=$(($("$NATIVE" inspect "$m" | sed -n 's/^ *block_count *\([0-9]*\).*/\1/p') - 1))
  write_plan "$tmp/x1.yaml" "$m" 128 1 1 f32 "0:0:$last"
  write_plan "$tmp/x2.yaml" "$m" 128 1 1 f32 "0:0:$((last / 2))" "1:$((last / 2 + 1)):$last"
  local args=(--prompt "$p" -n "$n" -q --ignore-eos) t0
  mpirun_bounded 120 -n 1 "$NATIVE" run --plan "$tmp/x1.yaml" "${args[@]}" \
    --tokens-out "$tmp/nx.tok" --logits-out "$tmp/nx.logits" </dev/null
  t0=$(ms)
  check "arm64 run $label (qemu)" mpirun_bounded 600 -n 1 qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" \
    run --plan "$tmp/x1.yaml" "${args[@]}" --tokens-out "$tmp/ax.tok" --logits-out "$tmp/ax.logits" </dev/null
  echo "   $label under qemu: wall $(($(ms) - t0)) ms"
  check "arm64 $label: same $(wc -w <"$tmp/nx.tok") token ids as x86-64" cmp "$tmp/nx.tok" "$tmp/ax.tok"
  check "arm64 $label: logits bit-identical to x86-64" "$OUT/sp_logits_diff" "$tmp/nx.logits" "$tmp/ax.logits" "$v"
  if [ "$plain" = 1 ]; then
    check "arm64 run $label, plain NEON (SHARDPIPE_SIMD=neon)" mpirun_bounded 600 -n 1 env SHARDPIPE_SIMD=neon \
      qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" run --plan "$tmp/x1.yaml" "${args[@]}" \
      --logits-out "$tmp/px.logits" </dev/null
    check "arm64 $label, plain NEON: logits bit-identical to x86-64" "$OUT/sp_logits_diff" "$tmp/nx.logits" \
      "$tmp/px.logits" "$v"
  fi
  [ "$mixed" = 1 ] || return 0
  check "mixed x86-64 + arm64 pipeline, $label" mpirun_bounded 600 \
    -n 1 "$NATIVE" run --plan "$tmp/x2.yaml" "${args[@]}" --tokens-out "$tmp/mx.tok" --logits-out "$tmp/mx.logits" \
    : -n 1 qemu-aarch64-static -L "$SYSROOT" "$OUT/shardpipe" run --plan "$tmp/x2.yaml" "${args[@]}" \
    --logits-out "$tmp/mx.logits" </dev/null
  check "mixed pipeline $label: logits bit-identical to x86-64 alone" "$OUT/sp_logits_diff" "$tmp/nx.logits" \
    "$tmp/mx.logits" "$v"
}

# The Q8_0 and Q4_0 models: a 20-token prompt and 32 generated.
for q in q8_0 q4_0; do
  # ../shared's file, else a stand-in written by synth (model_for, lib.sh)
  if ! qm=$(bin=$NATIVE model_for tiny-random-$q); then skip "arm64 $q: synth could not write a stand-in"; continue; fi
  cross_model "$q" "$qm" "The quick brown fox jumps over the lazy dog, and then it ran far away into the woods" 32 0 0
done

# Byte-level BPE with the arm64 PCRE2 and utf8proc: the same ids and pieces.
btext=$'Hello world! It\'s 12345 caf\xc3\xa9 e\xcc\x81 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\xa6\x99\n<|im_start|><think> \xff'
for v in llama3 qwen3; do
  bm=$shared/models/$v-tiny-Q4_K_M.gguf
  if [ ! -r "$bm" ]; then skip "arm64 $v tokenize: $bm is missing"; continue; fi
  "$NATIVE" tokenize -m "$bm" --special -v "$btext" >"$tmp/bn.txt"
  arm tokenize -m "$bm" --special -v "$btext" >"$tmp/ba.txt"
  check "arm64 tokenize ($v byte-level BPE): same $(wc -l <"$tmp/bn.txt") ids and pieces as x86-64" \
    cmp "$tmp/bn.txt" "$tmp/ba.txt"
done

# The K-quant mixes (Q2_K..Q6_K per tensor, llama, 512 tokens), Llama 3
# (rope_freqs, tied head, 128k BPE vocab; Q4_K_M), Qwen3 (NeoX RoPE, q/k
# head norms; Q4_K_M) and Qwen2 (q/k/v biases; Q8_0) from ../shared.
once="Once upon a time, there was a little robot."
for spec in "ktiny-Q4_K_M 1 1" "ktiny-Q2_K 1 0" "ktiny-Q3_K_M 0 0" "ktiny-Q5_K_M 0 0" "ktiny-Q6_K 0 0" \
            "llama3-tiny-Q4_K_M 0 0" "qwen3-tiny-Q4_K_M 1 0" "qwen2-tiny-Q8_0 0 0"; do
  set -- $spec
  xm=$shared/models/$1.gguf
  if [ ! -r "$xm" ]; then skip "arm64 $1: $xm is missing"; continue; fi
  case $1 in ktiny-*) xn=24 ;; *) xn=8 ;; esac
  cross_model "$1" "$xm" "$once" "$xn" "$2" "$3"
done

# IQ4_NL (every layer matrix and the output; rows of 9 and 19 blocks, so
# whole groups and a partial one), written by synth: no file needed.
if "$NATIVE" synth -o "$tmp/iq4nl.gguf" --shape tiny --type iq4_nl --output-type iq4_nl --dim 288 --ffn 608 \
     --layers 4 --vocab-from "$model" --seed 20 >/dev/null 2>&1; then
  cross_model IQ4_NL "$tmp/iq4nl.gguf" "$once" 24 1 1
else
  check "synth an IQ4_NL model" false
fi
finish
