#!/usr/bin/env bash
# demo.sh - the main job: build, then a real two-rank pipelined generation.
# Rank 0 runs the embedding and layers 0-2, rank 1 layers 3-4 and the head
# (partitions/stories260K-2stages.yaml); hidden states cross MPI between them.
#   scripts/demo.sh                 # the shared stories260K model, if present
#   scripts/demo.sh MODEL.gguf      # any llama GGUF with 5 layers (or edit the plan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
model=${1:-../shared/models/stories260K.gguf}
if [ ! -r "$model" ]; then
    echo "demo: $model is not here (it comes with ../shared); writing a random-weight model of the same" >&2
    echo "demo: shape instead - the pipeline is real, the text will be gibberish" >&2
    model=build/stories260K-random.gguf
    [ -r "$model" ] || build/shardpipe synth -o "$model" --shape stories260K --type f32
fi
mpiexec -n 2 build/shardpipe run --plan partitions/stories260K-2stages.yaml --model "$model" \
    --prompt "${PROMPT:-Once upon a time}" -n "${TOKENS:-64}"
