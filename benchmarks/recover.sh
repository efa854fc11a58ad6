#!/usr/bin/env bash
# recover.sh - issue #19's figure: the time from a failure to the next
# token delivered by `shardpipe serve --cluster`, on the TinyLlama-1.1B
# shape (random Q4_0 weights, benchmarks/models.sh) over 4 emulated boards
# (benchmarks/netemu: namespaces on a userspace switch, 1 Gbit/s, 0.2 ms),
# the model in the page cache. Needs root.
#
# Four streaming clients per case; the faults: kill -9 of each rank during
# decode, of rank 2 during prefill, SIGSTOP of rank 1, and the link of
# rank 2's board taken down (ip link set sp0 down in its namespace). The
# supervisor runs in the control namespace with --fail-timeout $FAIL_T and
# probes a board with a 1-rank mpiexec on it (2 s cap). For each case:
# detection (the fault to the supervisor noticing it), re-planning (killing
# the job, probing, the planner), relaunch (mpiexec to rank 0 up), loading
# (the shards, from the page cache), re-prefill (loaded to the next token),
# their sum, and whether every answer equals the failure-free run's.
#   sudo benchmarks/recover.sh        (BOARDS=4, FAIL_T=3, GEN=48)
# Writes benchmarks/results/recover-<date>.json and prints a table. On a
# machine shared with other work the figures are indicative only.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "recover.sh needs root (benchmarks/netemu)"; exit 1; }
BIN=$(realpath "${BIN:-build/shardpipe}")
BOARDS=${BOARDS:-4} FAIL_T=${FAIL_T:-3} GEN=${GEN:-48}
. benchmarks/models.sh
write_tinyllama_model "$BIN" ../shared benchmarks/out q4_0
MODEL=$(realpath benchmarks/out/tinyllama-q4_0.gguf)
export NETEMU_NAME=sp-recover NETEMU_SWITCH=$PWD/benchmarks/out/netemu-switch
netemu=$PWD/benchmarks/netemu/netemu.sh
tmp=$(mktemp -d /tmp/sprec.XXXXXX)
bin=$BIN src=$PWD
. tests/tools/lib.sh
. tests/tools/serve_lib.sh
sv=""
cleanup() {
    [ -n "$sv" ] && kill -TERM "$sv" 2>/dev/null && wait "$sv" 2>/dev/null || true
    bash "$netemu" down || true
    rm -rf "$tmp"
}
trap cleanup EXIT
names=(a b c d e f)
{
    echo "# name address rate delay jitter loss cpu"
    for i in $(seq 0 $((BOARDS - 1))); do echo "${names[$i]} 198.18.0.$((i + 1)) 1gbit 0.2ms 0 0 0"; done
} >"$tmp/spec"
bash "$netemu" up "$tmp/spec"
# each board holds about a third of the model: 4 boards plan 4 stages, 3 still fit
{
    echo "name: emulated"
    echo "boards:"
    for i in $(seq 0 $((BOARDS - 1))); do
        echo "  - {name: ${names[$i]}, host: ${names[$i]}, profile: $PWD/configs/boards/epyc-2core-ci.yaml, threads: 1, memory: ${MEM:-300MiB}}"
    done
    echo "links:"
    echo "  default: {latency: 0.0002, bandwidth: 110e6}"
} >"$tmp/cluster.yaml"
ctl=(nsenter --net="/var/run/netns/$NETEMU_NAME-ctl")
mkdir -p "$tmp/wd"
"${ctl[@]}" "$BIN" serve --cluster "$tmp/cluster.yaml" --model "$MODEL" --sequences 4 --context 512 --port 0 \
    --work-dir "$tmp/wd" --fail-timeout "$FAIL_T" --mpiexec "bash $netemu mpiexec" \
    --probe "timeout 2 bash $netemu mpiexec -hosts {host} -n 1 true" </dev/null >"$tmp/sv.log" 2>&1 &
sv=$!
port=$(wait_listening "$tmp/sv.log" "$sv" "^shardpipe serve: ready:")
[ -n "$port" ] || { tail -30 "$tmp/sv.log"; exit 1; }
url=http://127.0.0.1:$port
wait_stages "$tmp/sv.log" "$BOARDS" || { tail -30 "$tmp/sv.log"; exit 1; }
client=("${ctl[@]}" python3 tests/tools/recover_client.py --url "$url" --workdir "$tmp/wd" --clients 4 --max-tokens "$GEN")
"${client[@]}" >"$tmp/base.json"

# the board rank R runs on, in the current plan's host file
board_of_rank() { sed -n "$(($1 + 1))s/:.*//p" "$(ls -t "$tmp"/wd/plan-*.hosts | head -1)"; }

mkdir -p benchmarks/results
out=benchmarks/results/recover-$(date -u +%Y%m%d-%H%M).json
echo "{\"model\": \"$MODEL\", \"boards\": $BOARDS, \"fail_timeout_s\": $FAIL_T, \"gen\": $GEN, \"commit\": \"$(git rev-parse --short HEAD)\", \"cases\": [" >"$out"
printf '| fault | detect s | re-plan s | relaunch s | load s | re-prefill s | failure to next token s | same answers |\n|---|---|---|---|---|---|---|---|\n'
sep=""
cases=("kill 0 decode" "kill 1 decode" "kill 2 decode" "kill 3 decode" "kill 2 prefill" "stop 1 decode" "link 2 decode")
for c in "${cases[@]}"; do
    set -- $c
    [ "$2" -lt "$BOARDS" ] || continue
    before=$(grep -c "^shardpipe serve: recovered:" "$tmp/sv.log" || true)
    board=$(board_of_rank "$2")
    if [ "$1" = link ]; then
        "${client[@]}" --fault cmd --cmd "ip netns exec $NETEMU_NAME-$board ip link set sp0 down" --when "$3" \
            >"$tmp/case.json"
        ip netns exec "$NETEMU_NAME-$board" ip link set sp0 up
    else
        "${client[@]}" --fault "$1" --rank "$2" --when "$3" >"$tmp/case.json"
    fi
    line=$(grep "^shardpipe serve: recovered:" "$tmp/sv.log" | sed -n "$((before + 1))p")
    same=$(same_answers "$tmp/base.json" "$tmp/case.json" >/dev/null && echo yes || echo no)
    python3 tests/tools/recover_figures.py case "$tmp/case.json" "$line" "$c (board $board)" "$same" |
        sed "s/^/$sep/" >>"$out"
    sep=","
    wait_stages "$tmp/sv.log" "$BOARDS" || { echo "did not come back to $BOARDS stages"; tail -20 "$tmp/sv.log"; }
done 2>&1
echo "]}" >>"$out"
python3 tests/tools/recover_figures.py summary "$out" || echo "(a case did not recover)"
echo "wrote $out"
