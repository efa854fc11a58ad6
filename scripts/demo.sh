#!/usr/bin/env bash
# demo.sh - the main job: build, then a real two-rank pipelined generation.
# Rank 0 runs the embedding and layers 0-2, rank 1 layers 3-4 and the head
# (partitions/stories260K-2stages.yaml); hidden states cross MPI between them.
#   scripts/demo.sh                 # stories260K, shipped in models/ (MIT, see models/README.md)
#   scripts/demo.sh MODEL.gguf      # any llama GGUF with 5 layers (or edit the plan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
model=${1:-models/stories260K.gguf}
if [ ! -r "$model" ]; then
    echo "demo: cannot read $model; give the path of a llama GGUF model with 5 layers" >&2
    exit 1
fi
mpiexec -n 2 build/shardpipe run --plan partitions/stories260K-2stages.yaml --model "$model" \
    --prompt "${PROMPT:-Once upon a time}" -n "${TOKENS:-64}"
