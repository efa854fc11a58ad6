/* ship.c - step 2b of `run` and `serve`: every stage rank finds its weights
 * before any is loaded, and rank 0 sends a board the shard it lacks.
 *
 * A stage rank takes, in this order: its stage's own file (`model:` of a
 * `shardpipe split` plan) or the plan's whole model, when the board has it;
 * else the entry of its shard cache (shardcache.h) named by the shard's
 * content hash, which rank 0 computes from its whole file (the same value
 * a split shard file of that stage has); else rank 0 streams the shard -
 * the exact bytes `shardpipe split` would write for that stage - into the
 * cache, where it is verified and renamed into place. The next start finds
 * the entry and sends nothing. A damaged entry is refused by name.
 *
 * The stream: the board knows the size from the broadcast table and posts
 * SHIP_DEPTH receives of SHIP_CHUNK bytes ahead, writing one chunk while
 * the next arrives; rank 0 keeps SHIP_DEPTH sends in flight per board from
 * staging buffers filled from its mapping, and each board answers with one
 * message once every byte is in. By default every board that needs a shard
 * is fed at once; SHARDPIPE_SHIP=serial feeds them one after another. Both
 * share rank 0's uplink, but at once is faster (benchmarks/ship.sh, 1 Gbit/s
 * emulated: 418 MB to two boards in 3.71 s against 4.23 s): while one
 * board's rank is off the core, writing a chunk or its TCP window is still
 * growing, the other's flow uses the link, and boards writing to slow SD
 * cards write at the same time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "shardpipe/shardcache.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/shardhash.h"
#include "shardpipe/util.h"
#include "wire.h"

#define SHIP_CHUNK (1u << 20)
#define SHIP_DEPTH 4
#define PROGRESS_EVERY_S 0.5

/* what a stage rank reports, in order: needs nothing, has a cache entry,
 * needs the transfer; or fails */
enum { HAS_FILE = 0, CACHE_HIT = 1, CACHE_MISS = 2, FAILED = -1 };

typedef struct stage_shard {
    sp_shard_key key;
    uint64_t size;  /* bytes of the shard file */
} stage_shard;

typedef struct report {
    int32_t status;
    char msg[600];
} report;

static bool readable(const char *path)
{
    struct stat st;
    return path && path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static sp_shard_key key_of(const sp_plan *plan, int stage)
{
    const sp_stage_plan *st = &plan->stages[stage];
    return (sp_shard_key){st->first, st->last, stage == 0, stage == plan->n_stages - 1, 0};
}

/* Gathers every rank's report; rank 0 names each failure on stderr and all
 * ranks stop together when one failed. */
static void agree_reports(sp_comm *c, const report *me, const char *cmd)
{
    report *all = c->rank == 0 ? sp_calloc((size_t)c->size, sizeof *all) : NULL;
    MPI_Gather(me, (int)sizeof *me, MPI_BYTE, all, (int)sizeof *me, MPI_BYTE, 0, MPI_COMM_WORLD);
    int rc = 0;
    sp_error err = {{0}};
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) {
            if (all[r].status != FAILED) continue;
            char who[128];
            sp_comm_who(c, r, who, sizeof who);
            if (rc) fprintf(stderr, "shardpipe %s: %s: %s\n", cmd, who, all[r].msg);
            else rc = sp_errorf(&err, "%s: %s", who, all[r].msg);
        }
        free(all);
    }
    sp_agree(c, cmd, rc, &err);
}

/* ---- rank 0: the sender ---- */

typedef struct feed {
    int rank, stage;
    sp_gguf_writer *w;
    sp_gguf_stream *s;
    uint64_t size, queued;      /* bytes handed to MPI so far */
    double t0, t1;              /* start, and when the board said it has all */
    uint8_t *buf[SHIP_DEPTH];
    MPI_Request req[SHIP_DEPTH];
    MPI_Request ack;
    uint64_t got;               /* the board's count, in its answer */
    int next;                   /* slot of the oldest send */
    bool started, done;
} feed;

static bool ship_serial(void)
{
    const char *m = getenv("SHARDPIPE_SHIP");
    return m && !strcmp(m, "serial");
}

