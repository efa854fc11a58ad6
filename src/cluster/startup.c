/* startup.c - step 2 of `run` and `serve` on every rank: check each rank's
 * host, cores and free RAM against the plan, bind the stage's shard, prove
 * every rank holds the same model, read the weights, allocate the message
 * buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "shardpipe/hostcheck.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"
#include "supervise.h"

void sp_progress_messages(void *arg);

/* ---- model identity ---- */

/* A shard file (`shardpipe split`, or a board's shard cache) rather than a
 * whole model. */
static bool is_shard_file(const sp_gguf *g)
{
    sp_shard_info info;
    sp_error ignored;
    return sp_shard_info_read(g, &info, &ignored) == 0 && info.is_shard;
}

/* Every byte of the stage's shard and the file's header (shardhash.c:
 * XXH3, cached per file and shard, so a board reads it once). A rank that
 * runs a shard file cannot share a header with the coordinator's whole
 * file: `content` compares what the shard holds instead
 * (sp_shard_content_hash: metadata and the stage's tensors, also cached),
 * and rank 0 computes the same kind from its whole file. */
static uint64_t shard_identity(const sp_gguf *g, const sp_plan *plan, int stage, bool content)
{
    const sp_stage_plan *st = &plan->stages[stage];
    bool first = stage == 0, last = stage == plan->n_stages - 1, cached;
    if (content) return sp_shard_content_hash_cached(g, st->first, st->last, first, last, &cached);
    sp_shard_sel sel = {st->first, st->last, first || last};
    return sp_shard_hash(g, sel, &cached);
}

void sp_agree(sp_comm *c, const char *cmd, int rc, const sp_error *err)
{
    int status = rc;
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (status == 0) return;
    if (c->rank == 0) fprintf(stderr, "shardpipe %s: %s\n", cmd, err->msg);
    sp_comm_shutdown(c, 1);
}

