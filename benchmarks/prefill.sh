#!/usr/bin/env bash
# prefill.sh - prompts over the pipeline (issue 22): the planner's chunks and
# groups on 2 ranks x 1 thread against one process with 2 threads and against
# llama.cpp's batched decode with 2 threads, on the same 2 cores.
#
#   single   one sequence's prompt (PROMPTS lengths, default 128 512 1000) on
#            2 ranks with the plan's prefill_chunks, against `shardpipe
#            generate --threads 2` at the faster of the whole prompt in one
#            micro-batch and 64-row chunks (generate's default; the best
#            chunking of one process is 32-64 rows on this 2-core host),
#            and against the same 2 ranks with fixed 32-row chunks (the
#            previous default); prints each prompt's tok/s and its time to
#            first token beside the single process's - the 1000-token one is
#            issue 22's TTFT figure;
#   batched  BATCH sequences (default 4 8) of BPROMPT (128) tokens, GEN (32)
#            new tokens each, on 2 ranks with the plan `shardpipe plan
#            --sequences K` writes (its groups and chunks), against
#            lcpp_bench --batched K -t 2 (llama-batched-bench's measurement:
#            every prompt in one llama_batch, then steps of one token per
#            sequence); prompt tok/s until the last first token, decode tok/s
#            while every sequence decodes (shardpipe's steady figure);
#            beside each round, this host's read bandwidth with 1 and 2
#            threads (`shardpipe bench memory`, the mean of just before and
#            just after our run) and the decode it allows the
#            plan: its G groups each stream all W weight bytes per token
#            step, min(G, 2) ranks at once, which on this host share its
#            memory (on boards of their own they would not), so at most
#            K x bandwidth(min(G, 2) threads) / (G x W) tok/s.
#
# Every round runs the programs in turn (A B A B), so the machine's drift falls
# on all alike; the table gives medians of paired ratios (min-max) and the
# load average at start and end. The plans come from this machine's profile
# (`shardpipe profile --threads 1` run first; PROFILE=FILE uses a stored
# one) for a cluster of two
# boards that each hold half the model.
#   benchmarks/prefill.sh                       # both parts, 3 rounds
#   PARTS=single PROMPTS=1000 ROUNDS=3 benchmarks/prefill.sh
#   LCPP_POLL=0 PARTS=batched benchmarks/prefill.sh   # llama.cpp with a pool that sleeps (a busy host)
# Writes benchmarks/results/prefill/prefill-<UTC date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SP=${SHARDPIPE:-$BUILD/shardpipe}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-single batched}
PROMPTS=${PROMPTS:-128 512 1000}
BATCH=${BATCH:-4 8}
BPROMPT=${BPROMPT:-128}
GEN=${GEN:-32}
TYPE=${TYPE:-q4_0}
SHARED=${SP_SHARED:-../shared}
RESULTS=${RESULTS:-benchmarks/results/prefill}
[ -x "$SP" ] || scripts/setup.sh >/dev/null
. benchmarks/models.sh
write_tinyllama_model "$SP" "$SHARED" benchmarks/out "$TYPE"
model=$PWD/benchmarks/out/tinyllama-$TYPE.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$RESULTS"
stamp=$(date -u +%Y-%m-%dT%H%MZ)
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)
echo "prefill.sh: load average at start $load_start" >&2

# the boards: this machine, one thread each, half the model's memory each
# (measured now by default: a stored profile goes stale when the kernels
# change - the one of this morning, taken before the AVX-512 prompt tiles,
# put 32-row chunks at 114 GFLOPS where they now run 255, and the planner
# chose 4-16-row chunks, 0.74x the single process at 128 tokens; on a busy
# machine a new one is low and scrambled, so PROFILE=FILE gives one taken
# at a quieter moment, and the load is printed beside every figure)
profile=${PROFILE:-measure}
if [ "$profile" = measure ]; then
    profile=$tmp/board.yaml
    "$SP" profile --threads 1 -o "$profile" >/dev/null 2>&1