static void feed_start(sp_comm *c, feed *f, const sp_plan *plan, const char *cmd)
{
    char who[128];
    const sp_stage_plan *st = &plan->stages[f->stage];
    fprintf(stderr, "shardpipe %s: sending stage %d's shard (layers %d-%d, %.1f MB) to %s, which has neither the "
                    "model file nor the shard in its cache\n", cmd, f->stage, st->first, st->last, f->size / 1e6,
            sp_comm_who(c, f->rank, who, sizeof who));
    f->t0 = sp_now();
    f->started = true;
    MPI_Irecv(&f->got, 1, MPI_UINT64_T, f->rank, SP_TAG_SHIP, MPI_COMM_WORLD, &f->ack);
    for (int i = 0; i < SHIP_DEPTH; i++) {
        f->buf[i] = sp_alloc(SHIP_CHUNK);
        f->req[i] = MPI_REQUEST_NULL;
    }
}

/* Keeps SHIP_DEPTH chunks in flight; true when something moved. */
static bool feed_pump(sp_comm *c, feed *f)
{
    bool moved = false;
    for (;;) {
        int slot = f->next, done = 1;
        if (f->req[slot] != MPI_REQUEST_NULL) MPI_Test(&f->req[slot], &done, MPI_STATUS_IGNORE);
        if (!done || f->queued == f->size) break;
        size_t n = sp_gguf_stream_read(f->s, f->buf[slot], SHIP_CHUNK);
        MPI_Isend(f->buf[slot], (int)n, MPI_BYTE, f->rank, SP_TAG_SHIP, MPI_COMM_WORLD, &f->req[slot]);
        f->queued += n;
        f->next = (slot + 1) % SHIP_DEPTH;
        moved = true;
    }
    int acked = 0;
    MPI_Test(&f->ack, &acked, MPI_STATUS_IGNORE);
    if (acked) {
        for (int i = 0; i < SHIP_DEPTH; i++) /* complete: the board has every byte */
            MPI_Wait(&f->req[i], MPI_STATUS_IGNORE);
        f->t1 = sp_now();
        f->done = true;
        for (int i = 0; i < SHIP_DEPTH; i++) free(f->buf[i]);
        if (f->got != f->size) {
            sp_error err;
            char who[128];
            sp_errorf(&err, "%s received %" PRIu64 " of the %" PRIu64 " bytes of its shard", sp_comm_who(c, f->rank, who, sizeof who),
                      f->got, f->size);
            sp_comm_abort(c, &err);
        }
        moved = true;
    }
    return moved;
}

static void progress_line(sp_comm *c, feed *feeds, int n, const char *cmd, double now)
{
    char line[2048];
    int len = snprintf(line, sizeof line, "shardpipe %s: shards:", cmd);
    for (int i = 0; i < n; i++) {
        const feed *f = &feeds[i];
        if (!f->started || f->done || len >= (int)sizeof line - 200) continue;
        double dt = now - f->t0, rate = dt > 0 ? f->queued / dt : 0;
        char who[128];
        len += snprintf(line + len, sizeof line - (size_t)len, " %s %.1f/%.1f MB %.1f MB/s ETA %.1f s;",
                        sp_comm_who(c, f->rank, who, sizeof who), f->queued / 1e6, f->size / 1e6, rate / 1e6,
                        rate > 0 ? (f->size - f->queued) / rate : 0.0);
    }
    if (len >= (int)sizeof line) len = (int)sizeof line - 1; /* cut short: still one line */
    if (line[len - 1] == ';') line[len - 1] = '\0';
    fprintf(stderr, "%s\n", line);
}

static void send_all(sp_comm *c, feed *feeds, int n, const sp_plan *plan, const char *cmd)
{
    bool serial = ship_serial();
    double t0 = sp_now(), last_print = t0, last_move = t0;
    int spins = 0, left = n;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += feeds[i].size;
    while (left > 0) {
        bool moved = false;
        for (int i = 0; i < n; i++) {
            feed *f = &feeds[i];
            if (f->done) continue;
            if (!f->started) {
                if (serial && i > 0 && !feeds[i - 1].done) continue;
                feed_start(c, f, plan, cmd);
            }
            moved |= feed_pump(c, f);
            if (f->done) {
                char who[128];
                double dt = f->t1 - f->t0;
                fprintf(stderr, "shardpipe %s: %s: sent %" PRIu64 " bytes in %.2f s, %.1f MB/s\n", cmd,
                        sp_comm_who(c, f->rank, who, sizeof who), f->size, dt, dt > 0 ? f->size / dt / 1e6 : 0.0);
                left--;
            }
        }
        double now = sp_now();
        if (moved) spins = 0, last_move = now;
        else sp_comm_backoff(&spins);
        if (left > 0 && now - last_print >= PROGRESS_EVERY_S) {
            progress_line(c, feeds, n, cmd, now);
            last_print = now;
        }
        if (now - last_move > c->timeout_s) {
            sp_error err;
            sp_errorf(&err, "no shard bytes moved for %.0f s; a board stopped receiving or its network is down",
                      now - last_move);
            sp_comm_abort(c, &err);
        }
    }
    double dt = sp_now() - t0;
    fprintf(stderr, "shardpipe %s: shards sent: %" PRIu64 " bytes to %d board%s in %.2f s, %.1f MB/s (%s)\n", cmd,
            total, n, n > 1 ? "s" : "", dt, dt > 0 ? total / dt / 1e6 : 0.0, serial ? "one board at a time" : "all boards at once");
}

