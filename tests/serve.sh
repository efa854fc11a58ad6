#!/usr/bin/env bash
# serve.sh - `shardpipe serve` end to end: a real 2-rank mpiexec on
# 127.0.0.1 with stories260K and an API key, driven with curl.
#  - every endpoint, streaming and not, and the stream's text equals the
#    whole answer's for the same seed;
#  - stop strings, max_tokens, usage, finish_reason;
#  - 32 concurrent streaming clients: all complete, none lost or
#    duplicated, each text equals that prompt + seed sent alone;
#  - the prompt cache: a follow-up turn reuses the cached prefix and gives
#    the same text as without it;
#  - bad requests (malformed JSON, wrong types, unknown model, max_tokens
#    past the context, a 10 MB body, invalid UTF-8, a body that never
#    finishes, missing or wrong key) get the right 4xx and clear message,
#    and the server keeps serving;
#  - SIGTERM: exit 0 on every rank, no hydra "BAD TERMINATION".
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
model="$src/models/stories260K.gguf" # shipped in the repository
serve_setup serve "$model"

key=test-key-123
write_plan "$tmp/p2.yaml" "$model" 512 8 2 f32 "0:0:1" "1:2:4"
check "serve starts on 2 ranks and says ready" start_server s 2 "$tmp/p2.yaml" --api-key "$key" --client-timeout 2
U=$s_url
A=(-H "Authorization: Bearer $key")
post() { # endpoint body-file out-file -> HTTP code on stdout
    curl -s -o "$3" -w '%{http_code}' "${A[@]}" -H 'Content-Type: application/json' --data-binary "@$2" "$U$1"
}
body() { printf '%s' "$2" >"$tmp/$1.json"; }

# ---- endpoints ----
check "GET /health: ready" test "$(curl -s -o "$tmp/h.json" -w '%{http_code}' "$U/health")" = 200
check "/health body says ready" test "$(json_get "$tmp/h.json" 'o["status"]')" = ready
check "GET /v1/models lists stories260K" \
    test "$(curl -s "${A[@]}" "$U/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')" = stories260K

body c1 '{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}'
check "POST /v1/completions: 200" test "$(post /v1/completions "$tmp/c1.json" "$tmp/c1.out")" = 200
check "completion: text, finish_reason length, usage" python3 - "$tmp/c1.out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
c = o["choices"][0]
u = o["usage"]
print(repr(c["text"]), c["finish_reason"], u)
sys.exit(0 if o["object"] == "text_completion" and c["text"].startswith(", there was") and c["finish_reason"] == "length"
         and u["completion_tokens"] == 24 and u["prompt_tokens"] == 5 and u["total_tokens"] == 29 else 1)
PY
# the same text as `shardpipe generate` greedy
gen=$("$bin" generate -m "$model" -p "Once upon a time" -n 24 2>/dev/null | head -c 4000)
check "completion text equals shardpipe generate's" test "Once upon a time$(json_get "$tmp/c1.out" 'o["choices"][0]["text"]')" = "$gen"

body st '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stream": true}'
post /v1/completions "$tmp/st.json" "$tmp/st.out" >/dev/null
check "streamed completion: one finish, [DONE], same text" \
    test "$(sse_text "$tmp/st.out")" = "$(json_get "$tmp/c1.out" 'o["choices"][0]["text"]')"

body stop '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stop": ["Lily", "xyz"]}'
post /v1/completions "$tmp/stop.json" "$tmp/stop.out" >/dev/null
check "stop string: text ends before it, finish_reason stop" python3 - "$tmp/stop.out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["choices"][0]
print(repr(c["text"]), c["finish_reason"])
sys.exit(0 if c["text"] == ", there was a little girl named " and c["finish_reason"] == "stop" else 1)
PY
body stops '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stop": "Lily", "stream": true}'
post /v1/completions "$tmp/stops.json" "$tmp/stops.out" >/dev/null
check "stop string when streaming: nothing of it is sent" test "$(sse_text "$tmp/stops.out")" = ", there was a little girl named "

body chat '{"messages": [{"role": "system", "content": "A story."}, {"role": "user", "content": "Tell me about a cat"}], "max_completion_tokens": 30, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 7}'
check "POST /v1/chat/completions: 200" test "$(post /v1/chat/completions "$tmp/chat.json" "$tmp/chat.out")" = 200
check "chat: assistant message, finish_reason, usage" python3 - "$tmp/chat.out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
c = o["choices"][0]
print(repr(c["message"]["content"]), c["finish_reason"], o["usage"])
sys.exit(0 if o["object"] == "chat.completion" and c["message"]["role"] == "assistant" and c["message"]["content"]
         and c["finish_reason"] in ("stop", "length") and o["usage"]["completion_tokens"] >= 1 else 1)
