/* oracle.c - see oracle.h. */
#include "oracle.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "shardpipe/quant.h"

static double f16_round(double x) { return sp_fp16_to_f32(sp_f32_to_fp16((float)x)); }

static void dmatvec(const sp_matrix *w, const double *x, double *y)
{
    float *row = malloc(w->cols * sizeof(float));
    for (int64_t r = 0; r < w->rows; r++) {
        sp_dequantize_row(w->type, (const char *)w->data + r * w->row_bytes, row, w->cols);
        double s = 0;
        for (int64_t i = 0; i < w->cols; i++) s += (double)row[i] * x[i];
        y[r] = s;
    }
    free(row);
}

static void drmsnorm(double *out, const double *x, const float *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* logits (n x n_vocab, doubles) of a prompt, all rows in one pass */
double *sp_test_oracle_logits(const sp_model *m, const int *toks, int n)
{
    const sp_config *c = &m->cfg;
    int D = c->dim, Q = c->q_dim, KV = c->kv_dim, F = c->ffn_dim, hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    double *x = calloc((size_t)n * D, sizeof(double)), *xn = malloc(D * sizeof(double));
    double *q = malloc(Q * sizeof(double)), *att = malloc(Q * sizeof(double)), *o = malloc(D * sizeof(double));
    double *kc = malloc((size_t)n * KV * sizeof(double)), *vc = malloc((size_t)n * KV * sizeof(double));
    double *g = malloc(F * sizeof(double)), *u = malloc(F * sizeof(double)), *w = malloc(n * sizeof(double));
    double *logits = malloc((size_t)n * c->n_vocab * sizeof(double));
    float *row = malloc(D * sizeof(float));
    for (int r = 0; r < n; r++) {
        sp_dequantize_row(m->tok_embd.type, (const char *)m->tok_embd.data + toks[r] * m->tok_embd.row_bytes, row, D);
        for (int i = 0; i < D; i++) x[(size_t)r * D + i] = row[i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        const sp_layer *L = &m->layers[l];
        /* rows in order: row r's attention sees rows 0..r of this layer */
        for (int r = 0; r < n; r++) {
            double *xr = x + (size_t)r * D, *k = kc + (size_t)r * KV, *v = vc + (size_t)r * KV;
            drmsnorm(xn, xr, L->attn_norm, D, c->norm_eps);
            dmatvec(&L->wq, xn, q);
            dmatvec(&L->wk, xn, k);
            dmatvec(&L->wv, xn, v);
            if (L->bq)
                for (int i = 0; i < Q; i++) q[i] += L->bq[i];
            if (L->bk)
                for (int i = 0; i < KV; i++) { k[i] += L->bk[i]; v[i] += L->bv[i]; }
            if (L->q_norm) {
                for (int h = 0; h < c->n_heads; h++) drmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, c->norm_eps);
                for (int h = 0; h < c->n_kv_heads; h++) drmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, c->norm_eps);
            }
            /* pair i: (2i, 2i+1) adjacent, (i, i + rope_dim/2) NeoX */
            int half = c->rope_dim / 2, other = c->rope_style == SP_ROPE_NEOX ? half : 1;
            for (int i = 0; i < half; i++) {
                double th = r * pow((double)c->rope_base, -2.0 * i / c->rope_dim);
                if (m->rope_freqs) th /= m->rope_freqs[i];
                double cs = cos(th), sn = sin(th);
                int at = c->rope_style == SP_ROPE_NEOX ? i : 2 * i;
                for (int h = 0; h < c->n_heads + c->n_kv_heads; h++) {
                    double *p = h < c->n_heads ? q + h * hd + at : k + (h - c->n_heads) * hd + at;
                    double a = p[0], b = p[other];
                    p[0] = a * cs - b * sn;
                    p[other] = a * sn + b * cs;
                }
            }
            for (int i = 0; i < KV; i++) { k[i] = f16_round(k[i]); v[i] = f16_round(v[i]); }
            for (int i = 0; i < Q; i++) q[i] = f16_round(q[i]);
            for (int h = 0; h < c->n_heads; h++) {
                int kvh = h / group;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= r; j++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[h * hd + i] * kc[(size_t)j * KV + kvh * hd + i];
                    w[j] = s / sqrt((double)hd);
                    if (w[j] > mx) mx = w[j];
                }
                for (int j = 0; j <= r; j++) sum += (w[j] = exp(w[j] - mx));
                for (int i = 0; i < hd; i++) att[h * hd + i] = 0;
                for (int j = 0; j <= r; j++) {
                    double wj = f16_round(w[j] / sum);
                    for (int i = 0; i < hd; i++) att[h * hd + i] += wj * vc[(size_t)j * KV + kvh * hd + i];
                }
            }
            dmatvec(&L->wo, att, o);
            for (int i = 0; i < D; i++) xr[i] += o[i];
            drmsnorm(xn, xr, L->ffn_norm, D, c->norm_eps);
            dmatvec(&L->w_gate, xn, g);
            dmatvec(&L->w_up, xn, u);
            for (int i = 0; i < F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            dmatvec(&L->w_down, g, o);
            for (int i = 0; i < D; i++) xr[i] += o[i];
        }
    }
    for (int r = 0; r < n; r++) {
        drmsnorm(xn, x + (size_t)r * D, m->out_norm, D, c->norm_eps);
        dmatvec(&m->output, xn, logits + (size_t)r * c->n_vocab);
    }
    free(x); free(xn); free(q); free(att); free(o); free(kc); free(vc); free(g); free(u); free(w); free(row);
    return logits;
}

/* Our logits of a prompt (n <= 64 tokens) on one matmul path against the
 * oracle's: the largest |d| over every position. */
double sp_test_oracle_gap(sp_model *m, const int *toks, int n, sp_matmul_path path)
{
    const sp_config *c = &m->cfg;
    sp_error err = {{0}};
    sp_engine *e = sp_engine_new(m, 1, n, 1, n, &err);
    cr_assert(e, "%s", err.msg);
    cr_assert(n <= 64, "sp_test_oracle_gap: at most 64 tokens");
    e->mm.force = path;
    float *x = malloc((size_t)n * c->dim * sizeof(float)), *logits = malloc((size_t)n * c->n_vocab * sizeof(float));
    int seq[64] = {0}, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    sp_batch b = {n, seq, pos};
    cr_assert_eq(sp_embed(e, toks, n, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, n, logits);
    double *exact = sp_test_oracle_logits(m, toks, n), worst = 0;
    for (size_t i = 0; i < (size_t)n * c->n_vocab; i++) worst = fmax(worst, fabs(exact[i] - logits[i]));
    free(exact);
    free(x);
    free(logits);
    sp_engine_free(e);
    return worst;
}