fi
half=$(( $(stat -L -c %s "$model") * 7 / 10 / 1048576 ))MiB   # each holds 70%: two stages
cat >"$tmp/cluster.yaml" <<YAML
name: two-ranks
boards:
  - {name: a, host: localhost, profile: $profile, threads: 1, memory: $half}
  - {name: b, host: localhost, profile: $profile, threads: 1, memory: $half}
links:
  default: {latency: 0.00005, bandwidth: 2e9}   # shared memory between two ranks
YAML
plan() { # K out prompt-tokens (the context: the longest prompt, GEN tokens and a margin)
    local max=$3 n
    [ "$1" = 1 ] && for n in $PROMPTS; do [ "$n" -gt "$max" ] && max=$n; done
    "$SP" plan --model "$model" --cluster "$tmp/cluster.yaml" --sequences "$1" --context $((max + GEN + 64)) \
        --prompt-tokens "$3" --explain -o "$2" >"$2.explain" 2>&1 ||
        { cat "$2.explain" >&2; exit 1; }
    [ "$(grep -c -- '- rank:' "$2")" = 2 ] || { echo "prefill.sh: the plan for $1 sequences is not 2 stages" >&2; exit 1; }
}
ids() { # n seed -> space-separated ids
    python3 -c "import random,sys; random.seed($2); print(' '.join(str(random.randrange(3, 32000)) for _ in range($1)))"
}
summary() { # json key
    python3 -c "import json,sys; s=json.load(open('$1')); v=s.get('$2'); print(v if v is not None else 0)"
}
: >"$tmp/rows.jsonl"
row() { echo "$1" >>"$tmp/rows.jsonl"; }

if [[ " $PARTS " == *" single "* ]]; then
    plan 1 "$tmp/plan1.yaml" "${PROMPTS##* }"
    sed '/^  prefill_chunks:/d; s/^  prefill_chunk: .*/  prefill_chunk: 32/' "$tmp/plan1.yaml" >"$tmp/plan32.yaml"
    echo "prefill.sh: single: $(grep -E '^  prefill_chunks:' "$tmp/plan1.yaml" | sed 's/ *#.*//')" >&2
    for n in $PROMPTS; do
        # what the planner predicts for this prompt alone (the same plan's
        # stages; --prompt-tokens only moves its reference length)
        plan 1 "$tmp/pred$n.yaml" "$n"
        eval "pred_$n=$(grep -o 'first token is predicted after [0-9.]* s' "$tmp/pred$n.yaml.explain" | head -1 | awk '{print $6}')"
        ids "$n" 1 >"$tmp/ids$n.txt"
        python3 -c "import json; print(json.dumps({'prompt_tokens': [int(x) for x in open('$tmp/ids$n.txt').read().split()]}))" \
            >"$tmp/p$n.jsonl"
    done
    for r in $(seq 1 "$ROUNDS"); do
        for n in $PROMPTS; do
            l=$(load)
            for p in plan1 plan32; do
                mpiexec -n 2 "$SP" run --plan "$tmp/$p.yaml" --prompts "$tmp/p$n.jsonl" -n 1 --threads 1 -q \
                    -o /dev/null --summary-json "$tmp/s.json" </dev/null
                eval "${p}_tok=\$(summary $tmp/s.json prompt_tok_s) ${p}_ttft=\$(summary $tmp/s.json ttft_median_s)"
            done
            # the one process at its best of two chunkings: the whole prompt in
            # one micro-batch, and generate's default of 64 rows
            for c in "$n" 64; do
                line=$("$SP" generate -m "$model" --prompt-tokens "$(cat "$tmp/ids$n.txt")" -n 1 --threads 2 --chunk "$c" \
                    --ignore-eos 2>&1 | grep -o 'prompt: [0-9]* tokens in [0-9.]* s')
                eval "one_s_$c=$(echo "$line" | awk '{print $5}')"
            done
            whole_s=$(eval echo "\$one_s_$n") c64_s=$one_s_64
            one_s=$(python3 -c "print(min($whole_s, $c64_s))")
            row "{\"part\": \"single\", \"round\": $r, \"prompt_tokens\": $n, \"load\": \"$l\", \"pipeline_tok_s\": $plan1_tok, \"pipeline_ttft_s\": $plan1_ttft, \"chunk32_tok_s\": $plan32_tok, \"chunk32_ttft_s\": $plan32_ttft, \"process_tok_s\": $(python3 -c "print($n / $one_s)"), \"process_s\": $one_s, \"process_whole_s\": $whole_s, \"process_chunk64_s\": $c64_s, \"predicted_ttft_s\": $(eval echo "\${pred_$n:-0}")}"
            echo "prefill.sh: round $r, $n tokens (load $l): pipeline $plan1_tok tok/s, ttft $plan1_ttft s; 32-row chunks $plan32_tok; one process 2 threads $whole_s s in one micro-batch, $c64_s s in 64-row chunks" >&2
        done
    done
