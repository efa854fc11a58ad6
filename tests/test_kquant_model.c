/* test_kquant_model.c - the K-quant models of ../shared (ktiny-*, a llama
 * with Q2_K..Q6_K matrices mixed per tensor, see shared/README.md) against
 * llama.cpp's logits: prompt logits within max |d| <= 0.06 and rms <= 0.012
 * at every stored position (about twice llama.cpp's own spread between its
 * settings; a wrong scale, min or element order lands at 0.07-0.7), the
 * decode-path logits (.greedy.f32, the reference tokens fed back) within
 * the same bounds, and every greedy token the bounds decide equal. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/sampler.h"
#include "testutil.h"

#define MAX_D 0.06
#define MAX_RMS 0.012

typedef struct kref {
    int prompt[64], n_prompt;
    int greedy[64], n_greedy;
    float *logits, *glogits; /* n_prompt x V, n_greedy - 1 x V */
    size_t n_logits, n_glogits;
} kref;

static void *read_shared(const char *name, const char *ext, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s%s", name, ext);
    const char *p = sp_test_shared(rel);
    if (!p) return NULL;
    void *d = sp_test_read_file(p, len);
    cr_assert(d, "cannot read %s", p);
    return d;
}

static int load_kref(const char *name, kref *r)
{
    char *json = read_shared(name, ".json", NULL);
    if (!json) return -1;
    r->n_prompt = sp_test_json_ints(json, "prompt_tokens", r->prompt, 64);
    r->n_greedy = sp_test_json_ints(json, "greedy_tokens", r->greedy, 64);
    free(json);
    size_t len;
    if (!(r->logits = read_shared(name, ".logits.f32", &len))) return -1;
    r->n_logits = len / sizeof(float);
    if (!(r->glogits = read_shared(name, ".greedy.f32", &len))) return -1;
    r->n_glogits = len / sizeof(float);
    return 0;
}

static void diff(const float *a, const float *b, size_t n, double *maxd, double *ss)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > *maxd) *maxd = d;
        *ss += d * d;
    }
}

/* top-1 minus top-2 of a logits row */
static double gap(const float *l, int V)
{
    double a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (l[i] > a) b = a, a = l[i];
        else if (l[i] > b) b = l[i];
    }
    return a - b;
}

