#!/usr/bin/env bash
# netemu.sh - the emulated network of benchmarks/netemu: two boards (network
# namespaces at 198.18.0.1 and .2, the only addresses used) joined by the
# userspace switch, each link 200 Mbit/s with a 1 ms one-way delay; an MPI
# ping-pong between them must see a 2 ms one-way latency (its fastest tenth
# of round trips: load only ever adds latency, so the lower decile is the
# emulated delay plus a little; it must be 0.9x to 1.6x the setting) and 200
# Mbit/s within 25%. Needs root (namespaces, TAP devices); skips loudly
# otherwise.
# Usage: bash netemu.sh SHARDPIPE SHARED_DIR SOURCE_DIR
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
. "$src/tests/tools/lib.sh"

. "$src/tests/tools/netemu_lib.sh"
netemu_can_run mpicc mpiexec || exit 0

tmp=$(mktemp -d)
export NETEMU_NAME=netemu-test NETEMU_SWITCH=$tmp/switch
netemu=$src/benchmarks/netemu/netemu.sh
trap 'bash "$netemu" down; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

cat >"$tmp/spec" <<'EOF'
# name address    rate    delay jitter loss cpu
a      198.18.0.1 200mbit 1ms   0      0    0
b      198.18.0.2 200mbit 1ms   0      0    0
EOF
mpicc -O2 -o "$tmp/pingpong" "$src/benchmarks/netemu/pingpong.c"
check "network up" bash "$netemu" up "$tmp/spec"
check "board namespaces exist" bash -c "ip netns list | grep -q '^netemu-test-a' && ip netns list | grep -q '^netemu-test-b'"
check "board a has only 198.18.0.1 on sp0" \
    bash -c "ip netns exec netemu-test-a ip -4 -o addr show | awk '{print \$2, \$4}' | sort | tr '\n' ' ' | grep -qx 'lo 127.0.0.1/8 sp0 198.18.0.1/24 '"

# A loaded machine only makes the ping-pong slower than set (the ranks and
# the switch wait for a core), so a result out of range is measured again,
# up to 3 times; a broken emulation is out of range every time.
within() { awk -v m="$1" -v s="$2" 'BEGIN { exit !(m != "" && m >= 0.75 * s && m <= 1.25 * s) }'; }
delay_ok() { awk -v m="$1" -v s="$2" 'BEGIN { exit !(m != "" && m >= 0.9 * s && m <= 1.6 * s) }'; }
for attempt in 1 2 3; do
    out=$(timeout -k 3 12 bash "$netemu" mpiexec -n 2 "$tmp/pingpong" -l 100 -b 16 -r 3)
    echo "ping-pong (attempt $attempt, load $(cut -d' ' -f1 /proc/loadavg)): $out"
    lat=$(echo "$out" | sed -n 's/.*"latency_p10_us": \([0-9.]*\).*/\1/p')
    bw=$(echo "$out" | sed -n 's/.*"bandwidth_mbit_s": \([0-9.]*\).*/\1/p')
    delay_ok "$lat" 2000 && within "$bw" 200 && break
done
check "one-way latency (p10) ${lat:-?} us is 0.9-1.6 x 2000 us" delay_ok "$lat" 2000
check "bandwidth ${bw:-?} Mbit/s is 200 Mbit/s +-25%" within "$bw" 200

bash "$netemu" down
check "down removes the namespaces" bash -c "! ip netns list | grep -q '^netemu-test-'"
check "down removes the cgroups" test ! -e /sys/fs/cgroup/cpu/shardpipe-netemu-test
check "down stops the switch" bash -c "! pgrep -f -- '--ready /run/shardpipe-netemu-tes[t]/ready' >/dev/null"
check "down is idempotent" bash "$netemu" down
finish
