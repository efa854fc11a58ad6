#!/usr/bin/env bash
# planner.sh - `shardpipe plan` and `shardpipe profile` end to end: plans for
# the shipped example cluster pass `shardpipe check`, run under mpiexec with
# measured-vs-predicted lines, a model too large for the cluster is refused
# with the numbers, `profile` writes a profile that loads, and `profile
# --links` writes a cluster file under mpiexec.
# Usage: bash planner.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_planner_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# a small random model (no shared data needed): 12 layers
"$bin" synth --shape tiny --layers 12 --ctx 256 -o "$tmp/m.gguf" >/dev/null

# quiet: run a command with its output in $tmp/last.out
quiet() { "$@" >"$tmp/last.out" 2>&1; }

for obj in throughput latency; do
    check "plan --objective $obj writes a plan" \
        quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$src/configs/clusters/home-lab.yaml" --objective $obj \
        --sequences 3 --context 128 -o "$tmp/$obj.yaml" --explain
    cp "$tmp/last.out" "$tmp/$obj.out"
    check "the $obj plan passes shardpipe check" quiet "$bin" check "$tmp/$obj.yaml"
    check "the $obj plan has predicted_ms per stage" grep -q "predicted_ms:" "$tmp/$obj.yaml"
    check "--explain prints the baselines" grep -q "layers split evenly" "$tmp/$obj.out"
done

# a 2-stage plan on two copies of this machine's profile, run for real
cat >"$tmp/two.yaml" <<YAML
name: two
boards:
  - {name: a, host: localhost, profile: $src/configs/boards/epyc-2core-ci.yaml, threads: 1, memory: 2MiB}
  - {name: b, host: localhost, profile: $src/configs/boards/epyc-2core-ci.yaml, threads: 1}
links:
  default: {latency: 0.00001, bandwidth: 5e9}
YAML
# both boards too small for the model alone (1.5 MB with its buffers), so the
# plan has two stages whatever this machine's measured speeds say
sed 's/memory: 2MiB}/memory: 1280KiB}/; s/threads: 1}$/threads: 1, memory: 1280KiB}/' "$tmp/two.yaml" >"$tmp/pair.yaml"
check "plan on a 2-board cluster" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/pair.yaml" --sequences 2 \
    --context 64 --prefill-chunk 8 -o "$tmp/run.yaml"
check "the plan uses both boards (neither holds the model alone)" grep -q "rank: 1" "$tmp/run.yaml"
check "the plan carries its predicted tok/s" grep -Eq "^predicted_tok_s: [0-9]+[.][0-9]+" "$tmp/run.yaml"
# the host file beside the plan, in rank order, and the command that uses it
check "plan writes the hydra host file beside the plan" test -s "$tmp/run.hosts"
check "one host:1 line per rank, in rank order" \
    test "$(cat "$tmp/run.hosts")" = "$(grep -A1 -- '- rank:' "$tmp/run.yaml" | sed -n 's/^ *host: //p' | sed 's/$/:1/')"
check "plan prints the exact mpiexec line" grep -qF "mpiexec -f $tmp/run.hosts -n 2 shardpipe run --plan $tmp/run.yaml" \
    "$tmp/last.out"
check "the cluster names its hosts: no note about host:" bash -c "! grep -q 'gives no .host:' '$tmp/last.out'"
sed 's/host: localhost, //' "$tmp/pair.yaml" >"$tmp/nohost.yaml"
check "plan on a cluster without host names" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/nohost.yaml" \
    --sequences 2 --context 64 --prefill-chunk 8 -o "$tmp/nohost-plan.yaml"
check "says how to name the hosts" grep -q "gives no .host:. for a, b, so the host file uses the board names" \
    "$tmp/last.out"
check "and the host file has the board names" test "$(cat "$tmp/nohost-plan.hosts")" = "$(printf 'a:1\nb:1')"
# stages on one machine are told that they share its memory; board names
# alone are different machines; 127.0.0.1 is localhost
check "two stages on localhost: the plan says they share its memory" \
    grep -q "^# Stages on one host (localhost): a, b. They share its memory" "$tmp/run.yaml"
check "boards without host names: no such note" bash -c "! grep -q 'Stages on one host' '$tmp/nohost-plan.yaml'"
sed '0,/host: localhost/s//host: 127.0.0.1/' "$tmp/pair.yaml" >"$tmp/loop.yaml"
check "plan on localhost + 127.0.0.1" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/loop.yaml" \
    --sequences 2 --context 64 --prefill-chunk 8 -o "$tmp/loop-plan.yaml"
check "127.0.0.1 and localhost are one host" grep -q "^# Stages on one host (127.0.0.1): a, b" "$tmp/loop-plan.yaml"
mpirun_bounded 120 -f "$tmp/run.hosts" -n 2 "$bin" run --plan "$tmp/run.yaml" --prompt "a b c" -n 6 --ignore-eos \
    >/dev/null 2>"$tmp/run.err"
check "run prints measured against predicted" grep -q "measured against the plan.s prediction" "$tmp/run.err"
check "over decode micro-batches" grep -Eq "^1 +1 +[1-9][0-9]* +[0-9.]+ ms" "$tmp/run.err"
check "and steady decode against the plan's tok/s" \
    grep -Eq "^steady : [0-9]+ tokens in [0-9.]+ s .*: [0-9.]+ tok/s; the plan predicts [0-9.]+ \(measured/predicted [0-9.]+\)" "$tmp/run.err"

# a measured hand-over time of 20 ms, far above this small model's compute
# (0.1 ms): the two-board ring is not worth it, one board runs alone
{ echo "handoff: 0.02"; cat "$tmp/two.yaml"; } >"$tmp/handoff.yaml"
check "plan with a cluster handoff" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/handoff.yaml" \
    --sequences 2 --context 64 --prefill-chunk 8 -o "$tmp/handoff-plan.yaml"
check "a 20 ms hand-over leaves a board out" grep -q "^# Left out (the plan is faster without them)" \
    "$tmp/handoff-plan.yaml"
check "and the plan has one stage" test "$(grep -c -- '- rank:' "$tmp/handoff-plan.yaml")" = 1

# too little memory: refused with the numbers
sed 's/memory: 2MiB}/memory: 512KiB}/; s/threads: 1}$/threads: 1, memory: 512KiB}/' "$tmp/two.yaml" >"$tmp/small.yaml"
"$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/small.yaml" --context 64 >/dev/null 2>"$tmp/small.err"
check "a model that does not fit is refused with how much is short" grep -q "short with every board full" "$tmp/small.err"

check "profile --quick --threads 1 writes a profile" quiet "$bin" profile --threads 1 -o "$tmp/board.yaml"
check "the profile says source: measured" grep -q "^source: measured" "$tmp/board.yaml"
mpirun_bounded 120 -n 2 "$bin" profile --links -o "$tmp/links.yaml" >/dev/null 2>&1
check "profile --links writes every pair" grep -q "between:" "$tmp/links.yaml"
finish
