/* cluster.h - run a partition plan as a pipeline over MPI ranks.
 *
 * Rank 0 is the coordinator: it validates the plan and the model header
 * before any rank loads weights, checks that every rank has the same model
 * file, tokenizes the prompts, schedules sequences into micro-batches and
 * streams the text. Every stage rank maps the GGUF, binds only the tensors
 * of its layer range, and loops: receive a micro-batch (token ids on the
 * first stage, hidden states after it), run its layers, send the hidden
 * states on - or, on the last stage, sample and send the token ids back to
 * rank 0. Everything MPI lives under src/cluster. */
#ifndef SHARDPIPE_CLUSTER_H
#define SHARDPIPE_CLUSTER_H

#include <stdbool.h>

#include "shardpipe/profile.h"
#include "shardpipe/sampler.h"

typedef struct sp_run_options {
    const char *plan_path;
    const char *model_path;    /* overrides the plan's model path, or NULL */
    const char *prompt;        /* one prompt, streamed to stdout ... */
    const char *prompts_file;  /* ... or a JSONL file of {"prompt": "..."} lines */
    const char *output_path;   /* results as JSONL in input order (default: stdout with --prompts) */
    int n_tokens;              /* new tokens per sequence */
    bool ignore_eos;
    sp_sampler_params sampling;
    const char *trace_path;    /* Chrome Trace Event JSON, or NULL */
    const char *tokens_out;    /* token ids per sequence, one line each, or NULL */
    const char *logits_out;    /* last stage: logits of every sampled row (tests), or NULL */
    const char *summary_json;  /* run summary as JSON, or NULL */
    int sequences;             /* > 0: overrides plan batching.sequences */
    int micro_batches;         /* > 0: overrides plan batching.micro_batches */
    int threads;               /* > 0: every rank's kernel threads (else the plan's, else its CPUs) */
    double timeout_s;          /* a peer silent this long ends the job (default 120) */
    const char *shard_cache;   /* a board's shard cache folder (shardcache.h), or NULL: the default */
    bool quiet;                /* no streaming text, no progress */
} sp_run_options;

/* Initializes MPI, runs the plan, shuts MPI down robustly. Returns the
 * process exit code (0 on success; 1 on any error, on every rank). */
int sp_cluster_run(int *argc, char ***argv, const sp_run_options *opt);

/* `shardpipe serve`: the plan kept loaded behind an OpenAI-compatible HTTP
 * server on rank 0 (src/server); see src/cluster/serve.c. */
typedef struct sp_serve_options {
    const char *plan_path;
    const char *model_path;    /* overrides the plan's model path, or NULL */
    const char *host;          /* address to bind (default 127.0.0.1) */
    int port;                  /* 0: any free port (printed) */
    const char *api_key;       /* NULL: no authentication */
    double grace_s;            /* SIGINT/SIGTERM: in-flight answers get this long */
    int queue;                 /* requests that may wait for a slot */
    unsigned client_timeout_s; /* a client silent this long mid-request is dropped */
    size_t max_body;           /* bytes */
    int sequences, micro_batches; /* > 0: override the plan's batching */
    int threads;               /* > 0: every rank's kernel threads (else the plan's, else its CPUs) */
    double timeout_s;          /* a rank silent this long with work in flight ends the job */
    bool no_prompt_cache;      /* feed every prompt whole (to measure the cache) */
    const char *chat_template; /* a template family instead of the file's, or NULL */
    const char *shard_cache;   /* a board's shard cache folder (shardcache.h), or NULL: the default */
    const char *worker;        /* a supervisor's control socket: take jobs from it, no HTTP (or NULL) */
} sp_serve_options;

/* Never returns in practice: every rank exits 0 after SIGINT/SIGTERM, 1 on
 * an error. */
int sp_cluster_serve(int *argc, char ***argv, const sp_serve_options *o);

/* `shardpipe profile --links`: under mpiexec, measures latency and
 * bandwidth between every pair of ranks (see links.c) and rank 0 writes
 * them as a cluster file. Never returns: every rank exits with the code. */
typedef struct sp_links_options {
    const char *out;           /* cluster file to write */
    const char *name;          /* the cluster's name */
    const char *profiles_dir;  /* boards' profile paths, relative to the cluster file */
    int dim;                   /* hidden-state length the message sizes are based on */
    bool quiet;
} sp_links_options;

int sp_cluster_profile_links(int *argc, char ***argv, const sp_links_options *o) __attribute__((noreturn));

/* `shardpipe profile --all`: under mpiexec with one rank per board, every
 * board measures itself (sp_profile_measure with `measure`), the links are
 * measured as --links does, and rank 0 writes one profile per host in
 * profiles_dir (relative to the cluster file's folder: HOST.yaml) and the
 * cluster file that names them (see profall.c for ranks sharing a host).
 * Never returns: every rank exits with the code. */
typedef struct sp_profall_options {
    const char *out;           /* cluster file to write */
    const char *name;          /* the cluster's name */
    const char *profiles_dir;  /* where the board files go, relative to the cluster file's folder */
    const char *note;          /* added to each profile's origin, or NULL */
    int dim;                   /* hidden-state length the link message sizes are based on */
    sp_measure_options measure; /* its progress callback is not used: each board reports itself */
    bool quiet;
} sp_profall_options;

int sp_cluster_profile_all(int *argc, char ***argv, const sp_profall_options *o) __attribute__((noreturn));

#endif
