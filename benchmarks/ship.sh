#!/usr/bin/env bash
# ship.sh - how fast rank 0 sends boards their shards, against the link:
# the emulated home network (benchmarks/netemu, needs root) with three
# boards a, b, c on 1 Gbit/s links (0.1 ms each way), the TinyLlama-1.1B
# shape (benchmarks/models.sh, TYPE q4_0 by default) in three stages, and
# the model file only on board a (private board views, as
# tests/ship_netemu.sh). It measures
#   1. the link a -> b before each repetition: a plain TCP stream of 200 MiB
#      (benchmarks/netemu/tcpstream.py), the figure the transfers are held
#      against (the median of the repetitions), and MPI's streaming
#      bandwidth (benchmarks/netemu/pingpong.c, 128 MiB in 256 KiB messages),
#      which a loaded machine lowers much more: its ranks poll, taking the
#      cores the userspace switch needs;
#   2. the transfer with b's and c's caches empty, REPS times each way:
#      "parallel" (both boards fed at once, the default) and "serial"
#      (SHARDPIPE_SHIP=serial: b, then c), from rank 0's own lines (bytes,
#      seconds to each board's answer that it has every byte, MB/s);
#   3. the second start (caches full): bytes sent, which must be none.
# Prints a Markdown table. Both flows leave through a's one uplink, so the
# aggregate of both ways is bounded by the same 1 Gbit/s.
#   sudo BUILD=build benchmarks/ship.sh [TYPE] [REPS]      (about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SP=$(realpath "$BUILD/shardpipe")
SHARED=${SHARED:-$(realpath ../shared 2>/dev/null || echo /work/shared)}
TYPE=${1:-q4_0} REPS=${2:-3}
OUT=benchmarks/out
[ "$(id -u)" -eq 0 ] || { echo "ship.sh: needs root (the emulated network)" >&2; exit 1; }
. benchmarks/models.sh
write_tinyllama_model "$SP" "$SHARED" "$OUT" "$TYPE"
model=$(realpath "$OUT/tinyllama-$TYPE.gguf")

tmp=$(mktemp -d /tmp/sp_shipbench_XXXXXX)
export NETEMU_NAME=netemu-shipbench NETEMU_SWITCH=$tmp/switch
netemu=benchmarks/netemu/netemu.sh
trap 'bash "$netemu" down >/dev/null 2>&1; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/model" "$tmp/empty" "$tmp/home/a" "$tmp/home/b" "$tmp/home/c" "$tmp/home/view"
ln "$model" "$tmp/model/model.gguf" 2>/dev/null || cp "$model" "$tmp/model/model.gguf"
cat >"$tmp/plan.yaml" <<EOF
model:
  path: $tmp/model/model.gguf
context: 64
batching: {sequences: 1, micro_batches: 1, prefill_chunk: 16}
stages:
  - {rank: 0, host: a, layers: [0, 7], threads: 1}
  - {rank: 1, host: b, layers: [8, 14], threads: 1}
  - {rank: 2, host: c, layers: [15, 21], threads: 1}
EOF
cat >"$tmp/spec" <<'EOF'
a 198.18.0.1 1gbit 0.1ms 0 0 0
b 198.18.0.2 1gbit 0.1ms 0 0 0
c 198.18.0.3 1gbit 0.1ms 0 0 0
EOF
bash "$netemu" up "$tmp/spec" 2>/dev/null
for b in a b c; do bash "$netemu" mount "$b" "$tmp/home/$b" "$tmp/home/view"; done
bash "$netemu" mount b "$tmp/empty" "$tmp/model"
bash "$netemu" mount c "$tmp/empty" "$tmp/model"

