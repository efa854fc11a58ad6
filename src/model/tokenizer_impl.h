/* tokenizer_impl.h - what the tokenizer's files share inside the model layer
 * (not a public header): the vocabulary record, the piece -> id map, the
 * growable id vector that makes the output bound the tokenizer's own
 * business, the pair-merging engine both algorithms drive, and the entry
 * points of each algorithm.
 *
 *   tokenizer.c          load (common keys), accessors, sp_tokenize: BOS,
 *                        special-token matching, fragments to the algorithm
 *   tokenizer_map.c      piece -> id hash map, id vector
 *   tokenizer_merge.c    best-pair-first merging over a symbol list
 *   tokenizer_spm.c      SentencePiece "llama": scores, U+2581, byte fallback
 *   tokenizer_bpe.c      byte-level BPE "gpt2": merges, GPT-2 byte map
 *   tokenizer_pretok.c   the pre-tokenizer regexes (PCRE2) and NFC (utf8proc)
 *   tokenizer_detok.c    streaming decoding to valid UTF-8 */
#ifndef SHARDPIPE_TOKENIZER_IMPL_H
#define SHARDPIPE_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/tokenizer.h"

/* token_type values as written by llama.cpp's converters. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef enum tok_kind { TOK_SPM, TOK_BPE } tok_kind;

/* piece -> id, open addressing over the tokenizer's pieces. */
typedef struct tok_map {
    int *slots;        /* id or -1 */
    uint32_t n_slots;  /* power of two, at least twice the entries */
} tok_map;

typedef struct tok_bpe tok_bpe;     /* tokenizer_bpe.c */
typedef struct tok_pretok tok_pretok; /* tokenizer_pretok.c */

struct sp_tokenizer {
    tok_kind kind;
    int n_vocab;
    char **pieces;     /* NUL-terminated copies, into one arena */
    int *piece_len;
    int32_t *types;
    char *arena;
    uint8_t *eog;      /* 1 for the tokens that end generation */
    int bos, eos, unk; /* unk -1 when the vocabulary has none */
    bool add_bos, add_eos;

    /* special tokens matched in the text before pre-tokenizing: CONTROL and
     * USER_DEFINED pieces, by text; lengths in decreasing order */
    tok_map specials;
    int *special_lens;
    int n_special_lens;
    uint8_t special_first[256]; /* 1 when some special piece starts with the byte */

    /* SentencePiece */
    float *scores;
    tok_map ordinary;  /* pieces that text may become (not control/unknown/byte) */
    int byte_id[256];  /* <0xXX> token of each byte (BPE: the byte's GPT-2 char), -1 if absent */
    bool add_space_prefix;

    /* byte-level BPE */
    tok_bpe *bpe;
};

/* ---- tokenizer_map.c ---- */
uint32_t tok_hash(const char *s, int n);
void tok_map_init(tok_map *m, int n_entries);
void tok_map_free(tok_map *m);
/* A later duplicate of a piece replaces the earlier one, as in llama.cpp. */
void tok_map_insert(tok_map *m, const sp_tokenizer *t, int id);
int tok_map_find(const tok_map *m, const sp_tokenizer *t, const char *s, int n);

/* A growing array of ids: nothing the text does can overrun it. */
typedef struct tok_ids {
    int *v;
    int n, cap;
} tok_ids;
void tok_ids_push(tok_ids *o, int id);

/* ---- tokenizer_merge.c ---- */
/* A symbol of the text being merged: bytes [start, start+len) of the text
 * and the token it currently is (-1: none yet). len is 0 once merged away. */
typedef struct tok_sym {
    int start, len;
    int prev, next;   /* neighbours, -1 at the ends */
    int id;
} tok_sym;

/* Whether symbols l and r (adjacent) may merge: on yes, *prio (higher merges
 * first) and *id (the merged token) are set. */
typedef bool (*tok_pair_fn)(const void *ctx, const tok_sym *l, const tok_sym *r, double *prio, int *id);

typedef struct tok_merger {
    struct tok_pair *heap; /* reused between calls */
    int n, cap;
} tok_merger;

/* Merges the best pair (highest prio, leftmost on ties) until no pair is
 * left. sym[0..n_sym) is a list in text order (sym[i].next = i + 1). */
void tok_merge(tok_merger *m, tok_sym *sym, int n_sym, tok_pair_fn fn, const void *ctx);
void tok_merger_free(tok_merger *m);

/* ---- tokenizer_spm.c ---- */
int tok_spm_load(sp_tokenizer *t, const sp_gguf *g, sp_error *err);
/* Encodes one fragment of plain text; space_prefix puts one "▁" first. */
void tok_spm_encode(const sp_tokenizer *t, const char *text, int len, bool space_prefix, tok_ids *out);
/* Byte value of a <0xXX> token, -1 for other tokens. */
int tok_spm_byte(const sp_tokenizer *t, int id);

/* ---- tokenizer_bpe.c ---- */
int tok_bpe_load(sp_tokenizer *t, const sp_gguf *g, sp_error *err);
void tok_bpe_free(tok_bpe *b);
void tok_bpe_encode(const sp_tokenizer *t, const char *text, int len, tok_ids *out);
/* Bytes of a byte-level piece (GPT-2 chars back to bytes) into out (room for
 * n bytes: never more than the piece); returns the count. */
int tok_bpe_unmap(const sp_tokenizer *t, const char *piece, int n, char *out);

/* ---- tokenizer_pretok.c ---- */
typedef enum tok_pre { TOK_PRE_LLAMA3, TOK_PRE_QWEN2 } tok_pre;
tok_pretok *tok_pretok_new(tok_pre pre, const char *path, sp_error *err);
void tok_pretok_free(tok_pretok *p);
/* Calls fn for each piece of text the regex splits off, in order. Bytes no
 * alternative matches (invalid UTF-8) become pieces of their own, so every
 * byte of text lands in exactly one piece. */
typedef void (*tok_piece_fn)(void *ctx, const char *piece, int len);
void tok_pretok_split(const tok_pretok *p, const char *text, int len, tok_piece_fn fn, void *ctx);
/* NFC of text as a malloc'ed string (length in *out_len); NULL when text is
 * not valid UTF-8 (it is then used as it is). */
char *tok_nfc(const char *text, int len, int *out_len);

#endif