PY
sed 's/}$/, "stream": true, "stream_options": {"include_usage": true}}/' "$tmp/chat.json" >"$tmp/chats.json"
post /v1/chat/completions "$tmp/chats.json" "$tmp/chats.out" >/dev/null
check "streamed chat (seed 7): same text as not streamed" \
    test "$(sse_text "$tmp/chats.out")" = "$(json_get "$tmp/chat.out" 'o["choices"][0]["message"]["content"]')"
check "streamed chat: usage chunk before [DONE]" grep -q '"choices":\[\],"usage":{"prompt_tokens"' "$tmp/chats.out"

# ---- 32 concurrent streaming clients vs each alone ----
for i in $(seq 1 32); do
    printf '{"prompt": "Once upon a time %d", "max_tokens": 40, "temperature": 0.9, "seed": %d, "stream": true}' \
        $((i % 7)) "$i" >"$tmp/cc$i.json"
    sed 's/, "stream": true//' "$tmp/cc$i.json" >"$tmp/ca$i.json"
done
t0=$(date +%s.%N)
for i in $(seq 1 32); do post /v1/completions "$tmp/cc$i.json" "$tmp/cc$i.out" >"$tmp/cc$i.code" & done
wait $(jobs -p | grep -v "^$s_pid$") 2>/dev/null
echo "32 concurrent streams took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s"
# each alone, one after the other (curl only: the comparison is one python run)
for i in $(seq 1 32); do post /v1/completions "$tmp/ca$i.json" "$tmp/ca$i.out" >/dev/null; done
python3 - "$tmp" >"$tmp/cc.result" <<'PY'
import json, sys
d = sys.argv[1]
def stream(path):
    text, fin, done = [], 0, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("data: [DONE]"): done = True
        elif line.startswith("data: "):
            for c in json.loads(line[6:])["choices"]:
                text.append(c["text"]); fin += c["finish_reason"] is not None
    return "".join(text), done and fin == 1
ok = same = 0
texts = set()
for i in range(1, 33):
    code = open(f"{d}/cc{i}.code").read().strip()
    t, complete = stream(f"{d}/cc{i}.out")
    ok += code == "200" and complete
    alone = json.load(open(f"{d}/ca{i}.out"))["choices"][0]["text"]
    same += t == alone
    texts.add(t)
print(ok, same, len(texts))
PY
read -r ok same distinct <"$tmp/cc.result"
check "32 concurrent streams: all complete once, with [DONE] ($ok/32)" test "$ok" -eq 32
check "32 concurrent streams: each text equals that prompt + seed alone ($same/32)" test "$same" -eq 32
check "concurrent texts differ by seed ($distinct distinct)" test "$distinct" -gt 16

# ---- prompt cache: the next turn of a chat ----
body t1 '{"messages": [{"role": "user", "content": "Once upon a time there was a dog named Max. Max liked to run in the park with his friend Tom."}], "max_tokens": 20, "temperature": 0}'
post /v1/chat/completions "$tmp/t1.json" "$tmp/t1.out" >/dev/null
reply=$(json_get "$tmp/t1.out" 'o["choices"][0]["message"]["content"]')
python3 - "$tmp/t1.json" "$reply" >"$tmp/t2.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
o["messages"] += [{"role": "assistant", "content": sys.argv[2]}, {"role": "user", "content": "What did Max do next?"}]
print(json.dumps(o))
PY
post /v1/chat/completions "$tmp/t2.json" "$tmp/t2.out" >/dev/null
cached=$(json_get "$tmp/t2.out" 'o["usage"]["prompt_tokens_details"]["cached_tokens"]')
prompt=$(json_get "$tmp/t2.out" 'o["usage"]["prompt_tokens"]')
echo "turn 2: $cached of $prompt prompt tokens from the cache"
check "prompt cache: turn 2 reuses turn 1's prefix (>= 30 tokens)" test "$cached" -ge 30

