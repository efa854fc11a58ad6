#!/usr/bin/env bash
# serve_recover_netemu.sh - issue #19's fault matrix on the emulated network
# (benchmarks/netemu: three boards a, b, c in network namespaces on a
# userspace switch, 1 Gbit/s, 0.1 ms each). `shardpipe serve --cluster`
# runs in the control namespace, launches the pipeline over the emulated
# network and probes a board with a 1-rank mpiexec on it (so a probe
# crosses the board's link). Eight streaming clients per case, each its own
# prompt (168 tokens) and seed, 64 tokens each; the cases:
#   - the link of a rank's board taken down (ip link set sp0 down in its
#     namespace) during decode, and during prefill;
#   - kill -9 of a rank during decode, and during prefill;
#   - SIGSTOP of a rank, during decode or prefill;
#   - in the first case the link flaps: it comes back, answers a probe and
#     drops again, so the relaunch that plans the board back in cannot
#     start MPI; the supervisor names the board at once (its hydra proxy
#     cannot connect back) and plans without it, and 8 clients sent
#     meanwhile get the failure-free answers.
# The rank and the moment of each case are drawn from a seed printed at the
# start (SP_RECOVER_SEED=N repeats them): in decode, after a random number
# of the streamed text chunks; in prefill, a random part of the failure-free
# run's prefill after every request is accepted. For each case:
#   - every stream completes with the sha256 and token count of the
#     failure-free run: no token lost, none twice, the same tokens;
#   - the fault hit the phase it was meant for (no text yet in prefill);
#   - the supervisor names the board (the link's: its probe fails; kill -9:
#     the job names the rank) and plans on the two others, or (SIGSTOP)
#     finds every board answering and relaunches on the same three;
#   - the board is planned back in once its link is up (brought up while
#     the answers still stream) and no request is open;
#   - the time from the failure to the next token (the supervisor's
#     `recovered:` line) is printed, then its median and max, with the load.
# Needs root; skips loudly otherwise.
# Usage: bash serve_recover_netemu.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
. "$src/tests/tools/serve_lib.sh"
. "$src/tests/tools/netemu_lib.sh"
netemu_can_run mpiexec timeout python3 curl || exit 0