fi

if [[ " $PARTS " == *" batched "* ]]; then
    set +e
    fetched=$(benchmarks/lcpp/fetch.sh)
    rc=$?
    set -e
    LCPP_BIN=$(echo "$fetched" | sed -n 's/^LCPP_BIN=//p')
    LCPP_LIB=$(echo "$fetched" | sed -n 's/^LCPP_LIB=//p')
    [ "$rc" = 0 ] || echo "$fetched" | grep '^SKIP' || true
    # weight bytes a token step streams: all but the embedding table (one
    # row of it); `shardpipe inspect` lists each tensor's bytes
    wbytes=$("$SP" inspect "$model" | awk '$1 == "total" {t = $5} $1 == "token_embd" {e = $NF} END {print t - e}')
    for k in $BATCH; do
        plan "$k" "$tmp/plan-b$k.yaml" "$BPROMPT"
        echo "prefill.sh: batched $k: $(grep -E '^  (micro_batches|prefill_chunk):' "$tmp/plan-b$k.yaml" | sed 's/ *#.*//' | tr -s ' ' | tr '\n' ' ')" >&2
        for i in $(seq 1 "$k"); do
            python3 -c "import json,random; random.seed($i); print(json.dumps({'prompt_tokens': [random.randrange(3, 32000) for _ in range($BPROMPT)]}))"
        done >"$tmp/b$k.jsonl"
    done
    # read GB/s with (1 + $1) threads, the mean of before and after a run
    bw() { python3 -c "import json; print(round(sum(json.load(open(f))['runs'][$1]['read_gbs'] for f in ('$tmp/mem0.json', '$tmp/mem1.json')) / 2, 3))"; }
    for r in $(seq 1 "$ROUNDS"); do
        for k in $BATCH; do
            l=$(load)
            "$SP" bench memory --threads 1,2 --passes 5 --json "$tmp/mem0.json" >/dev/null
            mpiexec -n 2 "$SP" run --plan "$tmp/plan-b$k.yaml" --prompts "$tmp/b$k.jsonl" -n "$GEN" --ignore-eos \
                --threads 1 -q -o /dev/null --summary-json "$tmp/s.json" </dev/null
            # the bandwidth is that of just before and just after our run (the mean):
            # on this host it moves by half within seconds
            "$SP" bench memory --threads 1,2 --passes 5 --json "$tmp/mem1.json" >/dev/null
            bw1=$(bw 0) bw2=$(bw 1)
            sp_pp=$(summary "$tmp/s.json" prompt_tok_s)
            sp_tg=$(summary "$tmp/s.json" decode_steady_tok_s)
            lc_pp=0 lc_tg=0
            if [ "$rc" = 0 ]; then
                "$LCPP_BIN" -m "$model" --lib-dir "$LCPP_LIB" -t 2 --batched "$k" --prompt "$BPROMPT" --gen "$GEN" \
                    --reps 1 ${LCPP_POLL:+--poll "$LCPP_POLL"} >"$tmp/lc.json" 2>/dev/null
                lc_pp=$(python3 -c "import json; print(json.load(open('$tmp/lc.json'))['batched'][0]['prompt_tok_s_median'])")
                lc_tg=$(python3 -c "import json; print(json.load(open('$tmp/lc.json'))['batched'][0]['decode_tok_s_median'])")
            fi
            row "{\"part\": \"batched\", \"round\": $r, \"sequences\": $k, \"load\": \"$l\", \"prompt_tokens\": $BPROMPT, \"gen_tokens\": $GEN, \"micro_batches\": $(sed -n 's/^  micro_batches: \([0-9]*\).*/\1/p' "$tmp/plan-b$k.yaml"), \"prefill_chunk\": $(sed -n 's/^  prefill_chunk: \([0-9]*\).*/\1/p' "$tmp/plan-b$k.yaml"), \"sp_prompt_tok_s\": $sp_pp, \"sp_decode_tok_s\": $sp_tg, \"lcpp_prompt_tok_s\": $lc_pp, \"lcpp_decode_tok_s\": $lc_tg, \"read_gbs_1t\": $bw1, \"read_gbs_2t\": $bw2, \"weight_bytes\": $wbytes}"
            echo "prefill.sh: round $r, $k sequences (load $l): prompt $sp_pp / llama.cpp $lc_pp, decode $sp_tg / $lc_tg tok/s; read $bw1 / $bw2 GB/s (1 / 2 threads)" >&2
        done
    done
