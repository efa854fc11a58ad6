/* shardfile.h - one pipeline stage's shard as a GGUF file of its own
 * (`shardpipe split`), for boards that should not store the whole model.
 *
 * A shard file keeps every metadata key of the original (hyper-parameters,
 * tokenizer, chat template: block_count stays the original's) and only the
 * stage's tensors under their original names: blk.L.* for L in [first, last]
 * (and rope_freqs when it has layers), token_embd on the first stage,
 * output_norm and output (or the tied token_embd) on the last. So it runs as
 * layers [first, last] of the original model with no renumbering. Keys
 * shardpipe.shard.{first,last,embed,head,source} record what it holds, and
 * n_vocab, tied_output what the original's tensor index said. */
#ifndef SHARDPIPE_SHARDFILE_H
#define SHARDPIPE_SHARDFILE_H

#include <stdbool.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"

#define SP_SHARD_KEY_FIRST "shardpipe.shard.first"
#define SP_SHARD_KEY_LAST "shardpipe.shard.last"
#define SP_SHARD_KEY_EMBED "shardpipe.shard.embed"
#define SP_SHARD_KEY_HEAD "shardpipe.shard.head"
#define SP_SHARD_KEY_SOURCE "shardpipe.shard.source"
/* what the original's tensor index said, which a shard may not hold */
#define SP_SHARD_KEY_VOCAB "shardpipe.shard.n_vocab"
#define SP_SHARD_KEY_TIED "shardpipe.shard.tied_output"

typedef struct sp_shard_info {
    bool is_shard;   /* false: a whole model (the other fields are unset) */
    int first, last; /* layers held, inclusive, numbered as in the original */
    bool embed, head;
    int n_vocab;      /* rows of the original's token_embd */
    bool tied_output; /* the original has no output.weight */
} sp_shard_info;

/* Reads the shardpipe.shard.* keys; 0 with is_shard false on a whole model,
 * -1 when the keys are present but inconsistent. */
int sp_shard_info_read(const sp_gguf *g, sp_shard_info *out, sp_error *err);

/* Whether a shard of layers [first, last] (with the embedding / head; tied:
 * the model has no output.weight) holds the tensor of that name. */
bool sp_shard_holds(sp_gguf_str name, int first, int last, bool embed, bool head, bool tied);

/* The identity of a stage's shard that does not depend on which file holds
 * it: XXH3-64 over the model's metadata (every key but shardpipe.shard.*
 * and general.alignment, in key order) and over the name, type, shape and
 * bytes of each tensor the shard holds (sp_shard_holds, in name order). The
 * whole model and a `shardpipe split` shard of it give the same value for
 * the same stage, so a rank running a shard file proves it holds the same
 * weights as the coordinator's whole file (run.c's shard_identity hashes
 * the file's header, which a shard file cannot share). Reads every byte of
 * the shard; not cached. */
uint64_t sp_shard_content_hash(const sp_gguf *g, int first, int last, bool embed, bool head);

/* The writer of that shard file (tensors referenced in g's mapping, which
 * must outlive it): sp_gguf_write writes it, sp_gguf_stream_new sends it
 * (rank 0 to a board that lacks its shard, src/cluster/ship.c). NULL with
 * the error on a file that is itself a shard or an empty range. */
sp_gguf_writer *sp_shard_writer(const sp_gguf *g, int first, int last, bool embed, bool head, sp_error *err);

/* Writes layers [first, last] of the model `g` (with the embedding and/or
 * head) to `path` as a shard file, atomically. Tensor bytes are written
 * straight from g's mapping. Fails on a file that is itself a shard. */
int sp_shard_write(const sp_gguf *g, int first, int last, bool embed, bool head, const char *path,
                   sp_error *err);

#endif
