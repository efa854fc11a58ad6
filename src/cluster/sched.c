/* sched.c - see sched.h. */
#include "sched.h"

#include <stdlib.h>
#include <string.h>

#include "prompts.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/escape.h"
#include "shardpipe/util.h"

/* ---- set-up ---- */

static void request_init(sp_request *r, int id, int max_new, const sp_sampler_params *p)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->max_new = max_new;
    r->out = sp_alloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(int));
    r->t_out = sp_alloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(double));
    r->slot = -1;
    r->sampling = *p;
    sp_detok_init_continuation(&r->dt);
}

static void request_release(sp_request *r)
{
    free(r->prompt_text);
    free(r->prompt);
    free(r->out);
    free(r->t_out);
    free(r->text);
}

static int add_request(sp_sched *s, const sp_tokenizer *tok, char *text, int *ids, int n_ids, int n_tokens,
                       int context, const sp_sampler_params *sampling, const char *where, sp_error *err)
{
    s->reqs = realloc(s->reqs, (size_t)(s->n_reqs + 1) * sizeof *s->reqs);
    sp_request *r = &s->reqs[s->n_reqs];
    /* request i draws from its own stream, seeded --seed + i */
    sp_sampler_params p = *sampling;
    p.seed += (uint64_t)s->n_reqs;
    request_init(r, s->n_reqs, n_tokens, &p);
    r->prompt_text = text;
    if (ids) {
        r->prompt = ids;
        r->n_prompt = n_ids;
    } else if (tok) {
        r->prompt = sp_tokenize(tok, text, SP_TOK_ADD_SPECIAL, &r->n_prompt, err);
    } else {
        sp_errorf(err, "a text prompt needs the model's tokenizer, which could not be loaded (see the note "
                       "above); give the prompt as token ids, {\"prompt_tokens\": [1, 15043]}");
    }
    s->n_reqs++;
    if (!r->prompt) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return sp_errorf(err, "%s: %s", where, why);
    }
    if (r->n_prompt < 1 || r->n_prompt + n_tokens > context)
        return sp_errorf(err, "%s: prompt of %d tokens + %d new tokens does not fit the plan's context of %d "
                              "positions; lower -n, shorten the prompt or raise `context` in the plan",
                         where, r->n_prompt, n_tokens, context);
    return 0;
}

void sp_sched_init_empty(sp_sched *s, const sp_tokenizer *tok, int context, int n_slots, int n_groups,
                         int max_rows, int chunk, int depth, int queue_cap)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->eos = -1; /* with a tokenizer its end-of-generation tokens end a sequence */
    s->n_slots = n_slots;
    s->n_groups = n_groups;
    s->max_rows = max_rows;
    s->chunk = chunk;
    s->context = context;
    s->slot_req = sp_calloc((size_t)n_slots, sizeof *s->slot_req);
    s->slot_cache = sp_calloc((size_t)n_slots, sizeof *s->slot_cache);
    for (int i = 0; i < n_slots; i++) s->slot_cache[i] = sp_alloc((size_t)context * sizeof(int));
    s->slot_cache_len = sp_calloc((size_t)n_slots, sizeof(int));
    s->group_inflight = sp_calloc((size_t)n_groups, sizeof(int));
    s->depth = depth > 0 ? depth : 1;
    s->group_rr = sp_calloc((size_t)n_groups, sizeof(int));
    s->p_cap = queue_cap > 0 ? queue_cap : 1;
    s->pending = sp_calloc((size_t)s->p_cap, sizeof *s->pending);
}

static void push_pending(sp_sched *s, sp_request *r)
{
    s->pending[(s->p_head + s->p_len++) % s->p_cap] = r;
}

