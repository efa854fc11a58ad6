#!/usr/bin/env bash
# hostcheck.sh - start-up host check and thread defaults of `run`, end to
# end through mpiexec: a plan without threads runs each rank on the CPUs of
# its affinity mask, rank 0 warns once when that oversubscribes the host,
# and the tokens equal --threads 1's; a host whose free RAM is below the sum
# of its stages' estimates, or a stage whose planned host is another
# machine, is refused with the host and the numbers before any shard is
# opened.
# Usage: bash hostcheck.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_hostcheck_XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
export SHARDPIPE_HASH_CACHE=$tmp/hash-cache # written once a shard is opened
model=$(realpath "$src/models/stories260K.gguf")
me=$(hostname)
if ! command -v mpiexec >/dev/null; then
    skip "no mpiexec: the start-up checks are not run"
    finish
    exit
fi

# plan HOST0 HOST1: two stages of stories260K, no threads
plan() {
    cat <<YAML
model:
  path: $model
context: 128
batching: {sequences: 2, micro_batches: 2, prefill_chunk: 16}
stages:
  - {rank: 0, host: $1, layers: [0, 2]}
  - {rank: 1, host: $2, layers: [3, 4]}
YAML
}
run2() { mpirun_bounded 120 -n 2 "$bin" run --plan "$@" --prompt "Once upon a time" -n 24 </dev/null; }

# threads: the default is the affinity mask's CPUs
plan node-a.invalid node-b.invalid >"$tmp/labels.yaml"
cores=$(nproc)
run2 "$tmp/labels.yaml" --tokens-out "$tmp/auto.tok" >"$tmp/auto.out" 2>"$tmp/auto.err"
check "a plan without threads runs" test -s "$tmp/auto.tok"
two_cores=0
[ "$cores" -ge 2 ] && [ "$(nproc --all)" -le 3 ] && two_cores=1
if [ $two_cores = 1 ]; then
    check "2 ranks x $cores threads on $cores cores: rank 0 warns, naming the host" \
        grep -q "warning: $me: 2 ranks with $((2 * cores)) kernel threads in all (largest $cores) on $(nproc --all) cores" \
        "$tmp/auto.err"
    check "once" test "$(grep -c 'kernel threads in all' "$tmp/auto.err")" = 1
else
    skip "oversubscription warning: this host has $(nproc --all) cores ($cores allowed), the test expects 2"
fi
run2 "$tmp/labels.yaml" --threads 1 --tokens-out "$tmp/one.tok" >"$tmp/one.out" 2>"$tmp/one.err"
check "--threads 1 gives the same tokens" cmp -s "$tmp/auto.tok" "$tmp/one.tok"
check "and no warning" test "$(grep -c 'kernel threads in all' "$tmp/one.err")" = 0
check "--threads 0 is a usage error" sh -c "! '$bin' run --plan '$tmp/labels.yaml' --prompt x --threads 0 2>/dev/null"

# serve: the same default and warning; --threads 1 overrides it
. "$src/tests/tools/serve_lib.sh"
if command -v curl >/dev/null; then
    check "serve without threads starts" start_server sa 2 "$tmp/labels.yaml"
    if [ $two_cores = 1 ]; then
        check "and warns once about the host" test "$(grep -c "warning: $me: 2 ranks with" "$sa_log")" = 1
    fi
    stop_server sa TERM
    check "serve --threads 1 starts" start_server s1 2 "$tmp/labels.yaml" --threads 1
    check "without the warning" test "$(grep -c 'kernel threads in all' "$s1_log")" = 0
    stop_server s1 TERM
else
    skip "serve --threads: needs curl"
fi

# free RAM below the stage's estimate (SHARDPIPE_RAM_FREE stands in for
# MemAvailable): refused with host and numbers, no shard opened
plan "$me" "$me" >"$tmp/here.yaml"
export SHARDPIPE_HASH_CACHE=$tmp/ram-cache
SHARDPIPE_RAM_FREE=65536 run2 "$tmp/here.yaml" >"$tmp/ram.out" 2>"$tmp/ram.err"
r=$?
check "too little free RAM is refused (exit $r)" test $r -ne 0
# both ranks run on this host: their stages add up against its free RAM
check "naming the host, each stage and the sizes" \
    grep -Eq "host $me has 0\.06 MiB of RAM free but its 2 stages need [0-9.]+ MiB in all: rank 0 \(stage 0, layers 0-2\) [0-9.]+ MiB \(weights [0-9.]+ MiB, KV cache [0-9.]+ MiB, buffers [0-9.]+ MiB\), rank 1 \(stage 1, layers 3-4\) [0-9.]+ MiB \(weights" \
    "$tmp/ram.err"
check "before any shard is opened (no shard hashed)" test ! -e "$SHARDPIPE_HASH_CACHE"
check "and nothing generated" test ! -s "$tmp/ram.out"
# free RAM for either stage but not for both: the sum is what counts
need=$(sed -n 's/.*rank 0 (stage 0, layers 0-2) \([0-9.]*\) MiB.*rank 1 (stage 1, layers 3-4) \([0-9.]*\) MiB.*/\1 \2/p' \
    "$tmp/ram.err")
between=$(echo "$need" | awk '{ a = $1 * 1048576; b = $2 * 1048576; m = a > b ? a : b; printf "%.0f", m + (a + b - m) / 2 }')
SHARDPIPE_RAM_FREE=${between:-0} run2 "$tmp/here.yaml" >"$tmp/sum.out" 2>"$tmp/sum.err"
r=$?
check "room for each stage alone ($between bytes for stages of ${need:-?} MiB) is refused (exit $r)" test $r -ne 0
check "with the sum" grep -q "host $me has [0-9.]* MiB of RAM free but its 2 stages need" "$tmp/sum.err"
check "and nothing generated" test ! -s "$tmp/sum.out"
run2 "$tmp/here.yaml" >"$tmp/ok.out" 2>"$tmp/ok.err"
check "with the real free RAM the same plan runs" grep -q "Once upon a time" "$tmp/ok.out"
check "(which hashes its shards: the check above can fail)" test -e "$SHARDPIPE_HASH_CACHE"

# a planned host that is another machine (TEST-NET-1 address, RFC 5737)
plan "$me" 192.0.2.77 >"$tmp/other.yaml"
run2 "$tmp/other.yaml" >"$tmp/other.out" 2>"$tmp/other.err"
r=$?
check "a rank on another host than planned is refused (exit $r)" test $r -ne 0
check "with both names" grep -q "rank 1 (stage 1, layers 3-4) runs on $me but the plan puts it on 192.0.2.77" \
    "$tmp/other.err"
finish
