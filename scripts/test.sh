#!/usr/bin/env bash
# test.sh - install dependencies, build, and run every test (ctest).
# The shared models are looked up in ../shared (or $SP_SHARED); tests that
# need them skip with a message where they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j1 "$@"