int sp_sched_init(sp_sched *s, const sp_tokenizer *tok, const char *prompt, const char *prompts_file,
                  int n_tokens, int context, int n_slots, int n_groups, int max_rows, int chunk, int depth,
                  bool ignore_eos, const sp_sampler_params *sampling, sp_error *err)
{
    sp_sched_init_empty(s, tok, context, n_slots, n_groups, max_rows, chunk, depth, 1);
    s->ignore_eos = ignore_eos;
    int rc = 0;
    if (prompt) {
        char *text = malloc(strlen(prompt) + 1);
        strcpy(text, prompt);
        rc = add_request(s, tok, text, NULL, 0, n_tokens, context, sampling, "--prompt", err);
    } else {
        FILE *f = fopen(prompts_file, "r");
        if (!f) return sp_errorf(err, "cannot read the prompts file %s", prompts_file);
        size_t cap = 0;
        char *line = NULL;
        ssize_t len;
        int lineno = 0;
        while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
            lineno++;
            const char *p = line;
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
            if (!*p) continue; /* blank line */
            char why[400];
            int col;
            sp_prompt_line pl;
            int bad = sp_prompt_from_jsonl(line, (size_t)len, &pl, &col, why, sizeof why);
            char where[1100];
            if (!bad || !col) snprintf(where, sizeof where, "%s:%d", prompts_file, lineno);
            else snprintf(where, sizeof where, "%s:%d:%d", prompts_file, lineno, col);
            if (bad)
                rc = sp_errorf(err, "%s: %s; each line must be one JSON object like {\"prompt\": \"Once upon a time\"} "
                                    "or {\"prompt_tokens\": [1, 15043]} in UTF-8, with nothing after it",
                               where, why);
            else
                rc = add_request(s, tok, pl.text, pl.ids, pl.n_ids, n_tokens, context, sampling, where, err);
        }
        free(line);
        fclose(f);
        if (rc == 0 && s->n_reqs == 0) rc = sp_errorf(err, "%s: no prompts in the file", prompts_file);
    }
    if (rc) return rc;
    /* every prompt waits for a slot, in input order (reqs no longer moves) */
    free(s->pending);
    s->p_cap = s->n_reqs;
    s->pending = sp_calloc((size_t)s->p_cap, sizeof *s->pending);
    for (int i = 0; i < s->n_reqs; i++) push_pending(s, &s->reqs[i]);
    return 0;
}

sp_request *sp_sched_add(sp_sched *s, const int *prompt, int n_prompt, int max_new, const sp_sampler_params *p,
                         void *client)
{
    if (s->p_len == s->p_cap) return NULL;
    sp_request *r = sp_alloc(sizeof *r);
    request_init(r, s->n_reqs++, max_new, p);
    r->prompt = sp_alloc((size_t)n_prompt * sizeof(int));
    memcpy(r->prompt, prompt, (size_t)n_prompt * sizeof(int));
    r->n_prompt = n_prompt;
    r->client = client;
    push_pending(s, r);
    return r;
}

void sp_request_free(sp_request *r)
{
    if (!r) return;
    request_release(r);
    free(r);
}

void sp_sched_free(sp_sched *s)
{
    for (int i = 0; i < s->n_reqs && s->reqs; i++) request_release(&s->reqs[i]);
    free(s->reqs);
    free(s->pending);
    free(s->slot_req);
    for (int i = 0; i < s->n_slots && s->slot_cache; i++) free(s->slot_cache[i]);
    free(s->slot_cache);
    free(s->slot_cache_len);
    free(s->group_inflight);
    free(s->group_rr);
}

bool sp_sched_finished(const sp_sched *s) { return s->n_done == s->n_reqs; }

int sp_sched_running(const sp_sched *s)
{
    int n = s->p_len;
    for (int i = 0; i < s->n_slots; i++) n += s->slot_req[i] != NULL;
    return n;
}

/* ---- requests end ---- */

static void emit(sp_sched *s, sp_request *r, const char *text, int len, bool done)
{
    if (s->on_event) s->on_event(s->event_arg, s, r, text, len, done);
}

static void finish(sp_sched *s, sp_request *r, int why, double now)
{
    r->done = true;
    r->finish = why;
    r->t_done = now;
    if (r->slot >= 0) s->slot_req[r->slot] = NULL;
    r->slot = -1;
    s->n_done++;
    emit(s, r, NULL, 0, true); /* r may be gone after this */
}

void sp_sched_cancel(sp_sched *s, sp_request *r, double now)
{
    if (r->done) return;
    if (r->slot < 0) { /* still waiting: take it out of the queue */
        int k = 0;
        for (int i = 0; i < s->p_len; i++) {
            sp_request *q = s->pending[(s->p_head + i) % s->p_cap];
            if (q != r) s->pending[(s->p_head + k++) % s->p_cap] = q;
        }
        s->p_len = k;
    }
    finish(s, r, SP_FINISH_CANCELLED, now);
}

/* ---- slots and the prompt cache ---- */

