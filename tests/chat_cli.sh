#!/usr/bin/env bash
# chat_cli.sh - `shardpipe template` and `shardpipe generate --chat`: the
# rendering on stdout, the errors naming --chat-template, and a chat prompt
# generating the same tokens as the same text given with -p.
# Usage: bash chat_cli.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_chat_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

check "template without -m" fails_with 2 "one of -m MODEL or --template-file FILE is required" "$bin" template
check "template of a missing file" fails_with 1 "$tmp/none.gguf" "$bin" template -m "$tmp/none.gguf"

m=$shared/models
if [ ! -r "$m/stories260K.gguf" ] || [ ! -r "$m/qwen2-tiny-Q8_0.gguf" ]; then
    skip "the shared models are missing under $m; only the error cases were checked"
    finish
    exit
fi
s=$m/stories260K.gguf

# ---- template ----
check "a model without a chat template" fails_with 1 "has no chat template (tokenizer.chat_template); choose a family with --chat-template NAME (one of: llama3, llama3.0, qwen3, qwen2.5, chatml, llama2, mistral, phi3, gemma)" \
    "$bin" template -m "$s"
check "an unknown family name" fails_with 1 "unknown chat template 'vicuna'; --chat-template takes one of: llama3," "$bin" template -m "$s" --chat-template vicuna
"$bin" template -m "$s" --chat-template llama2 --system sys --user hi >"$tmp/l2" 2>"$tmp/l2.err" || fail "template llama2 exited $?"
printf '<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nhi [/INST]' | cmp -s - "$tmp/l2" || fail "llama2 rendering: $(od -c "$tmp/l2" | head -5)"
grep -qF "chat template: llama2 (--chat-template); stops: </s>" "$tmp/l2.err" || fail "template stderr: $(cat "$tmp/l2.err")"
# the file's own template (Qwen3's), messages from a reference-style JSON object
cat >"$tmp/conv.json" <<'JSON'
{"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<think>\nr1\n</think>\n\nA1"}],
 "add_generation_prompt": false}
JSON
"$bin" template -m "$m/qwen2-tiny-Q8_0.gguf" --json "$tmp/conv.json" >"$tmp/q3" 2>"$tmp/q3.err" || fail "template qwen3 exited $?"
printf '<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1<|im_end|>\n' | cmp -s - "$tmp/q3" ||
    fail "qwen3 rendering: $(od -c "$tmp/q3" | head -5)"
grep -qF "chat template: qwen3 (tokenizer.chat_template)" "$tmp/q3.err" || fail "template stderr: $(cat "$tmp/q3.err")"
"$bin" template -m "$m/qwen2-tiny-Q8_0.gguf" --user x --no-think >"$tmp/nt" 2>/dev/null
printf '<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' | cmp -s - "$tmp/nt" || fail "--no-think: $(cat "$tmp/nt")"
printf '[{"role": "user", "content": 3}]' >"$tmp/bad.json"
check "bad JSON messages" fails_with 1 "bad.json: messages[0].content: expected a string" "$bin" template -m "$s" --chat-template chatml --json "$tmp/bad.json"
printf '[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]' >"$tmp/sys.json"
check "gemma refuses a system message" fails_with 1 "gemma chat template: system role not supported" "$bin" template -m "$s" --chat-template gemma --json "$tmp/sys.json"

printf '[{"role": "user", "content": "a\xff\xfeb"}]' >"$tmp/inv.json"
check "invalid UTF-8 in a JSON file" fails_with 1 "inv.json:1:31: unable to decode byte 0xff" "$bin" template -m "$s" --chat-template chatml --json "$tmp/inv.json"
printf '[{"role": "user", "content": "a\\u0000b"}]' >"$tmp/nul.json"
check "a NUL in a message" fails_with 1 "nul.json: messages[0].content contains a NUL character" "$bin" template -m "$s" --chat-template chatml --json "$tmp/nul.json"
# 8 MiB of content renders whole (+ 50 bytes of ChatML around it)
{ printf '[{"role": "user", "content": "'; head -c 8388608 /dev/zero | tr '\0' x; printf '"}]'; } >"$tmp/big.json"
n=$("$bin" template -m "$s" --chat-template chatml --json "$tmp/big.json" 2>/dev/null | wc -c)
[ "$n" -eq $((8388608 + 50)) ] || fail "8 MiB message: $n bytes rendered"

# ---- generate --chat ----
check "--system without --chat" fails_with 2 "--system and --chat-template go with --chat MESSAGE" "$bin" generate -m "$s" -p hi --system x
check "-p and --chat together" fails_with 2 "one of -p PROMPT, --chat MESSAGE or --prompt-tokens IDS" "$bin" generate -m "$s" -p hi --chat hi
check "--chat without a template" fails_with 1 "--chat-template NAME" "$bin" generate -m "$s" --chat hi
# A chat prompt is the rendering tokenized (the leading <s> text as the BOS id):
# greedy tokens equal those of -p with the same text.
for tmpl in llama2 chatml; do
    "$bin" template -m "$s" --chat-template $tmpl --system "You tell stories." --user "Once upon a time" >"$tmp/r" 2>/dev/null
    text=$(cat "$tmp/r"; printf x)
    text=${text%x}
    text=${text#<s>}
    "$bin" generate -m "$s" --chat "Once upon a time" --system "You tell stories." --chat-template $tmpl -n 24 \
        --tokens-out "$tmp/chat.tok" >"$tmp/chat.out" 2>"$tmp/chat.err" || fail "generate --chat ($tmpl) exited $?: $(cat "$tmp/chat.err")"
    "$bin" generate -m "$s" -p "$text" -n 24 --tokens-out "$tmp/plain.tok" >/dev/null 2>"$tmp/plain.err" ||
        fail "generate -p ($tmpl) exited $?"
    [ -s "$tmp/chat.tok" ] || fail "$tmpl: no tokens generated"
    cmp -s "$tmp/chat.tok" "$tmp/plain.tok" || fail "$tmpl: --chat tokens differ from -p with the rendered text"
    p1=$(grep -o 'prompt: [0-9]* tokens' "$tmp/chat.err") p2=$(grep -o 'prompt: [0-9]* tokens' "$tmp/plain.err")
    [ -n "$p1" ] && [ "$p1" = "$p2" ] || fail "$tmpl: prompt sizes '$p1' vs '$p2'"
    grep -qF "[INST]" "$tmp/chat.out" && fail "$tmpl: the prompt was echoed"
    echo "$tmpl: $p1, $(wc -l <"$tmp/chat.tok") tokens generated, same as -p"
done

finish
