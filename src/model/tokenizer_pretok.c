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
 * long s folds to s) cannot widen them.
 *
 * Text that is not UTF-8 is cut at its invalid bytes by our own check, not
 * by PCRE2's invalid-UTF mode: that mode checks the rest of the subject on
 * every match in the interpreter (no JIT), which made 91 KB take 0.43 s
 * instead of 3 ms. */
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
    /* UCP: \s and friends follow Unicode properties, not ASCII. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex_of[pre], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        sp_errorf(err, "%s: the pre-tokenizer regex does not compile with this PCRE2 (at %zu: %s); "
                       "install PCRE2 built with Unicode support",
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

/* Splits valid UTF-8 text[0, n) by the regex. The text was checked, so
 * PCRE2 need not check it again on every call (which would make a long
 * text quadratic). */
static void split_valid(const tok_pretok *p, pcre2_match_data *md, const char *text, size_t n,
                        tok_piece_fn fn, void *ctx)
{
    size_t pos = 0;
    while (pos < n) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)text, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* a pathological input: the interpreter has no such limit */
            rc = pcre2_match(p->re, (PCRE2_SPTR)text, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        /* Every character of valid text matches some alternative and none
         * matches empty; should PCRE2 still fail (a resource limit), the
         * rest of the text becomes one piece, so no byte is lost. */
        if (rc < 0 || ov[1] <= ov[0] || ov[0] < pos) {
            fn(ctx, text + pos, (int)(n - pos));
            return;
        }
        if (ov[0] > pos) fn(ctx, text + pos, (int)(ov[0] - pos));
        fn(ctx, text + ov[0], (int)(ov[1] - ov[0]));
        pos = ov[1];
    }
}

void tok_pretok_split(const tok_pretok *p, const char *text, int len, tok_piece_fn fn, void *ctx)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    /* Valid stretches go through the regex; each run of bytes that is not
     * UTF-8 is a piece of its own (byte-level BPE encodes any bytes), and
     * the regex sees it as the end of the text before and the start of
     * the text after, as PCRE2's own invalid-UTF mode would. */
    int start = 0;
    for (int i = 0; i < len;) {
        int r = tok_utf8_check((const uint8_t *)text + i, len - i);
        if (r > 0) {
            i += r;
            continue;
        }
        if (i > start) split_valid(p, md, text + start, (size_t)(i - start), fn, ctx);
        int j = i + 1;
        while (j < len && tok_utf8_check((const uint8_t *)text + j, len - j) <= 0) j++;
        fn(ctx, text + i, j - i);
        start = i = j;
    }
    if (len > start) split_valid(p, md, text + start, (size_t)(len - start), fn, ctx);
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