/* ---- a board: the receiver ---- */

/* Receives the whole stream even after a local failure (so rank 0 never
 * waits on a board that gave up), then answers with the byte count. */
static void receive(sp_comm *c, sp_shard_cache_writer *w, bool writing, uint64_t size, report *me)
{
    sp_error err = {{0}};
    uint64_t n_chunks = (size + SHIP_CHUNK - 1) / SHIP_CHUNK, got = 0;
    uint8_t *buf[SHIP_DEPTH];
    MPI_Request req[SHIP_DEPTH];
    for (int i = 0; i < SHIP_DEPTH; i++) {
        buf[i] = sp_alloc(SHIP_CHUNK);
        req[i] = MPI_REQUEST_NULL;
        if ((uint64_t)i < n_chunks)
            MPI_Irecv(buf[i], SHIP_CHUNK, MPI_BYTE, 0, SP_TAG_SHIP, MPI_COMM_WORLD, &req[i]);
    }
    for (uint64_t k = 0; k < n_chunks; k++) {
        int slot = (int)(k % SHIP_DEPTH), count = 0;
        MPI_Status st;
        if (sp_comm_wait(c, &req[slot], &st, "the shard from rank 0", NULL, &err)) sp_comm_abort(c, &err);
        MPI_Get_count(&st, MPI_BYTE, &count);
        got += (uint64_t)count;
        if (writing && sp_shard_cache_put(w, buf[slot], (size_t)count, &err)) {
            me->status = FAILED;
            snprintf(me->msg, sizeof me->msg, "%.590s", err.msg);
            sp_shard_cache_abort(w);
            writing = false;
        }
        if (k + SHIP_DEPTH < n_chunks)
            MPI_Irecv(buf[slot], SHIP_CHUNK, MPI_BYTE, 0, SP_TAG_SHIP, MPI_COMM_WORLD, &req[slot]);
    }
    for (int i = 0; i < SHIP_DEPTH; i++) free(buf[i]);
    MPI_Send(&got, 1, MPI_UINT64_T, 0, SP_TAG_SHIP, MPI_COMM_WORLD);
    if (writing && sp_shard_cache_commit(w, &err)) {
        me->status = FAILED;
        snprintf(me->msg, sizeof me->msg, "%.590s", err.msg);
    }
}

/* ---- the step ---- */

