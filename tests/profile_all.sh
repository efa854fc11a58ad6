#!/usr/bin/env bash
# profile_all.sh - `mpiexec -n 2 shardpipe profile --all` on this machine
# (loopback, no root): both ranks are on one host, so it is measured once
# into one board file named after the host, and the cluster file has two
# boards HOST-r0 and HOST-r1, each with half the cores and half the usable
# memory; `plan` reads the result as written, and a plan over it runs with
# the host file `plan` wrote. Usage errors and a folder that cannot be
# created fail before anything is measured.
# Usage: bash profile_all.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_profile_all_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if ! command -v mpiexec >/dev/null; then
    skip "no mpiexec: profile --all is not run"
    finish
    exit
fi
me=$(hostname)
cores=$(nproc)

check "--all without -o is a usage error" fails_with 2 "-o configs/clusters/NAME.yaml is required" \
    "$bin" profile --all
check "--all with --links is a usage error" fails_with 2 "give --all or --links, not both" \
    "$bin" profile --all --links -o "$tmp/x.yaml"
start=$(date +%s.%N)
check "a folder that cannot be created fails at once" fails_with 1 "cannot create the folder /proc/nope" \
    "$bin" profile --all -o /proc/nope/x.yaml
check "(before measuring anything: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s)" \
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { exit !(e - s < 2) }'

t0=$(date +%s)
mpirun_bounded 150 -n 2 "$bin" profile --all -o "$tmp/clusters/lo.yaml" >"$tmp/all.out" 2>"$tmp/all.err"
r=$?
echo "profile --all: exit $r in $(($(date +%s) - t0)) s"
sed 's/^/  | /' "$tmp/all.err"
check "profile --all under mpiexec -n 2 succeeds" test $r = 0
check "it says what it measures" grep -q "^profile --all: 2 ranks on 1 host, measuring each host (quick mode)" "$tmp/all.err"
check "progress lines while the board is measured" \
    test "$(grep -cE "^profile --all: $me: +[0-9]+% after +[0-9.]+ s" "$tmp/all.err")" -ge 3
check "the host measured once (one 100% line)" test "$(grep -c "^profile --all: $me: 100%" "$tmp/all.err")" = 1
check "then the link" grep -q "rank 0 ($me) <-> rank 1 ($me): latency" "$tmp/all.err"
check "one board file, named after the host" test "$(ls "$tmp/boards")" = "$me.yaml"
check "no temporary files left" test -z "$(find "$tmp/boards" "$tmp/clusters" -name '*tmp*')"
board=$tmp/boards/$me.yaml
check "the board file is a measured profile of this host" grep -q "^name: $me$" "$board"
check "with the K-quant matvec speeds" grep -Eq "^ +q6_k: +\{gbs: [0-9.]+, gflops: [0-9.]+[,}]" "$board"
half=$((cores / 2 > 0 ? cores / 2 : 1))
check "measured at the ranks' share of the cores too ($half threads)" grep -q "^  - threads: $half$" "$board"
cl=$tmp/clusters/lo.yaml
check "the cluster is named after its file" grep -q "^name: lo$" "$cl"
check "two boards named HOST-rRANK" \
    test "$(sed -n 's/^  - name: //p' "$cl" | tr '\n' ' ')" = "$me-r0 $me-r1 "
check "both on this host" test "$(grep -c "^    host: $me$" "$cl")" = 2
check "both pointing at the one board file" test "$(grep -c "^    profile: ../boards/$me.yaml$" "$cl")" = 2
check "each with half the cores" test "$(grep -c "^    threads: $half$" "$cl")" = 2
total_kib=$(sed -n 's/^ram_total: \([0-9]*\)KiB$/\1/p' "$board")
mem_mib=$(sed -n 's/^    memory: \([0-9]*\)MiB$/\1/p' "$cl" | head -1)
# usable = RAM minus the reserve (10%, at least 256 MiB), halved, in whole MiB
want_mib=$(awk -v k="$total_kib" 'BEGIN { t = k * 1024; r = t / 10; if (r < 268435456) r = 268435456;
    printf "%d", int((t - r) / 2 / 1048576) }')
check "each with half the usable memory (${mem_mib:-?} MiB, want $want_mib)" test "${mem_mib:-x}" = "$want_mib"
check "and the link between them" grep -q "between: \[$me-r0, $me-r1\]" "$cl"

# plan reads it as written; with memory: small enough, both boards are used
"$bin" synth --shape tiny --layers 12 --ctx 256 -o "$tmp/m.gguf" >/dev/null
quiet() { "$@" >"$tmp/last.out" 2>&1; }
check "plan accepts the cluster file" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$cl" --sequences 2 \
    --context 64 -o "$tmp/one.yaml"
check "and its plan passes check" quiet "$bin" check "$tmp/one.yaml"
sed "s/^    memory: .*/    memory: 1280KiB/" "$cl" >"$tmp/clusters/small.yaml"
"$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/clusters/small.yaml" --sequences 2 --context 64 \
    --prefill-chunk 8 -o "$tmp/two.yaml" >/dev/null 2>"$tmp/plan.err"
check "a plan over both boards" grep -q "rank: 1" "$tmp/two.yaml"
check "whose host file names this host twice" test "$(cat "$tmp/two.hosts")" = "$(printf '%s:1\n%s:1' "$me" "$me")"
mpirun_bounded 120 -f "$tmp/two.hosts" -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "a b c" -n 4 --ignore-eos \
    >"$tmp/run.out" 2>"$tmp/run.err"
check "runs with that host file (the host check passes)" test $? = 0
check "without an oversubscription warning (the threads were shared)" \
    bash -c "! grep -q 'kernel threads in all' '$tmp/run.err'"
finish