# ---- bad requests: the right 4xx, a clear message, and the server goes on ----
bad() { # name expected-code expected-substring curl-args...
    local name=$1 want=$2 text=$3
    shift 3
    local code
    code=$(curl -s -o "$tmp/bad.out" -w '%{http_code}' "$@")
    echo "$name: $code $(head -c 300 "$tmp/bad.out")"
    [ "$code" = "$want" ] && grep -q "$text" "$tmp/bad.out" && grep -q '"error":{"message"' "$tmp/bad.out"
}
C=/v1/completions
check "malformed JSON -> 400" bad json 400 "not valid JSON" "${A[@]}" --data-binary '{"prompt": "x",' "$U$C"
check "wrong type -> 400 naming max_tokens" bad type 400 '"param":"max_tokens"' "${A[@]}" -d '{"prompt": "x", "max_tokens": "ten"}' "$U$C"
check "temperature out of range -> 400" bad range 400 '"param":"temperature"' "${A[@]}" -d '{"prompt": "x", "temperature": 7}' "$U$C"
check "unsupported parameter -> 400 naming it" bad unsup 400 'unsupported parameter(s): logit_bias' "${A[@]}" -d '{"prompt": "x", "logit_bias": {}}' "$U$C"
check "n = 2 -> 400" bad n 400 '"param":"n"' "${A[@]}" -d '{"prompt": "x", "n": 2}' "$U$C"
check "unknown model -> 404" bad model 404 "model_not_found" "${A[@]}" -d '{"model": "gpt-4", "prompt": "x"}' "$U$C"
check "max_tokens past the context -> 400" bad ctx 400 "context_length_exceeded" "${A[@]}" -d '{"prompt": "x", "max_tokens": 600}' "$U$C"
check "no messages -> 400" bad nomsg 400 '"param":"messages"' "${A[@]}" -d '{"model": "stories260K"}' "$U/v1/chat/completions"
check "bad role -> 400" bad role 400 'messages\[0\].role' "${A[@]}" -d '{"messages": [{"role": "wizard", "content": "x"}]}' "$U/v1/chat/completions"
printf '{"prompt": "Once \xff\xfe upon"}' >"$tmp/utf8.json"
check "invalid UTF-8 -> 400" bad utf8 400 "not valid JSON" "${A[@]}" --data-binary "@$tmp/utf8.json" "$U$C"
head -c 10485760 /dev/zero | tr '\0' 'a' | sed 's/^/{"prompt": "/; s/$/"}/' >"$tmp/big.json"
check "10 MB body -> 413" bad big 413 "exceeds" "${A[@]}" --data-binary "@$tmp/big.json" "$U$C"
check "no API key -> 401" bad nokey 401 "invalid_api_key" -d '{"prompt": "x"}' "$U$C"
check "wrong API key -> 401" bad wrongkey 401 "invalid_api_key" -H "Authorization: Bearer test-key-124" -d '{"prompt": "x"}' "$U$C"
check "unknown path -> 404" bad path 404 "no such endpoint" "${A[@]}" "$U/v2/nothing"
check "GET on a POST endpoint -> 405" bad method 405 "not allowed" "${A[@]}" "$U$C"
# a body that never finishes: the server drops the connection after
# --client-timeout (2 s here) and serves others meanwhile
port=${U##*:}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt": ' "$key" >&3
body ok '{"prompt": "Once upon a time", "max_tokens": 4}'
check "a request while a slow client stalls its body: 200" test "$(post $C "$tmp/ok.json" "$tmp/ok.out")" = 200
t0=$(date +%s)
timeout 10 cat <&3 >"$tmp/slow.out"
waited=$(($(date +%s) - t0))
exec 3<&-
echo "the stalled body's connection was closed after ${waited} s: $(head -c 200 "$tmp/slow.out")"
check "a body that never finishes: connection closed within 10 s" test "$waited" -lt 10
check "after the bad requests: /health still ready" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200
check "after the bad requests: a completion still works" test "$(post $C "$tmp/ok.json" "$tmp/ok.out")" = 200

# ---- metrics ----
curl -s "${A[@]}" "$U/metrics" >"$tmp/metrics.txt"
for m in 'shardpipe_requests_total{endpoint="completions",code="200"}' 'shardpipe_requests_total{endpoint="completions",code="400"}' \
    shardpipe_generated_tokens_total shardpipe_prompt_tokens_cached_total shardpipe_queue_length \
    'shardpipe_time_to_first_token_seconds_bucket{le="+Inf"}' shardpipe_time_per_output_token_seconds_count \
    'shardpipe_stage_busy_ratio{stage="1"}'; do
    check "metrics: $m" grep -qF "$m" "$tmp/metrics.txt"
done
check "metrics: generated tokens counted (> 1000)" \
    test "$(sed -n 's/^shardpipe_generated_tokens_total //p' "$tmp/metrics.txt")" -gt 1000
check "metrics: stage 1 was busy some of the time" python3 -c "
import re,sys; v=float(re.search(r'stage_busy_ratio\{stage=\"1\"\} (\S+)', open('$tmp/metrics.txt').read()).group(1)); print(v); sys.exit(0 if 0 < v <= 1 else 1)"

# ---- SIGTERM: every rank exits 0 ----
stop_server s TERM
rc=$?
check "SIGTERM: serve exits 0" test "$rc" -eq 0
check "SIGTERM: no BAD TERMINATION" bash -c "! grep -q 'BAD TERMINATION' '$s_log'"
grep -v '^\s*$' "$s_log" | tail -3
finish
