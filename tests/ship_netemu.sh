#!/usr/bin/env bash
# ship_netemu.sh - boards need not hold the model, on the emulated network
# (benchmarks/netemu: three boards a, b, c on 1 Gbit/s links, 0.1 ms each).
#
# The boards' namespaces share this machine's filesystem, so each board gets
# a private view (`netemu.sh mount`: its processes run in a mount namespace
# of their own): a folder per board bind-mounted on one common HOME, so the
# default shard cache ~/.cache/shardpipe/shards is the board's own, and, on
# b and c only, an empty folder over the model's folder, so only board a
# (rank 0) has the model file - as on real boards.
#
# Asserts: with the file everywhere nothing is sent; with the model only on
# a, the run starts, rank 0 sends b and c exactly their shards (its byte
# counts equal the sizes of `shardpipe split`'s files, and the switch's
# counters show each board receiving its shard and not the other's), the
# tokens are bit-identical to the run with the file everywhere; the second
# start sends nothing; a split plan whose files the boards lack runs from
# the same cache entries (same content hash); a damaged cache entry is
# refused by name and nothing loads. Needs root; skips loudly otherwise.
# Usage: bash ship_netemu.sh SHARDPIPE SHARED_DIR SOURCE_DIR
bin=$1 src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
. "$src/tests/tools/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (network namespaces, TAP devices, mount namespaces) - run ctest as root to test shards sent over the emulated network"
    exit 0
fi
for tool in ip mpiexec cc nsenter unshare mount; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: ship_netemu needs '$tool', which is not installed"
        exit 0
    fi
done
if [ ! -c /dev/net/tun ]; then
    echo "SKIP: ship_netemu needs /dev/net/tun (TUN/TAP support in the kernel)"
    exit 0
fi

tmp=$(mktemp -d /tmp/sp_shipnet_XXXXXX)
export NETEMU_NAME=netemu-ship NETEMU_SWITCH=$tmp/switch
netemu=$src/benchmarks/netemu/netemu.sh
trap 'bash "$netemu" down; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
ns=$NETEMU_NAME

cat >"$tmp/spec" <<'EOF'
# name address    rate  delay jitter loss cpu
a      198.18.0.1 1gbit 0.1ms 0      0    0
b      198.18.0.2 1gbit 0.1ms 0      0    0
c      198.18.0.3 1gbit 0.1ms 0      0    0
EOF
mkdir -p "$tmp/model" "$tmp/empty" "$tmp/home/a" "$tmp/home/b" "$tmp/home/c" "$tmp/home/view"
cp "$src/models/stories260K.gguf" "$tmp/model/"
PREFILL_CHUNK=16 write_plan "$tmp/plan.yaml" "$tmp/model/stories260K.gguf" 256 3 3 f32 "0:0:1" "1:2:2" "2:3:4"
"$bin" split --plan "$tmp/plan.yaml" -o "$tmp/model/split" >/dev/null || exit 1
size1=$(stat -c %s "$tmp/model/split/stage-1.gguf") size2=$(stat -c %s "$tmp/model/split/stage-2.gguf")

check "network up" bash "$netemu" up "$tmp/spec"
for b in a b c; do bash "$netemu" mount "$b" "$tmp/home/$b" "$tmp/home/view"; done

# nrun NAME PLAN: the 3 boards, HOME the board's own; rank 0's stderr in NAME.out
nrun() {
    env -u XDG_CACHE_HOME -u SHARDPIPE_HASH_CACHE HOME="$tmp/home/view" timeout -k 5 90 bash "$netemu" mpiexec -n 3 \
        "$bin" run --plan "$2" --prompt "Once upon a time" -n 24 --threads 1 --tokens-out "$tmp/$1.tok" \
        </dev/null >"$tmp/$1.out" 2>&1
}
sent() { sed -n "s/.*shardpipe run: rank $2 (host [^)]*): sent \([0-9]*\) bytes in .*/\1/p" "$tmp/$1.out"; }
# bytes the switch delivered to a board so far
down_bytes() { bash "$netemu" stats | awk -v p="$ns-$1" '$2 == p { print $9 }'; }
entry() { ls "$tmp/home/$1/.cache/shardpipe/shards/"*.gguf 2>/dev/null; }

nrun full "$tmp/plan.yaml"
check "every board with the model file: the run starts" test -s "$tmp/full.tok"
check "and nothing is sent" sh -c "! grep -q 'sending stage' '$tmp/full.out'"
check "nothing is cached" test -z "$(entry b)$(entry c)"

# from now on only board a has the model
bash "$netemu" mount b "$tmp/empty" "$tmp/model"
bash "$netemu" mount c "$tmp/empty" "$tmp/model"
check "board b does not see the model file" sh -c "! bash '$netemu' exec b test -e '$tmp/model/stories260K.gguf'"
check "board a does" bash "$netemu" exec a test -e "$tmp/model/stories260K.gguf"

