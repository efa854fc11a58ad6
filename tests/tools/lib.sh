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

# model_for NAME: a model file for a test that needs only *a* model (set
# $bin, $shared, $src and $tmp first). stories260K ships in models/; the
# tiny-random-* models come from ../shared when it is there, else a random
# model of their shape and type is written with synth (with stories260K's
# 512-token vocabulary), so a fresh clone runs the same checks.
model_for() {
    case $1 in
    stories260K) echo "$src/models/stories260K.gguf" ;;
    tiny-random-q8_0 | tiny-random-q4_0)
        if [ -r "$shared/models/$1.gguf" ]; then
            echo "$shared/models/$1.gguf"
            return
        fi
        local out="$tmp/$1.gguf"
        [ -r "$out" ] || "$bin" synth -o "$out" --shape stories15M --type "${1#tiny-random-}" \
            --vocab-from "$src/models/stories260K.gguf" >/dev/null 2>&1 || return 1
        echo "$out"
        ;;
    *) return 1 ;;
    esac
}

# model_vocab FILE: its vocabulary size (from `shardpipe inspect`).
model_vocab() {
    "$bin" inspect "$1" | sed -n 's/^tokenizer: .*, \([0-9]*\) tokens$/\1/p'
}

# fails_with RC TEXT CMD...: CMD exits with status RC and prints TEXT (a fixed
# string) on stderr; use as `check NAME fails_with 1 "message" cmd args`.
fails_with() {
    local want_rc=$1 want_msg=$2 err rc
    shift 2
    err=$("$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq "$want_rc" ] || { echo "  '$*' exited $rc, expected $want_rc: $err"; return 1; }
    grep -qF -- "$want_msg" <<<"$err" || { echo "  '$*': stderr lacks '$want_msg': $err"; return 1; }
}
