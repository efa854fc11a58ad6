#!/usr/bin/env bash
# run.sh - build the libFuzzer targets (clang, ASan + UBSan) in their own
# build folder and run each for a while, one at a time.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; all targets)
#   FUZZ_BUILD_DIR=dir   build folder (default build-fuzz beside the sources)
#   SP_SHARED=dir        shared models (default ../shared): stories260K's vocabulary and the seeds
#   FUZZ_ARGS="..."      more libFuzzer options for every target (e.g. -jobs=2 -workers=2)
# Corpora grow in FUZZ_BUILD_DIR/corpus/TARGET (kept between runs: a second
# run starts where the first stopped), crashes go to FUZZ_BUILD_DIR/crashes/,
# each run's summary is appended to FUZZ_BUILD_DIR/history.log.
# Exit 0 when no target crashed; else 1, with each reproducer's path and the
# command that replays it.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gguf tokenizer plan profile cluster prompts server)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
shared=${SP_SHARED:-$src/../shared}

if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    "$src/scripts/install-packages.sh" clang libclang-rt-14-dev || exit 1
fi

echo "== building the fuzz targets in $build (clang, ASan + UBSan)"
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DSHARDPIPE_FUZZ=ON -DSHARDPIPE_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null || exit 1
cmake --build "$build" --target fuzzers -j2 >"$build/build.log" 2>&1 || { tail -30 "$build/build.log"; exit 1; }
bin=$build/tests/fuzz

# Seeds: the checked-in ones, the repository's plans, profiles and cluster
# files (valid and invalid), and tiny GGUF models written by fuzz_seeds.
seed() { # seed TARGET FILE...
    local dir=$build/corpus/$1
    shift
    mkdir -p "$dir"
    for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"; done
}
for t in "${targets[@]}"; do mkdir -p "$build/corpus/$t"; done
[ -d "$src/tests/fuzz/corpus" ] && for d in "$src"/tests/fuzz/corpus/*/; do seed "$(basename "$d")" "$d"*; done
seed plan "$src"/partitions/*.yaml "$src"/tests/plans/invalid/*.yaml
seed profile "$src"/configs/boards/*.yaml "$src"/tests/profiles/*.yaml "$src"/tests/profiles/invalid/[!c]*.yaml
seed cluster "$src"/configs/clusters/*.yaml "$src"/tests/profiles/invalid/cluster-*.yaml
vocab=$shared/models/stories260K.gguf
[ -r "$vocab" ] || { echo "note: $vocab is missing: seeds and the tokenizer use a synthetic byte vocabulary"; vocab=; }
mkdir -p "$build/corpus/gguf"
"$bin/fuzz_seeds" "$build/corpus/gguf" $vocab || exit 1
export SP_SHARED=$shared
# The readers take paths: every input is a file in a scratch folder, and the
# round trips write files with fsync. In memory, that costs microseconds.
# libFuzzer ends a target with _exit, so its own scratch folder stays: put
# them all in one folder of this run, removed at the end.
shm=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=/dev/shm
TMPDIR=$(mktemp -d "${TMPDIR:-$shm}/sp_fuzz_run.XXXXXX") || exit 1
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

mkdir -p "$build/crashes"
declare -A max_len=([gguf]=65536 [tokenizer]=4096 [plan]=8192 [profile]=8192 [cluster]=8192 [prompts]=4096 [server]=4096)
failed=0
summary=""
for t in "${targets[@]}"; do
    exe=$bin/fuzz_$t
    [ -x "$exe" ] || { echo "no fuzz target '$t' (have: $(ls "$bin" | sed -n 's/^fuzz_//p' | grep -v seeds | tr '\n' ' '))"; failed=1; continue; }
    log=$build/fuzz_$t.log
    echo "== fuzz_$t for ${secs}s (log: $log)"
    # shellcheck disable=SC2086
    "$exe" "$build/corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$t]:-4096}" \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
    units=$(ls "$build/corpus/$t" | wc -l)
    summary+=$(printf '%-10s %12s execs %8s/s  %-10s corpus %5s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-}" "$units" \
        "$([ $rc -eq 0 ] && echo ok || echo CRASH)")$'\n'
    if [ $rc -ne 0 ]; then
        failed=1
        echo "FAIL: fuzz_$t stopped with status $rc:"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|FUZZ CHECK FAILED|.*runtime error)' "$log" | head -5
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$repro" ]; then
            echo "  reproducer: $repro"
            echo "  replay:     $exe $repro"
        else
            tail -20 "$log"
        fi
    fi
done
echo "== summary (${secs}s per target)"
printf '%s' "$summary"
# every run's lines, dated, for totals over many runs
printf '%s' "$summary" | sed "s/^/$(date -u +%FT%TZ) ${secs}s /" >>"$build/history.log"
exit $failed
