#!/usr/bin/env bash
# run_errors.sh - `shardpipe run` refuses bad set-ups before loading weights
# and ends a broken job within a bounded time: every case must exit non-zero
# on all ranks (mpiexec's exit code), within its time bound, with a message
# naming the problem.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
model=$(model_for stories260K)
export SHARDPIPE_HASH_CACHE=$tmp/hash-cache # the shard hashes of this test only
if [ ! -r "$model" ]; then
    skip "run errors: $model is missing (needs ../shared)"
    finish
    exit
fi

# expect_fail NAME SECONDS PATTERN mpiexec-args...
expect_fail() {
    local name=$1 secs=$2 pattern=$3
    shift 3
    local t0=$SECONDS
    mpirun_bounded "$secs" "$@" </dev/null >"$tmp/out" 2>&1
    local rc=$? dt=$((SECONDS - t0))
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && grep -q -- "$pattern" "$tmp/out"; then
        echo "PASS: $name (exit $rc after ${dt}s)"
        passed=$((passed + 1))
    else
        echo "FAIL: $name (exit $rc after ${dt}s; expected non-zero and '$pattern'); output:"
        sed 's/^/    /' "$tmp/out" | head -20
        failed=$((failed + 1))
    fi
}

write_plan "$tmp/two.yaml" "$model" 64 1 1 f32 "0:0:2" "1:3:4"
write_plan "$tmp/gap.yaml" "$model" 64 1 1 f32 "0:0:1" "1:3:4"
write_plan "$tmp/overlap.yaml" "$model" 64 1 1 f32 "0:0:2" "1:2:4"
write_plan "$tmp/outside.yaml" "$model" 64 1 1 f32 "0:0:2" "1:3:7"
write_plan "$tmp/middle0.yaml" "$model" 64 1 1 f32 "1:0:1" "0:2:3" "2:4:4"
write_plan "$tmp/nomodel.yaml" "$tmp/missing.gguf" 64 1 1 f32 "0:0:2" "1:3:4"
write_plan "$tmp/bigctx.yaml" "$model" 4096 1 1 f32 "0:0:2" "1:3:4"
write_plan "$tmp/badsha.yaml" "$model" 64 1 1 f32 "0:0:2" "1:3:4"
sed -i '/^  path: /a\  sha256: 0000000000000000000000000000000000000000000000000000000000000000' "$tmp/badsha.yaml"

expect_fail "more ranks than stages" 60 "mpiexec started 3 ranks" -n 3 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4
expect_fail "fewer ranks than stages" 60 "mpiexec started 1 rank" -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4
expect_fail "gap between stages" 60 "in no stage" -n 2 "$bin" run --plan "$tmp/gap.yaml" --prompt x -n 4
expect_fail "overlapping stages" 60 "overlap" -n 2 "$bin" run --plan "$tmp/overlap.yaml" --prompt x -n 4
expect_fail "layers outside the model" 60 "5 layers" -n 2 "$bin" run --plan "$tmp/outside.yaml" --prompt x -n 4
expect_fail "rank 0 as a middle stage" 60 "rank 0 is the coordinator" -n 3 "$bin" run --plan "$tmp/middle0.yaml" --prompt x -n 4
expect_fail "model file missing" 60 "missing.gguf" -n 2 "$bin" run --plan "$tmp/nomodel.yaml" --prompt x -n 4
expect_fail "model file differs from model.sha256" 60 "has sha256 .*, but the plan expects 0000" -n 2 "$bin" run --plan "$tmp/badsha.yaml" --prompt x -n 4
expect_fail "context beyond the model's" 60 "context" -n 2 "$bin" run --plan "$tmp/bigctx.yaml" --prompt x -n 4
expect_fail "prompt + tokens beyond the context" 60 "does not fit the plan's context" -n 2 "$bin" run --plan "$tmp/two.yaml" --prompt "Once upon a time" -n 100
printf '{"prompt": "ok"}\n{"text": "no prompt key"}\n' >"$tmp/bad.jsonl"
expect_fail "malformed prompts file names file:line" 60 "bad.jsonl:2" -n 2 "$bin" run --plan "$tmp/two.yaml" --prompts "$tmp/bad.jsonl" -n 4

# a board with a different model file (MPMD launch: rank 1 names its own copy)
"$bin" synth -o "$tmp/other.gguf" --shape stories260K --type f32 --vocab-from "$model" 2>/dev/null
expect_fail "a rank with a different model is refused by name and the path it opened" 60 \
    "rank 1 (host .*) (stage 1) has a different model file at $tmp/other.gguf than the coordinator's $model" \
    -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 : -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 --model "$tmp/other.gguf"