void sp_runtime_ship(sp_comm *c, sp_plan *plan, const char *cache_dir, const char *cmd)
{
    int stage = sp_plan_stage_of_rank(plan, c->rank);
    /* 1. the board's own files, as before */
    int32_t remote = 0;
    if (stage >= 0) {
        sp_stage_plan *st = &plan->stages[stage];
        if (!readable(sp_plan_stage_model(plan, stage)) && st->model_path[0] && readable(plan->model_path))
            st->model_path[0] = '\0'; /* no shard file here, but the whole model */
        /* rank 0 has the whole model (it checked the plan with it) */
        remote = c->rank != 0 && !readable(sp_plan_stage_model(plan, stage));
        if (c->rank == 0 && !readable(sp_plan_stage_model(plan, stage))) st->model_path[0] = '\0';
    }
    int32_t *remotes = sp_calloc((size_t)c->size, sizeof *remotes);
    MPI_Allgather(&remote, 1, MPI_INT32_T, remotes, 1, MPI_INT32_T, MPI_COMM_WORLD);
    int n_remote = 0;
    for (int r = 0; r < c->size; r++) n_remote += remotes[r];
    if (!n_remote) {
        free(remotes);
        return;
    }

    /* 2. rank 0: what each such board's shard is (its content hash) and
     * how many bytes the shard file has */
    static stage_shard table[SP_PLAN_MAX_STAGES];
    memset(table, 0, sizeof table);
    sp_error err = {{0}};
    sp_gguf *g = NULL;
    feed *feeds = NULL;
    int n_feeds = 0, rc = 0;
    if (c->rank == 0) {
        g = sp_gguf_open(plan->model_path, &err);
        rc = g ? 0 : -1;
        feeds = sp_calloc((size_t)n_remote, sizeof *feeds);
        for (int r = 0; r < c->size && !rc; r++) {
            if (!remotes[r]) continue;
            int s = sp_plan_stage_of_rank(plan, r);
            stage_shard *t = &table[s];
            bool cached;
            t->key = key_of(plan, s);
            t->key.hash = sp_shard_content_hash_cached(g, t->key.first, t->key.last, t->key.embed, t->key.head,
                                                       &cached);
            feed *f = &feeds[n_feeds++];
            f->rank = r;
            f->stage = s;
            f->w = sp_shard_writer(g, t->key.first, t->key.last, t->key.embed, t->key.head, &err);
            f->s = f->w ? sp_gguf_stream_new(f->w, &err) : NULL;
            if (!f->s) rc = -1;
            else t->size = f->size = sp_gguf_stream_size(f->s);
        }
    }
    sp_agree(c, cmd, rc, &err);
    MPI_Bcast(table, (int)sizeof table, MPI_BYTE, 0, MPI_COMM_WORLD);

    /* 3. each such board: its cache entry, checked, or room for it */
    report me = {HAS_FILE, ""};
    char dir[1024] = "", entry[1100] = "";
    sp_shard_cache_writer w;
    if (remote) {
        const stage_shard *t = &table[stage];
        int k = sp_shard_cache_dir(cache_dir, true, dir, sizeof dir, &err);
        if (!k) {
            sp_shard_cache_entry(dir, t->key.hash, entry, sizeof entry);
            if (strlen(entry) >= sizeof plan->stages[stage].model_path)
                k = sp_errorf(&err, "%s: the shard cache path is too long; give a shorter --shard-cache DIR", entry);
        }
        if (!k) k = sp_shard_cache_check(entry, &t->key, &err);
        if (k == 1) k = sp_shard_cache_begin(&w, dir, &t->key, t->size, &err) ? -1 : 2;
        me.status = k < 0 ? FAILED : k == 0 ? CACHE_HIT : CACHE_MISS;
        if (k < 0) snprintf(me.msg, sizeof me.msg, "%.590s", err.msg);
    }
    /* which boards need the transfer: rank 0 keeps those feeds only */
    int32_t miss = me.status == CACHE_MISS, *misses = sp_calloc((size_t)c->size, sizeof *misses);
    MPI_Gather(&miss, 1, MPI_INT32_T, misses, 1, MPI_INT32_T, 0, MPI_COMM_WORLD);
    agree_reports(c, &me, cmd); /* a refused entry stops every rank here, before any byte moves */

    /* 4. the transfer */
    if (c->rank == 0) {
        int k = 0;
        for (int i = 0; i < n_feeds; i++) {
            if (misses[feeds[i].rank]) feeds[k++] = feeds[i];
            else {
                char who[128];
                fprintf(stderr, "shardpipe %s: %s runs stage %d from its shard cache\n", cmd,
                        sp_comm_who(c, feeds[i].rank, who, sizeof who), feeds[i].stage);
                sp_gguf_stream_free(feeds[i].s);
                sp_gguf_writer_free(feeds[i].w);
            }
        }
        if (k) send_all(c, feeds, k, plan, cmd);
        for (int i = 0; i < k; i++) {
            sp_gguf_stream_free(feeds[i].s);
            sp_gguf_writer_free(feeds[i].w);
        }
        free(feeds);
        sp_gguf_close(g);
    } else if (me.status == CACHE_MISS) {
        receive(c, &w, true, table[stage].size, &me);
    }
    free(misses);
    free(remotes);
    /* boards with nothing to receive wait here without spinning in MPI (the
     * transfer may take minutes; rank 0 and the receivers bound it) */
    MPI_Request bar;
    MPI_Ibarrier(MPI_COMM_WORLD, &bar);
    if (sp_comm_wait_for(c, &bar, NULL, "the shard transfers", NULL, 0, &err)) sp_comm_abort(c, &err);
    agree_reports(c, &me, cmd); /* every received shard verified and in place */
    if (remote) snprintf(plan->stages[stage].model_path, sizeof plan->stages[stage].model_path, "%s", entry);
}
