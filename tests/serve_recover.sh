#!/usr/bin/env bash
# serve_recover.sh - issue #19: `shardpipe serve --cluster` keeps serving
# when a board dies. Three loopback boards, eight streaming clients per
# case, each with its own prompt and seed; in each case one rank of the
# running pipeline gets kill -9 or SIGSTOP, during prefill (as soon as every
# request is accepted) or during decode (after the first streamed text):
#  - every request completes (one finish, [DONE], no error event), and its
#    text's sha256 and token count equal the failure-free run's: no token
#    lost, none twice, the same tokens after the resume;
#  - the supervisor names the failed board (kill -9) or finds every board
#    answering its probe (SIGSTOP), re-plans, and prints a "recovered:" line
#    with the time to the next token;
#  - the failed board is planned back in once no request is open;
#  - the same clients against plain `mpiexec ... serve --plan` (not
#    fault-tolerant) on the supervisor's first plan get the same answers.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
serve_setup serve_recover "$src/models/stories260K.gguf"
recover_setup
client=(python3 "$src/tests/tools/recover_client.py")

check "serve --cluster starts on 3 boards" start_supervisor s
check "3 stages planned" wait_stages "$s_log" 3
"${client[@]}" --url "$s_url" --workdir "$s_wd" >"$tmp/base.json"
check "failure-free: 8 streams complete" python3 -c "
import json,sys; r=json.load(open('$tmp/base.json')); sys.exit(0 if all(c['complete'] for c in r['clients']) else 1)"

# fault, rank, moment
n=0
for case in "kill 0 decode" "kill 1 decode" "kill 2 decode" "kill 1 prefill" "stop 2 decode" "stop 1 prefill"; do
    set -- $case
    n=$((n + 1))
    before=$(grep -c "^shardpipe serve: recovered:" "$s_log")
    "${client[@]}" --url "$s_url" --workdir "$s_wd" --fault "$1" --rank "$2" --when "$3" >"$tmp/f$n.json"
    check "$case: every stream completes with the same tokens" same_answers "$tmp/base.json" "$tmp/f$n.json"
    check "$case: the supervisor recovered in-flight requests" \
        test "$(grep -c "^shardpipe serve: recovered:" "$s_log")" -gt "$before"
    python3 -c "import json; r=json.load(open('$tmp/f$n.json')); print('  longest pause in a stream %.2f s' % r['max_gap_s'])"
    grep "^shardpipe serve: recovered:" "$s_log" | tail -1
    check "$case: back to 3 stages once idle" wait_stages "$s_log" 3
done
check "kill -9 names the board" grep -q "board b[0-2] (rank [0-2]) failed" "$s_log"
check "SIGSTOP: detected by the progress timeout" grep -q "nothing back from the pipeline for [0-9]* s with [0-9]* requests\? in flight\|rank 0 silent" "$s_log"
check "a failed board comes back" grep -q "board b[0-2] is back" "$s_log"
check "re-planned on 2 boards meanwhile" grep -q "plan .*: 2 stages on" "$s_log"
kill -TERM "$s_pid"
wait "$s_pid"
check "SIGTERM: the supervisor exits 0" test $? -eq 0
check "no rank left behind" bash -c "sleep 0.5; ! pgrep -f -- '[-]-worker $s_wd/control.sock' >/dev/null"

# the plain mode, on the supervisor's first plan: the same answers
check "plain mpiexec serve on the same plan starts" start_server p 3 "$s_wd/plan-1.yaml"
"${client[@]}" --url "$p_url" --workdir "$s_wd" >"$tmp/plain.json"
check "plain serve: the same answers as supervised" same_answers "$tmp/base.json" "$tmp/plain.json"
stop_server p TERM
check "plain serve: SIGTERM exits 0" test $? -eq 0
finish
