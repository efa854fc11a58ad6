/* yamlfile.h - one YAML document from a plan, profile or cluster file, with
 * the limits that keep a hostile file cheap: at most SP_YAML_MAX_BYTES, at
 * most SP_YAML_MAX_DEPTH nested lists and mappings (checked on libyaml's
 * events, before any node is built: libyaml's time grows with the nesting,
 * a 600 KB file of nested flow maps took 67 s), exactly one document. */
#ifndef SHARDPIPE_YAMLFILE_H
#define SHARDPIPE_YAMLFILE_H

#include <yaml.h>

#include "shardpipe/error.h"

#define SP_YAML_MAX_BYTES (1u << 20)
#define SP_YAML_MAX_DEPTH 32

/* Loads PATH into *doc (free with yaml_document_delete) and returns its
 * root, or NULL with an error at PATH:LINE:COL. `what` names the file ("the
 * plan"), `doc_hint` where its schema is described. */
yaml_node_t *sp_yaml_load(const char *path, const char *what, const char *doc_hint, yaml_document_t *doc,
                          sp_error *err);

#endif
