/* tokenizer_pretok.c - the pre-tokenizers of byte-level BPE vocabularies: the
 * regex that cuts text into the pieces BPE merges within, run by PCRE2, and
 * the NFC normalization Qwen's tokenizer applies first, done by utf8proc.
 *
 * Why these libraries: the regexes are written for Unicode-aware engines
 * (\p{L}, \p{N}, \s over all of Unicode, a (?!\S) lookahead); PCRE2 runs them
 * exactly as written, JIT-compiled where the platform allows, and ships in
 * Debian. Hand-written character tables would have to be kept in step with
 * each Unicode version; PCRE2 and utf8proc already are.
 *
 * The regexes (from the vocabularies' tokenizer.json pre_tokenizer, the same
 * in llama.cpp for these pre types):
 *   llama-bpe: contractions | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} |
 *              " ?[^\s\p{L}\p{N}]+[\r\n]*" | \s*[\r\n]+ | \s+(?!\S) | \s+
 *   qwen2:     the same with \p{N} (one digit per piece) instead of \p{N}{1,3}.
 * The contractions ('s 't 're 've 'm 'll 'd) are case-insensitive; they are
 * spelled with ASCII classes ('[sS]) so that Unicode case folding (U+017F
 * long s folds to s) cannot widen them. */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define WORDS "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
#define REST " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const char *const regex_of[] = {
    [TOK_PRE_LLAMA3] = CONTRACTIONS "|" WORDS "|\\p{N}{1,3}|" REST,
    [TOK_PRE_QWEN2] = CONTRACTIONS "|" WORDS "|\\p{N}|" REST,
};

struct tok_pretok {
    pcre2_code *re;
    bool jit;
};

tok_pretok *tok_pretok_new(tok_pre pre, const char *path, sp_error *err)
{
    int code;
    PCRE2_SIZE at;
    /* UCP: \s and friends follow Unicode properties, not ASCII.
     * MATCH_INVALID_UTF: invalid UTF-8 in a prompt is skipped by the matcher
     * instead of failing the whole match. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex_of[pre], PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        sp_errorf(err, "%s: the pre-tokenizer regex does not compile with this PCRE2 (at %zu: %s); "
                       "install PCRE2 10.34 or newer with Unicode support",
                  path, (size_t)at, (const char *)msg);
        return NULL;
    }
    tok_pretok *p = sp_calloc(1, sizeof *p);
    p->re = re;
    p->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0; /* else the interpreter */
    return p;
}

void tok_pretok_free(tok_pretok *p)
{
    if (!p) return;
    pcre2_code_free(p->re);
    free(p);
}

void tok_pretok_split(const tok_pretok *p, const char *text, int len, tok_piece_fn fn, void *ctx)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    PCRE2_SIZE pos = 0, n = (PCRE2_SIZE)len;
    while (pos < n) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)text, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* a pathological input: the interpreter has no such limit */
            rc = pcre2_match(p->re, (PCRE2_SPTR)text, n, pos, PCRE2_NO_JIT, md, NULL);
        PCRE2_SIZE s = n, e = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            s = ov[0];
            e = ov[1];
        }
        if (s > pos) fn(ctx, text + pos, (int)(s - pos)); /* bytes no alternative takes */
        if (e <= s) { /* no match, or an empty one (none of the alternatives can be empty) */
            if (s < n) fn(ctx, text + s, 1);
            pos = s + 1;
            continue;
        }
        fn(ctx, text + s, (int)(e - s));
        pos = e;
    }
    pcre2_match_data_free(md);
}

char *tok_nfc(const char *text, int len, int *out_len)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)text, len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) return NULL;
    *out_len = (int)r;
    return (char *)dst;
}
