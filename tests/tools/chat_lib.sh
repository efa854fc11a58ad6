# chat_lib.sh - helpers of the chat tests (sourced after lib.sh; needs $bin
# and $tmp): the servers they talk to (through serve's tests/tools/serve_lib.sh)
# and reading /metrics.
. "$src/tests/tools/serve_lib.sh"

# start_pair KEY FAST_MODEL SLOW_MODEL: the two servers of the chat tests,
# both with KEY: FAST_MODEL (stories260K) over 2 ranks at $fast_url,
# SLOW_MODEL (tiny-random-q4_0: long answers, for stopping them) on 1 rank
# at $slow_url; 1 (with the log) when one does not come up. stop_pair ends
# both (SIGTERM).
start_pair() {
    write_plan "$tmp/fast.yaml" "$2" 512 2 2 f32 "0:0:2" "1:3:4"
    write_plan "$tmp/slow.yaml" "$3" 2048 1 1 f32 "0:0:5"
    pair_started=1
    start_server fast 2 "$tmp/fast.yaml" --api-key "$1" || { cat "$fast_log"; return 1; }
    start_server slow 1 "$tmp/slow.yaml" --api-key "$1" || { cat "$slow_log"; return 1; }
}

stop_pair() {
    [ -n "${pair_started:-}" ] || return 0
    [ -n "${fast_pid:-}" ] && stop_server fast TERM
    [ -n "${slow_pid:-}" ] && stop_server slow TERM
    return 0
}

# metric URL KEY NAME: the value of an unlabelled Prometheus line of /metrics
metric() {
    curl -sf -H "Authorization: Bearer $2" "$1/metrics" | sed -n "s/^$3 //p"
}

# wait_metric URL KEY NAME VALUE SECONDS: until NAME == VALUE (0 if so)
wait_metric() {
    local i
    for i in $(seq 1 $(($5 * 10))); do
        [ "$(metric "$1" "$2" "$3")" = "$4" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_metric_above URL KEY NAME VALUE SECONDS: until NAME > VALUE (0 if so);
# the server counts a request's tokens when it ends, which may come just
# after the client has printed the answer's last bytes
wait_metric_above() {
    local i v
    for i in $(seq 1 $(($5 * 10))); do
        v=$(metric "$1" "$2" "$3")
        [ -n "$v" ] && [ "$v" -gt "$4" ] && return 0
        sleep 0.1
    done
    return 1
}
