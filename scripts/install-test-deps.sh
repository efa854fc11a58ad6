#!/usr/bin/env bash
# install-test-deps.sh - the Debian packages only the tests (and the
# cross-build checks) need, on top of what scripts/setup.sh installs to build
# and run: Criterion for the unit tests, python3 and jinja2 for the chat
# template differential test and the JSON checks of the shell tests,
# iproute2 for the emulated network (ip netns, tc), procps (pgrep, ps) for
# the shell tests that check no process is left, and the aarch64 cross
# compiler and qemu for the arm64 kernel checks. A board never needs these.
#   scripts/install-test-deps.sh        # scripts/test.sh runs it first
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(libcriterion-dev python3 python3-jinja2 iproute2 procps curl gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
scripts/install-packages.sh "${pkgs[@]}"