void sp_runtime_share_plan(sp_comm *c, sp_plan *plan, const char *model_path, int threads, const char *shard_cache,
                           const char *cmd)
{
    MPI_Bcast(plan, (int)sizeof *plan, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (model_path) { /* this rank's file, whatever the plan's stages say */
        snprintf(plan->model_path, sizeof plan->model_path, "%s", model_path);
        for (int i = 0; i < plan->n_stages; i++) plan->stages[i].model_path[0] = '\0';
    }
    sp_runtime_hosts(c, plan, threads, cmd);
    sp_runtime_ship(c, plan, shard_cache, cmd);
}

/* ---- hosts and threads ---- */

void sp_runtime_hosts(sp_comm *c, sp_plan *plan, int threads, const char *cmd)
{
    sp_error err = {{0}};
    int stage = sp_plan_stage_of_rank(plan, c->rank);
    sp_host_report me, *all = NULL;
    sp_host_report_self(stage >= 0 ? plan->stages[stage].host : NULL, &me);
    /* this rank's threads: --threads, else the plan's, else its CPUs */
    if (stage >= 0) {
        if (threads > 0) plan->stages[stage].threads = threads;
        else if (plan->stages[stage].threads <= 0) plan->stages[stage].threads = me.threads;
        me.threads = plan->stages[stage].threads;
    }
    if (c->rank == 0) all = sp_calloc((size_t)c->size, sizeof *all);
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    int rc = 0;
    if (c->rank == 0) {
        /* the check sums each host's threads as the ranks resolved them */
        sp_plan *seen = sp_calloc(1, sizeof *seen);
        *seen = *plan;
        for (int i = 0; i < seen->n_stages; i++)
            if (seen->stages[i].rank < c->size) seen->stages[i].threads = all[seen->stages[i].rank].threads;
        sp_gguf *g = sp_gguf_open(plan->model_path, &err);
        sp_config cfg;
        char warn[2048] = "";
        rc = g ? sp_config_read(g, &cfg, &err) : -1;
        if (!rc) rc = sp_plan_check_hosts(seen, g, &cfg, all, c->size, warn, sizeof warn, &err);
        if (!rc && warn[0]) fprintf(stderr, "shardpipe %s: warning: %s\n", cmd, warn);
        sp_gguf_close(g);
        free(seen);
        free(all);
    }
    sp_agree(c, cmd, rc, &err);
}

void sp_runtime_start(runtime *rt, sp_comm *comm, const sp_plan *plan, const char *logits_out, const char *cmd)
{
    sp_error err = {{0}};
    memset(rt, 0, sizeof *rt);
    rt->comm = comm;
    rt->plan = plan;
    rt->stage = sp_plan_stage_of_rank(plan, comm->rank);
    {
        char who[128], name[256];
        sp_comm_who(comm, comm->rank, who, sizeof who);
        if (rt->stage >= 0)
            snprintf(name, sizeof name, "%s (stage %d, layers %d-%d)", who, rt->stage, plan->stages[rt->stage].first,
                     plan->stages[rt->stage].last);
        else
            snprintf(name, sizeof name, "%s (the coordinator, no stage)", who);
        sp_supervise_name(name);
    }
    rt->sreq[0] = rt->sreq[1] = rt->rreq = rt->treq = MPI_REQUEST_NULL;
    int rc = 0;
    uint64_t mine = 0;
    bool content = false;
    if (rt->stage >= 0) {
        rc = sp_stage_open(&rt->st, plan, rt->stage, logits_out, &err);
        if (!rc) {
            rt->st.engine->progress = sp_progress_messages;
            rt->st.engine->progress_arg = rt;
            content = is_shard_file(rt->st.model->gguf);
            mine = shard_identity(rt->st.model->gguf, plan, rt->stage, content);
        }
    }
    /* report load failures by rank, then compare identities on rank 0 */
    /* msg: the error, or the model path this rank opened (for a refusal) */
    struct { int32_t rc, content; uint64_t id; char msg[512]; } me = {rc, content, mine, ""}, *all = NULL;
    if (rc) memcpy(me.msg, err.msg, sizeof me.msg - 1);
    else snprintf(me.msg, sizeof me.msg, "%.500s", sp_plan_stage_model(plan, rt->stage));
    if (comm->rank == 0) all = sp_calloc((size_t)comm->size, sizeof *all);
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    rc = 0;
    if (comm->rank == 0) {
        /* rank 0's own mapping when it runs stage 0 from the whole file,
         * else open the plan's whole file (which rank 0 has checked) */
        bool mine_whole = rt->stage >= 0 && rt->st.model && !content;
        sp_gguf *own = mine_whole ? NULL : sp_gguf_open(plan->model_path, &err);
        const sp_gguf *g = own ? own : mine_whole ? rt->st.model->gguf : NULL;
        for (int r = 0; r < comm->size && !rc; r++) {
            int s = sp_plan_stage_of_rank(plan, r);
            char who[128];
            sp_comm_who(comm, r, who, sizeof who);
            if (all[r].rc) rc = sp_errorf(&err, "%s could not load its shard: %s", who, all[r].msg);
            else if (s >= 0 && g && shard_identity(g, plan, s, all[r].content) != all[r].id)
                rc = sp_errorf(&err, "%s (stage %d) has a different model file at %s than the coordinator's %s "
                                     "(header, tensor index or the bytes of its layers differ); copy the same "
                                     "file to every board%s", who, s, all[r].msg, g->path,
                                 all[r].content ? ", or the shard `shardpipe split` wrote for that stage" : "");
        }
        if (!g) rc = -1;
        sp_gguf_close(own);
        free(all);
    }
    sp_agree(comm, cmd, rc, &err);
    /* every shard is the right one: now read its weights (into huge pages);
     * a rank that cannot says so itself, and all stop */
    rc = rt->stage >= 0 ? sp_model_load_weights(rt->st.model, &err) : 0;
    if (rc) {
        char who[128];
        sp_comm_who(comm, comm->rank, who, sizeof who);
        fprintf(stderr, "shardpipe %s: %s (stage %d): %s\n", cmd, who, rt->stage, err.msg);
    }
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc) sp_comm_shutdown(comm, 1);

    /* the message buffers: the largest micro-batch in f32 */
    size_t max_rows = (size_t)sp_plan_max_rows(plan);
    int dim = rt->stage >= 0 ? rt->st.dim : 0;
    MPI_Allreduce(MPI_IN_PLACE, &dim, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    rt->msg_cap = sp_wire_msg_bytes(SP_WIRE_F32, (int)max_rows + 1, dim, 1);
    for (int i = 0; i < 2; i++) {
        rt->rbuf[i] = sp_alloc(rt->msg_cap);
        rt->sbuf[i] = sp_alloc(rt->msg_cap);
    }
}

void sp_runtime_free(runtime *rt)
{
    if (rt->stage >= 0) sp_stage_close(&rt->st);
    sp_trace_free(&rt->trace);
    for (int i = 0; i < 2; i++) {
        free(rt->rbuf[i]);
        free(rt->sbuf[i]);
    }
}
