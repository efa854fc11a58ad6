#!/usr/bin/env bash
# setup.sh - install shardpipe's build dependencies (Debian packages) if any
# is missing, then configure and build into ./build. Idempotent.
#   scripts/setup.sh            # install what is missing, build
#   BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

pkgs=(build-essential cmake pkg-config mpich libmpich-dev libopenblas-dev libyaml-dev libcriterion-dev gcc-aarch64-linux-gnu qemu-user-static)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "setup: need root to install: ${missing[*]}" >&2
      echo "setup: run as root, or: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
