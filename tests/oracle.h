/* oracle.h - the forward pass in float64, for the Criterion tests: every
 * product, sum, norm, exp and RoPE angle exact to ~1e-16, with the fp16
 * rounding points that are part of the computation llama.cpp and shardpipe
 * both define (k and v into the cache, q and the softmax weights where they
 * meet it). Written for clarity, not speed, from the config's fields (so it
 * covers every architecture the engine runs: biases, per-head q/k norm,
 * NeoX or adjacent RoPE pairs, frequency factors, q_dim != dim). Weights
 * are dequantized rows of the model's matrices. */
#ifndef SP_TEST_ORACLE_H
#define SP_TEST_ORACLE_H

#include "shardpipe/model.h"

/* logits (n x n_vocab, doubles, malloc'ed) of a prompt at positions 0..n-1,
 * for a whole model (sp_model_open_full). */
double *sp_test_oracle_logits(const sp_model *m, const int *toks, int n);

/* The engine's logits of the same prompt (n <= 64) on one matmul path
 * (SP_PATH_DOT / SP_PATH_SGEMM), one thread: the largest |d| from the
 * oracle's over every position (Criterion asserts on engine errors). */
double sp_test_oracle_gap(sp_model *m, const int *toks, int n, sp_matmul_path path);

#endif
