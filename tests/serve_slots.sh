#!/usr/bin/env bash
# serve_slots.sh - `shardpipe serve`'s slots under load, on a real 2-rank
# mpiexec with 2 sequence slots and room for 1 waiting request
# (tiny-random-q8_0: slow enough that answers of 2000 tokens take seconds):
#  - two long streams take both slots, a third request waits, a fourth
#    gets 429 with Retry-After;
#  - a client that disconnects mid-stream frees its slot at once: the
#    waiting request starts while the other stream still runs, and the
#    abandoned answer stops being generated;
#  - SIGINT: /health says degraded, new requests get 503, an answer in
#    flight finishes (within --grace), then every rank exits 0 without
#    hydra's BAD TERMINATION.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
model="$shared/models/tiny-random-q8_0.gguf"
serve_setup serve_slots "$model"
write_plan "$tmp/p.yaml" "$model" 2048 2 2 f32 "0:0:2" "1:3:5"
check "serve starts (2 slots, queue 1)" start_server s 2 "$tmp/p.yaml" --queue 1 --grace 60
U=$s_url
long='{"prompt": "Hello", "max_tokens": 2000, "temperature": 0, "stream": true}'
first_chunk() { # file: wait (<= 20 s) for the first data line
    local i
    for i in $(seq 1 200); do grep -q '^data: ' "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
gauge() { curl -s "$U/metrics" | sed -n "s/^$1 //p"; }

curl -sN "$U/v1/completions" -d "$long" >"$tmp/a.out" &
a=$!
curl -sN "$U/v1/completions" -d "$long" >"$tmp/b.out" &
b=$!
check "stream A starts" first_chunk "$tmp/a.out"
check "stream B starts" first_chunk "$tmp/b.out"
# C waits for a slot (the queue holds one); D finds the queue full
t_c=$(date +%s.%N)
curl -sN "$U/v1/completions" -d '{"prompt": "Hi", "max_tokens": 5, "temperature": 0, "stream": true}' >"$tmp/c.out" &
c=$!
for i in $(seq 1 50); do [ "$(gauge shardpipe_queue_length)" = 1 ] && break; sleep 0.1; done
check "C waits in the queue while A and B hold both slots" test "$(gauge shardpipe_queue_length)" = 1
code=$(curl -s -D "$tmp/d.head" -o "$tmp/d.out" -w '%{http_code}' "$U/v1/completions" -d '{"prompt": "Hi", "max_tokens": 5}')
echo "D: $code $(cat "$tmp/d.out")"
check "D: queue full -> 429 with Retry-After" bash -c "[ $code = 429 ] && grep -qi '^Retry-After:' '$tmp/d.head' && grep -q rate_limit_exceeded '$tmp/d.out'"
check "C has not started yet" bash -c "! grep -q '^data: ' '$tmp/c.out'"
# A's client goes away: its slot goes to C at once
kill "$a"
wait "$a" 2>/dev/null
t_kill=$(date +%s.%N)
check "C starts after A's client disconnects" first_chunk "$tmp/c.out"
wait "$c"
t_c_done=$(date +%s.%N)
secs=$(awk -v a="$t_kill" -v b="$t_c_done" 'BEGIN{printf "%.2f", b - a}')
echo "C finished ${secs} s after A's client left (B still streaming: $(kill -0 $b 2>/dev/null && echo yes || echo no))"
check "C done within 3 s of the disconnect, while B still runs" bash -c "kill -0 $b && awk 'BEGIN{exit !($secs < 3)}'"
check "C's stream is complete" sse_text "$tmp/c.out"
gen1=$(gauge shardpipe_generated_tokens_total)
sleep 1
gen2=$(gauge shardpipe_generated_tokens_total)
echo "generated tokens counted (finished requests only): $gen1 then $gen2; running $(gauge shardpipe_requests_running)"
check "A's answer was cut short (A + C counted, far below 2000 + 5)" bash -c "[ $gen1 -ge 6 ] && [ $gen1 -lt 1400 ]"
check "one request running (B)" test "$(gauge shardpipe_requests_running)" = 1

# SIGINT while F streams (a fresh answer of 2000 tokens, started now so
# that it is far from done): /health says degraded at once, new requests
# get 503, F finishes, exit 0
curl -sN "$U/v1/completions" -d '{"prompt": "Hello", "max_tokens": 2000, "temperature": 0, "stream": true}' >"$tmp/f.out" &
f=$!
check "stream F starts" first_chunk "$tmp/f.out"
kill -INT "$s_mpiexec"
for i in $(seq 1 100); do curl -s "$U/health" | grep -q degraded && break; sleep 0.02; done
check "during shutdown: /health says degraded" bash -c "curl -s '$U/health' | grep -q degraded"
code=$(curl -s -o "$tmp/e.out" -w '%{http_code}' "$U/v1/completions" -d '{"prompt": "Hi", "max_tokens": 5}')
echo "E during shutdown: $code $(cat "$tmp/e.out" 2>/dev/null)"
check "during shutdown: new request -> 503" test "$code" = 503
wait "$b" "$f"
f_done() { sse_text "$tmp/f.out" >/dev/null && grep -q '"finish_reason":"length"' "$tmp/f.out"; }
check "F finished its 2000 tokens after SIGINT (finish_reason length)" f_done
stop_server s 0 # no second SIGINT: hydra would take it as "kill now"
rc=$?
check "SIGINT: serve exits 0" test "$rc" -eq 0
check "no BAD TERMINATION" bash -c "! grep -q 'BAD TERMINATION' '$s_log'"
grep -v '^\s*$' "$s_log" | tail -3
finish
