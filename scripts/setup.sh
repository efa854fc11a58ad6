#!/usr/bin/env bash
# setup.sh - install shardpipe's build and run dependencies (Debian packages)
# if any is missing, then configure and build into ./build. Idempotent.
#   scripts/setup.sh            # install what is missing, build
#   BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# what building and running need, nothing else (a board installs these);
# the test and cross-build extras are in scripts/install-test-deps.sh
pkgs=(build-essential cmake pkg-config mpich libmpich-dev libopenblas-dev libyaml-dev libpcre2-dev libutf8proc-dev libjansson-dev libxxhash-dev libmicrohttpd-dev libcurl4-openssl-dev)
scripts/install-packages.sh "${pkgs[@]}"

# the Criterion tests are built when Criterion is installed (scripts/test.sh
# installs it); SHARDPIPE_TESTS=ON/OFF decides otherwise
tests=${SHARDPIPE_TESTS:-}
if [ -z "$tests" ]; then
  if dpkg-query -W -f='${Status}' libcriterion-dev 2>/dev/null | grep -q "install ok installed"; then tests=ON
  else
    tests=OFF
    echo "setup: libcriterion-dev is not installed, so the tests are not built (scripts/test.sh installs it)"
  fi
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSHARDPIPE_TESTS="$tests" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
