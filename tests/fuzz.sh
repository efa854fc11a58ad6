#!/usr/bin/env bash
# fuzz.sh - the libFuzzer targets of tests/fuzz (GGUF reader, tokenizer,
# plan, profile, cluster and prompts readers, the server's request parser;
# ASan + UBSan), each for
# SP_FUZZ_SECONDS (default 16) on every CI run: fails on any crash, leak,
# timeout or broken invariant, printing the reproducer's path. Builds with
# clang into BUILD/fuzz (beside the shardpipe binary), apart from the gcc
# build. Longer runs: tests/fuzz/run.sh SECONDS (tests/fuzz/README.md).
# Usage: bash fuzz.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2 src=$3
if ! command -v clang >/dev/null 2>&1; then
    echo "SKIP: fuzz: clang is not installed, so the libFuzzer targets were not built or run; apt-get install clang libclang-rt-14-dev (scripts/install-test-deps.sh does)"
    exit 0
fi
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "SKIP: fuzz: clang's libFuzzer runtime is missing, so the fuzz targets were not built or run; apt-get install libclang-rt-14-dev (scripts/install-test-deps.sh does)"
    exit 0
fi
[ -d "$shared/models" ] || echo "note: $shared/models is missing: the fuzz targets use a synthetic vocabulary"
FUZZ_BUILD_DIR=$(dirname "$bin")/fuzz SP_SHARED=$shared exec bash "$src/tests/fuzz/run.sh" "${SP_FUZZ_SECONDS:-16}"