fi
load_end=$(load)
python3 - "$tmp/rows.jsonl" "$RESULTS/prefill-$stamp.json" "$load_start" "$load_end" "$(git rev-parse --short HEAD)" \
    "${LCPP_POLL:+LCPP_POLL=$LCPP_POLL }ROUNDS=$ROUNDS PARTS=\"$PARTS\" PROMPTS=\"$PROMPTS\" BATCH=\"$BATCH\" BPROMPT=$BPROMPT GEN=$GEN TYPE=$TYPE benchmarks/prefill.sh" \
    "$tmp" <<'PY'
import glob, json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, load0, load1, commit, cmd, tmp = sys.argv[2:8]
def med(v):
    return (statistics.median(v), min(v), max(v)) if v else (0, 0, 0)
summary = []
print(f"load average {load0} at start, {load1} at end; {cmd}; commit {commit}\n")
single = [r for r in rows if r["part"] == "single"]
if single:
    print("| prompt tokens | 2 ranks x 1 thread tok/s | one process, 2 threads (best of one micro-batch, 64-row chunks) | ratio (min-max) | 32-row chunks / plan's | TTFT 2 ranks | TTFT predicted by the plan | TTFT one process |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    for n in sorted({r["prompt_tokens"] for r in single}):
        rs = [r for r in single if r["prompt_tokens"] == n]
        ratio = med([r["pipeline_tok_s"] / r["process_tok_s"] for r in rs])
        old = med([r["chunk32_tok_s"] / r["pipeline_tok_s"] for r in rs])
        s = {"part": "single", "prompt_tokens": n, "ratio_median": ratio[0], "ratio_min": ratio[1], "ratio_max": ratio[2],
             "pipeline_tok_s": med([r["pipeline_tok_s"] for r in rs])[0], "process_tok_s": med([r["process_tok_s"] for r in rs])[0],
             "ttft_pipeline_s": med([r["pipeline_ttft_s"] for r in rs])[0], "ttft_process_s": med([r["process_s"] for r in rs])[0],
             "chunk32_over_plan": old[0], "ttft_predicted_s": rs[0].get("predicted_ttft_s", 0)}
        summary.append(s)
        print(f"| {n} | {s['pipeline_tok_s']:.1f} | {s['process_tok_s']:.1f} | {ratio[0]:.2f} ({ratio[1]:.2f}-{ratio[2]:.2f}) "
              f"| {old[0]:.2f} | {s['ttft_pipeline_s']:.3f} s | {s['ttft_predicted_s']:.3f} s | {s['ttft_process_s']:.3f} s |")
batched = [r for r in rows if r["part"] == "batched"]
if batched:
    def ceiling(r):  # the plan's decode if memory were all that bound it (the header says why)
        g = r["micro_batches"]
        if not r.get("weight_bytes"):
            return 0
        bw = r["read_gbs_2t"] if g >= 2 else r["read_gbs_1t"]
        return r["sequences"] * bw * 1e9 / (g * r["weight_bytes"])
    print("\n| sequences | groups | prefill_chunk | prompt tok/s ours / llama.cpp | prompt ratio | decode tok/s ours / llama.cpp | decode ratio | read GB/s, 2 threads | decode the memory allows the plan | ours / that |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for k in sorted({r["sequences"] for r in batched}):
        rs = [r for r in batched if r["sequences"] == k and r["lcpp_prompt_tok_s"] > 0]
        if not rs:
            continue
        pp = med([r["sp_prompt_tok_s"] / r["lcpp_prompt_tok_s"] for r in rs])
        tg = med([r["sp_decode_tok_s"] / r["lcpp_decode_tok_s"] for r in rs if r["lcpp_decode_tok_s"] > 0])
        s = {"part": "batched", "sequences": k, "micro_batches": rs[0]["micro_batches"], "prefill_chunk": rs[0]["prefill_chunk"],
             "prompt_ratio": pp, "decode_ratio": tg,
             "sp_prompt_tok_s": med([r["sp_prompt_tok_s"] for r in rs])[0], "lcpp_prompt_tok_s": med([r["lcpp_prompt_tok_s"] for r in rs])[0],
             "sp_decode_tok_s": med([r["sp_decode_tok_s"] for r in rs])[0], "lcpp_decode_tok_s": med([r["lcpp_decode_tok_s"] for r in rs])[0]}
        cs = [r for r in rs if r.get("weight_bytes")]
        s["read_gbs_2t"] = med([r["read_gbs_2t"] for r in cs])
        s["decode_ceiling_tok_s"] = med([ceiling(r) for r in cs])
        s["decode_of_ceiling"] = med([r["sp_decode_tok_s"] / ceiling(r) for r in cs])
        summary.append(s)
        print(f"| {k} | {s['micro_batches']} | {s['prefill_chunk']} | {s['sp_prompt_tok_s']:.1f} / {s['lcpp_prompt_tok_s']:.1f} "
              f"| {pp[0]:.2f} ({pp[1]:.2f}-{pp[2]:.2f}) | {s['sp_decode_tok_s']:.1f} / {s['lcpp_decode_tok_s']:.1f} "
              f"| {tg[0]:.2f} ({tg[1]:.2f}-{tg[2]:.2f}) | {s['read_gbs_2t'][0]:.1f} ({s['read_gbs_2t'][1]:.1f}-{s['read_gbs_2t'][2]:.1f}) "
              f"| {s['decode_ceiling_tok_s'][0]:.1f} | {s['decode_of_ceiling'][0]:.2f} ({s['decode_of_ceiling'][1]:.2f}-{s['decode_of_ceiling'][2]:.2f}) |")
plans = {os.path.basename(p): open(p).read() for p in glob.glob(f"{tmp}/plan*.yaml")}
json.dump({"command": cmd, "commit": commit, "load_start": load0, "load_end": load1, "summary": summary, "runs": rows,
           "plans": plans}, open(out, "w"), indent=1)
print(f"\nwritten: {out}")
PY
