/* yamldoc.h - a loaded YAML document and checked accessors for the
 * planner's files (board profiles, cluster files). Every accessor reports a
 * problem as "FILE:LINE:COL: what is wrong; the fix" and returns -1. */
#ifndef SHARDPIPE_PLANNER_YAMLDOC_H
#define SHARDPIPE_PLANNER_YAMLDOC_H

#include <stdint.h>
#include <yaml.h>

#include "shardpipe/error.h"
#include "shardpipe/profile.h"

typedef struct yamldoc {
    yaml_document_t doc;
    yaml_node_t *root;
    const char *path;
    sp_error *err;
} yamldoc;

/* Parse the one document of `path` (a second document is an error). */
int yd_open(yamldoc *d, const char *path, const char *what, sp_error *err);
void yd_close(yamldoc *d);

int yd_fail(yamldoc *d, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

yaml_node_t *yd_node(yamldoc *d, int index);
int yd_seq_len(const yaml_node_t *n);
yaml_node_t *yd_seq_item(yamldoc *d, const yaml_node_t *n, int i);
const char *yd_text(const yaml_node_t *n); /* a scalar's text */

/* `n` must be a mapping (else an error naming `what`); every key one of
 * `known` and given once. */
int yd_mapping(yamldoc *d, yaml_node_t *n, const char *what, const char *const *known);
/* Value of key in a checked mapping, or NULL. */
yaml_node_t *yd_get(yamldoc *d, yaml_node_t *map, const char *key);
/* As yd_get, but a missing key is an error; `hint` says what to add. */
yaml_node_t *yd_need(yamldoc *d, yaml_node_t *map, const char *key, const char *where, const char *hint);

int yd_int(yamldoc *d, yaml_node_t *n, const char *name, long min, long max, int *out);
/* A number in [min, max] (plain, decimal or with an exponent: 117e6);
 * `unit` names it in messages ("GB/s"). */
int yd_num(yamldoc *d, yaml_node_t *n, const char *name, double min, double max, const char *unit, double *out);
int yd_str(yamldoc *d, yaml_node_t *n, const char *name, char *buf, size_t size);
/* A host-name-like word: letters, digits, '.', '-', '_'. */
int yd_word(yamldoc *d, yaml_node_t *n, const char *name, char *buf, size_t size);
/* A byte size: a number with an optional B, KB, MB, GB, TB, KiB, MiB, GiB,
 * TiB suffix. */
int yd_size(yamldoc *d, yaml_node_t *n, const char *name, uint64_t *out);

/* The profile schema applied to a mapping node (a file's root, or a board's
 * inline `profile:` in a cluster file). */
int sp_profile_from_node(yamldoc *d, yaml_node_t *n, sp_profile *p);

/* "3.5GiB"-style text for writers: exact in the largest binary unit that
 * represents the value with at most 3 decimals, else bytes. */
void yd_format_size(uint64_t bytes, char *buf, size_t size);

#endif