b0=$(down_bytes b) c0=$(down_bytes c)
nrun first "$tmp/plan.yaml"
r=$?
b1=$(down_bytes b) c1=$(down_bytes c)
check "only board a has the model: the run starts (exit $r)" test $r = 0
check "rank 0 sends stage 1's shard to rank 1: $size1 bytes, split's file ($(sent first 1))" test "$(sent first 1)" = "$size1"
check "and stage 2's to rank 2: $size2 bytes ($(sent first 2))" test "$(sent first 2)" = "$size2"
check "with progress and a total" grep -Eq "shards sent: $((size1 + size2)) bytes to 2 boards in [0-9.]+ s, [0-9.]+ MB/s" \
    "$tmp/first.out"
check "b's cache entry is split's stage-1.gguf" cmp -s "$(entry b)" "$tmp/model/split/stage-1.gguf"
check "c's is stage-2.gguf" cmp -s "$(entry c)" "$tmp/model/split/stage-2.gguf"
check "board a caches nothing" test -z "$(ls "$tmp/home/a/.cache/shardpipe/shards" 2>/dev/null)"
check "tokens bit-identical to the run with the file everywhere" cmp -s "$tmp/first.tok" "$tmp/full.tok"

nrun second "$tmp/plan.yaml"
r=$?
b2=$(down_bytes b) c2=$(down_bytes c)
check "the second start runs (exit $r)" test $r = 0
check "and sends nothing" sh -c "! grep -Eq 'sending stage|shards sent' '$tmp/second.out'"
check "b and c run from their caches" \
    sh -c "grep -q 'rank 1 (host .*) runs stage 1 from its shard cache' '$tmp/second.out' && grep -q 'rank 2 (host .*) runs stage 2 from its shard cache' '$tmp/second.out'"
check "same tokens" cmp -s "$tmp/second.tok" "$tmp/full.tok"

# the switch: what reached each board in the first run beyond the second
# (the same run otherwise) is its shard plus frame headers, not the other's;
# the rest of a run's traffic varies by a few KB from run to run (measured:
# up to 7 KB), the headers add under 1% at this MTU
extra_b=$((b1 - b0 - (b2 - b1))) extra_c=$((c1 - c0 - (c2 - c1)))
echo "switch: board b got $((b1 - b0)) bytes in the first run, $((b2 - b1)) in the second; board c $((c1 - c0)), $((c2 - c1))"
within() { awk -v x="$1" -v s="$2" 'BEGIN { exit !(x >= 0.97 * s - 16384 && x <= 1.1 * s + 65536) }'; }
check "the switch delivered b $extra_b more bytes: its shard ($size1) + headers" within "$extra_b" "$size1"
check "and c $extra_c more: its shard ($size2) + headers" within "$extra_c" "$size2"

# the plan `split` wrote: the boards lack stage-K.gguf, and the cache
# entries (named by the same content hash) serve it
nrun split "$tmp/model/split/plan.yaml"
check "a split plan whose files the boards lack runs (exit $?)" test -s "$tmp/split.tok"
check "from the same cache entries, sending nothing" \
    sh -c "grep -q 'rank 1 (host .*) runs stage 1 from its shard cache' '$tmp/split.out' && ! grep -q 'sending stage' '$tmp/split.out'"
check "same tokens" cmp -s "$tmp/split.tok" "$tmp/full.tok"

HOME=$tmp/home/view bash "$netemu" exec c "$bin" cache list >"$tmp/list.out" 2>&1
check "cache list on board c shows its entry" grep -Eq "layers 3-4 \+ head of stories260K\.gguf" "$tmp/list.out"

# one bit of a tensor in c's entry: refused by name, nothing loads
e=$(entry c)
size=$(stat -c %s "$e")
byte=$(od -An -tu1 -j $((size - 100)) -N1 "$e" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 64)))" | dd of="$e" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
nrun damaged "$tmp/plan.yaml"
r=$?
check "a damaged cached shard is refused (exit $r)" test $r -ne 0
check "by rank, path on the board, hashes and the fix" grep -Eq \
    "rank 2 \(host [^)]*\): cached shard $tmp/home/view/.cache/shardpipe/shards/$(basename "$e") has content hash [0-9a-f]{16} but the plan's model gives $(basename "$e" .gguf) .*shardpipe cache clear" \
    "$tmp/damaged.out"
check "nothing loads (no tokens, no summary, nothing sent)" \
    sh -c "test ! -e '$tmp/damaged.tok' && ! grep -Eq '== shardpipe run|sending stage' '$tmp/damaged.out'"
finish
