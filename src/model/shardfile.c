/* shardfile.c - writing one stage's shard as a GGUF file of its own and
 * reading back what a shard holds (shardfile.h). The shard keeps the
 * original's tensor names and metadata, so the forward pass, the config
 * reader and the tokenizer see the same model, restricted to its layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/shardfile.h"

static int get_i32(const sp_gguf *g, const char *key, int *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv || (kv->type != SP_GGUF_INT32 && kv->type != SP_GGUF_UINT32))
        return sp_errorf(err, "%s: shard key '%s' is missing or not a 32-bit integer; write the shard again "
                              "with `shardpipe split`", g->path, key);
    *out = (int)kv->val.i64;
    return 0;
}

static bool get_bool(const sp_gguf *g, const char *key)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    return kv && kv->type == SP_GGUF_BOOL && kv->val.b;
}

int sp_shard_info_read(const sp_gguf *g, sp_shard_info *out, sp_error *err)
{
    memset(out, 0, sizeof *out);
    if (!sp_gguf_find(g, SP_SHARD_KEY_FIRST) && !sp_gguf_find(g, SP_SHARD_KEY_LAST)) return 0;
    out->is_shard = true;
    if (get_i32(g, SP_SHARD_KEY_FIRST, &out->first, err) || get_i32(g, SP_SHARD_KEY_LAST, &out->last, err))
        return -1;
    if (out->first < 0 || out->last < out->first - 1)
        return sp_errorf(err, "%s: shard layers [%d, %d] are not a range; write the shard again with "
                              "`shardpipe split`", g->path, out->first, out->last);
    out->embed = get_bool(g, SP_SHARD_KEY_EMBED);
    out->head = get_bool(g, SP_SHARD_KEY_HEAD);
    out->tied_output = get_bool(g, SP_SHARD_KEY_TIED);
    if (get_i32(g, SP_SHARD_KEY_VOCAB, &out->n_vocab, err)) return -1;
    if (out->n_vocab < 1 || out->n_vocab > (1 << 24))
        return sp_errorf(err, "%s: %s %d is outside 1..%d; write the shard again with `shardpipe split`", g->path,
                         SP_SHARD_KEY_VOCAB, out->n_vocab, 1 << 24);
    return 0;
}

/* Layer number of a "blk.N." tensor name, or -1 for any other name. */
static long block_of(sp_gguf_str name)
{
    if (name.len < 5 || memcmp(name.ptr, "blk.", 4)) return -1;
    long l = 0;
    uint64_t i = 4;
    for (; i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && l < 1000000; i++)
        l = l * 10 + (name.ptr[i] - '0');
    return i > 4 && i < name.len && name.ptr[i] == '.' ? l : -1;
}

bool sp_shard_holds(sp_gguf_str name, int first, int last, bool embed, bool head, bool tied)
{
    long l = block_of(name);
    if (l >= 0) return l >= first && l <= last;
    if (sp_gguf_str_eq(name, "rope_freqs.weight")) return last >= first; /* every stage with layers */
    if (sp_gguf_str_eq(name, "token_embd.weight")) return embed || (head && tied);
    if (sp_gguf_str_eq(name, "output_norm.weight") || sp_gguf_str_eq(name, "output.weight")) return head;
    return false;
}

sp_gguf_writer *sp_shard_writer(const sp_gguf *g, int first, int last, bool embed, bool head, sp_error *err)
{
    sp_shard_info info;
    if (sp_shard_info_read(g, &info, err)) return NULL;
    if (info.is_shard) {
        sp_errorf(err, "%s is already a shard (layers %d-%d); split the original model instead", g->path, info.first,
                  info.last);
        return NULL;
    }
    bool tied = !sp_gguf_find_tensor(g, "output.weight");
    const sp_gguf_tensor *emb = sp_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) {
        sp_errorf(err, "%s: tensor 'token_embd.weight' is missing or not 2-D; only a whole model can be split",
                  g->path);
        return NULL;
    }
    sp_gguf_writer *w = sp_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sp_gguf_kv *kv = &g->kv[i];
        if (kv->key.len >= 16 && !memcmp(kv->key.ptr, "shardpipe.shard.", 16)) continue;
        sp_gguf_add_kv_copy(w, kv);
    }
    sp_gguf_add_i32(w, SP_SHARD_KEY_FIRST, first);
    sp_gguf_add_i32(w, SP_SHARD_KEY_LAST, last);
    sp_gguf_add_bool(w, SP_SHARD_KEY_EMBED, embed);
    sp_gguf_add_bool(w, SP_SHARD_KEY_HEAD, head);
    sp_gguf_add_i32(w, SP_SHARD_KEY_VOCAB, (int32_t)emb->ne[1]);
    sp_gguf_add_bool(w, SP_SHARD_KEY_TIED, tied);
    const char *base = strrchr(g->path, '/') ? strrchr(g->path, '/') + 1 : g->path;
    sp_gguf_add_str(w, SP_SHARD_KEY_SOURCE, base);
    int n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sp_gguf_tensor *t = &g->tensors[i];
        if (!sp_shard_holds(t->name, first, last, embed, head, tied)) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 255 ? t->name.len : 255), t->name.ptr);
        sp_gguf_add_tensor_ref(w, name, t->type, t->n_dims, t->ne, t->data);
        n++;
    }
    if (n == 0) {
        sp_errorf(err, "%s: no tensors for layers %d-%d%s%s; is the layer range inside the model?", g->path, first,
                  last, embed ? " with the embedding" : "", head ? " with the head" : "");
        sp_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

int sp_shard_write(const sp_gguf *g, int first, int last, bool embed, bool head, const char *path,
                   sp_error *err)
{
    sp_gguf_writer *w = sp_shard_writer(g, first, last, embed, head, err);
    if (!w) return -1;
    int rc = sp_gguf_write(w, path, err);
    sp_gguf_writer_free(w);
    return rc;
}
