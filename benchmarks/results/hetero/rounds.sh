#!/usr/bin/env bash
# rounds.sh - interleaved rounds of plans on the emulated hetero boards.
#
#   benchmarks/results/hetero/rounds.sh BUILD OUTDIR ROUNDS TOKENS NAME=PLAN.yaml ...
#   FIRST=4 rounds.sh ...   numbers the rounds from 4 (more rounds into the same OUTDIR)
#   BOARDS=FILE rounds.sh ... the boards from FILE, a netemu.sh spec (one board a line:
#                             name address rate delay jitter loss cpu), instead of hetero-4boards'
#
# Brings the hetero network up once (by default the boards of
# benchmarks/specs/hetero-4boards.yaml: wired links, CPU quotas 80/50/35/20%),
# writes benchmarks/run's 8 prompts, runs one warm-up of the first plan, then
# ROUNDS rounds in which every plan runs once, the order rotated by one each
# round so that load drift hits all alike. Each run is
#   netemu.sh mpiexec -n STAGES -hosts (the plan's hosts in stage order) \
#       shardpipe run --plan PLAN --prompts ... -n TOKENS --ignore-eos
# with its summary JSON, tokens and trace in OUTDIR (trace in /tmp: large), and
# one line in OUTDIR/runs.tsv: round, plan, 1-minute load before and after,
# decode tok/s (the summary's, the same figure benchmarks/run reports), the
# tokens' sha256. benchmarks/run itself runs as many ranks as the spec has
# boards, so it cannot run a plan that leaves a board out; this does.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${1:?usage: rounds.sh BUILD OUTDIR ROUNDS TOKENS NAME=PLAN ...}
OUT=${2:?} ROUNDS=${3:?} TOKENS=${4:?}
shift 4
NETEMU="$ROOT/benchmarks/netemu/netemu.sh"
SP="$ROOT/$BUILD/shardpipe"
export NETEMU_NAME=${NETEMU_NAME:-hetero} NETEMU_SEED=1
TRACES=${TRACES:-/tmp/hetero-traces}
mkdir -p "$OUT" "$TRACES"
names=() plans=()
for a in "$@"; do names+=("${a%%=*}"); plans+=("${a#*=}"); done

tmp=$(mktemp -d /tmp/hetero-rounds-XXXXXX)
if [ -n "${BOARDS:-}" ]; then cp "$BOARDS" "$tmp/netemu.spec"; else cat >"$tmp/netemu.spec" <<'EOF'
# name address rate delay jitter loss cpu (benchmarks/specs/hetero-4boards.yaml, wired links)
pi5-a 198.18.0.1 1gbit 0.1ms 0.01ms 0 80
pi5-b 198.18.0.2 1gbit 0.1ms 0.01ms 0 50
pi4   198.18.0.3 1gbit 0.1ms 0.01ms 0 35
pi3   198.18.0.4 1gbit 0.1ms 0.01ms 0 20
EOF
fi
# benchmarks/run's prompts (write_prompts): 8 of about 16 tokens
python3 - "$tmp/prompts.jsonl" <<'EOF'
import json, sys
WORDS = ("the a little cat dog sat on mat and ran to house with red blue big small tree bird sun moon "
         "day night boy girl book old new good time there was one two three happy sad fish sea").split()
with open(sys.argv[1], "w") as f:
    for i in range(8):
        words = [WORDS[(i * 7 + k * 3 + k * k) % len(WORDS)] for k in range(15)]
        f.write(json.dumps({"prompt": " ".join(words).capitalize()}) + "\n")
EOF
bash "$NETEMU" up "$tmp/netemu.spec" >&2
trap 'bash "$NETEMU" down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

one() { # TAG PLAN
  local tag=$1 plan=$2 hosts n
  hosts=$(sed -n 's/^\s*host:\s*\(\S*\).*/\1/p' "$plan" | paste -sd,)
  n=$(grep -c '^\s*- rank:' "$plan")
  bash "$NETEMU" mpiexec -n "$n" -hosts "$hosts" "$SP" run --plan "$plan" --prompts "$tmp/prompts.jsonl" \
    -n "$TOKENS" --ignore-eos -q -o "$tmp/out.jsonl" --summary-json "$OUT/$tag.json" \
    --tokens-out "$tmp/$tag.tokens" --trace "$TRACES/$tag.trace.json"
}
load() { cut -d' ' -f1 /proc/loadavg; }

echo "warm-up ${names[0]}, load $(load)" >&2
one warmup "${plans[0]}"
[ -f "$OUT/runs.tsv" ] || printf 'round\tplan\tload_before\tload_after\tdecode_tok_s\ttokens_sha256\n' >"$OUT/runs.tsv"
n=${#names[@]}
FIRST=${FIRST:-1}
for ((r = FIRST; r < FIRST + ROUNDS; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(((k + r - 1) % n))
    tag="round$r-${names[$i]}"
    l0=$(load)
    one "$tag" "${plans[$i]}"
    l1=$(load)
    tok=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['decode_tok_s'], 2))" "$OUT/$tag.json")
    sha=$(sha256sum "$tmp/$tag.tokens" | cut -c1-12)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "${names[$i]}" "$l0" "$l1" "$tok" "$sha" | tee -a "$OUT/runs.tsv" >&2
  done
done
