#!/usr/bin/env bash
# network-cost.sh - what an emulated home network costs a 2-board pipeline,
# and whether the benchmark repeats (issue #5's figures), in one command:
#   BUILD=build benchmarks/netemu/network-cost.sh [OUTDIR] [ROUNDS]
# Needs root (network namespaces, see netemu.sh). About 25 minutes with the
# defaults on a 2-core machine.
#
# 1. ROUNDS interleaved rounds (default 4) of loopback / wired LAN / one
#    Wi-Fi board, same plan and workload, one repetition each, so that the
#    load drift of a shared machine hits the three alike; paired.py divides
#    each round's figure by the same round's loopback one. The workload keeps
#    enough sequences in flight to hide a hop: 16 sequences in 4 micro-batch
#    groups on 2 stages (a group's hidden states travel while the other
#    groups compute).
# 2. The wire types (f32, f16, q8_0) on the wired LAN and on Wi-Fi, one
#    repetition each, in the same rounds.
# 3. Repeatability: the wired benchmark as a user would run it (1 warm-up,
#    3 repetitions, the median kept), three times in a row; repeat.md gives
#    the three medians, their spread and the tokens' sha256.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-benchmarks/results/network-cost}
rounds=${2:-4}
mkdir -p "$out"
S=benchmarks/specs
W=(--set workload.sequences=16 --set workload.in_flight=16 --set workload.micro_batches=4
   --set workload.gen_tokens=64)
run() {
  local file=$1; shift
  echo "== $file (load $(cut -d' ' -f1-3 /proc/loadavg))"
  benchmarks/run "$@" -o "$out/$file.json"
}
one=(--set repetitions=1 --set warmup=0)

# warm the page cache and the model file once (not recorded)
benchmarks/run $S/wired-2boards.yaml --set network.emulate=false "${W[@]}" "${one[@]}" -o /tmp/network-cost-warmup.json

for i in $(seq 1 "$rounds"); do
  run pair$i-loopback $S/wired-2boards.yaml --set network.emulate=false "${W[@]}" "${one[@]}" --set name=pair-loopback
  run pair$i-wired $S/wired-2boards.yaml "${W[@]}" "${one[@]}" --set name=pair-wired
  run pair$i-wifi $S/wifi-2boards.yaml "${W[@]}" "${one[@]}" --set name=pair-wifi
  for wire in f16 q8_0; do
    run pair$i-wired-$wire $S/wired-2boards.yaml "${W[@]}" "${one[@]}" --set plan.wire=$wire --set name=pair-wired-$wire
    run pair$i-wifi-$wire $S/wifi-2boards.yaml "${W[@]}" "${one[@]}" --set plan.wire=$wire --set name=pair-wifi-$wire
  done
done
benchmarks/netemu/paired.py "$out"/pair*.json | tee "$out/paired.md"

for i in 1 2 3; do
  run repeat$i-wired $S/wired-2boards.yaml "${W[@]}" --set name=repeat-wired
done
python3 - "$out"/repeat*-wired.json <<'EOF' | tee "$out/repeat.md"
import json, sys
meds, shas = [], set()
print("| run | decode tok/s median (min-max of 3 repetitions) | runner's warning | tokens sha256 |")
print("|---|---|---|---|")
for f in sys.argv[1:]:
    d = json.load(open(f))
    s = d["summary"]["decode_tok_s"]
    meds.append(s["median"])
    shas.update(r["tokens_sha256"] for r in d["repetitions"])
    warn = "; ".join(d.get("warnings", [])) or "-"
    print(f"| {f.split('/')[-1]} | {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}) | {warn} | "
          f"{', '.join(sorted({r['tokens_sha256'][:12] for r in d['repetitions']}))} |")
spread = (max(meds) - min(meds)) / min(meds)
print(f"\nThe three medians spread by {100 * spread:.1f}% (max / min - 1; target <= 10%); "
      f"{'one' if len(shas) == 1 else len(shas)} token sha256 over all repetitions.")
EOF
