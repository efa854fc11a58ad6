#!/usr/bin/env bash
# fetch.sh - makes llama.cpp's prebuilt CPU libraries and our timing program
# (lcpp_bench.c beside this file) ready in a cache folder, for
# benchmarks/vs_llamacpp.sh and tests/bench_lcpp.sh. Nothing of llama.cpp
# enters the project: the libraries come from the npm package
# @node-llama-cpp/<os>-<arch>, the headers (llama.h, ggml*.h) from the git
# bundle inside the npm package node-llama-cpp of the same version, both
# fetched with `npm pack` (no install scripts run) into
#   $LCPP_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/shardpipe/llamacpp-<version>)
#     lib/       libllama*.so, libggml*.so (one libggml-cpu-<cpu>.so is chosen at run time)
#     include/   the headers
#     lcpp_bench-<hash of lcpp_bench.c> built with the system cc against them (rpath lib/)
# and reused from there. LCPP_VERSION picks the package version (default
# below; "latest" asks the registry).
# Prints "LCPP_BIN=<program>" and "LCPP_LIB=<lib dir>" on stdout. When it
# cannot (no npm, no registry, no such package for this machine, no cc),
# prints one line starting "SKIP:" with the reason and exits 3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${LCPP_VERSION:-3.22.1}

skip() { echo "SKIP: llama.cpp comparison not run: $*"; exit 3; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) plat=linux-x64 ;;
  Linux-aarch64) plat=linux-arm64 ;;
  *) skip "no prebuilt llama.cpp package for $(uname -s)-$(uname -m)" ;;
esac
command -v cc >/dev/null || skip "no C compiler (cc) to build lcpp_bench"
command -v git >/dev/null || skip "git is needed to read the headers from node-llama-cpp's git bundle"

if [ "$version" = latest ]; then
  command -v npm >/dev/null || skip "npm is not installed (LCPP_VERSION=latest asks the registry)"
  version=$(npm view "@node-llama-cpp/$plat" version 2>/dev/null) || skip "npm view @node-llama-cpp/$plat failed (no registry?)"
fi
cache=${LCPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shardpipe/llamacpp-$version}
# the program is named by its source's hash: worktrees with different
# lcpp_bench.c share the libraries without rebuilding each other's program
src_hash=$(sha256sum "$here/lcpp_bench.c" | cut -c1-12)
lib=$cache/lib inc=$cache/include bin=$cache/lcpp_bench-$src_hash

if [ ! -f "$lib/.complete" ] || [ ! -f "$inc/llama.h" ]; then
  command -v npm >/dev/null || skip "npm is not installed and $cache holds no libraries yet"
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/fetch.XXXXXX")
  trap 'rm -rf "$tmp"; rmdir "$cache" 2>/dev/null || true' EXIT
  echo "fetch.sh: npm pack @node-llama-cpp/$plat@$version node-llama-cpp@$version -> $cache" >&2
  if ! (cd "$tmp" && npm pack --silent "@node-llama-cpp/$plat@$version" "node-llama-cpp@$version") >"$tmp/npm.log" 2>&1; then
    tail -3 "$tmp/npm.log" >&2
    skip "npm pack of @node-llama-cpp/$plat@$version or node-llama-cpp@$version failed (no registry access?), see above"
  fi
  mkdir -p "$tmp/bins" "$tmp/src"
  tar xzf "$tmp"/node-llama-cpp-"$plat"-*.tgz -C "$tmp/bins" ||
    skip "the @node-llama-cpp/$plat tarball did not unpack"
  tar xzf "$tmp"/node-llama-cpp-"$version".tgz -C "$tmp/src" package/llama/gitRelease.bundle ||
    skip "node-llama-cpp@$version has no llama/gitRelease.bundle (the layout changed)"
  ls "$tmp/bins/package/bins/$plat"/libllama*.so >/dev/null 2>&1 ||
    skip "@node-llama-cpp/$plat@$version has no bins/$plat/libllama*.so (the layout changed)"
  # The headers only, out of the bundle's one commit.
  git init -q "$tmp/git"
  git -C "$tmp/git" fetch -q "$tmp/src/package/llama/gitRelease.bundle" 2>/dev/null ||
    skip "git could not read node-llama-cpp's gitRelease.bundle"
  mkdir -p "$tmp/inc"
  git -C "$tmp/git" archive FETCH_HEAD include/llama.h ggml/include | tar x -C "$tmp/inc" ||
    skip "the bundle has no include/llama.h or ggml/include"
  rm -rf "$lib" "$inc"
  mkdir -p "$inc"
  cp "$tmp/inc/include/llama.h" "$tmp/inc/ggml/include"/*.h "$inc/"
  cp -r "$tmp/bins/package/bins/$plat" "$lib"
  cp "$tmp/bins/package/bins/$plat/_nlcBuildMetadata.json" "$cache/build-metadata.json" 2>/dev/null || true
  echo "$version" >"$lib/.complete"
fi

if [ ! -x "$bin" ]; then
  # Link against the versioned sonames the package ships (libllama.vX.so etc.).
  libs=()
  for l in "$lib"/libllama*.so "$lib"/libggml*.so; do
    case $(basename "$l") in libllama-common*|libggml-cpu-*) continue ;; esac
    libs+=("-l:$(basename "$l")")
  done
  cc -O2 -std=c11 -Wall -Wextra -I"$inc" "$here/lcpp_bench.c" -o "$bin.$$.tmp" -L"$lib" "${libs[@]}" \
    -Wl,-rpath,"$lib" 2>"$cache/cc.$$.log" || { cat "$cache/cc.$$.log" >&2; skip "lcpp_bench.c did not build against llama.cpp $version's headers (API changed?), see above"; }
  mv "$bin.$$.tmp" "$bin"
fi
echo "LCPP_BIN=$bin"
echo "LCPP_LIB=$lib"
echo "LCPP_VERSION=$version"
