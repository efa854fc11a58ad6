#!/usr/bin/env bash
# serve_chat.sh - chat requests go through the model's own chat template
# (chat.h): a 2-rank `shardpipe serve` of qwen2-tiny-Q8_0 (Qwen's template)
# answers a chat greedily with the same text and prompt token count as
# `shardpipe generate --chat` on one process, streaming and not; an unknown
# --chat-template name is refused before anything loads.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
model="$shared/models/qwen2-tiny-Q8_0.gguf"
serve_setup serve_chat "$model"
write_plan "$tmp/p.yaml" "$model" 512 2 2 f32 "0:0:1" "1:2:3"
check "serve starts" start_server s 2 "$tmp/p.yaml"
check "serve found the model's chat template" grep -q "chat template qwen3" "$s_log"
msg="What is 2+2?"
"$bin" generate -m "$model" --chat "$msg" -n 12 >"$tmp/gen.txt" 2>"$tmp/gen.err"
want=$(head -c -1 "$tmp/gen.txt")
want_prompt=$(sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$tmp/gen.err")
printf '{"messages": [{"role": "user", "content": "%s"}], "max_tokens": 12, "temperature": 0}' "$msg" >"$tmp/req.json"
curl -s "$s_url/v1/chat/completions" --data-binary "@$tmp/req.json" >"$tmp/out.json"
cat "$tmp/out.json"; echo
check "templated chat: same prompt tokens as generate --chat ($want_prompt)" \
    test "$(json_get "$tmp/out.json" 'o["usage"]["prompt_tokens"]')" = "$want_prompt"
check "templated chat: same greedy answer as generate --chat" \
    test "$(json_get "$tmp/out.json" 'o["choices"][0]["message"]["content"]')" = "$want"
sed 's/}$/, "stream": true}/' "$tmp/req.json" >"$tmp/reqs.json"
curl -sN "$s_url/v1/chat/completions" --data-binary "@$tmp/reqs.json" >"$tmp/outs.txt"
check "templated chat streamed: the same answer" test "$(sse_text "$tmp/outs.txt")" = "$want"
stop_server s TERM
check "serve exits 0" test $? -eq 0
bad_template() {
    mpirun_bounded 60 -n 2 "$bin" serve --plan "$tmp/p.yaml" --port 0 --chat-template nope </dev/null >"$tmp/bad.log" 2>&1
    [ $? -eq 1 ] && grep -q "unknown chat template 'nope'; --chat-template takes one of" "$tmp/bad.log"
}
check "serve --chat-template nope: exit 1 naming the families" bad_template
finish
