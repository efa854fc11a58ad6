#!/usr/bin/env bash
# shutdown.sh - `shardpipe run` always ends, over MPI's TCP transport too,
# where MPI_Finalize alone hangs in about half of the runs (see
# src/cluster/comm.c). 20 successful 3-rank runs must each exit 0 within
# 60 s, and 5 runs that fail validation must each exit 1 within 60 s.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=$(model_for stories260K)
if [ ! -r "$model" ]; then
    skip "shutdown: $model is missing (needs ../shared)"
    finish
    exit
fi
export MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp,self SHARDPIPE_DEBUG_SHUTDOWN=1
write_plan "$tmp/ok.yaml" "$model" 64 2 2 f32 "0:0:1" "1:2:3" "2:4:4"
write_plan "$tmp/bad.yaml" "$model" 64 2 2 f32 "0:0:1" "1:3:4" # layer 2 in no stage
ok=0 rescued=0
for i in $(seq 1 20); do
    if mpirun_bounded 60 -n 3 "$bin" run --plan "$tmp/ok.yaml" --prompt "Once upon a time" -n 8 -q \
        </dev/null >"$tmp/out" 2>&1; then ok=$((ok + 1)); else echo "run $i failed:"; cat "$tmp/out"; fi
    grep -q "completing the exit handshake" "$tmp/out" && rescued=$((rescued + 1))
done
echo "20 runs over TCP: $ok exited 0; the finalize watchdog completed the exit in $rescued of them"
check "20 of 20 runs over TCP exit 0 without hanging" test "$ok" -eq 20
bad=0
for i in $(seq 1 5); do
    mpirun_bounded 60 -n 2 "$bin" run --plan "$tmp/bad.yaml" --prompt "x" -n 4 -q </dev/null >"$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 1 ] && grep -q "layers 2..2 are in no stage\|layer 2 is in no stage\|in no stage" "$tmp/out" && bad=$((bad + 1))
    [ $rc -eq 124 ] && echo "invalid plan run $i hung"
done
check "5 of 5 invalid-plan runs over TCP exit 1 with the error" test "$bad" -eq 5
finish
