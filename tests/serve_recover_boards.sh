#!/usr/bin/env bash
# serve_recover_boards.sh - issue #19, boards that are away: three loopback
# boards whose availability is a probe (`test ! -e down.BOARD`), as a
# board's power or network would be.
#  - a board down at start-up is named, the pipeline is planned on the
#    others and answers; when the board comes back it is named and planned
#    in, and the answers are the same on 2 and on 3 boards;
#  - when too few boards are left for the model (one board of three), the
#    clients in flight get an error and new requests a 503 that say how
#    many MB are short, /health says so (degraded); when a board comes
#    back, the supervisor plans again and serves;
#  - `serve --supervise --plan P` (no cluster file, no probe) relaunches the
#    fixed plan after a kill -9 and resumes with the same answers;
#  - too few boards at start-up: /health and a request's 503 say how many
#    MB are short (not "still loading"); it serves once a board is back;
#  - a launch whose MPI never starts (a board that went away after its
#    probe answered, where nothing says so) is given up after 2x
#    --fail-timeout, not --load-timeout's 300 s, and relaunched.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
serve_setup serve_recover_boards "$src/models/stories260K.gguf"
recover_setup
client=(python3 "$src/tests/tools/recover_client.py")

touch "$tmp/down.b2"
check "serve --cluster starts with b2 down" start_supervisor s
check "b2 named at start-up" grep -q "board b2 does not answer its probe at start-up" "$s_log"
check "planned on the 2 boards that are up" grep -q "plan .*: 2 stages on b0, b1" "$s_log"
"${client[@]}" --url "$s_url" --workdir "$s_wd" >"$tmp/two.json"
rm "$tmp/down.b2"
check "b2 named when it comes back" wait_for_line "$s_log" "board b2 is back"
check "b2 planned in: 3 stages" wait_stages "$s_log" 3
"${client[@]}" --url "$s_url" --workdir "$s_wd" >"$tmp/three.json"
check "the same answers on 2 and on 3 boards" same_answers "$tmp/two.json" "$tmp/three.json"

# b1 and b2 go away while rank 1 hangs: b0 alone cannot hold the model
touch "$tmp/down.b1" "$tmp/down.b2"
"${client[@]}" --url "$s_url" --workdir "$s_wd" --fault stop --rank 1 >"$tmp/down.json"
check "clients in flight get an error saying how much is short" python3 -c "
import json, sys
r = json.load(open('$tmp/down.json'))
errs = [c['error'] or '' for c in r['clients'] if not c['complete']]
print('  ' + (errs[0] if errs else 'no error'))
sys.exit(0 if errs and all('short' in e for e in errs) else 1)"
check "/health: 503 degraded" test "$(curl -s -o "$tmp/h.json" -w '%{http_code}' "$s_url/health")" = 503
check "/health says the model does not fit, MB short" \
    python3 -c "import json,sys; o=json.load(open('$tmp/h.json')); print('  ', o); sys.exit(0 if o['status']=='degraded' and 'short' in o['reason'] else 1)"
code=$(curl -s -o "$tmp/r503.json" -w '%{http_code}' "$s_url/v1/completions" -d '{"prompt": "Once", "max_tokens": 4}')
check "a new request: 503 with the numbers" bash -c "test $code = 503 && grep -q short '$tmp/r503.json'"
check "the log names the boards that do not answer" grep -q "boards b1, b2 do not answer a probe" "$s_log"
rm "$tmp/down.b1"
check "b1 named when it comes back" wait_for_line "$s_log" "board b1 is back"
check "serving again on b0, b1" wait_stages "$s_log" 2
code=$(curl -s -o "$tmp/r200.json" -w '%{http_code}' "$s_url/v1/completions" -d '{"prompt": "Once", "max_tokens": 4}')
check "a new request is answered" test "$code" = 200
kill -TERM "$s_pid"
wait "$s_pid"
check "SIGTERM: the supervisor exits 0" test $? -eq 0

