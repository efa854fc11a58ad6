#!/usr/bin/env bash
# inspect.sh - `shardpipe inspect` on the shared models (text and --json) and
# on files that are not models.
# Usage: bash inspect.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2 src=$3
tmp=$(mktemp -d /tmp/sp_inspect_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_line FILE REGEX: some line of FILE matches the extended regex.
expect_line() { grep -Eq -- "$2" "$1" || fail "$(basename "$1"): no line matches '$2'"; }

# A command that must exit with status $1 and print $2 (a fixed string) on stderr.
expect_error() {
    local want_rc=$1 want_msg=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "'$*' exited $rc, expected $want_rc"
    grep -qF -- "$want_msg" "$tmp/err" || fail "'$*': stderr lacks '$want_msg': $(cat "$tmp/err")"
}

# ---- files that are not models (need no shared data) ----
expect_error 2 "usage: shardpipe inspect" "$bin" inspect
expect_error 1 "shardpipe inspect: $tmp/missing.gguf: cannot open" "$bin" inspect "$tmp/missing.gguf"
printf 'this is not a GGUF model, just some text\n' >"$tmp/garbage.gguf"
expect_error 1 "shardpipe inspect: $tmp/garbage.gguf: not a GGUF file" "$bin" inspect "$tmp/garbage.gguf"
expect_error 2 "unknown option '--bogus'" "$bin" inspect --bogus "$tmp/garbage.gguf"

# ---- stories260K (shipped in models/) ----
out=$tmp/stories.txt
"$bin" inspect "$src/models/stories260K.gguf" >"$out" || fail "inspect stories260K exited $?"
expect_line "$out" '^GGUF version: +3$'
expect_line "$out" '^architecture: +llama$'
expect_line "$out" '^ +block_count +5$'
expect_line "$out" '^ +attention.head_count_kv +4$'
expect_line "$out" '^ +vocab_size +512 '
expect_line "$out" '^tokenizer: +llama, 512 tokens$'
# each layer: 4 attention + 3 ffn matrices + 2 norms of F32 = 181760 bytes
expect_line "$out" '^blk\.4 +181760 +181760$'
expect_line "$out" '^total +1171200 +1171200 +\(1\.12 MiB in 48 tensors\)$'

# ---- a model of ../shared: a Q4_0 file as llama.cpp's quantizer writes it ----
m=$shared/models
if [ ! -r "$m/tiny-random-q4_0.gguf" ]; then
    echo "SKIP: $m/tiny-random-q4_0.gguf is missing (needs ../shared); its byte counts per type were not checked"
else
    out=$tmp/q4.txt
    "$bin" inspect "$m/tiny-random-q4_0.gguf" >"$out" || fail "inspect tiny-random-q4_0 exited $?"
    expect_line "$out" '^tensors +F32 +Q8_0 +Q4_0 +bytes$'
    # output.weight is the only Q8_0 tensor: 32000 rows x 9 blocks x 34 bytes
    expect_line "$out" '^output +- +9792000 +- +9792000$'
    expect_line "$out" '^blk\.5 +2304 +- +559872 +562176$'

    out=$tmp/q4.json
    "$bin" inspect --json "$m/tiny-random-q4_0.gguf" >"$out" || fail "inspect --json exited $?"
    expect_line "$out" '"gguf_version": 3'
    expect_line "$out" '"embedding_length": 288, "block_count": 6,'
    expect_line "$out" '"n_layers": 6, "output_tied": false'
    expect_line "$out" '"name": "total", "tensors": 57, "bytes": 18350208'
    if command -v python3 >/dev/null; then
        python3 -m json.tool "$out" >/dev/null || fail "inspect --json is not valid JSON"
    fi
fi

# ---- K-quant models: types by name, the verdict, an unsupported type ----
k=$m/ktiny-Q4_K_M.gguf
if [ ! -r "$k" ]; then
    echo "SKIP: $k is missing; the K-quant inspect checks were not run"
else
    out=$tmp/k.txt
    "$bin" inspect "$k" >"$out" || fail "inspect ktiny-Q4_K_M exited $?"
    expect_line "$out" '^tensors +F32 +Q6_K +Q4_K +bytes$'
    expect_line "$out" '^runs: yes$'
    "$bin" inspect "$m/ktiny-Q2_K.gguf" >"$out" || fail "inspect ktiny-Q2_K exited $?"
    expect_line "$out" '^tensors +F32 +Q6_K +Q3_K +Q2_K +bytes$'
    if command -v python3 >/dev/null; then
        # blk.1.attn_q as IQ2_XXS (type 16): inspect describes the file and
        # says why it does not run; generate names the tensor and the type
        python3 "$3/tests/tools/gguf_set_type.py" "$k" "$tmp/iq2.gguf" blk.1.attn_q.weight 16 ||
            fail "gguf_set_type.py failed"
        "$bin" inspect "$tmp/iq2.gguf" >"$out" || fail "inspect of an IQ2_XXS tensor exited $?"
        expect_line "$out" '^tensors +F32 +Q6_K +Q4_K +IQ2_XXS +bytes$'
        expect_line "$out" "^runs: no, because tensor 'blk.1.attn_q.weight' has type IQ2_XXS, which shardpipe cannot multiply; fix: re-quantize"
        "$bin" inspect --json "$tmp/iq2.gguf" >"$out" || fail "inspect --json exited $?"
        expect_line "$out" '"runs": false, "runs_because": "tensor '"'"'blk.1.attn_q.weight'"'"' has type IQ2_XXS'
        expect_error 1 "tensor 'blk.1.attn_q.weight' has type IQ2_XXS, which shardpipe cannot multiply" \
            "$bin" generate -m "$tmp/iq2.gguf" -p hi -n 1
    else
        echo "SKIP: python3 is missing; the unsupported-type checks were not run"
    fi
fi

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "inspect: all checks passed"