# one corrupted float in the middle of blk.4.ffn_down (bytes 10000-10003 of
# its 44032; stage 1 holds layers 3-4): the 3 x 4 KiB samples per tensor of
# the old identity missed it, every byte of the shard is hashed now
cp "$model" "$tmp/corrupt.gguf"
printf '\377\377\377\177' | dd of="$tmp/corrupt.gguf" bs=1 seek=$((1097056 + 10000)) conv=notrunc 2>/dev/null
expect_fail "a copy corrupted in the middle of a layer is refused" 60 \
    "rank 1 (host .*) (stage 1) has a different model file at $tmp/corrupt.gguf" \
    -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 : -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 --model "$tmp/corrupt.gguf"
# ... also the second time, when rank 0's hash comes from the cache
expect_fail "... also with the hashes cached" 60 "rank 1 (host .*) (stage 1) has a different model file at $tmp/corrupt.gguf" \
    -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 : -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 --model "$tmp/corrupt.gguf"
check "the hash cache has a line per file and shard" test "$(wc -l <"$SHARDPIPE_HASH_CACHE")" -ge 3
# (a rank without any model file gets its shard from rank 0: tests/ship.sh)
printf 'not a model' >"$tmp/notgguf.gguf"
expect_fail "a rank whose model file cannot be read is named" 60 "rank 1 (host .*) could not load its shard" \
    -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 : -n 1 "$bin" run --plan "$tmp/two.yaml" --prompt x -n 4 --model "$tmp/notgguf.gguf"

# a stage that stops answering (SIGSTOP) ends the job within --timeout
if big=$(model_for tiny-random-q8_0); then
    write_plan "$tmp/three.yaml" "$big" 256 4 2 f32 "0:0:1" "1:2:3" "2:4:5"
    for i in $(seq 1 100); do echo "{\"prompt\": \"The quick brown fox number $i\"}"; done >"$tmp/many.jsonl"
    rank_pid() { # the process of MPI rank $1 of this test
        local p
        for p in $(pgrep -f "$tmp/three.yaml"); do
            tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PMI_RANK=$1" && echo "$p"
        done
    }
    rank_worker() { # the process that runs rank $1 (its supervisor, see supervise.c, is the parent)
        local p q
        for p in $(rank_pid "$1"); do
            q=$(ps -o ppid= -p "$p" | tr -d ' ')
            grep -q "$tmp/three.yaml" "/proc/$q/cmdline" 2>/dev/null && echo "$p"
        done
    }
    # run_and_signal OUT TIMEOUT FINDER SIGNAL: the 100-prompt job with
    # SIGNAL sent to rank 1's process(es) (FINDER 1) once it runs (on a loaded
    # machine mpiexec may take a while to start the ranks); sets $victim
    run_and_signal() {
        local out=$1 timeout=$2 finder=$3 sig=$4 i
        (mpirun_bounded 60 -n 3 "$bin" run --plan "$tmp/three.yaml" --prompts "$tmp/many.jsonl" -n 100 --ignore-eos \
            -q -o /dev/null --timeout "$timeout" </dev/null >"$out" 2>&1; echo "rc=$?" >>"$out") &
        victim=
        for i in $(seq 1 40); do
            sleep 0.25
            victim=$($finder 1)
            [ -n "$victim" ] && [ $i -ge 8 ] && break
        done
        [ -n "$victim" ] && kill -"$sig" $victim
        wait
    }
    t0=$SECONDS
    run_and_signal "$tmp/hang.out" 4 rank_pid STOP
    dt=$((SECONDS - t0))
    echo "hung stage: rank 1 = pid(s) $(echo ${victim:-not found}); job ended after ${dt}s: $(grep -m1 'no answer' "$tmp/hang.out")"
    grep -q "no answer" "$tmp/hang.out" || { echo "--- the job's output:"; tail -20 "$tmp/hang.out"; }
    check "a hung stage ends the job within 4 s timeout + 10 s, naming rank 1" \
        grep -q "no answer from .*rank 1 (host" "$tmp/hang.out"
    check "... with a non-zero exit" grep -q "rc=[1-9]" "$tmp/hang.out"
    check "... in bounded time" test "$dt" -le 16
    [ -n "$victim" ] && kill -9 $victim 2>/dev/null

    # a rank killed with kill -9 (or by the OOM killer): hydra ends every
    # other rank at once, so the rank's supervisor names it (rank, host,
    # stage) before hydra's banner
    run_and_signal "$tmp/kill.out" 30 rank_worker KILL
    echo "killed: rank 1 = pid ${victim:-not found}: $(grep -m1 'was killed' "$tmp/kill.out")"
    check "a rank killed with kill -9 is named with its host and stage" \
        grep -q "rank 1 (host .*) (stage 1, layers 2-3) was killed by signal 9" "$tmp/kill.out"
    check "... with a non-zero exit" grep -q "rc=[1-9]" "$tmp/kill.out"
    sleep 1
    check "... and no process of the job is left" test -z "$(pgrep -f "$tmp/three.yaml")"
else
    skip "hung stage: synth could not write a stand-in for tiny-random-q8_0"
fi
finish
