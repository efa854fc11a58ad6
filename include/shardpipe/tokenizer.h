/* tokenizer.h - the SentencePiece-style "llama" tokenizer stored in GGUF
 * metadata (tokenizer.ggml.tokens / scores / token_type, bos/eos ids).
 *
 * Encoding follows llama.cpp's SPM tokenizer: spaces become U+2581, a
 * leading space is added to the text, symbols (UTF-8 characters) are merged
 * greedily by the highest-scoring pair present in the vocabulary, and
 * characters with no token fall back to <0xXX> byte tokens. Decoding is
 * streaming-safe: sp_detok_push returns only complete UTF-8 sequences and
 * keeps a partial one for the next token. */
#ifndef SHARDPIPE_TOKENIZER_H
#define SHARDPIPE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"

typedef struct sp_tokenizer sp_tokenizer;

/* Reads the vocabulary from g (copies what it needs: g may be closed after).
 * Errors name the file and the missing/invalid key. */
sp_tokenizer *sp_tokenizer_load(const sp_gguf *g, sp_error *err);
void sp_tokenizer_free(sp_tokenizer *t);

int sp_tokenizer_n_vocab(const sp_tokenizer *t);
int sp_tokenizer_bos(const sp_tokenizer *t);
int sp_tokenizer_eos(const sp_tokenizer *t);
/* tokenizer.ggml.add_bos_token (default true): whether prompts start with BOS. */
bool sp_tokenizer_add_bos(const sp_tokenizer *t);

/* Encode text; writes at most cap ids to out and returns the full count
 * (call again with a larger buffer if it exceeds cap), or -1 when text is
 * longer than SP_TOKENIZE_MAX_BYTES. */
#define SP_TOKENIZE_MAX_BYTES (256u << 20)
int sp_tokenize(const sp_tokenizer *t, const char *text, bool add_bos, int *out, int cap);

/* The raw piece of a token ("▁the", "<0x0A>", ...). */
const char *sp_token_piece(const sp_tokenizer *t, int id);

/* Streaming detokenizer. */
typedef struct sp_detok {
    char pending[8];  /* bytes of an incomplete UTF-8 character */
    int n_pending;
    bool at_start;    /* drop the leading space of the first piece */
} sp_detok;

void sp_detok_init(sp_detok *d);
/* For text that continues a prompt: keep the leading space of the first
 * generated piece ("They saw" + " a big box"). */
void sp_detok_init_continuation(sp_detok *d);
/* Writes the printable text for token id to out (NUL-terminated, at most
 * cap-1 bytes; longer text is cut) and returns its length. "▁" prints as a
 * space, <0xXX> as that byte, control tokens (<s>, </s>) as nothing, <unk>
 * as U+2585. When the vocabulary adds a prefix space, the leading space of
 * the first non-control token is dropped (it is that prefix), so decoding
 * the tokens of a text gives the text back exactly, leading spaces
 * included. Incomplete UTF-8 is held back until its last byte arrives;
 * invalid bytes print as U+FFFD, so the output is always valid UTF-8. */
int sp_detok_push(const sp_tokenizer *t, sp_detok *d, int id, char *out, int cap);
/* Flushes whatever is held back (invalid bytes become U+FFFD). */
int sp_detok_flush(sp_detok *d, char *out, int cap);

#endif