static int common_prefix(const int *a, int na, const int *b, int nb)
{
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Waiting requests take free slots, oldest first. Among the free slots a
 * request takes the one whose cached tokens share the longest prefix with
 * its prompt (at least the last prompt token is fed again: its logits give
 * the first new token), else the one with the shortest cache. The slot's
 * KV beyond that prefix is simply overwritten. */
static void admit(sp_sched *s, double now)
{
    while (s->p_len > 0) {
        int best = -1, best_match = -1;
        sp_request *r = s->pending[s->p_head];
        for (int slot = 0; slot < s->n_slots; slot++) {
            if (s->slot_req[slot]) continue;
            int m = s->prompt_cache ? common_prefix(s->slot_cache[slot], s->slot_cache_len[slot], r->prompt, r->n_prompt - 1)
                                     : 0;
            if (m > best_match || (m == best_match && s->slot_cache_len[slot] < s->slot_cache_len[best])) {
                best = slot;
                best_match = m;
            }
        }
        if (best < 0) return;
        s->p_head = (s->p_head + 1) % s->p_cap;
        s->p_len--;
        r->slot = best;
        r->t_admit = now;
        r->n_cached = r->n_fed = best_match;
        r->chunk = s->plan ? sp_plan_prefill_rows(s->plan, r->n_prompt - best_match) : s->chunk;
        if (r->chunk > s->max_rows) r->chunk = s->max_rows;
        s->cache_reused += best_match;
        s->slot_cache_len[best] = best_match;
        s->slot_req[best] = r;
    }
}

static sp_wire_row row_of(sp_sched *s, sp_request *r, int pos, int token, uint32_t flags)
{
    sp_wire_row row;
    memset(&row, 0, sizeof row);
    row.req = r->id;
    row.seq = r->slot;
    row.pos = pos;
    row.token = token;
    row.flags = flags;
    if (!r->started) {
        const sp_sampler_params *p = &r->sampling;
        row.flags |= SP_ROW_START;
        row.sampling = (sp_wire_sampling){p->temperature, p->top_p, p->min_p, p->repeat_penalty, p->top_k,
                                          p->repeat_last_n, (uint32_t)p->seed, (uint32_t)(p->seed >> 32)};
        r->started = true;
    }
    /* the slot's KV will hold this token at pos */
    s->slot_cache[r->slot][pos] = token;
    s->slot_cache_len[r->slot] = pos + 1;
    return row;
}

/* ---- building micro-batches ---- */

int sp_sched_build(sp_sched *s, int g, sp_wire_row *rows, double now)
{
    if (s->group_inflight[g] >= s->depth) return 0;
    bool decode_ok = s->group_inflight[g] == 0; /* no token of the group is pending */
    admit(s, now);
    int per_group = (s->n_slots - g + s->n_groups - 1) / s->n_groups;
    int n = 0;
    for (int k = 0; k < per_group; k++) {
        int slot = g + ((k + s->group_rr[g]) % per_group) * s->n_groups;
        sp_request *r = s->slot_req[slot];
        if (!r) continue;
        if (r->n_fed < r->n_prompt) {
            /* prefill: always a whole chunk (its size decides the matmul
             * path of its rows, so it must not depend on what else is here) */
            int c = r->n_prompt - r->n_fed < r->chunk ? r->n_prompt - r->n_fed : r->chunk;
            if (n + c > s->max_rows) continue;
            for (int i = 0; i < c; i++) {
                int p = r->n_fed + i;
                rows[n++] = row_of(s, r, p, r->prompt[p],
                                   SP_ROW_PROMPT | (p == r->n_prompt - 1 ? SP_ROW_LOGITS : 0));
            }
            r->n_fed += c;
            s->prompt_fed += c;
        } else {
            if (!decode_ok || r->n_out == 0 || n + 1 > s->max_rows) continue;
            int p = r->n_prompt + r->n_out - 1;
            rows[n++] = row_of(s, r, p, r->out[r->n_out - 1], SP_ROW_LOGITS);
        }
    }
    s->group_rr[g]++;
    if (n) s->group_inflight[g]++;
    return n;
}

static void append_text(sp_request *r, const char *t, int len)
{
    if (r->len + (size_t)len + 1 > r->cap) {
        r->cap = (r->len + (size_t)len + 1) * 2 + 64;
        r->text = realloc(r->text, r->cap);
    }
    memcpy(r->text + r->len, t, (size_t)len);
    r->len += (size_t)len;
    r->text[r->len] = 0;
}

static void put_text(sp_sched *s, sp_request *r, const char *buf, int len)
{
    if (len <= 0) return;
    append_text(r, buf, len);
    if (s->stream && r->id == 0) { fwrite(buf, 1, (size_t)len, s->stream); fflush(s->stream); }
    emit(s, r, buf, len, false);
}

void sp_sched_tokens(sp_sched *s, int g, const sp_wire_row *rows, int n, double now)
{
    s->group_inflight[g]--;
    s->returned++;
    char buf[256];
    for (int i = 0; i < n; i++) {
        /* the request now in the row's slot; a row of a cancelled request
         * (its slot free or taken since) is dropped */
        sp_request *r = rows[i].seq >= 0 && rows[i].seq < s->n_slots ? s->slot_req[rows[i].seq] : NULL;
        if (!r || r->id != rows[i].req || r->done) continue;
        int tok = rows[i].token;
        if (r->n_out == 0) r->t_first = now;
        r->t_out[r->n_out] = now;
        r->out[r->n_out++] = tok;
        s->generated++;
        bool eos = (s->tok ? sp_token_is_eog(s->tok, tok) : tok == s->eos) && !s->ignore_eos;
        for (int k = 0; k < s->n_stop_ids; k++) eos |= tok == s->stop_ids[k];
        if (s->on_token) s->on_token(s->event_arg, r, tok, eos);
        /* no tokenizer (prompts given as ids): the text is the ids */
        if (!eos)
            put_text(s, r, buf, s->tok ? sp_detok_push(s->tok, &r->dt, tok, buf, sizeof buf)
                                       : snprintf(buf, sizeof buf, "%s%d", r->n_out > 1 ? " " : "", tok));
        if (eos || r->n_out == r->max_new) {
            put_text(s, r, buf, sp_detok_flush(&r->dt, buf, sizeof buf));
            finish(s, r, eos ? SP_FINISH_EOS : SP_FINISH_LENGTH, now);
        }
    }
}

/* ---- output ---- */

/* Valid JSON whatever the text holds (a model can emit bytes that are no
 * UTF-8: they become \ufffd). */
static void json_string(FILE *f, const char *s) { sp_json_put_string(f, s, strlen(s)); }

/* Results go to stdout ("-" or no path) or atomically to a file. */
static FILE *open_out(const char *path, sp_atomic_file *a, sp_error *err)
{
    if (!path || !strcmp(path, "-")) return stdout;
    return sp_atomic_open(a, path, "the results", err) ? NULL : a->f;
}

static int close_out(FILE *f, sp_atomic_file *a, sp_error *err)
{
    if (f == stdout) return fflush(f) == 0 ? 0 : sp_errorf(err, "cannot write the results to stdout");
    return sp_atomic_commit(a, true, err);
}

void sp_sched_result_line(FILE *f, const sp_request *r, double t_start)
{
    fprintf(f, "{\"index\": %d, \"prompt\": ", r->id);
    json_string(f, r->prompt_text);
    fprintf(f, ", \"text\": ");
    json_string(f, r->text ? r->text : "");
    fprintf(f, ", \"prompt_tokens\": %d, \"generated_tokens\": %d, \"tokens\": [", r->n_prompt, r->n_out);
    for (int k = 0; k < r->n_out; k++) fprintf(f, "%s%d", k ? ", " : "", r->out[k]);
    double dec = r->t_done - r->t_first;
    fprintf(f, "], \"time_to_first_token_s\": %.4f, \"decode_tok_s\": %.2f}\n", r->t_first - t_start,
            r->n_out > 1 && dec > 0 ? (r->n_out - 1) / dec : 0.0);
}

int sp_sched_write_jsonl(const sp_sched *s, const char *path, double t_start, sp_error *err)
{
    sp_atomic_file out;
    FILE *f = open_out(path, &out, err);
    if (!f) return -1;
    /* stdout had each result as soon as it and those before it finished */
    if (f == stdout) return close_out(f, &out, err);
    for (int i = 0; i < s->n_reqs; i++)
        if (s->reqs[i].done) sp_sched_result_line(f, &s->reqs[i], t_start);
    return close_out(f, &out, err);
}

int sp_sched_write_tokens(const sp_sched *s, const char *path, sp_error *err)
{
    sp_atomic_file out;
    FILE *f = open_out(path, &out, err);
    if (!f) return -1;
    for (int i = 0; i < s->n_reqs; i++) {
        if (!s->reqs[i].done) continue;
        for (int k = 0; k < s->reqs[i].n_out; k++) fprintf(f, "%s%d", k ? " " : "", s->reqs[i].out[k]);
        fputc('\n', f);
    }
    return close_out(f, &out, err);
}
