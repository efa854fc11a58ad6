#!/usr/bin/env bash
# test.sh - install dependencies, build, and run every test (ctest).
# The shared models are looked up in ../shared (or $SP_SHARED); tests that
# need them skip with a message where they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
scripts/setup.sh
cd "${BUILD_DIR:-build}"
rc=0
ctest --output-on-failure -j1 "$@" || rc=$?
# ctest hides the output of tests that pass, so a check that skipped (shared
# models missing, no root, no arm64 sysroot) would go unseen: list them.
skips=$(grep -h '^SKIP' Testing/Temporary/LastTest.log 2>/dev/null | sort -u || true)
if [ -n "$skips" ]; then
  echo
  echo "== $(printf '%s\n' "$skips" | wc -l) check(s) SKIPPED, each with its reason:"
  printf '%s\n' "$skips"
fi
exit $rc
