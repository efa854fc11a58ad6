/* planner.h - the plan generator: a cost model built from board profiles,
 * links and a model file, and an exact search over partitions.
 *
 * A partition is an ordered list of boards (a subset of the cluster's, in
 * pipeline order) and a contiguous range of layers for each. The cost model
 * (cost.c) turns the hardware and the model into a planning problem - the
 * seconds each layer takes on each board for a decode micro-batch, the
 * seconds of each hop, the bytes each stage holds - and the search
 * (search.c) finds the partition that is best for the objective.
 *
 * How the runtime decodes (src/cluster/sched.c, run.c): the K sequences in
 * flight are split into G groups (the plan's micro_batches) of at most
 * r = ceil(K / G) rows. A group has one micro-batch in the pipeline at a
 * time: its next one can start only when its sampled tokens are back on
 * the first board. For a partition with r rows per micro-batch let
 *
 *   T  = the round trip: every stage's compute plus every hop, including
 *        the one that carries the sampled tokens back to the first board
 *        (a hop: the cluster's measured hand-over time + the link);
 *   Bn = the bottleneck: the busiest stage or link per micro-batch (a
 *        link is busy bytes / bandwidth; its latency overlaps other work).
 *
 * In steady state every group comes round once per period
 *
 *   P = max(T, G x Bn)
 *
 * (its own trip, or the G micro-batches queued at the bottleneck), and
 * each period yields one token for each of the K sequences.
 *
 *   throughput  minimises P over partitions AND G = 1..K: K / P tok/s;
 *   latency     G = 1, r = K: minimises T, one sequence's time per token.
 */
#ifndef SHARDPIPE_PLANNER_H
#define SHARDPIPE_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"
#include "shardpipe/model.h"
#include "shardpipe/plan.h"
#include "shardpipe/profile.h"

typedef enum sp_objective {
    SP_OBJ_THROUGHPUT = 0,
    SP_OBJ_LATENCY = 1,
} sp_objective;

#define SP_PLANNER_MAX_BOARDS SP_CLUSTER_MAX_BOARDS

/* The costs that depend on the rows of a decode micro-batch. */
typedef struct sp_cost_case {
    int rows;
    double *layer_s;   /* [board * n_layers + layer]: seconds of one micro-batch through the layer */
    double *first_s;   /* [board]: the embedding, on the first stage */
    double *head_s;    /* [board]: final norm and output matrix, on the last stage */
    double *hop_s;     /* [a * n_boards + b]: hidden states of the micro-batch from board a to b, hand-over included */
    double *ret_s;     /* [a * n_boards + b]: its sampled token ids from the last board a to the first b */
    double *hop_busy_s; /* [a * n_boards + b]: how long that hop keeps the link busy (no latency) */
    double *ret_busy_s; /* [a * n_boards + b]: the same for the token ids */
    uint64_t fixed_mem[2][2]; /* [is first][is last]: bytes a stage holds besides its layers */
} sp_cost_case;

/* A planning problem: everything the search needs, nothing it does not. */
typedef struct sp_problem {
    int n_layers, n_boards;
    int sequences;              /* K */
    uint64_t *layer_mem;        /* [n_layers]: weights + KV cache of the layer */
    uint64_t *mem_cap;          /* [n_boards]: usable bytes */
    char (*names)[64];          /* [n_boards], for messages */
    int n_cases;
    sp_cost_case *cases;        /* one per distinct ceil(K / G), G = 1..K */
} sp_problem;

/* Rows of the largest micro-batch when K sequences form G groups: ceil(K / G). */
int sp_planner_rows(int sequences, int micro_batches);

/* An empty problem with a case for every row count the search may ask for
 * (arrays zeroed, to be filled by the caller). */
void sp_problem_init(sp_problem *p, int n_layers, int n_boards, int sequences);
void sp_problem_free(sp_problem *p);
/* The case for `rows`, or NULL. */
const sp_cost_case *sp_problem_case(const sp_problem *p, int rows);

