/* fuzz_util.h - what the libFuzzer harnesses of tests/fuzz share: a private
 * scratch folder for the files the readers open (they all take a path), and
 * the fixed vocabulary the tokenizer and prompts targets encode with. */
#ifndef SP_FUZZ_UTIL_H
#define SP_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/tokenizer.h"

/* Scratch folder of this process (made on first use, removed at exit). */
const char *fz_dir(void);
/* Writes data to fz_dir()/name (replacing it) and returns the path (a
 * static buffer per name slot: valid until the next call with that name). */
const char *fz_write(const char *name, const uint8_t *data, size_t size);

/* The vocabulary of $SP_FUZZ_VOCAB, else SP_SHARED_DIR/models/stories260K.gguf
 * (512 SentencePiece pieces with byte fallback), else a byte-level vocabulary
 * that synth writes into fz_dir(). Loaded once; aborts when none loads (a
 * harness that cannot run must not pass). */
const sp_tokenizer *fz_vocab(void);
/* Llama 3's byte-level BPE vocabulary from SP_SHARED_DIR/models/
 * llama3-tiny-Q4_K_M.gguf (metadata only), or NULL when that file is missing. */
const sp_tokenizer *fz_vocab_bpe(void);
/* Path of a GGUF model with that vocabulary (for plan checks). */
const char *fz_model_path(void);

/* Ids an encoder can emit for len bytes of text: SentencePiece may turn
 * every byte into one byte token after a space became the 3-byte U+2581,
 * plus the prefix space, BOS and EOS (byte-level BPE stays below len + 2). */
static inline size_t fz_tokenize_bound(size_t len) { return 3 * len + 3 + 2; }

/* Aborts (a libFuzzer crash with a reproducer) with a message. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Checks out[0..n) is well-formed UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF); returns the offset of the first bad byte or -1. */
long fz_utf8_invalid_at(const char *s, size_t n);

#endif
