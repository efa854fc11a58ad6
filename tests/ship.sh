#!/usr/bin/env bash
# ship.sh - rank 0 sends a board the shard it lacks, on this machine: an
# MPMD launch gives ranks 1 and 2 a model path that does not exist and a
# shard cache folder each (what a board without the model file sees; the
# emulated-network version with real private filesystems is
# ship_netemu.sh). The first start sends each of them exactly its stage's
# shard (rank 0's byte counts equal the size of `shardpipe split`'s file
# for that stage, and the cached file is byte for byte that file), the
# tokens equal a run where every rank has the model; the second start sends
# nothing; a damaged cache entry is refused by name before any weight is
# read; `shardpipe cache list|clear` show and remove an entry, after which
# only that board's shard is sent again; serve starts the same way.
# Usage: bash ship.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_ship_XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
export SHARDPIPE_HASH_CACHE=$tmp/hashes XDG_CACHE_HOME=$tmp/xdg
if ! command -v mpiexec >/dev/null; then
    skip "no mpiexec: shards are not sent"
    finish
    exit
fi
plan=$src/partitions/stories260K-3stages.yaml
"$bin" split --plan "$plan" -o "$tmp/split" >/dev/null || exit 1
size1=$(stat -c %s "$tmp/split/stage-1.gguf") size2=$(stat -c %s "$tmp/split/stage-2.gguf")

# run3 NAME: rank 0 has the model, ranks 1 and 2 do not (their caches: $tmp/cache1, $tmp/cache2)
run3() {
    local name=$1 args=(run --plan "$plan" --prompt "Once upon a time" -n 24 --threads 1)
    mpirun_bounded 120 -n 1 "$bin" "${args[@]}" --tokens-out "$tmp/$name.tok" \
        : -n 1 "$bin" "${args[@]}" --model "$tmp/none.gguf" --shard-cache "$tmp/cache1" \
        : -n 1 "$bin" "${args[@]}" --model "$tmp/none.gguf" --shard-cache "$tmp/cache2" </dev/null >"$tmp/$name.out" 2>&1
}
sent() { sed -n "s/.*shardpipe run: rank $2 (host [^)]*): sent \([0-9]*\) bytes in .*/\1/p" "$tmp/$1.out"; }

mpirun_bounded 120 -n 3 "$bin" run --plan "$plan" --prompt "Once upon a time" -n 24 --threads 1 \
    --tokens-out "$tmp/full.tok" </dev/null >"$tmp/full.out" 2>&1
check "every rank with the model: nothing is sent" sh -c "! grep -q 'sending stage' '$tmp/full.out'"
check "and there are tokens" test -s "$tmp/full.tok"

run3 first
r=$?
check "ranks without the model start (exit $r)" test $r = 0
check "rank 0 sends stage 1's shard to rank 1" grep -q "sending stage 1's shard (layers 2-2, .*) to rank 1 (host " \
    "$tmp/first.out"
check "and stage 2's to rank 2" grep -q "sending stage 2's shard (layers 3-4, .*) to rank 2 (host " "$tmp/first.out"
check "rank 1 gets $size1 bytes: its shard, as split writes it ($(sent first 1))" test "$(sent first 1)" = "$size1"
check "rank 2 gets $size2 bytes ($(sent first 2))" test "$(sent first 2)" = "$size2"
check "with MB/s on the final line" grep -Eq "rank 1 \(host [^)]*\): sent $size1 bytes in [0-9.]+ s, [0-9.]+ MB/s" \
    "$tmp/first.out"
