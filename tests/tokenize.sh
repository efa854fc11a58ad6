#!/usr/bin/env bash
# tokenize.sh - `shardpipe tokenize`: ids on one line, -v one line per token,
# --no-bos / --special, against the shared references where present (the
# lines of tok-llama3.jsonl / tok-qwen3.jsonl without JSON escapes), on a
# vocabulary `synth` writes otherwise, and its errors.
# Usage: bash tokenize.sh SHARDPIPE SHARED_DIR SOURCE_DIR
set -u
bin=$1 shared=$2
tmp=$(mktemp -d /tmp/sp_tokenize_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_out WANT CMD...: CMD exits 0 and prints exactly WANT.
expect_out() {
    local want=$1
    shift
    local got
    got=$("$@" 2>"$tmp/err") || fail "'$*' exited $?: $(cat "$tmp/err")"
    [ "$got" = "$want" ] || fail "'$*' printed '$got', expected '$want'"
}
# expect_error RC MESSAGE CMD...: CMD exits RC with MESSAGE (fixed string) on stderr.
expect_error() {
    local want_rc=$1 want_msg=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq "$want_rc" ] || fail "'$*' exited $rc, expected $want_rc"
    grep -qF -- "$want_msg" "$tmp/err" || fail "'$*': stderr lacks '$want_msg': $(cat "$tmp/err")"
}

# ---- a vocabulary synth writes (no shared data needed) ----
# <unk> <s> </s>, 256 byte tokens (3..258), "▁" (259), then '!'..'~' from 260
"$bin" synth -o "$tmp/syn.gguf" --shape tiny >/dev/null 2>&1 || fail "synth exited $?"
expect_out "1 259 331 332" "$bin" tokenize -m "$tmp/syn.gguf" "hi"
expect_out "259 331 332" "$bin" tokenize -m "$tmp/syn.gguf" --no-bos "hi"
# "<s>" is text unless --special: then it is BOS, and the text after it gets the prefix space
expect_out "1 259 287 342 289" "$bin" tokenize -m "$tmp/syn.gguf" "<s>"
expect_out "1 1 259 331" "$bin" tokenize -m "$tmp/syn.gguf" --special "<s>h"
# issue 21 item 2: more ids than bytes
out=$("$bin" tokenize -m "$tmp/syn.gguf" $'\xff \xff \xff \xff ')
[ "$(wc -w <<<"$out")" -eq 18 ] || fail "'\\xff \\xff \\xff \\xff ' gave '$out', expected 18 ids"
expect_out $'     1 -> \'\'\n   259 -> \' \'\n   331 -> \'h\'\n     4 -> \'\\x01\'' \
    "$bin" tokenize -m "$tmp/syn.gguf" -v $'h\x01'
got=$("$bin" tokenize -m "$tmp/syn.gguf" -v "hi!")
want=$'     1 -> \'\'\n   259 -> \' \'\n   331 -> \'h\'\n   332 -> \'i\'\n   260 -> \'!\''
[ "$got" = "$want" ] || fail "-v printed '$got', expected '$want'"

expect_error 2 "usage: shardpipe tokenize" "$bin" tokenize
expect_error 2 "exactly one TEXT" "$bin" tokenize -m "$tmp/syn.gguf"
expect_error 1 "shardpipe tokenize: $tmp/missing.gguf: cannot open" "$bin" tokenize -m "$tmp/missing.gguf" x
printf 'not a model\n' >"$tmp/junk.gguf"
expect_error 1 "$tmp/junk.gguf: not a GGUF file" "$bin" tokenize -m "$tmp/junk.gguf" x

# ---- the shared BPE vocabularies against their references ----
m=$shared/models r=$shared/reference
for v in llama3 qwen3; do
    model=$m/$v-tiny-Q4_K_M.gguf ref=$r/tok-$v.jsonl
    if [ ! -r "$model" ] || [ ! -r "$ref" ]; then
        echo "SKIP: $model or $ref is missing: the $v reference lines were not checked"
        continue
    fi
    n=0
    # lines whose text has no JSON escape, so the shell can pass it as it is
    # fields split by \x1f: a tab separator would fold the empty text away
    while IFS=$'\x1f' read -r text ids add parse; do
        args=()
        [ "$add" = true ] || args+=(--no-bos)
        [ "$parse" = true ] && args+=(--special)
        expect_out "$ids" "$bin" tokenize -m "$model" "${args[@]}" -- "$text"
        n=$((n + 1))
    done < <(grep -v '\\' "$ref" | sed -nE 's/^\{"text": "(.*)", "tokens": \[(.*)\], "add_special": (true|false), "parse_special": (true|false)\}$/\1\x1f\2\x1f\3\x1f\4/p' |
             awk -F'\x1f' -v OFS='\x1f' '{ gsub(/, /, " ", $2); print }')
    [ $n -ge 40 ] || fail "$v: only $n reference lines were read"
    echo "$v: $n reference lines checked"
done
# -v shows the text of each token (Llama 3: BOS, "Hello", " world")
if [ -r "$m/llama3-tiny-Q4_K_M.gguf" ]; then
    got=$("$bin" tokenize -m "$m/llama3-tiny-Q4_K_M.gguf" -v "Hello world")
    want=$'128000 -> \'<|begin_of_text|>\'\n  9906 -> \'Hello\'\n  1917 -> \' world\''
    [ "$got" = "$want" ] || fail "llama3 -v printed '$got', expected '$want'"
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "tokenize: all checks passed"
