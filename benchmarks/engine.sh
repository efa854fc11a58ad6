#!/usr/bin/env bash
# engine.sh - the engine speed benchmark: TinyLlama-1.1B-shape random models
# in Q8_0 and Q4_0, each thread count in its own process (so peak RSS is that
# configuration's alone), every figure against this machine's own memory
# bandwidth and OpenBLAS sgemm. See benchmarks/README.md for what the
# figures mean.
#   benchmarks/engine.sh                        # threads 1,2, 5 runs each
#   THREADS=1,2,4 REPS=9 BUILD=build-x benchmarks/engine.sh
#   TYPES="q4_k_m q6_k" benchmarks/engine.sh     # the K-quant models
# Writes benchmarks/results/engine-<date>.json and prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
THREADS=${THREADS:-1,2}
REPS=${REPS:-5}
PROMPT=${PROMPT:-128}
GEN=${GEN:-64}
TYPES=${TYPES:-q8_0 q4_0}
SHARED=${SP_SHARED:-../shared}
OUT=benchmarks/out
RESULTS=benchmarks/results
SP=$BUILD/shardpipe

if [ ! -x "$SP" ]; then
  echo "engine.sh: building $SP" >&2
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target shardpipe >/dev/null
fi
mkdir -p "$OUT" "$RESULTS"

# The models (benchmarks/models.sh says which).
. benchmarks/models.sh
write_tinyllama_models "$SP" "$SHARED" "$OUT" "$TYPES"

stamp=$(date -u +%Y-%m-%dT%H%MZ)
json=$RESULTS/engine-$stamp.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
for t in $TYPES; do
  for th in ${THREADS//,/ }; do
    n=$((n + 1))
    echo "engine.sh: $t, $th thread(s)" >&2
    "$SP" bench engine -m "$OUT/tinyllama-$t.gguf" --threads "$th" --reps "$REPS" \
      --prompt-tokens "$PROMPT" --gen "$GEN" --json "$tmp/$n.json" >"$tmp/$n.txt"
  done
done

# One JSON document: each process's own result (environment included).
{
  printf '{\n"benchmark": "engine",\n"date": "%s",\n' "$stamp"
  printf '"command": "THREADS=%s REPS=%s PROMPT=%s GEN=%s TYPES=\\"%s\\" benchmarks/engine.sh",\n' "$THREADS" "$REPS" "$PROMPT" "$GEN" "$TYPES"
  printf '"results": [\n'
  for i in $(seq 1 "$n"); do
    cat "$tmp/$i.json"
    if [ "$i" -lt "$n" ]; then printf ',\n'; fi
  done
  printf ']\n}\n'
} >"$json"

# The models' descriptions, then one Markdown table: the header of the
# first run and the rows of all.
cat "$tmp"/*.txt | grep -E '^(model|weights) ' | awk '!seen[$0]++'
echo
grep -h '^| model' "$tmp/1.txt"
grep -h '^|---' "$tmp/1.txt"
for i in $(seq 1 "$n"); do grep -h '^| Q' "$tmp/$i.txt"; done
echo
echo "written: $json"
