#!/usr/bin/env bash
# chat_jinja.sh - differential test of the chat template renderers against
# jinja2 (tests/tools/chat_jinja_diff.py): 40 random conversations per
# template of each family, the bytes of `shardpipe template` equal to
# jinja2's rendering, refusals where the template raises.
# Usage: bash chat_jinja.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2 src=$3
if ! python3 -c 'import jinja2' 2>/dev/null; then
    echo "SKIP: chat_jinja needs python3 with jinja2 (Debian: python3-jinja2) as the reference renderer"
    exit 0
fi
if [ ! -r "$shared/models/llama3-tiny-Q4_K_M.gguf" ] || [ ! -r "$shared/models/qwen3-tiny-Q4_K_M.gguf" ]; then
    echo "SKIP: chat_jinja needs the Llama 3.2 and Qwen3 templates of $shared/models/{llama3,qwen3}-tiny-Q4_K_M.gguf"
    exit 0
fi
exec python3 "$src/tests/tools/chat_jinja_diff.py" "$bin" "$shared" 40 "${SP_CHAT_SEED:-20261207}"
