#!/usr/bin/env bash
# pipeline_arch.sh - the pipeline's promise on the architectures beyond
# Llama 2: qwen2-tiny (NeoX RoPE, q/k/v biases), llama3-tiny (rope base
# 500000, rope_freqs) and qwen3-tiny (per-head q/k norms), all GQA with tied
# output, give the same tokens and bit-identical logits on 1 rank and on
# plans of 2, 3 and 4 ranks (uneven splits, one-layer stages, a
# coordinator-only rank 0). The prompts are the references' prompt_tokens,
# so no tokenizer is needed. And `generate --prompt-tokens --logits-out`
# writes the rows llama.cpp's reference has, within the bounds of
# tests/test_arch.c, and generates its greedy tokens. A model whose tensor
# types do not load yet (K-quants) is skipped with the loader's message.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
diff_tool=$(dirname "$bin")/tests/sp_logits_diff
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v python3 >/dev/null; then
    skip "pipeline_arch: python3 is not installed (it reads the references' prompt tokens)"
    finish
    exit
fi

# the JSON array "prompt_tokens" of a reference, space-separated
ref_ids() { python3 -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['prompt_tokens'])))" "$1"; }

# generate: logits rows for every prompt position, then every generated
# token fed back; the rows llama.cpp kept (positions 0 and P-1) within the
# bounds, and the generated tokens its greedy ones
gen_vs_reference() { # model reference-name n max-d max-rms
    local model=$1 ref="$shared/reference/$2" n=$3
    "$bin" generate -m "$model" --prompt-tokens "$(ref_ids "$ref.json")" -n "$n" --logits-out "$tmp/$2.f32" \
        --tokens-out "$tmp/$2.ids" >/dev/null 2>"$tmp/$2.err" || { cat "$tmp/$2.err"; return 1; }
    python3 - "$ref" "$tmp/$2.f32" "$tmp/$2.ids" "$n" "$4" "$5" <<'PY'
import array, json, math, sys
ref, ours_path, ids_path, n, max_d, max_rms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
j = json.load(open(ref + ".json"))
V, P = j["n_vocab"], len(j["prompt_tokens"])
r = array.array("f"); r.frombytes(open(ref + ".logits.f32", "rb").read())
o = array.array("f"); o.frombytes(open(ours_path, "rb").read())
ok = len(o) == (P + n - 1) * V
print(f"{len(o) // V} rows of {V} (expected {P} prompt + {n - 1} generated)")
for i, p in enumerate(j["logits_positions"]):
    d = [abs(o[p * V + k] - r[i * V + k]) for k in range(V)]
    mx, rms = max(d), math.sqrt(sum(x * x for x in d) / V)
    print(f"position {p}: max |d| {mx:.4f} rms {rms:.5f}")
    ok = ok and mx <= max_d and rms <= max_rms
# the generated tokens are the argmax of the rows from P-1 on, and the reference's
gen = [int(x) for x in open(ids_path).read().split()]
am = [max(range(V), key=lambda k: o[(P - 1 + t) * V + k]) for t in range(n)]
print(f"generated {gen}, reference {j['greedy_tokens'][:n]}")
ok = ok and gen == am and gen == j["greedy_tokens"][:n]
sys.exit(0 if ok else 1)
PY
}