# --supervise: a fixed plan (its hosts mere labels) relaunched as it is
write_plan "$tmp/fixed.yaml" "$model" 256 4 2 f32 "0:0:2" "1:3:5"
mkdir -p "$tmp/wd-f"
timeout -k 5 120 "$bin" serve --supervise --plan "$tmp/fixed.yaml" --port 0 --work-dir "$tmp/wd-f" --fail-timeout 2 \
    </dev/null >"$tmp/f.log" 2>&1 &
f_pid=$!
port=$(wait_listening "$tmp/f.log" "$f_pid" "^shardpipe serve: ready:")
check "serve --supervise --plan starts" test -n "$port"
"${client[@]}" --url "http://127.0.0.1:$port" --workdir "$tmp/wd-f" --clients 4 >"$tmp/fixed-base.json"
"${client[@]}" --url "http://127.0.0.1:$port" --workdir "$tmp/wd-f" --clients 4 --fault kill --rank 1 >"$tmp/fixed-kill.json"
check "--supervise: kill -9 of rank 1, the same answers after the relaunch" \
    same_answers "$tmp/fixed-base.json" "$tmp/fixed-kill.json"
check "--supervise: the plan relaunched as it is" grep -q "relaunching the plan as it is" "$tmp/f.log"
kill -TERM "$f_pid"
wait "$f_pid"
check "--supervise: SIGTERM exits 0" test $? -eq 0

# too few boards from the start: the same 503 and /health as later on
touch "$tmp/down.b1" "$tmp/down.b2"
mkdir -p "$tmp/wd-d"
timeout -k 5 120 "$bin" serve --cluster "$cluster" --model "$model" --sequences 8 --context 256 --port 0 \
    --work-dir "$tmp/wd-d" --fail-timeout 2 --probe "test ! -e $tmp/down.{board}" </dev/null >"$tmp/d.log" 2>&1 &
d_pid=$!
port=$(wait_listening "$tmp/d.log" "$d_pid" "the model does not fit")
code=$(curl -s -o "$tmp/d503.json" -w '%{http_code}' "http://127.0.0.1:$port/v1/completions" \
    -d '{"prompt": "Once", "max_tokens": 4}')
check "too few boards at start-up: a request gets 503 saying how much is short" \
    bash -c "test '$code' = 503 && grep -q short '$tmp/d503.json'"
check "and /health degraded, MB short (not loading)" bash -c "curl -s 'http://127.0.0.1:$port/health' |
    python3 -c \"import json,sys; o=json.load(sys.stdin); print('  ', o); sys.exit(0 if o['status']=='degraded' and 'short' in o['reason'] else 1)\""
rm "$tmp/down.b1" "$tmp/down.b2"
check "serves once boards are back" wait_stages "$tmp/d.log" 3
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/completions" -d '{"prompt": "Once", "max_tokens": 4}')
check "and answers" test "$code" = 200
kill -TERM "$d_pid"
wait "$d_pid"

# the first launch hangs as an mpiexec waiting for a board's proxy would
cat >"$tmp/mpiexec-hang.sh" <<EOF
[ -e "$tmp/hang" ] && rm -f "$tmp/hang" && exec sleep 600
exec mpiexec "\$@"
EOF
touch "$tmp/hang"
t0=$(date +%s)
check "MPI that never starts: serve --cluster serves all the same" start_supervisor h --mpiexec "sh $tmp/mpiexec-hang.sh"
check "given up after 2x --fail-timeout, in $(($(date +%s) - t0)) s" \
    grep -q "MPI did not start within 4 s (rank 0 never connected: a board or its link is down); every board answers" \
    "$h_log"
code=$(curl -s -o /dev/null -w '%{http_code}' "$h_url/v1/completions" -d '{"prompt": "Once", "max_tokens": 4}')
check "and answers" test "$code" = 200
kill -TERM "$h_pid"
wait "$h_pid"
finish
