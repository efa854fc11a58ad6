#!/usr/bin/env bash
# pipeline.sh - pipeline throughput on this machine (issue 3's benchmark).
# A TinyLlama-1.1B-shape random Q4_0 model (synthesized if missing) is run on
# even splits over 2 and 4 ranks, 1 thread each, with 1, 2, 4 and 8 sequences
# in flight (one sequence per micro-batch), over shared memory and over MPI's
# TCP transport. For each point, the median of REPS runs of:
#   decode tok/s (aggregate), the ideal tok/s given by the slowest stage's
#   measured compute time (tokens / max stage compute), their ratio (the
#   pipeline efficiency) and the bubble fraction (1 - mean stage busy share).
# Writes benchmarks/results/pipeline-<date>.json and prints a Markdown table.
#   benchmarks/pipeline.sh [REPS]        (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
BIN=${BIN:-build/shardpipe}
[ -x "$BIN" ] || scripts/setup.sh >/dev/null
mkdir -p benchmarks/out benchmarks/results
model=benchmarks/out/tinyllama-q4_0.gguf
if [ ! -r "$model" ]; then
    vocab=../shared/models/tiny-random-q8_0.gguf
    args=()
    [ -r "$vocab" ] && args=(--vocab-from "$vocab")
    "$BIN" synth -o "$model" --shape tinyllama-1.1b --type q4_0 --output-type q8_0 "${args[@]}"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/tools/lib.sh
GEN=${GEN:-32}
out=benchmarks/results/pipeline-$(date +%Y%m%d-%H%M).json
echo "[" >"$out"
first=1
for transport in shm tcp; do
    for ranks in 2 4; do
        case $ranks in
            2) stages=("0:0:10" "1:11:21") ;;
            4) stages=("0:0:5" "1:6:10" "2:11:15" "3:16:21") ;;
        esac
        for seqs in 1 2 4 8; do
            write_plan "$tmp/plan.yaml" "$PWD/$model" 128 "$seqs" "$seqs" f32 "${stages[@]}"
            sed -i 's/prefill_chunk: 32/prefill_chunk: 16/' "$tmp/plan.yaml"
            for i in $(seq 1 "$seqs"); do echo "{\"prompt\": \"Benchmark prompt number $i tells a story\"}"; done >"$tmp/p.jsonl"
            for rep in $(seq 1 "$REPS"); do
                env_args=()
                [ "$transport" = tcp ] && env_args=(env MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self)
                "${env_args[@]}" mpiexec -n "$ranks" "$BIN" run --plan "$tmp/plan.yaml" --prompts "$tmp/p.jsonl" \
                    -n "$GEN" --ignore-eos -q -o /dev/null --summary-json "$tmp/s$rep.json" </dev/null
            done
            python3 - "$transport" "$ranks" "$seqs" "$REPS" "$tmp" >>"$out" <<'PY'
import json, statistics, sys
transport, ranks, seqs, reps, tmp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
runs = []
for r in range(1, reps + 1):
    s = json.load(open(f"{tmp}/s{r}.json"))
    stages = [x for x in s["ranks"] if x["stage"] >= 0]
    tokens = s["prompt_tokens"] + s["generated_tokens"]
    slowest = max(x["compute_s"] for x in stages)
    wall = s["wall_s"]
    runs.append({
        "decode_tok_s": s["decode_tok_s"],
        "ideal_tok_s": tokens / slowest,
        "measured_tok_s": tokens / wall,
        "efficiency": slowest / wall,
        "bubble": 1 - statistics.mean(x["compute_s"] / x["wall_s"] for x in stages),
        "peak_rss_mib": [round(x["peak_rss_bytes"] / 2**20, 1) for x in s["ranks"]],
    })
med = {k: statistics.median(r[k] for r in runs) for k in ("decode_tok_s", "ideal_tok_s", "measured_tok_s", "efficiency", "bubble")}
print(json.dumps({"transport": transport, "ranks": ranks, "sequences": seqs, "median": med,
                  "min_decode": min(r["decode_tok_s"] for r in runs), "max_decode": max(r["decode_tok_s"] for r in runs),
                  "runs": runs}) + ",")
PY
            echo "done: $transport ranks=$ranks seqs=$seqs" >&2
        done
    done
done
sed -i '$ s/,$//' "$out"
echo "]" >>"$out"
python3 - "$out" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print("| transport | ranks | sequences | decode tok/s (median, min-max) | ideal tok/s | efficiency | bubble |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    m = r["median"]
    print(f"| {r['transport']} | {r['ranks']} | {r['sequences']} | {m['decode_tok_s']:.2f} ({r['min_decode']:.2f}-{r['max_decode']:.2f}) "
          f"| {m['ideal_tok_s']:.2f} | {m['efficiency']:.2f} | {m['bubble']:.2f} |")
PY
echo "wrote $out"
