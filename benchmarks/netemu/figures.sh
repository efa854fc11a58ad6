#!/usr/bin/env bash
# figures.sh - every pipeline figure quoted in benchmarks/results/README.md,
# one benchmarks/run per configuration (needs root for the emulated network).
#   BUILD=build benchmarks/netemu/figures.sh [OUTDIR]
# Takes about 45 minutes on a 2-core machine; then benchmarks/results/pipeline/README.md
# says how the report and plots are made.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-benchmarks/results/pipeline}
mkdir -p "$out"
run() { local name=$1; shift; echo "== $name (load $(cut -d' ' -f1-3 /proc/loadavg))"; benchmarks/run "$@" -o "$out/$name.json"; }
S=benchmarks/specs

# 1. the same 2-stage plan on loopback, wired LAN, one Wi-Fi board
run loopback-2boards $S/wired-2boards.yaml --set network.emulate=false --set name=loopback-2boards
run wired-2boards $S/wired-2boards.yaml
run wifi-2boards $S/wifi-2boards.yaml
# ... and on the wired LAN with MPICH/UCX defaults (rendezvous above UCX's threshold)
run wired-2boards-ucx-defaults $S/wired-2boards.yaml --set network.mpi_env={} --set name=wired-2boards-ucx-defaults
# 2. sequences in flight, loopback vs wired (one repetition each)
for k in 1 2 4; do
  mb=$((k < 2 ? k : 2))
  for net in loopback wired; do
    emu=$([ $net = wired ] && echo true || echo false)
    run $net-2boards-inflight$k $S/wired-2boards.yaml --set network.emulate=$emu --set workload.in_flight=$k \
      --set workload.micro_batches=$mb --set repetitions=1 --set warmup=0 --set name=$net-2boards-inflight$k
  done
done
# 3. scaling with the number of wired boards (even split, one repetition each)
for n in 1 3 4; do
  run wired-${n}boards $S/wired-2boards.yaml --set network.n_boards=$n --set network.boards=[] \
    --set workload.micro_batches=$n --set repetitions=1 --set warmup=0 --set name=wired-${n}boards
done
# 4. heterogeneous boards: even vs RAM-proportional split
run hetero-4boards-even $S/hetero-4boards.yaml --set name=hetero-4boards-even
run hetero-4boards-ram $S/hetero-4boards.yaml --set plan.split=ram-proportional --set name=hetero-4boards-ram
# 5. loopback vs wired vs Wi-Fi, interleaved (L W F L W F ...) so that all
#    three see the same machine load: one repetition each, 10 rounds; the
#    README quotes the median of each round's ratio to loopback
for i in 1 2 3 4 5 6 7 8 9 10; do
  run pair$i-loopback $S/wired-2boards.yaml --set network.emulate=false --set repetitions=1 --set warmup=0 --set name=pair-loopback
  run pair$i-wired $S/wired-2boards.yaml --set repetitions=1 --set warmup=0 --set name=pair-wired
  run pair$i-wifi $S/wifi-2boards.yaml --set repetitions=1 --set warmup=0 --set name=pair-wifi
done
benchmarks/netemu/paired.py "$out"/pair*.json | tee "$out/paired.md"
benchmarks/netemu/calibrate.sh | tee "$out/pingpong.md"