check "and a total" grep -Eq "shards sent: $((size1 + size2)) bytes to 2 boards in [0-9.]+ s" "$tmp/first.out"
e1=$(ls "$tmp"/cache1/*.gguf 2>/dev/null) e2=$(ls "$tmp"/cache2/*.gguf 2>/dev/null)
check "rank 1's cache holds one entry named by its hash" test "$(echo "$e1" | grep -Ec '/[0-9a-f]{16}\.gguf$')" = 1
check "which is byte for byte split's stage-1.gguf" cmp -s "$e1" "$tmp/split/stage-1.gguf"
check "rank 2's, split's stage-2.gguf" cmp -s "$e2" "$tmp/split/stage-2.gguf"
check "no temporary is left" test "$(ls "$tmp/cache1" "$tmp/cache2" | grep -c '\.gguf\.')" = 0
check "the tokens equal the run where every rank has the model" cmp -s "$tmp/first.tok" "$tmp/full.tok"

run3 second
r=$?
check "the second start runs (exit $r)" test $r = 0
check "and sends nothing" sh -c "! grep -Eq 'sending stage|shards sent' '$tmp/second.out'"
check "rank 1 runs from its cache" grep -q "rank 1 (host .*) runs stage 1 from its shard cache" "$tmp/second.out"
check "rank 2 too" grep -q "rank 2 (host .*) runs stage 2 from its shard cache" "$tmp/second.out"
check "same tokens" cmp -s "$tmp/second.tok" "$tmp/full.tok"

"$bin" cache list --shard-cache "$tmp/cache1" >"$tmp/list.out" 2>&1
check "cache list names the entry, its layers and model" \
    grep -Eq "^[0-9a-f]{16}\.gguf +0\.2 MiB +layers 2-2 of stories260K\.gguf +received " "$tmp/list.out"
check "and the total" grep -q "^1 shard, 0.2 MiB" "$tmp/list.out"

# one bit of a tensor in rank 2's entry: refused by name, nothing loaded
cp "$e2" "$tmp/e2.good"
size=$(stat -c %s "$e2")
byte=$(od -An -tu1 -j $((size - 100)) -N1 "$e2" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 64)))" | dd of="$e2" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
run3 damaged
r=$?
check "a damaged cached shard is refused (exit $r)" test $r -ne 0
check "by rank, path, both hashes and the fix" grep -Eq \
    "rank 2 \(host [^)]*\): cached shard $e2 has content hash [0-9a-f]{16} but the plan's model gives $(basename "$e2" .gguf) for layers 3-4 \+ head .*delete it \(or run \`shardpipe cache clear\` on that board\)" \
    "$tmp/damaged.out"
check "before anything ran (no tokens, no summary)" sh -c "test ! -e '$tmp/damaged.tok' && ! grep -q '== shardpipe run' '$tmp/damaged.out'"
check "and nothing was sent" sh -c "! grep -q 'sending stage' '$tmp/damaged.out'"

"$bin" cache clear --shard-cache "$tmp/cache2" >"$tmp/clear.out" 2>&1
check "cache clear removes it" grep -q "^removed 1 file, 0.5 MiB, from $tmp/cache2" "$tmp/clear.out"
check "(gone)" test ! -e "$e2"
run3 third
check "the next start sends stage 2's shard again" test "$(sent third 2)" = "$size2"
check "and only that one" sh -c "! grep -q 'sending stage 1' '$tmp/third.out'"
check "same tokens" cmp -s "$tmp/third.tok" "$tmp/full.tok"

# a cache folder that cannot be made: refused before any byte moves
: >"$tmp/afile"
mpirun_bounded 60 -n 1 "$bin" run --plan "$plan" --prompt x -n 2 : -n 1 "$bin" run --plan "$plan" --prompt x -n 2 \
    --model "$tmp/none.gguf" --shard-cache "$tmp/afile/shards" : -n 1 "$bin" run --plan "$plan" --prompt x -n 2 \
    </dev/null >"$tmp/nodir.out" 2>&1
r=$?
check "a cache folder under a file is refused (exit $r)" test $r -ne 0
check "naming rank and folder" grep -q "rank 1 (host .*): $tmp/afile: cannot create the shard cache folder" "$tmp/nodir.out"
check "before any byte moves" sh -c "! grep -q 'sending stage' '$tmp/nodir.out'"

# serve: the same start-up
if command -v curl >/dev/null; then
    rm -rf "$tmp/cache1"
    sargs=(serve --plan "$plan" --port 0 --threads 1)
    timeout -k 5 120 mpiexec -n 1 "$bin" "${sargs[@]}" : -n 1 "$bin" "${sargs[@]}" --model "$tmp/none.gguf" \
        --shard-cache "$tmp/cache1" : -n 1 "$bin" "${sargs[@]}" --model "$tmp/none.gguf" --shard-cache "$tmp/cache2" \
        </dev/null >"$tmp/serve.log" 2>&1 &
    spid=$!
    port=
    for _ in $(seq 1 600); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.log" | head -1)
        [ -n "$port" ] && grep -q "ready:" "$tmp/serve.log" && break
        kill -0 $spid 2>/dev/null || break
        sleep 0.1
    done
    check "serve starts with a board that lacks the model" test -n "$port"
    check "sending it its shard" grep -q "serve: rank 1 (host [^)]*): sent $size1 bytes" "$tmp/serve.log"
    check "the other from its cache" grep -q "rank 2 (host .*) runs stage 2 from its shard cache" "$tmp/serve.log"
    curl -s -m 60 "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
        -d '{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}' >"$tmp/serve.json"
    check "and answers" grep -q '"text"' "$tmp/serve.json"
    mpx=$(pgrep -P $spid -x mpiexec | head -1)
    kill -TERM "${mpx:-$spid}" 2>/dev/null
    wait $spid
else
    skip "serve: needs curl"
fi
finish
