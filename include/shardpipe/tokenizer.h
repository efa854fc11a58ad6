/* tokenizer.h - the tokenizers stored in GGUF metadata, behind one API:
 *
 * - SentencePiece "llama" (tokenizer.ggml.model = llama: Llama 1/2,
 *   TinyLlama, stories): spaces become U+2581, a prefix space is added,
 *   UTF-8 characters merge greedily by the highest-scoring pair, and
 *   characters with no token fall back to <0xXX> byte tokens (as llama.cpp's
 *   SPM tokenizer).
 * - Byte-level BPE "gpt2" (Llama 3.x with pre-tokenizer llama-bpe, Qwen2/2.5/3
 *   with qwen2): the text is split by the pre-tokenizer's regex (PCRE2), each
 *   piece's bytes become GPT-2's printable byte characters, and pairs merge in
 *   the order of tokenizer.ggml.merges (rank = index). Qwen's text is put in
 *   Unicode NFC first, as its tokenizer.json's normalizer does (Hugging Face
 *   tokenizers does this; llama.cpp does not, so decomposed accents such as
 *   "e\u0301" tokenize as HF tokenizes them).
 *
 * Special tokens: with SP_TOK_PARSE_SPECIAL the texts of CONTROL and
 * USER_DEFINED tokens ("<|eot_id|>", "<think>") in the input become those
 * tokens; without it only USER_DEFINED ones do, so a user typing
 * "<|im_start|>" gets ordinary text. Chat prompts rendered by shardpipe use
 * the flag; user text never should.
 *
 * Decoding is streaming-safe: sp_detok_push returns only complete UTF-8 and
 * keeps a partial character for the next token. */
#ifndef SHARDPIPE_TOKENIZER_H
#define SHARDPIPE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"

typedef struct sp_tokenizer sp_tokenizer;

/* Reads the vocabulary from g (copies what it needs: g may be closed after;
 * sp_gguf_open_meta is enough). Errors name the file and the missing or
 * invalid key. */
sp_tokenizer *sp_tokenizer_load(const sp_gguf *g, sp_error *err);
void sp_tokenizer_free(sp_tokenizer *t);

int sp_tokenizer_n_vocab(const sp_tokenizer *t);
int sp_tokenizer_bos(const sp_tokenizer *t);
int sp_tokenizer_eos(const sp_tokenizer *t);
/* tokenizer.ggml.add_bos_token (default true): whether SP_TOK_ADD_SPECIAL
 * puts BOS first (Llama 3: yes, Qwen: no). */
bool sp_tokenizer_add_bos(const sp_tokenizer *t);
/* Whether sampling id ends generation: EOS, tokenizer.ggml.eot_token_id /
 * eom_token_id, and the control tokens <|eot_id|>, <|eom_id|>,
 * <|end_of_text|>, <|im_end|>, <|endoftext|>. */
bool sp_token_is_eog(const sp_tokenizer *t, int id);

/* Flags of sp_tokenize. */
enum {
    SP_TOK_ADD_SPECIAL = 1u << 0,   /* BOS first when the vocabulary says so (and EOS last when
                                     * tokenizer.ggml.add_eos_token says so) */
    SP_TOK_PARSE_SPECIAL = 1u << 1, /* match CONTROL token texts too (see above) */
};

/* Longest text sp_tokenize takes. */
#define SP_TOKENIZE_MAX_BYTES (256u << 20)

/* Encodes text. Returns a malloc'ed array of *n_out ids (the caller frees
 * it; never NULL on success, even for 0 ids), or NULL with err set when text
 * is longer than SP_TOKENIZE_MAX_BYTES. The array is exactly as long as the
 * encoding: there is no buffer for a caller to size. */
int *sp_tokenize(const sp_tokenizer *t, const char *text, unsigned flags, int *n_out, sp_error *err);

/* The raw piece of a token ("▁the", "<0x0A>", "Ġthe", ...); "" when out of range. */
const char *sp_token_piece(const sp_tokenizer *t, int id);

/* The bytes token id stands for, before any UTF-8 checking (so possibly part
 * of a character): SentencePiece "▁" as ' ', <0xXX> as that byte, <unk> as
 * U+2585, control tokens nothing; BPE pieces' GPT-2 characters as their
 * bytes, control tokens their text, unused ones nothing. Writes at most cap
 * bytes (no NUL) and returns the count; 0 for an id out of range. */
int sp_token_bytes(const sp_tokenizer *t, int id, char *out, int cap);

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
 * cap-1 bytes; longer text is cut) and returns its length.
 * SentencePiece: "▁" prints as a space, <0xXX> as that byte, control tokens
 * (<s>, </s>) as nothing, <unk> as U+2585; when the vocabulary adds a prefix
 * space, the leading space of the first non-control token is dropped (it is
 * that prefix), so decoding the tokens of a text gives the text back exactly.
 * BPE: a piece's GPT-2 characters print as their bytes, control and
 * user-defined tokens as their text ("<|im_end|>"), unused ones as nothing.
 * Incomplete UTF-8 is held back until its last byte arrives; invalid bytes
 * print as U+FFFD, so the output is always valid UTF-8. */
int sp_detok_push(const sp_tokenizer *t, sp_detok *d, int id, char *out, int cap);
/* Flushes whatever is held back (invalid bytes become U+FFFD). */
int sp_detok_flush(sp_detok *d, char *out, int cap);

#endif
