#!/usr/bin/env bash
# calibrate.sh - MPI ping-pong across the emulated links, measured vs set.
#   benchmarks/netemu/calibrate.sh > pingpong.md      (root; about 30 s)
# Each pair of boards gets its own network; latency is one way (half a round
# trip of 8 bytes), bandwidth is MPI payload in 256 KiB messages. The set
# latency is the sum of both boards' delays, the set rate the smaller one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/../out
mkdir -p "$out"
mpicc -O2 -o "$out/netemu-pingpong" "$here/pingpong.c"
export NETEMU_NAME=netemu-calibrate
trap 'bash "$here/netemu.sh" down' EXIT
echo "| link pair | set one-way latency | measured (p10-p90) | set rate | measured MPI bandwidth (min-max) | load |"
echo "|---|---|---|---|---|---|"
while IFS='|' read -r label a b lat rate; do
  spec=$(mktemp)
  printf 'x 198.18.0.1 %s\ny 198.18.0.2 %s\n' "$a" "$b" >"$spec"
  bash "$here/netemu.sh" up "$spec" </dev/null 2>/dev/null
  r=$(bash "$here/netemu.sh" mpiexec -n 2 "$out/netemu-pingpong" -l 200 -b 32 -r 3 </dev/null)
  bash "$here/netemu.sh" down </dev/null
  rm -f "$spec"
  echo "$r" | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(f\"| $label | $lat | {d['latency_us']/1000:.3f} ms ({d['latency_p10_us']/1000:.3f}-{d['latency_p90_us']/1000:.3f}) | $rate \"
      f\"| {d['bandwidth_mbit_s']:.0f} Mbit/s ({d['bandwidth_min_mbit_s']:.0f}-{d['bandwidth_max_mbit_s']:.0f}) | $(cut -d' ' -f1 /proc/loadavg) |\")"
done <<'PAIRS'
wired-wired|1gbit 0.1ms 0.01ms 0 0|1gbit 0.1ms 0.01ms 0 0|0.2 ms|1 Gbit/s
wifi-wired|100mbit 2.9ms 0.5ms 0 0|1gbit 0.1ms 0.01ms 0 0|3.0 ms|100 Mbit/s
200M-1ms-each|200mbit 1ms 0 0 0|200mbit 1ms 0 0 0|2.0 ms|200 Mbit/s
unshaped|0 0 0 0 0|0 0 0 0 0|0|unlimited
PAIRS
