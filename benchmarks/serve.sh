#!/usr/bin/env bash
# serve.sh - `shardpipe serve` against `shardpipe run` (issue 18's benchmark).
# On 2 ranks (layers split evenly, 1 thread each), for 1, 4, 8 and 16
# concurrent streaming clients through HTTP, each with its own prompt: the
# aggregate decode tok/s and the time to first token p50/p99, against `run`
# with the same number of sequences in flight (--ignore-eos; the HTTP
# clients ask for the same token count, and random-weight models hardly
# ever sample EOS). Then a 10-turn chat (each turn re-sends the whole
# conversation) with and without the prompt cache: prompt tokens computed
# and time to first token per turn.
#   benchmarks/serve.sh                  (MODEL=path.gguf, default: the TinyLlama-shape
#                                         Q4_0 of benchmarks/out if present, else
#                                         ../shared/models/tiny-random-q8_0.gguf)
# Writes benchmarks/results/serve-<date>.json and prints a table. Figures on a
# machine shared with other work are indicative only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/shardpipe}
[ -x "$BIN" ] || scripts/setup.sh >/dev/null
MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
    MODEL=benchmarks/out/tinyllama-q4_0.gguf
    [ -r "$MODEL" ] || MODEL=../shared/models/tiny-random-q8_0.gguf
fi
MODEL=$(realpath "$MODEL")
GEN=${GEN:-128}
layers=$("$BIN" inspect "$MODEL" | sed -n 's/.*block_count[^0-9]*\([0-9]*\).*/\1/p' | head -1)
[ -n "$layers" ] || layers=$("$BIN" inspect "$MODEL" | sed -n 's/.*layers[^0-9]*\([0-9]*\).*/\1/p' | head -1)
half=$((layers / 2))
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. tests/tools/lib.sh
mkdir -p benchmarks/results
out=benchmarks/results/serve-$(date -u +%Y%m%d-%H%M).json

start() { # args... -> sets url once ready
    mpiexec -n 2 "$BIN" serve --threads 1 --port 0 "$@" </dev/null >"$tmp/srv.log" 2>&1 &
    srv=$!
    for _ in $(seq 1 600); do grep -q "ready:" "$tmp/srv.log" && break; sleep 0.1; done
    url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$tmp/srv.log" | head -1)
}
stop() { kill -TERM "$srv"; wait "$srv" || true; }

echo "{\"model\": \"$MODEL\", \"layers\": $layers, \"gen\": $GEN, \"commit\": \"$(git rev-parse --short HEAD)\", \"binary\": \"$BIN\"," >"$out"
echo " \"concurrency\": [" >>"$out"
printf '| clients | run decode tok/s | serve decode tok/s | serve/run | TTFT p50 (s) | TTFT p99 (s) |\n|---|---|---|---|---|---|\n'
sep=""
for n in 1 4 8 16; do
    mb=$((n < 2 ? 1 : 2))
    write_plan "$tmp/plan.yaml" "$MODEL" 512 "$n" "$mb" f32 "0:0:$((half - 1))" "1:$half:$((layers - 1))"
    for i in $(seq 0 $((n - 1))); do echo "{\"prompt\": \"Once upon a time $i\"}"; done >"$tmp/prompts.jsonl"
    mpiexec -n 2 "$BIN" run --threads 1 --plan "$tmp/plan.yaml" --prompts "$tmp/prompts.jsonl" -n "$GEN" --ignore-eos -q \
        -o /dev/null --summary-json "$tmp/run.json" </dev/null
    run_tok=$(python3 -c "import json; print(json.load(open('$tmp/run.json'))['decode_tok_s'])")
    start --plan "$tmp/plan.yaml"
    python3 benchmarks/serve_client.py concurrent "$url" "$n" "$GEN" >"$tmp/c.json"
    stop
    read -r srv p50 p99 < <(python3 -c "import json; o=json.load(open('$tmp/c.json')); print(o['decode_tok_s'], o['ttft_p50_s'], o['ttft_p99_s'])")
    printf '| %d | %.1f | %.1f | %.2f | %.3f | %.3f |\n' "$n" "$run_tok" "$srv" "$(echo "$srv $run_tok" | awk '{print $1 / $2}')" "$p50" "$p99"
    echo "$sep  {\"clients\": $n, \"run_decode_tok_s\": $run_tok, \"serve\": $(cat "$tmp/c.json")}" >>"$out"
    sep=","
done
echo " ]," >>"$out"

write_plan "$tmp/plan.yaml" "$MODEL" 2048 4 2 f32 "0:0:$((half - 1))" "1:$half:$((layers - 1))"
for mode in cache nocache; do
    extra=()
    [ $mode = nocache ] && extra=(--no-prompt-cache)
    start --plan "$tmp/plan.yaml" "${extra[@]}"
    python3 benchmarks/serve_client.py chat "$url" 10 32 >"$tmp/$mode.json"
    stop
done
echo " \"chat_10_turns\": {\"cache\": $(cat "$tmp/cache.json"), \"no_cache\": $(cat "$tmp/nocache.json")}}" >>"$out"
python3 - "$tmp/cache.json" "$tmp/nocache.json" <<'PY'
import json, sys
c, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print("\n10-turn chat, 32 tokens per answer:")
print("| turn | prompt tokens | computed with cache | TTFT cache (s) | TTFT no cache (s) |\n|---|---|---|---|---|")
for a, b in zip(c, n):
    print(f"| {a['turn']} | {a['prompt_tokens']} | {a['prompt_tokens'] - a['cached_tokens']} | {a['ttft_s']:.3f} | {b['ttft_s']:.3f} |")
pc = sum(a["prompt_tokens"] - a["cached_tokens"] for a in c)
pn = sum(b["prompt_tokens"] for b in n)
tc, tn = sum(a["ttft_s"] for a in c), sum(b["ttft_s"] for b in n)
print(f"prompt tokens computed: {pc} with the cache, {pn} without ({100 * (1 - pc / pn):.0f}% saved); "
      f"summed TTFT {tc:.2f} s vs {tn:.2f} s")
PY
echo "written: $out"
