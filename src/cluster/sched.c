/* sched.c - see sched.h. */
#include "sched.h"

#include <stdlib.h>
#include <string.h>

#include "prompts.h"
#include "shardpipe/atomicfile.h"
#include "shardpipe/escape.h"
#include "shardpipe/util.h"

/* ---- set-up ---- */

static int add_request(sp_sched *s, const sp_tokenizer *tok, char *text, int *ids, int n_ids, int n_tokens,
                       int context, const char *where, sp_error *err)
{
    s->reqs = realloc(s->reqs, (size_t)(s->n_reqs + 1) * sizeof *s->reqs);
    sp_request *r = &s->reqs[s->n_reqs];
    memset(r, 0, sizeof *r);
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
    r->max_new = n_tokens;
    r->out = sp_alloc((size_t)(n_tokens > 0 ? n_tokens : 1) * sizeof(int));
    r->t_out = sp_alloc((size_t)(n_tokens > 0 ? n_tokens : 1) * sizeof(double));
    r->slot = -1;
    sp_detok_init_continuation(&r->dt);
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

int sp_sched_init(sp_sched *s, const sp_tokenizer *tok, const char *prompt, const char *prompts_file,
                  int n_tokens, int context, int n_slots, int n_groups, int max_rows, int chunk, int depth,
                  bool ignore_eos, sp_error *err)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->eos = -1;
    s->ignore_eos = ignore_eos;
    s->n_slots = n_slots;
    s->n_groups = n_groups;
    s->max_rows = max_rows;
    s->chunk = chunk;
    s->slot_req = sp_alloc((size_t)n_slots * sizeof(int));
    for (int i = 0; i < n_slots; i++) s->slot_req[i] = -1;
    s->group_inflight = sp_calloc((size_t)n_groups, sizeof(int));
    s->depth = depth > 0 ? depth : 1;
    s->group_rr = sp_calloc((size_t)n_groups, sizeof(int));
    if (prompt) {
        char *text = malloc(strlen(prompt) + 1);
        strcpy(text, prompt);
        return add_request(s, tok, text, NULL, 0, n_tokens, context, "--prompt", err);
    }
    FILE *f = fopen(prompts_file, "r");
    if (!f) return sp_errorf(err, "cannot read the prompts file %s", prompts_file);
    size_t cap = 0;
    char *line = NULL;
    ssize_t len;
    int lineno = 0, rc = 0;
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
            rc = add_request(s, tok, pl.text, pl.ids, pl.n_ids, n_tokens, context, where, err);
    }
    free(line);
    fclose(f);
    if (rc == 0 && s->n_reqs == 0) rc = sp_errorf(err, "%s: no prompts in the file", prompts_file);
    return rc;
}

void sp_sched_free(sp_sched *s)
{
    for (int i = 0; i < s->n_reqs; i++) {
        free(s->reqs[i].prompt_text);
        free(s->reqs[i].prompt);
        free(s->reqs[i].out);
        free(s->reqs[i].t_out);
        free(s->reqs[i].text);
    }
    free(s->reqs);
    free(s->slot_req);
    free(s->group_inflight);
    free(s->group_rr);
}

bool sp_sched_finished(const sp_sched *s) { return s->n_done == s->n_reqs; }

/* ---- building micro-batches ---- */

