#!/usr/bin/env bash
# vs_llamacpp.sh - shardpipe beside llama.cpp on the same GGUF files in the
# same run: ratios measured, not quoted. Each round runs, per model and thread
# count, shardpipe (`bench engine`, one timed run per prompt length) and then
# llama.cpp (benchmarks/lcpp/lcpp_bench, the same prompt lengths and decode),
# A B A B, so the machine's drift falls on both alike; each pair gives one
# ratio shardpipe / llama.cpp, and the table holds the medians of those
# ratios with their range. See benchmarks/README.md ("Beside llama.cpp").
#   benchmarks/vs_llamacpp.sh                      # q4_0 q8_0 q4_k_m q6_k, threads 1 2, 3 rounds
#   ROUNDS=5 THREADS="1" TYPES="q4_k_m" PROMPTS="128" benchmarks/vs_llamacpp.sh
#   MODELS="a.gguf b.gguf" benchmarks/vs_llamacpp.sh      # given files instead of synth's
# Other settings: BUILD (build) or SHARDPIPE (the binary), GEN (64 decoded tokens), BW_MIB (bench
# engine's bandwidth buffer, 128), GREEDY (8: greedy tokens compared once per
# model, 0 = off), RESULTS (benchmarks/results/vs-llamacpp), LCPP_VERSION,
# LCPP_CACHE (benchmarks/lcpp/fetch.sh), LCPP_POLL (unset: llama.cpp's own
# thread pool; P: lcpp_bench --poll P, a pool whose idle threads spin at level P).
# Writes RESULTS/vs-llamacpp-<UTC date>.json and prints a Markdown table.
# Without npm or the package it prints "SKIP: <why>" and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
TYPES=${TYPES:-q4_0 q8_0 q4_k_m q6_k}
PROMPTS=${PROMPTS:-128 512}
GEN=${GEN:-64}
BW_MIB=${BW_MIB:-128}
GREEDY=${GREEDY:-8}
SHARED=${SP_SHARED:-../shared}
OUT=benchmarks/out
RESULTS=${RESULTS:-benchmarks/results/vs-llamacpp}
SP=${SHARDPIPE:-$BUILD/shardpipe}
THREADS=${THREADS//,/ }
PROMPTS=${PROMPTS//,/ }
# A fixed prompt for the greedy agreement check (ids below 512, so any model takes it).
GREEDY_IDS=${GREEDY_IDS:-1 15 29 42 77 100 120 250 300 400 500}

if [ ! -x "$SP" ]; then
  echo "vs_llamacpp.sh: building $SP" >&2
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target shardpipe >/dev/null
fi

# llama.cpp: libraries, headers and our timing program, in a cache folder.
set +e
fetched=$(benchmarks/lcpp/fetch.sh)
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "$fetched" | grep '^SKIP' || echo "SKIP: llama.cpp comparison not run: benchmarks/lcpp/fetch.sh failed ($rc)"
  exit 0
fi
LCPP_BIN=$(echo "$fetched" | sed -n 's/^LCPP_BIN=//p')
LCPP_LIB=$(echo "$fetched" | sed -n 's/^LCPP_LIB=//p')
LCPP_VER=$(echo "$fetched" | sed -n 's/^LCPP_VERSION=//p')

if [ -n "${MODELS:-}" ]; then
  models=($MODELS)
else
  . benchmarks/models.sh
  models=()
  for t in $TYPES; do
    write_tinyllama_model "$SP" "$SHARED" "$OUT" "$t"
    models+=("$OUT/tinyllama-$t.gguf")
  done
fi
for m in "${models[@]}"; do
  [ -r "$m" ] || { echo "vs_llamacpp.sh: cannot read model $m" >&2; exit 1; }
done

mkdir -p "$RESULTS"
stamp=$(date -u +%Y-%m-%dT%H%MZ)
json=$RESULTS/vs-llamacpp-$stamp.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "vs_llamacpp.sh: llama.cpp $LCPP_VER ($LCPP_BIN); load average at start $load_start" >&2

plist=${PROMPTS// /,}
first_prompt=${PROMPTS%% *}
for r in $(seq 1 "$ROUNDS"); do
  for mi in "${!models[@]}"; do
    m=${models[$mi]}
    for th in $THREADS; do
      tag=$r-$mi-$th
      echo "vs_llamacpp.sh: round $r/$ROUNDS, $(basename "$m"), $th thread(s)" >&2
      cut -d' ' -f1 /proc/loadavg >"$tmp/load-$tag.txt" # the 1-minute load beside each pair
      # A: shardpipe, one process per prompt length; decode after the first.
      for p in $PROMPTS; do
        g=1
        [ "$p" = "$first_prompt" ] && g=$GEN
        "$SP" bench engine -m "$m" --threads "$th" --reps 1 --prompt-tokens "$p" --gen "$g" \
          --bw-mib "$BW_MIB" --json "$tmp/sp-$tag-$p.json" >/dev/null 2>"$tmp/err" ||
          { cat "$tmp/err" >&2; exit 1; }
      done
      # B: llama.cpp, the same lengths and decode.
      "$LCPP_BIN" -m "$m" --lib-dir "$LCPP_LIB" -t "$th" --prompt "$plist" --gen "$GEN" --reps 1 ${LCPP_POLL:+--poll "$LCPP_POLL"} \
        >"$tmp/lc-$tag.json" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Greedy agreement: the same prompt ids through both, first GREEDY tokens.
if [ "$GREEDY" -gt 0 ]; then
  for mi in "${!models[@]}"; do
    m=${models[$mi]}
    "$SP" generate -m "$m" --prompt-tokens "$GREEDY_IDS" -n "$GREEDY" --ignore-eos \
      --tokens-out "$tmp/gsp-$mi.txt" >/dev/null 2>&1 || echo "generate failed" >"$tmp/gsp-$mi.txt"
    "$LCPP_BIN" -m "$m" --lib-dir "$LCPP_LIB" -t 1 --prompt 8 --gen 1 --greedy-ids "${GREEDY_IDS// /,}" \
      --greedy-n "$GREEDY" >"$tmp/glc-$mi.json" 2>/dev/null || echo '{}' >"$tmp/glc-$mi.json"
  done
fi

cmd="${LCPP_POLL:+LCPP_POLL=$LCPP_POLL }ROUNDS=$ROUNDS THREADS=\"$THREADS\" PROMPTS=\"$PROMPTS\" GEN=$GEN BW_MIB=$BW_MIB"
[ -n "${MODELS:-}" ] && cmd+=" MODELS=\"$MODELS\"" || cmd+=" TYPES=\"$TYPES\""
python3 benchmarks/lcpp/summarize.py "$tmp" "$json" "$stamp" "$cmd benchmarks/vs_llamacpp.sh" \
  "$load_start" "$load_end" "$LCPP_VER" "$ROUNDS" "$THREADS" "$PROMPTS" "${models[@]}"
echo
echo "written: $json"