mpicc -O2 -o "$tmp/pingpong" benchmarks/netemu/pingpong.c
links=() mpis=()
measure_link() {
    local pp tcp
    bash "$netemu" exec b python3 benchmarks/netemu/tcpstream.py recv 5999 200 >"$tmp/tcp.json" &
    bash "$netemu" exec a python3 benchmarks/netemu/tcpstream.py send 198.18.0.2 5999 200
    wait
    links+=("$(sed -n 's/.*"mbit_s": \([0-9.]*\).*/\1/p' "$tmp/tcp.json")")
    # (it has hung on a loaded machine: bounded, and then left out)
    pp=$(timeout -k 5 60 bash "$netemu" mpiexec -n 2 -hosts a,b "$tmp/pingpong" -l 20 -b 128 -r 3 </dev/null 2>/dev/null) || pp=
    mpis+=("$(echo "$pp" | sed -n 's/.*"bandwidth_mbit_s": \([0-9.]*\).*/\1/p')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# start NAME [env...]: one start of `run` (one token), rank 0's stderr in NAME.err
start() {
    local name=$1
    shift
    env -u XDG_CACHE_HOME -u SHARDPIPE_HASH_CACHE HOME="$tmp/home/view" "$@" bash "$netemu" mpiexec -n 3 \
        "$SP" run --plan "$tmp/plan.yaml" --prompt "Once upon a time" -n 1 -q </dev/null >/dev/null 2>"$tmp/$name.err"
}
row() { # MODE REP FILE: one row per board and the total (Mbit/s kept for the ratios)
    local mode=$1 rep=$2 f=$3
    sed -n 's/.*shardpipe run: \(rank [0-9]\) (host [^)]*): sent \([0-9]*\) bytes in \([0-9.]*\) s, \([0-9.]*\) MB\/s/\1 \2 \3 \4/p' "$f" |
        while read -r _ r bytes s mbs; do echo "$mode $rep rank_$r $bytes $s $mbs"; done
    sed -n 's/.*shards sent: \([0-9]*\) bytes to 2 boards in \([0-9.]*\) s, \([0-9.]*\) MB\/s.*/\1 \2 \3/p' "$f" |
        while read -r bytes s mbs; do echo "$mode $rep both $bytes $s $mbs"; done
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/rows"
for rep in $(seq "$REPS"); do
    measure_link
    for mode in parallel serial; do
        rm -rf "$tmp/home/b/.cache/shardpipe/shards" "$tmp/home/c/.cache/shardpipe/shards"
        start "$mode-$rep" SHARDPIPE_SHIP=$mode
        row "$mode" "$rep" "$tmp/$mode-$rep.err" >>"$tmp/rows"
    done
done
start again
link=$(median "${links[@]}")
best=$(printf '%s\n' "${links[@]}" | sort -g | tail -1)

echo "shard transfer, TinyLlama-1.1B shape ($TYPE, $(stat -c %s "$model") bytes), 3 boards on emulated 1 Gbit/s links,"
echo "model only on board a; $(nproc) cores, load $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "link a -> b before each repetition: TCP stream of 200 MiB ${links[*]} Mbit/s (median $link, best $best);"
echo "MPI ping-pong stream of 128 MiB in 256 KiB messages: ${mpis[*]} Mbit/s (median $(median ${mpis[*]}); a"
echo "missing figure is a ping-pong that hung and was stopped after 60 s)"
echo
echo "| mode | rep | to | MB | s | MB/s | Mbit/s | of the TCP link (median) |"
echo "|---|---|---|---|---|---|---|---|"
awk -v l="$link" '{ printf "| %s | %s | %s | %.1f | %.2f | %.1f | %.0f | %.0f%% |\n", $1, $2, $3 == "both" ? "**both**" : $3,
    $4 / 1e6, $5, $6, 8 * $6, 100 * 8 * $6 / l }' "$tmp/rows" | sed 's/rank_/rank /'
echo
for mode in parallel serial; do
    # shellcheck disable=SC2046
    mbs=$(median $(awk -v m="$mode" '$1 == m && $3 == "both" { print $6 }' "$tmp/rows"))
    secs=$(median $(awk -v m="$mode" '$1 == m && $3 == "both" { print $5 }' "$tmp/rows"))
    awk -v m="$mode" -v x="$mbs" -v s="$secs" -v l="$link" 'BEGIN {
        printf "%s: both shards in %.2f s, %.1f MB/s = %.0f Mbit/s = %.0f%% of the link (medians)\n", m, s, x, 8 * x, 100 * 8 * x / l }'
done
echo
echo "rank 0's lines, parallel repetition 1:"
grep "shardpipe run: \(sending\|shards\|rank\)" "$tmp/parallel-1.err" | sed 's/^/    /'
if grep -q "sending stage" "$tmp/again.err"; then echo "second start: SENT AGAIN (a bug)"; else
    echo "second start: nothing sent ($(grep -c 'from its shard cache' "$tmp/again.err") boards ran from their caches)"
fi
