#!/usr/bin/env bash
# packaging.sh - what a board installs: `cmake --install` puts the binary,
# the docs and the unit file in place and not models/; the systemd unit file
# parses and starts `serve` as issue 18 gives it; scripts/setup.sh asks only
# for build and run packages (the test extras are install-test-deps.sh's).
# Usage: bash packaging.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_packaging_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
build=$(dirname "$bin")

check "cmake --install into a prefix" bash -c "cmake --install '$build' --prefix '$tmp/p' >'$tmp/install.out' 2>&1"
check "installs the binary" test -x "$tmp/p/bin/shardpipe"
check "which runs" bash -c "'$tmp/p/bin/shardpipe' inspect '$src/models/stories260K.gguf' | grep -q '^runs: yes'"
check "installs the cluster guide" test -s "$tmp/p/share/doc/shardpipe/cluster-setup.md"
check "installs the unit file" test -s "$tmp/p/share/shardpipe/shardpipe-serve.service"
check "installs no model" bash -c "! find '$tmp/p' -name '*.gguf' | grep -q ."

unit=$src/packaging/shardpipe-serve.service
check "the unit starts serve under mpiexec with the plan's host file" \
    grep -Eq '^ExecStart=/usr/bin/mpiexec -f [^ ]+\.hosts -n [0-9]+ /usr/local/bin/shardpipe serve --plan [^ ]+\.yaml --port 8080$' "$unit"
check "the unit waits for the network" grep -q '^After=network-online.target' "$unit"
check "the unit names the interface for hydra and UCX" \
    bash -c "grep -q '^Environment=HYDRA_IFACE=' '$unit' && grep -q '^Environment=UCX_NET_DEVICES=' '$unit'"
if command -v systemd-analyze >/dev/null 2>&1; then
    # a unit file with a bad key or section makes verify print it
    systemd-analyze verify "$unit" >"$tmp/verify.out" 2>&1
    check "systemd-analyze verify finds nothing wrong in the unit" \
        bash -c "! grep -Ei 'unknown|invalid|ignoring|failed to parse' '$tmp/verify.out'"
else
    skip "no systemd-analyze: the unit file is not verified"
fi

# the build's packages only; each test extra once, in install-test-deps.sh
setup_pkgs=$(sed -n 's/^pkgs=(\(.*\))$/\1/p' "$src/scripts/setup.sh")
test_pkgs=$(sed -n 's/^pkgs=(\(.*\))$/\1/p' "$src/scripts/install-test-deps.sh")
check "setup.sh has a package list" test -n "$setup_pkgs"
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static python3-jinja2 iproute2 libcriterion-dev; do
    check "setup.sh does not install $p" bash -c "! grep -qw -- '$p' <<<'$setup_pkgs'"
    check "install-test-deps.sh installs $p" bash -c "grep -qw -- '$p' <<<'$test_pkgs'"
done
check "test.sh installs the test packages before building" \
    bash -c "grep -n 'scripts/install-test-deps.sh\|scripts/setup.sh' '$src/scripts/test.sh' | head -1 | grep -q install-test-deps"
finish
