#!/usr/bin/env bash
# bench_lcpp.sh - ctest entry: benchmarks/vs_llamacpp.sh end to end on a tiny
# model, one round, one thread: llama.cpp's prebuilt libraries fetched (or
# found in the cache, see benchmarks/lcpp/fetch.sh), our lcpp_bench built
# against them, both programs timed, and the JSON result holding positive
# figures for both and their ratios; the two programs' greedy tokens from the
# same prompt ids must agree on the first token (the argmax of the prompt's
# logits), the rest is reported. Skips, saying why, without npm or registry
# access (and no cached package), or without the model.
# Called as: bash bench_lcpp.sh BINARY SHARED SOURCE
set -euo pipefail
bin=$1 shared=$2 src=$3
model=$shared/models/ktiny-Q4_K_M.gguf
[ -r "$model" ] || model=$src/models/stories260K.gguf
if [ ! -r "$model" ]; then
  echo "SKIP: llama.cpp comparison test not run: neither $shared/models/ktiny-Q4_K_M.gguf nor $src/models/stories260K.gguf is there"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

SHARDPIPE=$bin RESULTS=$out MODELS=$model ROUNDS=1 THREADS=1 PROMPTS=128 GEN=16 BW_MIB=8 GREEDY=4 \
  bash "$src/benchmarks/vs_llamacpp.sh" | tee "$out/log"
if grep -q '^SKIP' "$out/log"; then
  exit 0
fi
json=$(ls "$out"/vs-llamacpp-*.json)
python3 - "$json" "$model" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}\n{json.dumps(r, indent=1)[:3000]}")
check(r["benchmark"] == "vs-llamacpp", "benchmark name")
check(len(r["load_average_start"].split()) == 3 and len(r["load_average_end"].split()) == 3, "load averages")
check(r["llamacpp"]["version"] and r["llamacpp"]["cpu_backend"].startswith("libggml-cpu-"),
      "llama.cpp version and the CPU backend it chose")
check(len(r["pairs"]) == 1 and len(r["summary"]) == 1, "one pair, one summary row")
p = r["pairs"][0]
check(p["model"] == sys.argv[2] and p["threads"] == 1, "pair model and threads")
for side in ("shardpipe", "llamacpp"):
    check(p[side]["decode_tok_s"] > 0 and p[side]["prompt_tok_s"]["128"] > 0, f"{side} tok/s positive")
check(abs(p["ratio"]["decode"] - p["shardpipe"]["decode_tok_s"] / p["llamacpp"]["decode_tok_s"]) < 1e-3 * p["ratio"]["decode"] + 1e-4,
      "decode ratio is shardpipe / llama.cpp")
check(p["ratio"]["prompt_128"] > 0, "prompt ratio positive")
s = r["summary"][0]
check(s["decode"]["ratio"]["median"] == p["ratio"]["decode"], "median of one ratio is that ratio")
g = r["greedy"][0]
check(len(g["shardpipe"]) == 4 and len(g["llamacpp"]) == 4, f"4 greedy tokens from each: {g}")
check(g["shardpipe"][0] == g["llamacpp"][0], f"first greedy token agrees: {g}")
print(f"ok: decode {p['shardpipe']['decode_tok_s']:.1f} / {p['llamacpp']['decode_tok_s']:.1f} tok/s, "
      f"greedy shardpipe {g['shardpipe']} llama.cpp {g['llamacpp']} (agreeing prefix {g['agreeing_prefix']})")
PY
