/* fuzz_tokenizer.c - libFuzzer target: the encoders and the streaming
 * decoder on fixed vocabularies (fuzz_util.c: stories260K's 512
 * SentencePiece pieces with byte fallback, or a synthetic byte vocabulary;
 * and Llama 3's byte-level BPE).
 *
 * Input: byte 0 holds flags (bit 0: SP_TOK_ADD_SPECIAL; bit 1: decode as a
 * continuation; bit 2: SP_TOK_PARSE_SPECIAL; bit 3: Llama 3's byte-level BPE
 * vocabulary, when the shared llama3-tiny model is there), the rest is the text (up to its first NUL) and, read again
 * as little-endian u16 values, a stream of token ids for the decoder.
 * Checked, beyond ASan/UBSan:
 *   - every id is in [0, n_vocab) and the count is within fz_tokenize_bound;
 *   - a second call returns the same ids;
 *   - decode(encode(text)) == text for well-formed UTF-8 text: SentencePiece
 *     without U+2581 (which decodes as a space) when the vocabulary has all
 *     256 byte tokens, BPE without special tokens;
 *   - decoding any id stream, one id at a time into buffers of any size,
 *     gives NUL-terminated, well-formed UTF-8 and never more than cap-1 bytes
 *     (<0x00> decodes to a NUL byte inside the text: counts, not strlen). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

static bool all_bytes; /* the vocabulary spells every byte */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    const sp_tokenizer *t = fz_vocab();
    int seen = 0;
    bool have[256] = {0};
    for (int id = 0; id < sp_tokenizer_n_vocab(t); id++) {
        const char *p = sp_token_piece(t, id);
        unsigned b;
        char end;
        if (strlen(p) == 6 && sscanf(p, "<0x%2X%c", &b, &end) == 2 && end == '>' && !have[b]) {
            have[b] = true;
            seen++;
        }
    }
    all_bytes = seen == 256;
    return 0;
}

/* Decode ids[0..n) into a malloc'ed string (flushed); *len its length. */
static char *decode_all(const sp_tokenizer *t, const int *ids, size_t n, bool cont, int cap, size_t *len)
{
    sp_detok d;
    if (cont) sp_detok_init_continuation(&d);
    else sp_detok_init(&d);
    size_t size = 64, used = 0;
    char *all = malloc(size);
    char *buf = malloc((size_t)cap); /* exact size: ASan sees a write past cap */
    for (size_t i = 0; i <= n; i++) {
        int k = i < n ? sp_detok_push(t, &d, ids[i], buf, cap) : sp_detok_flush(&d, buf, cap);
        if (k < 0 || k > cap - 1) fz_fail("detok returned %d bytes for a buffer of %d", k, cap);
        if (buf[k] != '\0') fz_fail("detok output of %d bytes is not NUL-terminated", k);
        while (used + (size_t)k + 1 > size) size *= 2;
        all = realloc(all, size);
        memcpy(all + used, buf, (size_t)k);
        used += (size_t)k;
    }
    all[used] = '\0';
    free(buf);
    *len = used;
    return all;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool bpe = (data[0] & 8) && fz_vocab_bpe();
    const sp_tokenizer *t = bpe ? fz_vocab_bpe() : fz_vocab();
    int n_vocab = sp_tokenizer_n_vocab(t);
    unsigned flags = (data[0] & 1 ? SP_TOK_ADD_SPECIAL : 0) | (data[0] & 4 ? SP_TOK_PARSE_SPECIAL : 0);
    bool cont = data[0] & 2;
    const uint8_t *body = data + 1;
    size_t blen = size - 1;

    char *text = malloc(blen + 1);
    memcpy(text, body, blen);
    text[blen] = '\0';
    size_t len = strlen(text);

    /* encode: ids in the vocabulary, a count within the bound */
    size_t bound = fz_tokenize_bound(len);
    int n = -1;
    sp_error err = {{0}};
    int *ids = sp_tokenize(t, text, flags, &n, &err);
    if (!ids) fz_fail("sp_tokenize refused %zu bytes: %s", len, err.msg);
    if (n < 0 || (size_t)n > bound) fz_fail("sp_tokenize returned %d ids for %zu bytes (bound %zu)", n, len, bound);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) fz_fail("id %d at %d is outside the vocabulary of %d", ids[i], i, n_vocab);
    if ((flags & SP_TOK_ADD_SPECIAL) && sp_tokenizer_add_bos(t) && (n < 1 || ids[0] != sp_tokenizer_bos(t)))
        fz_fail("SP_TOK_ADD_SPECIAL but the first id is not BOS");

    /* deterministic: a second call gives the same ids */
    int n2 = -1;
    int *again = sp_tokenize(t, text, flags, &n2, &err);
    if (!again || n2 != n || (n > 0 && memcmp(again, ids, (size_t)n * sizeof *ids) != 0))
        fz_fail("sp_tokenize gave %d ids, then %d or other ids for the same text", n, n2);
    free(again);

    /* round trip: SentencePiece with every byte token and without U+2581
     * (which decodes as a space); byte-level BPE for plain text */
    bool trip = fz_utf8_invalid_at(text, len) < 0 &&
                (bpe ? flags == 0 : all_bytes && !(flags & SP_TOK_PARSE_SPECIAL) && !strstr(text, "\xe2\x96\x81"));
    if (trip) {
        size_t dlen;
        char *back = decode_all(t, ids, (size_t)n, false, 16384, &dlen);
        if (dlen != len || memcmp(back, text, len) != 0)
            fz_fail("round trip: %zu bytes '%s' decoded to %zu bytes '%s'", len, text, dlen, back);
        free(back);
    }
    free(ids);
    free(text);

    /* streaming decode of arbitrary ids, some outside the vocabulary */
    size_t n_ids = blen / 2;
    int *stream = malloc((n_ids ? n_ids : 1) * sizeof *stream);
    for (size_t i = 0; i < n_ids; i++) {
        unsigned v = body[2 * i] | (unsigned)body[2 * i + 1] << 8;
        stream[i] = (int)(v % (unsigned)(n_vocab + 8)) - 4;
    }
    int caps[2] = {16384, 1 + data[0] % 7}; /* ample, and a tiny buffer that cuts */
    for (int c = 0; c < 2; c++) {
        size_t dlen;
        char *out = decode_all(t, stream, n_ids, cont, caps[c], &dlen);
        /* a cut may split a character; with the ample buffer nothing is cut */
        if (c == 0 && fz_utf8_invalid_at(out, dlen) >= 0)
            fz_fail("decoded ids give ill-formed UTF-8 at byte %ld", fz_utf8_invalid_at(out, dlen));
        free(out);
    }
    free(stream);
    return 0;
}
