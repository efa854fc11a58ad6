/* stage.c - the work of one pipeline stage on one micro-batch. */
#include "stage.h"

#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"

int sp_stage_open(sp_stage *s, const sp_plan *plan, int index, const char *logits_out, sp_error *err)
{
    memset(s, 0, sizeof *s);
    const sp_stage_plan *st = &plan->stages[index];
    s->plan = plan;
    s->index = index;
    s->first = index == 0;
    s->last = index == plan->n_stages - 1;
    s->model = sp_model_open(sp_plan_stage_model(plan, index), st->first, st->last, s->first, s->last, err);
    if (!s->model) return -1;
    s->max_rows = sp_plan_max_rows(plan);
    s->engine = sp_engine_new(s->model, st->threads, s->max_rows, plan->sequences, plan->context, err);
    if (!s->engine) return -1;
    s->dim = s->model->cfg.dim;
    s->n_vocab = s->model->cfg.n_vocab;
    size_t r = (size_t)s->max_rows;
    s->hidden = sp_calloc(r * s->dim, sizeof(float));
    s->tokens = sp_calloc(r, sizeof(int));
    s->seq = sp_calloc(r, sizeof(int));
    s->pos = sp_calloc(r, sizeof(int));
    if (s->last) {
        s->head_in = sp_calloc(r * s->dim, sizeof(float));
        s->logits = sp_calloc(r * s->n_vocab, sizeof(float));
        s->samplers = sp_calloc((size_t)plan->sequences, sizeof(sp_sampler));
        s->sampler_ready = sp_calloc((size_t)plan->sequences, sizeof(bool));
        if (logits_out) {
            s->logits_out = fopen(logits_out, "wb");
            if (!s->logits_out) return sp_errorf(err, "cannot write the logits file %s", logits_out);
        }
    }
    return 0;
}

void sp_stage_close(sp_stage *s)
{
    if (s->samplers)
        for (int i = 0; i < s->plan->sequences; i++)
            if (s->sampler_ready[i]) sp_sampler_free(&s->samplers[i]);
    if (s->logits_out) fclose(s->logits_out);
    free(s->samplers);
    free(s->sampler_ready);
    free(s->hidden);
    free(s->head_in);
    free(s->logits);
    free(s->tokens);
    free(s->seq);
    free(s->pos);
    sp_engine_free(s->engine);
    sp_model_close(s->model);
    memset(s, 0, sizeof *s);
}

/* Sampling of the last stage. Each request gets its own sampler, started
 * on its START row from the parameters and seed the row carries (`run`
 * gives request i the seed --seed + i); a draw depends only on that seed
 * and the position of the token drawn (a row at pos samples pos + 1), so a
 * sequence draws the same tokens whatever else is in flight, whichever slot
 * it lands in, and when a server resumes it from its middle. */
static void sample_rows(sp_stage *s, const sp_wire_row *rows, int n, sp_wire_row *out, int *n_out)
{
    int k = 0; /* index into the logits rows */
    for (int i = 0; i < n; i++) {
        const sp_wire_row *r = &rows[i];
        sp_sampler *smp = &s->samplers[r->seq];
        if (r->flags & SP_ROW_START) { /* a new request in this slot */
            if (s->sampler_ready[r->seq]) sp_sampler_free(smp);
            const sp_wire_sampling *w = &r->sampling;
            sp_sampler_params p = {w->temperature, w->top_k, w->top_p, w->min_p, w->repeat_penalty,
                                   w->repeat_last_n, (uint64_t)w->seed_hi << 32 | w->seed_lo};
            sp_sampler_init(smp, &p, s->n_vocab);
            s->sampler_ready[r->seq] = true;
        }
        if (r->flags & SP_ROW_PROMPT) sp_sampler_accept(smp, r->token);
        if (!(r->flags & SP_ROW_LOGITS)) continue;
        float *logits = s->logits + (size_t)k++ * s->n_vocab;
        if (s->logits_out) {
            int32_t id[2] = {r->req, r->pos};
            fwrite(id, sizeof id, 1, s->logits_out);
            fwrite(logits, sizeof(float), (size_t)s->n_vocab, s->logits_out);
        }
        int tok = sp_sampler_sample(smp, logits, r->pos + 1);
        sp_sampler_accept(smp, tok);
        out[*n_out] = *r;
        out[*n_out].token = tok;
        (*n_out)++;
    }
}

long sp_stage_step(sp_stage *s, const void *in, void *out, sp_error *err)
{
    const sp_wire_header *h = in;
    int n = h->n_rows;
    if (n < 1 || n > s->max_rows)
        return sp_errorf(err, "stage %d got a micro-batch of %d rows (at most %d)", s->index, n, s->max_rows);
    const sp_wire_row *rows = sp_wire_rows((void *)in);
    for (int i = 0; i < n; i++) {
        s->tokens[i] = rows[i].token;
        s->seq[i] = rows[i].seq;
        s->pos[i] = rows[i].pos;
    }
    if (s->first) {
        if (sp_embed(s->engine, s->tokens, n, s->hidden, err)) return -1;
    } else {
        sp_wire_decode(s->plan->wire, sp_wire_hidden((void *)in, n), n, s->dim, s->hidden);
    }
    sp_batch b = {n, s->seq, s->pos};
    if (sp_forward(s->engine, &b, s->hidden, err)) return -1;

    sp_wire_header *oh = out;
    *oh = *h;
    if (!s->last) {
        oh->has_hidden = 1;
        memcpy(sp_wire_rows(out), rows, (size_t)n * sizeof(sp_wire_row));
        sp_wire_encode(s->plan->wire, s->hidden, n, s->dim, sp_wire_hidden(out, n));
        return (long)sp_wire_msg_bytes(s->plan->wire, n, s->dim, 1);
    }
    /* last stage: logits only for the rows that sample */
    int k = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].flags & SP_ROW_LOGITS)
            memcpy(s->head_in + (size_t)k++ * s->dim, s->hidden + (size_t)i * s->dim, s->dim * sizeof(float));
    if (k) sp_head(s->engine, s->head_in, k, s->logits);
    int n_out = 0;
    sample_rows(s, rows, n, sp_wire_rows(out), &n_out);
    oh->kind = SP_MSG_TOKENS;
    oh->n_rows = n_out;
    oh->has_hidden = 0;
    return (long)sp_wire_msg_bytes(s->plan->wire, n_out, s->dim, 0);
}
