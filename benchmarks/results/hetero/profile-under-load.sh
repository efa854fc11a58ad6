#!/usr/bin/env bash
# profile-under-load.sh - each emulated board's profile measured while the
# other boards are busy, as they are in a pipeline run.
#
# A board profiled alone has the machine's shared last-level cache, memory
# bandwidth and spare CPU time to itself; in a run, all four ranks compute at
# once (each stage is busy 60-95% of the time). So, for each board B in turn:
# the other boards each loop `shardpipe profile --quick --threads 1` (the
# same weight-streaming kernels decode runs) inside their own cgroup and
# namespace, at their own CPU quota, while B is profiled; then the loops are
# stopped. Needs root and the hetero network up (NETEMU_NAME=hetero
# benchmarks/netemu/netemu.sh up SPEC with the boards of
# benchmarks/specs/hetero-4boards.yaml).
#
#   benchmarks/results/hetero/profile-under-load.sh BUILD OUTDIR [PROFILE OPTIONS]
#
# e.g. --thorough: passes of 512 MiB and the median of 9, so that a figure
# spans many 10 ms CPU-quota periods (--quick's 160 MiB passes, median of 3,
# take 2-7 quota periods and vary by +-30% with where in a period they start).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:?usage: profile-under-load.sh BUILD OUTDIR}
OUT=${2:?usage: profile-under-load.sh BUILD OUTDIR}
shift 2
NETEMU="$ROOT/benchmarks/netemu/netemu.sh"
SP="$ROOT/$BUILD/shardpipe"
export NETEMU_NAME=${NETEMU_NAME:-hetero}
BOARDS=(pi5-a pi5-b pi4 pi3)
declare -A QUOTA=([pi5-a]=80 [pi5-b]=50 [pi4]=35 [pi3]=20)
mkdir -p "$OUT"

loops=()
stop_loops() {
  local p
  for p in "${loops[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  for p in "${loops[@]}"; do wait "$p" 2>/dev/null || true; done
  loops=()
}
trap stop_loops EXIT

for b in "${BOARDS[@]}"; do
  for o in "${BOARDS[@]}"; do
    [ "$o" = "$b" ] && continue
    # own process group, so that stop_loops ends exactly this loop and its child
    setsid bash -c "while :; do \"$NETEMU\" exec $o \"$SP\" profile --quick --threads 1 >/dev/null 2>&1; done" &
    loops+=($!)
  done
  sleep 2 # the loops are past start-up
  echo "== $b under load, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$NETEMU" exec "$b" "$SP" profile --quick --threads 1 "$@" --name "hetero-$b" \
    --note "emulated board $b: one 2-core EPYC VM process in a cgroup v1 CPU quota of ${QUOTA[$b]}% of a core (cfs_quota_us $((QUOTA[$b] * 100)) / period 10000), measured inside that cgroup while the three other emulated boards each looped \`shardpipe profile --quick --threads 1\` at their own quotas (benchmarks/results/hetero/profile-under-load.sh)" \
    -o "$OUT/$b.yaml"
  stop_loops
done
