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
# chromium: the chat page's browser test; tmux: the terminal test of
# `shardpipe chat`; node and npm (the openai package and playwright-core are
# installed by their tests) from Debian only where no node is on the machine,
# since Debian's npm conflicts with a nodesource nodejs; clang and
# libclang-rt-14-dev: the libFuzzer targets of tests/fuzz (ctest entry fuzz)
pkgs=(libcriterion-dev python3 python3-jinja2 iproute2 procps curl chromium tmux gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static clang libclang-rt-14-dev)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
scripts/install-packages.sh "${pkgs[@]}"
