/* yamlfile.c - reading one bounded YAML document (see yamlfile.h): the file
 * is read whole (regular files only, size-capped), its events are walked
 * once to check the nesting and the document count, and only then is the
 * node tree built from the same bytes. */
#include "shardpipe/yamlfile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/infile.h"

static int syntax_error(const yaml_parser_t *p, const char *path, sp_error *err)
{
    yaml_mark_t m = p->problem_mark;
    if (p->context)
        return sp_errorf(err, "%s:%zu:%zu: YAML syntax error: %s %s that started at line %zu; fix the indentation "
                              "or quoting there",
                         path, m.line + 1, m.column + 1, p->problem ? p->problem : "unreadable input", p->context,
                         p->context_mark.line + 1);
    return sp_errorf(err, "%s:%zu:%zu: YAML syntax error: %s; fix the indentation or quoting there", path,
                     m.line + 1, m.column + 1, p->problem ? p->problem : "unreadable input");
}

/* Walk the events: nesting depth and a second document. */
static int check_events(const unsigned char *buf, size_t len, const char *path, const char *what, sp_error *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return sp_errorf(err, "%s: cannot initialize the YAML parser (out of memory)", path);
    yaml_parser_set_input_string(&p, buf, len);
    int depth = 0, docs = 0, rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(&p, path, err);
            break;
        }
        yaml_mark_t m = ev.start_mark;
        switch (ev.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > SP_YAML_MAX_DEPTH)
                rc = sp_errorf(err, "%s:%zu:%zu: lists and mappings nest more than %d deep here; %s is never "
                                    "that deep, check this is the right file",
                               path, m.line + 1, m.column + 1, SP_YAML_MAX_DEPTH, what);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = sp_errorf(err, "%s:%zu:%zu: a second YAML document follows %s; the file holds one document, "
                                    "so remove the `---` and what follows",
                               path, m.line + 1, m.column + 1, what);
            break;
        case YAML_STREAM_END_EVENT: done = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

yaml_node_t *sp_yaml_load(const char *path, const char *what, const char *doc_hint, yaml_document_t *doc,
                          sp_error *err)
{
    size_t len;
    char hint[160];
    snprintf(hint, sizeof hint, "%s is a few KiB", what);
    char *buf = sp_infile_read(path, what, SP_YAML_MAX_BYTES, hint, &len, err);
    if (!buf) return NULL;
    if (check_events((const unsigned char *)buf, len, path, what, err)) {
        free(buf);
        return NULL;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        free(buf);
        sp_errorf(err, "%s: cannot initialize the YAML parser (out of memory)", path);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    yaml_node_t *root = NULL;
    if (!yaml_parser_load(&p, doc)) {
        syntax_error(&p, path, err);
    } else if (!(root = yaml_document_get_root_node(doc))) {
        yaml_document_delete(doc);
        sp_errorf(err, "%s:1:1: the file holds no YAML document; see %s", path, doc_hint);
    }
    yaml_parser_delete(&p);
    free(buf);
    return root;
}