static void run_forward(sp_engine *e, const int *toks, int n, int pos0, float *logits)
{
    const sp_config *c = &e->model->cfg;
    float *x = malloc((size_t)n * c->dim * sizeof(float));
    int seqs[64], pos[64];
    for (int i = 0; i < n; i++) seqs[i] = 0, pos[i] = pos0 + i;
    sp_batch b = {n, seqs, pos};
    sp_error err = {{0}};
    cr_assert_eq(sp_embed(e, toks, n, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, n, logits);
    free(x);
}

static void check(const char *model, const char *prompt)
{
    char name[128], rel[128];
    snprintf(name, sizeof name, "ktiny-%s-%s", model, prompt);
    snprintf(rel, sizeof rel, "models/ktiny-%s.gguf", model);
    kref r;
    if (load_kref(name, &r)) return;
    const char *mp = sp_test_shared(rel);
    if (!mp) return;
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(mp, &err);
    cr_assert(m, "%s", err.msg);
    cr_assert_eq(sp_model_load_weights(m, &err), 0, "%s", err.msg);
    const int V = m->cfg.n_vocab;
    cr_assert_eq(r.n_logits, (size_t)r.n_prompt * V, "%s: logits file size", name);
    sp_engine *e = sp_engine_new(m, 1, 128, 1, 256, &err);
    cr_assert(e, "%s", err.msg);

    /* the prompt in one batch */
    float *logits = malloc((size_t)r.n_prompt * V * sizeof(float));
    run_forward(e, r.prompt, r.n_prompt, 0, logits);
    double maxd = 0, ss = 0;
    for (int p = 0; p < r.n_prompt; p++) {
        double pm = 0, pss = 0;
        diff(logits + (size_t)p * V, r.logits + (size_t)p * V, V, &pm, &pss);
        cr_assert_leq(pm, MAX_D, "%s position %d: max |dlogit| %.4f > %.2f", name, p, pm, MAX_D);
        cr_assert_leq(sqrt(pss / V), MAX_RMS, "%s position %d: rms %.4f > %.3f", name, p, sqrt(pss / V), MAX_RMS);
        if (pm > maxd) maxd = pm;
        ss += pss;
    }
    double rms = sqrt(ss / r.n_logits);

    /* Decode: the reference's greedy tokens fed one per forward (so the
     * whole stream is compared even past near-ties); each step's logits are
     * held to the bounds against .greedy.f32, and the token we would pick
     * must be the reference's wherever its top-1 / top-2 gap exceeds twice
     * this row's max |d| (there no implementation within |d| can differ).
     * n_free counts the leading tokens that are also our own free-running
     * greedy stream (equal up to the first step that is not decided so). */
    const float *ref_row = r.logits + (size_t)(r.n_prompt - 1) * V;
    float *row = malloc(V * sizeof(float));
    memcpy(row, logits + (size_t)(r.n_prompt - 1) * V, V * sizeof(float));
    int n_free = 0, free_run = 1, n_decided = 0;
    double gmax = 0, gss = 0, rmax = 0, rss = 0;
    diff(row, ref_row, V, &rmax, &rss);
    for (int i = 0; i < r.n_greedy; i++) {
        int tok = sp_argmax(row, V);
        if (gap(ref_row, V) > 2 * rmax) {
            cr_assert_eq(tok, r.greedy[i], "%s: greedy token %d is %d, reference %d (reference gap %.4f, max |d| "
                         "%.4f)", name, i, tok, r.greedy[i], gap(ref_row, V), rmax);
            n_decided++;
        } else {
            free_run = free_run && tok == r.greedy[i];
        }
        if (free_run) n_free++;
        if (i + 1 >= r.n_greedy || (size_t)(i + 1) * V > r.n_glogits) break;
        run_forward(e, &r.greedy[i], 1, r.n_prompt + i, row);
        ref_row = r.glogits + (size_t)i * V;
        rmax = 0, rss = 0;
        diff(row, ref_row, V, &rmax, &rss);
        cr_assert_leq(rmax, MAX_D, "%s decode step %d: max |dlogit| %.4f > %.2f", name, i, rmax, MAX_D);
        cr_assert_leq(sqrt(rss / V), MAX_RMS, "%s decode step %d: rms %.4f > %.3f", name, i, sqrt(rss / V), MAX_RMS);
        if (rmax > gmax) gmax = rmax;
        gss += rss;
    }
    fprintf(stderr, "%s: prompt max |dlogit| %.4f rms %.4f over %d positions; decode (%d steps) max %.4f rms %.4f; "
                    "%d of %d greedy tokens decided and equal, free-running stream equal for %d\n", name, maxd, rms,
            r.n_prompt, r.n_greedy - 1, gmax, sqrt(gss / ((double)(r.n_greedy - 1) * V)), n_decided, r.n_greedy,
            n_free);
    free(row);
    free(logits);
    sp_engine_free(e);
    sp_model_close(m);
    free(r.logits);
    free(r.glogits);
}

Test(kquant_model, q2_k_fox) { check("Q2_K", "fox"); }
Test(kquant_model, q2_k_once) { check("Q2_K", "once"); }
Test(kquant_model, q3_k_m_fox) { check("Q3_K_M", "fox"); }
Test(kquant_model, q3_k_m_once) { check("Q3_K_M", "once"); }
Test(kquant_model, q4_k_m_fox) { check("Q4_K_M", "fox"); }
Test(kquant_model, q4_k_m_once) { check("Q4_K_M", "once"); }
Test(kquant_model, q5_k_m_fox) { check("Q5_K_M", "fox"); }
Test(kquant_model, q5_k_m_once) { check("Q5_K_M", "once"); }
Test(kquant_model, q6_k_fox) { check("Q6_K", "fox"); }
Test(kquant_model, q6_k_once) { check("Q6_K", "once"); }
