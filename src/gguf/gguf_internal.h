/* gguf_internal.h - what gguf_read.c shares with gguf_lookup.c; not public. */
#ifndef SP_GGUF_INTERNAL_H
#define SP_GGUF_INTERNAL_H

#include <stdint.h>

#include "shardpipe/gguf.h"

/* "uint32", "string", ...: a metadata value type's name for messages. */
const char *sp_gguf_vtype_name(uint32_t t);

/* Order strings as memcmp would, shorter first on a common prefix (the
 * order of the kv and tensor indexes). */
int sp_gguf_str_cmp(sp_gguf_str a, sp_gguf_str b);

#endif
