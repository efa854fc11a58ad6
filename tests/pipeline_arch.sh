#!/usr/bin/env bash
# pipeline_arch.sh - the pipeline's promise on the architectures beyond
# Llama 2: qwen2-tiny (NeoX RoPE, q/k/v biases, tied output, GQA) gives the
# same tokens and bit-identical logits on 1 rank and on plans of 2, 3 and 4
# ranks (uneven splits, one-layer stages, a coordinator-only rank 0). The
# prompts are token ids (the references' prompt_tokens), so no tokenizer is
# needed. And `generate --prompt-tokens --logits-out` writes the rows
# llama.cpp's reference has, within the bounds of tests/test_arch.c.
set -u
bin=$1 shared=$2 src=$3
. "$src/tests/tools/lib.sh"
diff_tool=$(dirname "$bin")/tests/sp_logits_diff
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

name=qwen2-tiny-Q8_0 layers=4 vocab=151936
model="$shared/models/$name.gguf"
if [ ! -r "$model" ]; then
    skip "$name: $model is missing (needs ../shared)"
    finish
    exit
fi

# fox and once of the reference, and a 1-token prompt
printf '%s\n' '{"prompt": "fox", "prompt_tokens": [785, 3974, 13876, 38835]}' \
    '{"prompt_tokens": [12522, 5193, 264, 882, 11, 1052, 572, 264, 2632, 12305, 13]}' \
    '{"prompt_tokens": [785]}' >"$tmp/prompts.jsonl"

run_plan() { # plan out
    mpirun_bounded 120 -n "$(plan_ranks "$1")" "$bin" run --plan "$1" --prompts "$tmp/prompts.jsonl" \
        -n 24 --ignore-eos -q -o "$2.jsonl" --tokens-out "$2.tokens" --logits-out "$2.logits" </dev/null
}
last=$((layers - 1))
write_plan "$tmp/1.yaml" "$model" 128 2 2 f32 "0:0:$last"
write_plan "$tmp/2.yaml" "$model" 128 2 2 f32 "0:0:0" "1:1:$last"
write_plan "$tmp/3.yaml" "$model" 128 2 2 f32 "0:0:1" "1:2:2" "2:3:$last"
write_plan "$tmp/4c.yaml" "$model" 128 2 2 f32 "1:0:1" "2:2:2" "3:3:$last"
check "$name 1 rank runs (prompts as ids, no tokenizer)" run_plan "$tmp/1.yaml" "$tmp/1"
check "$name 1 rank: 3 results of 24 tokens" test "$(grep -c '"generated_tokens": 24' "$tmp/1.jsonl")" -eq 3
for p in 2 3 4c; do
    check "$name plan $p runs" run_plan "$tmp/$p.yaml" "$tmp/$p"
    check "$name plan $p: same tokens as 1 rank" cmp -s "$tmp/1.tokens" "$tmp/$p.tokens"
    check "$name plan $p: bit-identical logits" "$diff_tool" "$tmp/1.logits" "$tmp/$p.logits" "$vocab"
done
# a text prompt needs the tokenizer: refused with a message saying what to do
# (when shardpipe can load the file's tokenizer, the prompt simply runs)
printf '%s\n' '{"prompt": "Once upon a time"}' >"$tmp/text.jsonl"
if mpirun_bounded 60 -n 1 "$bin" run --plan "$tmp/1.yaml" --prompts "$tmp/text.jsonl" -n 2 -q -o /dev/null \
    </dev/null 2>"$tmp/text.err"; then
    check "$name text prompt runs with the file's tokenizer" true
else
    check "$name text prompt without a tokenizer: the error says to give ids" grep -q 'prompt_tokens' "$tmp/text.err"
fi

# generate: logits rows for every prompt position, then every generated
# token fed back; the rows llama.cpp kept (positions 0 and P-1) within the
# bounds, and the greedy tokens the reference's
gen_vs_reference() { # reference-name n
    local ref="$shared/reference/$1" n=$2
    local ids
    ids=$(python3 -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['prompt_tokens'])))" "$ref.json")
    "$bin" generate -m "$model" --prompt-tokens "$ids" -n "$n" --logits-out "$tmp/$1.f32" \
        --tokens-out "$tmp/$1.ids" >/dev/null 2>"$tmp/$1.err" || { cat "$tmp/$1.err"; return 1; }
    python3 - "$ref" "$tmp/$1.f32" "$tmp/$1.ids" "$n" <<'PY'
import array, json, math, sys
ref, ours_path, ids_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
j = json.load(open(ref + ".json"))
V, P = j["n_vocab"], len(j["prompt_tokens"])
r = array.array("f"); r.frombytes(open(ref + ".logits.f32", "rb").read())
o = array.array("f"); o.frombytes(open(ours_path, "rb").read())
rows = len(o) // V
ok = len(o) == (P + n - 1) * V
print(f"{rows} rows of {V} (expected {P} prompt + {n - 1} generated)")
for i, p in enumerate(j["logits_positions"]):
    d = [abs(o[p * V + k] - r[i * V + k]) for k in range(V)]
    mx, rms = max(d), math.sqrt(sum(x * x for x in d) / V)
    print(f"position {p}: max |d| {mx:.4f} rms {rms:.5f}")
    ok = ok and mx <= 0.03 and rms <= 0.006
# the generated tokens are the argmax of the rows from P-1 on
gen = [int(x) for x in open(ids_path).read().split()]
am = [max(range(V), key=lambda k: o[(P - 1 + t) * V + k]) for t in range(n)]
print(f"generated {gen[:8]}..., reference {j['greedy_tokens'][:8]}...")
ok = ok and gen == am and gen == j["greedy_tokens"][:n]
sys.exit(0 if ok else 1)
PY
}
if command -v python3 >/dev/null; then
    check "generate --logits-out fox vs llama.cpp" gen_vs_reference "$name-fox" 6
    check "generate --logits-out once vs llama.cpp" gen_vs_reference "$name-once" 4
else
    skip "generate --logits-out vs reference: python3 is not installed"
fi
if "$bin" generate -m "$model" --prompt-tokens "785 x1" -n 1 >/dev/null 2>"$tmp/bad1.err"; then
    check "generate --prompt-tokens: a malformed id is refused" false
else
    check "generate --prompt-tokens: a malformed id is refused, naming the option" grep -q -- "--prompt-tokens: 'x1'" "$tmp/bad1.err"
fi
if "$bin" generate -m "$model" --prompt-tokens "785 999999" -n 1 >/dev/null 2>"$tmp/bad.err"; then
    check "generate --prompt-tokens: an id past the vocabulary is refused" false
else
    check "generate --prompt-tokens: an id past the vocabulary is refused, naming it" grep -q "999999" "$tmp/bad.err"
fi
finish
