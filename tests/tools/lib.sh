# lib.sh - helpers for the shell tests (sourced; it lives in tests/tools so
# ctest does not take it for a test). Each test script calls `check NAME CMD...` and ends
# with `finish`, which prints "N passed, N failed" and sets the exit code.
passed=0
failed=0
skipped=0

check() {
    local name=$1
    shift
    if "$@"; then
        echo "PASS: $name"
        passed=$((passed + 1))
    else
        echo "FAIL: $name"
        failed=$((failed + 1))
    fi
}

skip() {
    echo "SKIP: $1"
    skipped=$((skipped + 1))
}

finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}

# mpiexec with a hard bound, so that a hang fails the test instead of CI
mpirun_bounded() {
    local secs=$1
    shift
    timeout -k 5 "$secs" mpiexec "$@"
}

# write_plan FILE MODEL CONTEXT SEQUENCES MICRO_BATCHES WIRE "rank:first:last" ...
# (prefill_chunk is $PREFILL_CHUNK, default 32)
write_plan() {
    local file=$1 model=$2 ctx=$3 seqs=$4 mbs=$5 wire=$6
    shift 6
    {
        echo "model:"
        echo "  path: $model"
        echo "context: $ctx"
        echo "batching:"
        echo "  sequences: $seqs"
        echo "  micro_batches: $mbs"
        echo "  prefill_chunk: ${PREFILL_CHUNK:-32}"
        echo "wire: $wire"
        echo "stages:"
        for st in "$@"; do
            IFS=: read -r rank first last <<<"$st"
            echo "  - rank: $rank"
            echo "    host: test-$rank"
            echo "    layers: [$first, $last]"
        done
    } >"$file"
}

# number of MPI ranks a plan needs: highest rank + 1
plan_ranks() {
    local max=0 r
    for r in $(grep -E '^\s*- rank:' "$1" | sed 's/.*rank: *//'); do [ "$r" -gt "$max" ] && max=$r; done
    echo $((max + 1))
}
