/* shardid.c - a shard's identity by content (sp_shard_content_hash,
 * shardfile.h): the same for the whole model file and for a `shardpipe
 * split` shard file of the same stage, since it hashes what the shard
 * means (metadata values, tensor names, types, shapes, bytes) in a fixed
 * order, never the file's layout. */
#include <string.h>
#include <xxhash.h>

#include "shardpipe/shardfile.h"

static void put(XXH3_state_t *s, const void *p, size_t n) { XXH3_64bits_update(s, p, n); }

static void put_u64(XXH3_state_t *s, uint64_t v) { put(s, &v, sizeof v); }

static void put_str(XXH3_state_t *s, sp_gguf_str str)
{
    put_u64(s, str.len);
    put(s, str.ptr, (size_t)str.len);
}

static void put_kv(XXH3_state_t *s, const sp_gguf_kv *kv)
{
    put_str(s, kv->key);
    put_u64(s, kv->type);
    switch (kv->type) {
    case SP_GGUF_STRING: put_str(s, kv->val.str); break;
    case SP_GGUF_BOOL: put_u64(s, kv->val.b); break;
    case SP_GGUF_FLOAT32:
    case SP_GGUF_FLOAT64: put(s, &kv->val.f64, sizeof kv->val.f64); break;
    case SP_GGUF_ARRAY:
        put_u64(s, kv->arr_type);
        put_u64(s, kv->arr_n);
        if (kv->arr_strs)
            for (uint64_t i = 0; i < kv->arr_n; i++) put_str(s, kv->arr_strs[i]);
        else put(s, kv->arr_data, (size_t)(kv->arr_n * sp_gguf_vtype_size(kv->arr_type)));
        break;
    default: put_u64(s, kv->val.u64); break; /* integers, widened by the reader */
    }
}

static bool prefixed(sp_gguf_str key, const char *prefix)
{
    size_t n = strlen(prefix);
    return key.len >= n && !memcmp(key.ptr, prefix, n);
}

uint64_t sp_shard_content_hash(const sp_gguf *g, int first, int last, bool embed, bool head)
{
    sp_shard_info sh;
    sp_error err = {{0}};
    bool tied = sp_shard_info_read(g, &sh, &err) == 0 && sh.is_shard ? sh.tied_output
                                                                      : !sp_gguf_find_tensor(g, "output.weight");
    XXH3_state_t *s = XXH3_createState();
    XXH3_64bits_reset(s);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sp_gguf_kv *kv = g->kv_by_key[i];
        if (prefixed(kv->key, "shardpipe.shard.") || sp_gguf_str_eq(kv->key, "general.alignment")) continue;
        put_kv(s, kv);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = g->tensor_by_name[i];
        if (!sp_shard_holds(t->name, first, last, embed, head, tied)) continue;
        put_str(s, t->name);
        put_u64(s, t->type);
        put_u64(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(s, t->ne[d]);
        put(s, t->data, (size_t)t->nbytes);
    }
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return h;
}
