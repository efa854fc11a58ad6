/* split.c - `shardpipe split`: a plan's stages as GGUF shard files of their
 * own (DIR/stage-K.gguf, shardfile.h) and a plan DIR/plan.yaml whose stages
 * point at them (`model:` per stage), for users who copy files to the boards
 * themselves instead of storing the whole model on every board. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "shardpipe/plan.h"
#include "shardpipe/shardfile.h"

int sp_plan_split(const sp_plan *plan, const char *dir, const char *model_ref, uint64_t *stage_bytes,
                  sp_error *err)
{
    sp_gguf *g = sp_gguf_open(plan->model_path, err);
    if (!g) return -1;
    sp_config cfg;
    static sp_plan out; /* ~100 KB: off the stack */
    int rc = -1;
    if (sp_config_read(g, &cfg, err) || sp_plan_check_model(plan, g, &cfg, err)) goto done;
    struct stat st;
    if (mkdir(dir, 0777) && !(errno == EEXIST && !stat(dir, &st) && S_ISDIR(st.st_mode))) {
        sp_errorf(err, "%s: cannot create the output folder (%s); give a folder you can write", dir,
                  strerror(errno));
        goto done;
    }
    out = *plan;
    snprintf(out.model_path, sizeof out.model_path, "%s", model_ref);
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *s = &plan->stages[i];
        char path[1200];
        snprintf(path, sizeof path, "%s/stage-%d.gguf", dir, i);
        if (sp_shard_write(g, s->first, s->last, i == 0, i == plan->n_stages - 1, path, err)) goto done;
        if (stage_bytes) {
            struct stat fs;
            stage_bytes[i] = stat(path, &fs) ? 0 : (uint64_t)fs.st_size;
        }
        snprintf(out.stages[i].model_path, sizeof out.stages[i].model_path, "stage-%d.gguf", i);
    }
    char plan_path[1200], header[1400];
    snprintf(plan_path, sizeof plan_path, "%s/plan.yaml", dir);
    snprintf(header, sizeof header,
             "Written by `shardpipe split` from %s: each stage runs its own shard file (model: per stage),\n"
             "so a board needs only its shard. model.path is the original, which rank 0 reads to validate\n"
             "the plan and load the tokenizer.",
             plan->path);
    rc = sp_plan_write(&out, plan_path, header, NULL, err);
done:
    sp_gguf_close(g);
    return rc;
}