# name:layers:vocab:second-reference:max-d:max-rms (bounds: test_arch.c)
for m in qwen2-tiny-Q8_0:4:151936:once:0.03:0.006 llama3-tiny-Q4_K_M:4:128256:chat:0.06:0.012 \
    qwen3-tiny-Q4_K_M:4:151936:chat:0.06:0.012; do
    IFS=: read -r name layers vocab second max_d max_rms <<<"$m"
    model="$shared/models/$name.gguf"
    fox="$shared/reference/$name-fox.json" other="$shared/reference/$name-$second.json"
    if [ ! -r "$model" ] || [ ! -r "$fox" ] || [ ! -r "$other" ]; then
        skip "$name: the model or its references are missing (needs ../shared)"
        continue
    fi
    if ! "$bin" generate -m "$model" --prompt-tokens 1 -n 1 >/dev/null 2>"$tmp/load.err"; then
        if grep -q "type" "$tmp/load.err"; then
            skip "$name: its tensor types do not load yet (K-quants are another branch): $(tail -1 "$tmp/load.err")"
        else
            check "$name loads" false
            cat "$tmp/load.err"
        fi
        continue
    fi

    # fox and the second reference prompt, and a 1-token prompt
    {
        echo "{\"prompt\": \"fox\", \"prompt_tokens\": [$(ref_ids "$fox" | tr ' ' ',')]}"
        echo "{\"prompt_tokens\": [$(ref_ids "$other" | tr ' ' ',')]}"
        echo "{\"prompt_tokens\": [$(ref_ids "$fox" | cut -d' ' -f1)]}"
    } >"$tmp/prompts.jsonl"
    run_plan() { # plan out
        mpirun_bounded 120 -n "$(plan_ranks "$1")" "$bin" run --plan "$1" --prompts "$tmp/prompts.jsonl" \
            -n 24 --ignore-eos -q -o "$2.jsonl" --tokens-out "$2.tokens" --logits-out "$2.logits" </dev/null
    }
    last=$((layers - 1))
    write_plan "$tmp/$name-1.yaml" "$model" 128 2 2 f32 "0:0:$last"
    write_plan "$tmp/$name-2.yaml" "$model" 128 2 2 f32 "0:0:0" "1:1:$last"
    write_plan "$tmp/$name-3.yaml" "$model" 128 2 2 f32 "0:0:1" "1:2:2" "2:3:$last"
    write_plan "$tmp/$name-4c.yaml" "$model" 128 2 2 f32 "1:0:1" "2:2:2" "3:3:$last"
    check "$name 1 rank runs (prompts as ids)" run_plan "$tmp/$name-1.yaml" "$tmp/$name-1"
    check "$name 1 rank: 3 results of 24 tokens" test "$(grep -c '"generated_tokens": 24' "$tmp/$name-1.jsonl")" -eq 3
    for p in 2 3 4c; do
        check "$name plan $p runs" run_plan "$tmp/$name-$p.yaml" "$tmp/$name-$p"
        check "$name plan $p: same tokens as 1 rank" cmp -s "$tmp/$name-1.tokens" "$tmp/$name-$p.tokens"
        check "$name plan $p: bit-identical logits" "$diff_tool" "$tmp/$name-1.logits" "$tmp/$name-$p.logits" "$vocab"
    done
    check "$name generate --logits-out fox vs llama.cpp" gen_vs_reference "$model" "$name-fox" 6 "$max_d" "$max_rms"
    check "$name generate --logits-out $second vs llama.cpp" gen_vs_reference "$model" "$name-$second" 4 "$max_d" "$max_rms"
done

model="$shared/models/qwen2-tiny-Q8_0.gguf"
if [ -r "$model" ]; then
    # a text prompt needs the tokenizer: refused with a message saying what
    # to do (once shardpipe loads the file's tokenizer, the prompt runs)
    write_plan "$tmp/text.yaml" "$model" 128 1 1 f32 "0:0:3"
    printf '%s\n' '{"prompt": "Once upon a time"}' >"$tmp/text.jsonl"
    if mpirun_bounded 60 -n 1 "$bin" run --plan "$tmp/text.yaml" --prompts "$tmp/text.jsonl" -n 2 -q -o /dev/null \
        </dev/null 2>"$tmp/text.err"; then
        check "text prompt runs with the file's tokenizer" true
    else
        check "text prompt without a tokenizer: the error says to give ids" grep -q 'prompt_tokens' "$tmp/text.err"
    fi
    if "$bin" generate -m "$model" --prompt-tokens "785 x1" -n 1 >/dev/null 2>"$tmp/bad1.err"; then
        check "generate --prompt-tokens: a malformed id is refused" false
    else
        check "generate --prompt-tokens: a malformed id is refused, naming the option" \
            grep -q -- "--prompt-tokens: 'x1'" "$tmp/bad1.err"
    fi
    if "$bin" generate -m "$model" --prompt-tokens "785 999999" -n 1 >/dev/null 2>"$tmp/bad2.err"; then
        check "generate --prompt-tokens: an id past the vocabulary is refused" false
    else
        check "generate --prompt-tokens: an id past the vocabulary is refused, naming it" grep -q "999999" "$tmp/bad2.err"
    fi
    printf '%s\n' '{"prompt_tokens": [785, 999999]}' >"$tmp/bad.jsonl"
    if mpirun_bounded 60 -n 1 "$bin" run --plan "$tmp/text.yaml" --prompts "$tmp/bad.jsonl" -n 2 -q -o /dev/null \
        </dev/null 2>"$tmp/bad3.err"; then
        check "run: a prompt id past the vocabulary is refused" false
    else
        check "run: a prompt id past the vocabulary is refused, naming it" grep -q "999999" "$tmp/bad3.err"
    fi
fi
finish