/* ---- cost model (cost.c) ---- */

typedef struct sp_cost_options {
    int context;        /* positions per sequence: KV cache size; attention is costed at context / 2 */
    int sequences;      /* K */
    int prefill_chunk;  /* as in the plan: sizes the scratch buffers */
    sp_wire_type wire;
    int prompt_tokens;  /* prefill: the reference prompt length (0: 512, at most the context) */
    int prefill_cap;    /* prefill: the largest chunk considered (0: SP_PREFILL_CAP) */
} sp_cost_options;

int sp_cost_build(sp_problem *p, const sp_cluster *cl, const sp_gguf *g, const sp_config *cfg,
                  const sp_cost_options *o, sp_error *err);

/* Seconds of one weight matrix (params weights of type t, `bytes` of data)
 * for a micro-batch of `rows` rows on a board running with `perf`. */
double sp_cost_matrix_s(const sp_thread_perf *perf, sp_dtype t, uint64_t bytes, uint64_t params, int rows);

/* Pieces of the model the prefill model reuses: the seven matrices of
 * layer l at `rows` rows; attention of one row at position pos (the cache
 * read and the arithmetic); the head at `rows` rows; one embedding row;
 * the bytes of a message of `rows` rows (hidden: with hidden states). */
double sp_cost_layer_matrices_s(const sp_thread_perf *perf, const sp_gguf *g, int l, int rows);
double sp_cost_attention_s(const sp_thread_perf *perf, const sp_config *c, double pos);
double sp_cost_head_s(const sp_thread_perf *perf, const sp_gguf *g, int rows);
double sp_cost_embed_row_s(const sp_thread_perf *perf, const sp_gguf *g);
double sp_cost_wire_bytes(sp_wire_type w, int rows, int dim, bool hidden);

/* ---- search (search.c) ---- */

typedef struct sp_solution {
    bool feasible;
    sp_objective objective;
    int n_stages;
    int board[SP_PLANNER_MAX_BOARDS];            /* in pipeline order */
    int first[SP_PLANNER_MAX_BOARDS], last[SP_PLANNER_MAX_BOARDS]; /* layer ranges, inclusive */
    int micro_batches, rows;                     /* G, r = ceil(K / G) */
    double stage_s[SP_PLANNER_MAX_BOARDS];       /* compute per micro-batch */
    double hop_s[SP_PLANNER_MAX_BOARDS];         /* after stage i: to stage i+1, the last one back to the first */
    uint64_t mem[SP_PLANNER_MAX_BOARDS];
    double bottleneck;   /* Bn: the busiest stage or link per micro-batch */
    double latency;      /* T: one micro-batch around the ring */
    double round_s;      /* P = max(T, G x Bn): the period of every group */
    double tok_s;        /* K / P */
    double value;        /* the objective: P (throughput) or T (latency) */
} sp_solution;

/* Fill `s` for a given partition: G micro-batches, boards in pipeline order
 * and the first layer of each stage (first[0] = 0). Returns -1
 * (s->feasible false) when a stage does not fit its board's memory. */
int sp_evaluate(const sp_problem *p, sp_objective obj, int micro_batches, int n_stages, const int *boards,
                const int *firsts, sp_solution *s);
/* The same with the best G for the objective (always 1 for latency). */
int sp_evaluate_batched(const sp_problem *p, sp_objective obj, int n_stages, const int *boards, const int *firsts,
                        sp_solution *s);

/* The optimal partition (and G) for the objective. When no partition fits
 * the memory of the boards, returns -1 with a message that says by how
 * much. */
int sp_search(const sp_problem *p, sp_objective obj, sp_solution *best, sp_error *err);

/* ---- prompt chunks (prefill.c) ---- */

#define SP_PREFILL_CAP 128 /* the largest prompt chunk the planner considers */

