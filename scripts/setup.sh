#!/usr/bin/env bash
# setup.sh - install shardpipe's build dependencies (Debian packages) if any
# is missing, then configure and build into ./build. Idempotent.
#   scripts/setup.sh            # install what is missing, build
#   BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

pkgs=(build-essential cmake pkg-config mpich libmpich-dev libopenblas-dev libyaml-dev libcriterion-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static iproute2 libpcre2-dev libutf8proc-dev libjansson-dev libxxhash-dev python3-jinja2 libmicrohttpd-dev curl)
scripts/install-packages.sh "${pkgs[@]}"

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