int sp_sched_build(sp_sched *s, int g, sp_wire_row *rows, double now)
{
    if (s->group_inflight[g] >= s->depth) return 0;
    bool decode_ok = s->group_inflight[g] == 0; /* no token of the group is pending */
    /* admit waiting requests into the group's free slots */
    for (int slot = g; slot < s->n_slots; slot += s->n_groups)
        if (s->slot_req[slot] < 0 && s->next_pending < s->n_reqs) {
            sp_request *r = &s->reqs[s->next_pending];
            r->slot = slot;
            r->t_admit = now;
            s->slot_req[slot] = s->next_pending++;
        }
    int per_group = (s->n_slots - g + s->n_groups - 1) / s->n_groups;
    int n = 0;
    for (int k = 0; k < per_group; k++) {
        int slot = g + ((k + s->group_rr[g]) % per_group) * s->n_groups;
        int id = s->slot_req[slot];
        if (id < 0) continue;
        sp_request *r = &s->reqs[id];
        if (r->n_fed < r->n_prompt) {
            /* prefill: always a whole chunk (its size decides the matmul
             * path of its rows, so it must not depend on what else is here) */
            int c = r->n_prompt - r->n_fed < s->chunk ? r->n_prompt - r->n_fed : s->chunk;
            if (n + c > s->max_rows) continue;
            for (int i = 0; i < c; i++) {
                int p = r->n_fed + i;
                rows[n++] = (sp_wire_row){id, slot, p, r->prompt[p],
                                          SP_ROW_PROMPT | (p == r->n_prompt - 1 ? SP_ROW_LOGITS : 0)};
            }
            r->n_fed += c;
        } else {
            if (!decode_ok || r->n_out == 0 || n + 1 > s->max_rows) continue;
            int p = r->n_prompt + r->n_out - 1;
            rows[n++] = (sp_wire_row){id, slot, p, r->out[r->n_out - 1], SP_ROW_LOGITS};
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

void sp_sched_tokens(sp_sched *s, int g, const sp_wire_row *rows, int n, double now)
{
    s->group_inflight[g]--;
    char buf[256];
    for (int i = 0; i < n; i++) {
        sp_request *r = &s->reqs[rows[i].req];
        if (r->done) continue;
        int tok = rows[i].token;
        if (r->n_out == 0) r->t_first = now;
        r->t_out[r->n_out] = now;
        r->out[r->n_out++] = tok;
        s->generated++;
        bool eos = (s->tok ? sp_token_is_eog(s->tok, tok) : tok == s->eos) && !s->ignore_eos;
        if (!eos) {
            /* no tokenizer (prompts given as ids): the text is the ids */
            int len = s->tok ? sp_detok_push(s->tok, &r->dt, tok, buf, sizeof buf)
                             : snprintf(buf, sizeof buf, "%s%d", r->n_out > 1 ? " " : "", tok);
            append_text(r, buf, len);
            if (s->stream && rows[i].req == 0) { fwrite(buf, 1, (size_t)len, s->stream); fflush(s->stream); }
        }
        if (eos || r->n_out == r->max_new) {
            int len = sp_detok_flush(&r->dt, buf, sizeof buf);
            append_text(r, buf, len);
            if (s->stream && rows[i].req == 0) { fwrite(buf, 1, (size_t)len, s->stream); fflush(s->stream); }
            r->done = true;
            r->t_done = now;
            s->slot_req[r->slot] = -1;
            r->slot = -1;
            s->n_done++;
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

int sp_sched_write_jsonl(const sp_sched *s, const char *path, double t_start, sp_error *err)
{
    sp_atomic_file out;
    FILE *f = open_out(path, &out, err);
    if (!f) return -1;
    for (int i = 0; i < s->n_reqs; i++) {
        const sp_request *r = &s->reqs[i];
        fprintf(f, "{\"index\": %d, \"prompt\": ", i);
        json_string(f, r->prompt_text);
        fprintf(f, ", \"text\": ");
        json_string(f, r->text ? r->text : "");
        fprintf(f, ", \"prompt_tokens\": %d, \"generated_tokens\": %d, \"tokens\": [", r->n_prompt, r->n_out);
        for (int k = 0; k < r->n_out; k++) fprintf(f, "%s%d", k ? ", " : "", r->out[k]);
        double dec = r->t_done - r->t_first;
        fprintf(f, "], \"time_to_first_token_s\": %.4f, \"decode_tok_s\": %.2f}\n", r->t_first - t_start,
                r->n_out > 1 && dec > 0 ? (r->n_out - 1) / dec : 0.0);
    }
    return close_out(f, &out, err);
}

int sp_sched_write_tokens(const sp_sched *s, const char *path, sp_error *err)
{
    sp_atomic_file out;
    FILE *f = open_out(path, &out, err);
    if (!f) return -1;
    for (int i = 0; i < s->n_reqs; i++) {
        for (int k = 0; k < s->reqs[i].n_out; k++) fprintf(f, "%s%d", k ? " " : "", s->reqs[i].out[k]);
        fputc('\n', f);
    }
    return close_out(f, &out, err);
}