tmp=$(mktemp -d /tmp/sp_recnet_XXXXXX)
export NETEMU_NAME=netemu-rec NETEMU_SWITCH=$tmp/switch
netemu=$src/benchmarks/netemu/netemu.sh
s_pid=""
cleanup() {
    [ -n "$s_pid" ] && kill -TERM "$s_pid" 2>/dev/null && wait "$s_pid" 2>/dev/null
    bash "$netemu" down
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bin=$(realpath "$bin")
t_start=$(date +%s)
seed=${SP_RECOVER_SEED:-$(($(date +%s%N) / 1000 % 100000))}
echo "moments and ranks drawn with seed $seed (SP_RECOVER_SEED=$seed repeats them); load $(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$tmp/spec" <<'EOF'
# name address    rate  delay jitter loss cpu
a      198.18.0.1 1gbit 0.1ms 0      0    0
b      198.18.0.2 1gbit 0.1ms 0      0    0
c      198.18.0.3 1gbit 0.1ms 0      0    0
EOF
check "network up" bash "$netemu" up "$tmp/spec"
recover_setup a b c
ctl=(nsenter --net="/var/run/netns/$NETEMU_NAME-ctl")
sv_wrap=("${ctl[@]}")
# a probe that answers only when mpiexec reaches the board and its proxy
# calls back over the board's link (a dead link makes hydra wait forever);
# with $tmp/flap.BOARD the link drops again right after it answered
cat >"$tmp/probe.sh" <<EOF
timeout 3 bash $netemu mpiexec -hosts "\$1" -n 1 true || exit 1
[ -e "$tmp/flap.\$1" ] || exit 0
rm -f "$tmp/flap.\$1"
ip netns exec "$NETEMU_NAME-\$1" ip link set sp0 down
EOF
sv_probe="sh $tmp/probe.sh {host}"
# --no-prompt-cache: every run prefills its prompts whole, so "prefill" is
# the same phase in every case
check "serve --cluster starts on the emulated boards" start_supervisor s --mpiexec "bash $netemu mpiexec" \
    --no-prompt-cache
check "3 stages planned on a, b, c" wait_stages "$s_log" 3
if [ $failed -gt 0 ]; then
    sed 's/^/  | /' "$s_log" | tail -30
    finish
    exit
fi
# prompts of 168 tokens: each request's own prefill is long next to the
# spread of the moments the 8 requests are accepted (under load too)
story="a little girl named Lily went to the park with her mother. They saw a big dog and a small cat playing in the sun, and the dog ran to the tree."
client=("${ctl[@]}" python3 "$src/tests/tools/recover_client.py" --url "$s_url" --workdir "$s_wd" --max-tokens 64
    --prompt "Once upon a time %d, $story Then $story Then $story")
"${client[@]}" >"$tmp/base.json"
check "failure-free: 8 streams complete" python3 -c "
import json,sys; r=json.load(open('$tmp/base.json')); sys.exit(0 if all(c['complete'] for c in r['clients']) else 1)"
read -r base_chunks base_prefill < <(json_get "$tmp/base.json" "'%d %.3f' % (o['chunks'], o['prefill_s'])")
echo "failure-free run: prefill ${base_prefill} s, ${base_chunks} text chunks"

# moment N KIND: the case's rank and moment, from the seed and the case's number
moment() {
    python3 -c "
import random; r = random.Random('$seed-$1')
rank = r.randrange(3)
print(rank, r.randint(0, int(0.5 * $base_chunks)) if '$2' == 'decode' else '%.3f' % (r.uniform(0, 0.5) * $base_prefill))"
}
# the board of rank R in the current plan (its host file)
board_of_rank() {
    local plan
    plan=$(grep "^shardpipe serve: plan " "$s_log" | tail -1 | sed 's/^shardpipe serve: plan \(.*\)\.yaml: .*/\1/')
    sed -n "$(($1 + 1))s/:.*//p" "$plan.hosts"
}
# since N: the supervisor's lines after line N
since() { tail -n +"$(($1 + 1))" "$s_log"; }
# after N RE: up to 40 s for a line matching RE after line N
after() {
    local i
    for i in $(seq 1 400); do
        since "$1" | grep -q "$2" && return 0
        sleep 0.1
    done
    return 1
}

: >"$tmp/figures.jsonl"
n=0
stop_when=$(python3 -c "import random; print(random.Random('$seed-stop').choice(['decode', 'prefill']))")
for case in "link decode" "link prefill" "kill decode" "kill prefill" "stop $stop_when"; do
    set -- $case
    fault=$1 when=$2
    n=$((n + 1))
    read -r rank at < <(moment $n "$when")
    board=$(board_of_rank "$rank")
    others=$(echo a b c | tr ' ' '\n' | grep -vx "$board" | paste -sd, | sed 's/,/, /')
    if [ "$when" = decode ]; then
        how="$at text chunks after every stream has text"
        mom=(--when decode --after "$at")
    else
        how="$at s after every request is accepted"
        mom=(--when prefill --delay "$at")
    fi
    label="$fault rank $rank (board $board) in $when, $how"
    echo "case $n (at $(($(date +%s) - t_start)) s): $label"
    mark=$(wc -l <"$s_log")
    if [ "$fault" = link ]; then
        "${client[@]}" "${mom[@]}" --fault cmd --cmd "ip netns exec $NETEMU_NAME-$board ip link set sp0 down" \
            >"$tmp/c$n.json" &
        c_pid=$!
        # the link comes back once the supervisor has planned without the
        # board, while the answers still stream
        after "$mark" "^shardpipe serve: plan "
        [ $n = 1 ] && touch "$tmp/flap.$board"
        ip netns exec "$NETEMU_NAME-$board" ip link set sp0 up
        wait "$c_pid"
    else
        "${client[@]}" "${mom[@]}" --fault "$fault" --rank "$rank" >"$tmp/c$n.json"
    fi
    same=no
    check "case $n: every stream completes with the same tokens" same_answers "$tmp/base.json" "$tmp/c$n.json" &&
        same=yes
    read -r chunks waiting < <(json_get "$tmp/c$n.json" "'%s %s' % (o['chunks_at_fault'], o['in_prefill_at_fault'])")
    if [ "$when" = prefill ]; then
        # requests are accepted one after the other and the first ones
        # start at once, so an early one may have text by then
        check "case $n: the fault hit the prefill ($waiting of 8 streams without text yet)" test "$waiting" -ge 4
    else
        check "case $n: the fault hit the decode (every stream had text, $chunks chunks in all)" test "$waiting" = 0
    fi
    case $fault in
    link)
        check "case $n: the supervisor names board $board" \
            grep -q ": board $board does not answer a probe$" <(since "$mark")
        check "case $n: and plans on the two others ($others)" \
            grep -q "^shardpipe serve: plan .*: 2 stages on $others$" <(since "$mark")
        ;;
    kill)
        check "case $n: the supervisor names board $board (rank $rank)" \
            grep -q ": board $board (rank $rank) failed;" <(since "$mark")
        check "case $n: and plans on the two others ($others)" \
            grep -q "^shardpipe serve: plan .*: 2 stages on $others$" <(since "$mark")
        ;;
    stop)
        check "case $n: every board answers: relaunched on the same boards" \
            grep -q "every board answers its probe: relaunching on the same boards" <(since "$mark")
        ;;
    esac
    line=$(since "$mark" | grep "^shardpipe serve: recovered:" | head -1)
    check "case $n: the supervisor recovered the requests in flight" test -n "$line"
    python3 "$src/tests/tools/recover_figures.py" case "$tmp/c$n.json" "$line" "$label" "$same" \
        >>"$tmp/figures.jsonl" 2>/dev/null
    json_get "$tmp/c$n.json" "'  longest pause in a stream %.2f s' % o['max_gap_s']"
    echo "  ${line#shardpipe serve: }"
    tail -1 "$tmp/figures.jsonl" | python3 -c "import json,sys; d=json.load(sys.stdin); print('  failure to next token: %s s (detection %s s)' % (d.get('total_s', '-'), d.get('detect_s', '-')))"
    if [ $n = 1 ]; then
        check "case 1: board $board is named when it comes back" after "$mark" "board $board is back"
        # 8 clients as soon as the relaunch that plans it back in begins
        after "$mark" "no request open: planning the returned board"
        "${client[@]}" >"$tmp/c1-flap.json"
        check "case 1: its link drops again as it is planned back in: named at once" after "$mark" \
            "MPI cannot start: hydra's proxy on $board cannot connect back to mpiexec: board $board cannot connect back"
        check "case 1: the 8 clients sent meanwhile get the failure-free answers" same_answers "$tmp/base.json" \
            "$tmp/c1-flap.json"
        since "$mark" | grep -E "^shardpipe serve: (MPI|plan|ready|recovered)" | sed 's/^shardpipe serve: /  /' |
            cut -c1-160
        mark=$(wc -l <"$s_log")
        ip netns exec "$NETEMU_NAME-$board" ip link set sp0 up
    fi
    if [ "$fault" != stop ]; then
        check "case $n: board $board is named when it comes back" after "$mark" "board $board is back"
        check "case $n: and planned in once no request is open" \
            after "$mark" "no request open: planning the returned board"
    fi
    check "case $n: back to 3 stages on a, b, c" wait_stages "$s_log" 3
    grep "^shardpipe serve: plan " "$s_log" | tail -1 | grep -q ": 3 stages on a, b, c$" ||
        echo "  (the last plan: $(grep "^shardpipe serve: plan " "$s_log" | tail -1))"
done

echo "load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
check "every case gives a time from the failure to the next token" \
    python3 "$src/tests/tools/recover_figures.py" summary "$tmp/figures.jsonl"
kill -TERM "$s_pid"
wait "$s_pid"
check "SIGTERM: the supervisor exits 0" test $? -eq 0
s_pid=""
check "no rank left behind" bash -c "sleep 0.5; ! pgrep -f -- '[-]-worker $s_wd/control.sock' >/dev/null"
echo "took $(($(date +%s) - t_start)) s"
finish
