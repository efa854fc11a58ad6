#!/usr/bin/env bash
# prefill.sh - prompt chunks chosen by the planner, and what they must not
# change. `shardpipe plan` writes prefill_chunk and the per-length table
# prefill_chunks, and --explain says why (the chunk it picks is the one
# with the least predicted time in the table it prints); a plan's table is
# validated; and prompts run in the table's chunks over 2 and 3 ranks give
# the tokens and bit-identical logits of the same prompts run unchunked
# (one micro-batch per prompt) on one rank, and the planner's plans those of
# the same plan unchunked (its wire is f16, which rounds between stages).
# Usage: bash prefill.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 src=$(cd "$3" && pwd)
. "$src/tests/tools/lib.sh"
diff_tool=$(dirname "$bin")/tests/sp_logits_diff
tmp=$(mktemp -d /tmp/sp_prefill_XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

# a small random Q8_0 model (int8 tiles: a row's result does not depend on
# the rows beside it, so any chunking gives the same bits)
"$bin" synth --shape tiny --layers 6 --ctx 512 -o "$tmp/m.gguf" >/dev/null
quiet() { "$@" >"$tmp/last.out" 2>&1; }

# ---- the planner picks the chunks and the groups ----
# boards too small for the model alone (with buffers for 128-row chunks):
# the plan has at least 2 stages
cluster() { # file boards memory
    {
        echo "name: c$2"
        echo "boards:"
        for i in $(seq 1 "$2"); do
            echo "  - {name: b$i, host: localhost, profile: $src/configs/boards/epyc-2core-ci.yaml, threads: 1, memory: $3}"
        done
        echo "links:"
        echo "  default: {latency: 0.0002, bandwidth: 1e8}"
    } >"$1"
}
cluster "$tmp/two.yaml" 2 2MiB
cluster "$tmp/three.yaml" 3 2MiB
for n in two three; do
    check "plan on the $n-board cluster" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/$n.yaml" \
        --sequences 4 --context 256 --prompt-tokens 200 --explain -o "$tmp/$n-plan.yaml"
    cp "$tmp/last.out" "$tmp/$n.out"
    check "$n: the plan carries prefill_chunk" grep -Eq "^  prefill_chunk: [0-9]+" "$tmp/$n-plan.yaml"
    check "$n: and the table prefill_chunks from 1 token on" grep -Eq "^  prefill_chunks: \{1: [0-9]+" "$tmp/$n-plan.yaml"
    check "$n: the groups chosen are written" grep -Eq "^  micro_batches: [1-4] " "$tmp/$n-plan.yaml"
    check "$n: the plan's comments say why" grep -q "^# smaller chunks fill the pipeline sooner, larger ones run the matmul tiles faster" "$tmp/$n-plan.yaml"
    check "$n: --explain states the trade-off" grep -q "smaller chunks fill the pipeline sooner" "$tmp/$n.out"
    check "$n: the plan passes shardpipe check" quiet "$bin" check "$tmp/$n-plan.yaml"
    # the chosen chunk has the least predicted time of the table printed,
    # the table's rows grow with the prompt, and the groups in the plan are
    # those the explanation names
    check "$n: the chosen chunk is the fastest predicted, the table ascends" python3 - "$tmp/$n.out" "$tmp/$n-plan.yaml" <<'PY'
import re, sys
out, plan = open(sys.argv[1]).read(), open(sys.argv[2]).read()
rows = [l.split() for l in out.splitlines() if re.match(r"^\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+%\s+[\d.]+", l)]
times = {int(r[0]): float(r[5]) for r in rows}
chosen = [int(r[0]) for r in rows if "<-" in r]
table = [tuple(map(int, kv.split(":"))) for kv in re.search(r"prefill_chunks: \{([^}]*)\}", plan).group(1).split(",")]
groups = int(re.search(r"micro_batches: (\d+)", plan).group(1))
named = int(re.search(r"in (\d+) groups? \(micro_batches\)", out).group(1))
print(f"predicted {times}, chosen {chosen}, table {table}, groups {groups} (explained {named})")
ok = (len(chosen) == 1 and len(times) >= 3 and times[chosen[0]] <= min(times.values()) * 1.001 + 1e-4
      and all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(table, table[1:])) and groups == named)
sys.exit(0 if ok else 1)
PY
done
check "--prefill-chunk fixes the chunk" quiet "$bin" plan --model "$tmp/m.gguf" --cluster "$tmp/two.yaml" \
    --context 256 --prefill-chunk 6 -o "$tmp/fixed.yaml"