typedef struct sp_prefill_eval {
    int rows, chunks;   /* a candidate chunk, and how many the reference prompt takes */
    double period_s;    /* a chunk leaves the pipeline every period_s */
    double fill_s;      /* round trip - period: filling and draining */
    double tile_eff;    /* the bottleneck stage's rows/s at `rows` against at the cap */
    double total_s;     /* predicted time to the first token */
} sp_prefill_eval;

/* The chunks chosen for a solution (see prefill.c for the model). */
typedef struct sp_prefill {
    int depth;          /* chunks of a group in flight (stages + 1) */
    int n_steps;        /* the plan's prefill_chunks: from[i] tokens on, rows[i] */
    int from[SP_PLAN_MAX_PREFILL], rows[SP_PLAN_MAX_PREFILL];
    int step_tokens[SP_PLAN_MAX_PREFILL]; /* the longest prompt of each step ... */
    double step_s[SP_PLAN_MAX_PREFILL];   /* ... and its predicted first-token time */
    int batch_rows;     /* prefill_chunk: rows of a prompt micro-batch at most */
    int ref_tokens;     /* the reference prompt of the table below */
    double ref_s;       /* its predicted first-token time with the chosen chunk */
    int n_eval;
    sp_prefill_eval eval[16];
} sp_prefill;

/* Chooses the chunks for the partition and groups of `s`. */
int sp_prefill_choose(const sp_solution *s, const sp_cluster *cl, const sp_gguf *g, const sp_config *cfg,
                      const sp_cost_options *o, sp_prefill *out);
/* The chunk rows for a prompt of n uncached tokens. */
int sp_prefill_rows_for(const sp_prefill *p, int n);
/* The trade-off in words and a table, for --explain (malloc'ed). */
char *sp_prefill_explain(const sp_prefill *p, int sequences, int groups);

/* ---- plans from solutions (emit.c) ---- */

/* The plan of a solution: stage i runs on board s->board[i] as rank i, with
 * the board's host and threads, its usable memory as the budget and the
 * predicted compute per micro-batch. */
void sp_planner_to_plan(const sp_solution *s, const sp_cluster *cl, const sp_cost_options *o, const char *model_path,
                        sp_plan *plan);
/* The hydra host file of a plan, in rank order: line r is `HOST:1`, the
 * host of the stage rank r runs, so `mpiexec -f FILE -n N` puts each rank
 * on its board (hydra fills a host file's slots in order). Written
 * atomically. hosts_path: PLAN.yaml -> PLAN.hosts (else PLAN + ".hosts"). */
int sp_planner_write_hosts(const sp_plan *plan, const char *path, sp_error *err);
void sp_planner_hosts_path(const char *plan_path, char *out, size_t size);

/* Comments for sp_plan_write (malloc'ed text): the header, and one per
 * stage with its layers, predicted times and memory against the board's. */
char *sp_planner_header(const sp_solution *s, const sp_cluster *cl, const sp_config *cfg, const char *model_name,
                        const sp_cost_options *o);
char *sp_planner_stage_comment(const sp_solution *s, int i, const sp_cluster *cl, const sp_plan *plan,
                               const sp_gguf *g, const sp_config *cfg);

/* The chosen chunks into the plan: prefill_chunk and prefill_chunks. */
void sp_planner_prefill_to_plan(const sp_prefill *pf, sp_plan *plan);
/* header (freed) + the prompts' part of the explanation (malloc'ed);
 * chosen: the plan carries pf's chunks, else its fixed prefill_chunk. */
char *sp_planner_prefill_note(char *header, const sp_prefill *pf, const sp_plan *plan, bool chosen);

/* What common simpler planners would do, for comparison: all boards in
 * the cluster's order, layers split evenly or in proportion to memory (with
 * the best G for that split). Returns -1 when that split does not fit
 * (s->feasible false). */
int sp_planner_baseline(const sp_problem *p, sp_objective obj, bool by_memory, sp_solution *s);

#endif
