#!/usr/bin/env bash
# split.sh - `shardpipe split` end to end on the shipped stories260K and a
# 3-stage plan: every shard file passes `inspect` (runs as its layers), the
# written plan passes `check`, `run` over the shard files (each stage opens
# its own) gives the tokens of the whole file, a shard file swapped for
# another stage's or changed in one byte is refused by name, and bad input
# is refused by name. test_split.c tests the shards bit for bit.
# Usage: bash split.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$3
. "$src/tests/tools/lib.sh"
tmp=$(mktemp -d /tmp/sp_split_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
quiet() { "$@" >"$tmp/last.out" 2>&1; }

plan=$src/partitions/stories260K-3stages.yaml
check "split writes 3 shards and a plan" quiet "$bin" split --plan "$plan" -o "$tmp/out"
for k in 0 1 2; do
    check "stage-$k.gguf exists" test -s "$tmp/out/stage-$k.gguf"
    "$bin" inspect "$tmp/out/stage-$k.gguf" >"$tmp/inspect$k.out" 2>&1
    check "stage-$k.gguf passes inspect" grep -q '^runs: yes' "$tmp/inspect$k.out"
    check "stage-$k.gguf says which layers it holds" grep -q '^shard: .*of stories260K.gguf' "$tmp/inspect$k.out"
    check "the plan runs stage $k from its shard" grep -q "model: stage-$k.gguf" "$tmp/out/plan.yaml"
done
check "stage 0 holds the embedding" grep -q '^shard: *layers 0-1 + embedding ' "$tmp/inspect0.out"
check "stage 1 holds layer 2 only" grep -q '^shard: *layers 2-2 of' "$tmp/inspect1.out"
check "stage 2 holds the head" grep -q '^shard: *layers 3-4 + head ' "$tmp/inspect2.out"
check "stage 1's shard has no token embedding" grep -Eq '^token_embd +- ' "$tmp/inspect1.out"
full=$(stat -c %s "$src/models/stories260K.gguf")
s1=$(stat -c %s "$tmp/out/stage-1.gguf")
check "a middle shard is well under the whole file ($s1 of $full bytes)" test "$s1" -lt $((full / 2))
check "the shards' plan passes check" quiet "$bin" check "$tmp/out/plan.yaml" --world-size 3
check "a shard's tokenizer is the model's" \
    test "$("$bin" tokenize -m "$tmp/out/stage-0.gguf" -p 'Once upon a time' 2>&1)" = \
         "$("$bin" tokenize -m "$src/models/stories260K.gguf" -p 'Once upon a time' 2>&1)"

# refusals, each naming the file and what to do
if quiet "$bin" generate -m "$tmp/out/stage-1.gguf" -p "Once" -n 2; then r=0; else r=1; fi
check "generate on a shard fails" test $r = 1
check "and says it is a shard" grep -q "stage-1.gguf is a shard of layers 2-2 (shardpipe split) and cannot run" \
    "$tmp/last.out"
if quiet "$bin" split --plan "$tmp/out/plan.yaml" -o "$tmp/again"; then r=0; else r=1; fi
check "the shards' plan is not split again" test $r = 1
check "with the reason" grep -q "already runs its own file" "$tmp/last.out"
: >"$tmp/file"
if quiet "$bin" split --plan "$plan" -o "$tmp/file"; then r=0; else r=1; fi
check "an output that is a file is refused" test $r = 1
check "naming it" grep -q "$tmp/file: cannot create the output folder" "$tmp/last.out"
if quiet "$bin" split --plan "$plan"; then r=0; else r=1; fi
check "split without -o is a usage error" test $r = 1

# the written plan runs each stage from its own shard file
if command -v mpiexec >/dev/null; then
    mpirun_bounded 120 -n 3 "$bin" run --plan "$tmp/out/plan.yaml" --prompt "Once upon a time" -n 16 \
        --tokens-out "$tmp/split.tok" >"$tmp/split.txt" 2>/dev/null
    mpirun_bounded 120 -n 3 "$bin" run --plan "$plan" --prompt "Once upon a time" -n 16 --tokens-out "$tmp/full.tok" \
        >"$tmp/full.txt" 2>/dev/null
    check "run over the shard files gives the whole file's tokens" cmp -s "$tmp/split.tok" "$tmp/full.tok"
    check "and text" cmp -s "$tmp/split.txt" "$tmp/full.txt"
    check "and some text" test -s "$tmp/full.txt"
    # refusals: another stage's shard, and a shard whose bytes differ
    cp -r "$tmp/out" "$tmp/swap"
    cp "$tmp/out/stage-2.gguf" "$tmp/swap/stage-1.gguf"
    if mpirun_bounded 120 -n 3 "$bin" run --plan "$tmp/swap/plan.yaml" --prompt "Once" -n 4 </dev/null \
        >"$tmp/swap.out" 2>&1; then r=0; else r=1; fi
    check "stage 2's shard in stage 1's place is refused" test $r = 1
    check "by name" grep -q "rank 1 (host .*) could not load its shard: $tmp/swap/stage-1.gguf is a shard of layers 3-4" \
        "$tmp/swap.out"
    cp "$tmp/out/stage-1.gguf" "$tmp/swap/stage-1.gguf"
    size=$(stat -c %s "$tmp/swap/stage-1.gguf")
    # one bit of the last tensor's data (the file ends with tensor bytes)
    byte=$(od -An -tu1 -j $((size - 100)) -N1 "$tmp/swap/stage-1.gguf" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 64)))" | dd of="$tmp/swap/stage-1.gguf" bs=1 seek=$((size - 100)) conv=notrunc \
        2>/dev/null
    if mpirun_bounded 120 -n 3 "$bin" run --plan "$tmp/swap/plan.yaml" --prompt "Once" -n 4 </dev/null \
        >"$tmp/flip.out" 2>&1; then r=0; else r=1; fi
    check "a shard with one weight bit changed is refused" test $r = 1
    check "naming the shard and the coordinator's file" \
        grep -q "(stage 1) has a different model file at $tmp/swap/stage-1.gguf than the coordinator's .*stories260K.gguf" \
        "$tmp/flip.out"
else
    skip "no mpiexec: the shards' plan is not run"
fi
finish