check "a fixed chunk writes no table" bash -c "grep -q '^  prefill_chunk: 6 ' '$tmp/fixed.yaml' && ! grep -q prefill_chunks '$tmp/fixed.yaml'"

# ---- the table is validated ----
bad_plan() { # file batching-lines
    printf 'model:\n  path: %s\ncontext: 256\nbatching:\n%s\nstages:\n  - rank: 0\n    layers: [0, 5]\n' "$tmp/m.gguf" "$2" >"$1"
}
bad_plan "$tmp/bad1.yaml" "  prefill_chunk: 8
  prefill_chunks: {1: 4, 50: 16}"
"$bin" check "$tmp/bad1.yaml" >/dev/null 2>"$tmp/bad1.err"
check "rows above prefill_chunk are refused at file:line:col" grep -q "bad1.yaml:6:[0-9]*: prefill_chunks gives 16 rows, more than prefill_chunk 8" "$tmp/bad1.err"
bad_plan "$tmp/bad2.yaml" "  prefill_chunks: {1: 4, 50: 8, 20: 8}"
"$bin" check "$tmp/bad2.yaml" >/dev/null 2>"$tmp/bad2.err"
check "keys that do not ascend are refused" grep -q "prefill_chunks keys must ascend, got 20 after 50" "$tmp/bad2.err"
bad_plan "$tmp/bad3.yaml" "  prefill_chunks: {4: 4}"
"$bin" check "$tmp/bad3.yaml" >/dev/null 2>"$tmp/bad3.err"
check "a table not starting at 1 is refused" grep -q "prefill_chunks must start at 1 prompt token, got 4" "$tmp/bad3.err"

# ---- chunked prompts: the tokens and bits of unchunked ones ----
python3 - "$tmp/prompts.jsonl" <<'PY'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for n in (9, 37, 120, 61):   # lengths that fall into different entries of the table below
        f.write(json.dumps({"prompt_tokens": [random.randrange(3, 512) for _ in range(n)]}) + "\n")
PY
run_plan() { # plan out
    mpirun_bounded 120 -n "$(plan_ranks "$1")" "$bin" run --plan "$1" --prompts "$tmp/prompts.jsonl" -n 6 --threads 1 \
        --ignore-eos -q -o "$2.jsonl" --tokens-out "$2.tokens" --logits-out "$2.logits" </dev/null
}
# unchunked: every prompt in one micro-batch, one rank
PREFILL_CHUNK=128 write_plan "$tmp/whole.yaml" "$tmp/m.gguf" 256 2 2 f32 "0:0:5"
check "unchunked on 1 rank runs" run_plan "$tmp/whole.yaml" "$tmp/whole"
# a table with three chunk sizes, on 2 and 3 ranks, 2 sequences in 1 and 2 groups
for spec in "2|1|0:0:2 1:3:5" "3|2|0:0:1 1:2:3 2:4:5"; do
    IFS='|' read -r ranks groups st <<<"$spec"
    PREFILL_CHUNK=7 write_plan "$tmp/t$ranks.yaml" "$tmp/m.gguf" 256 2 "$groups" f32 $st
    sed -i 's/^  prefill_chunk: 7$/  prefill_chunk: 7\n  prefill_chunks: {1: 2, 30: 5, 100: 7}/' "$tmp/t$ranks.yaml"
    check "$ranks ranks: the table's chunks run" run_plan "$tmp/t$ranks.yaml" "$tmp/t$ranks"
    check "$ranks ranks: the same tokens as unchunked" cmp -s "$tmp/whole.tokens" "$tmp/t$ranks.tokens"
    check "$ranks ranks: bit-identical logits" "$diff_tool" "$tmp/whole.logits" "$tmp/t$ranks.logits" 512
done
# the planner's own plans (its table, its groups, its f16 wire) against the
# same plan with every prompt in one chunk
for n in two three; do
    sed -i "s#^  path: .*#  path: $tmp/m.gguf#" "$tmp/$n-plan.yaml"
    sed '/^  prefill_chunks:/d; s/^  prefill_chunk: .*/  prefill_chunk: 128/' "$tmp/$n-plan.yaml" >"$tmp/$n-whole.yaml"
    check "$n: the planner's plan runs" run_plan "$tmp/$n-plan.yaml" "$tmp/$n-run"
    check "$n: and unchunked" run_plan "$tmp/$n-whole.yaml" "$tmp/$n-whole"
    check "$n: the same tokens as unchunked" cmp -s "$tmp/$n-whole.tokens" "$tmp/$n-run.tokens"
    check "$n: bit-identical logits" "$diff_tool" "$tmp/$n-whole.logits" "$tmp/$n-run.logits" 512
done
finish
