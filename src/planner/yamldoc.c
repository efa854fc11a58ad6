/* yamldoc.c - loading a YAML document with libyaml's document API and the
 * checked accessors the profile and cluster loaders are written with. */
#include "yamldoc.h"

#include "shardpipe/yamlfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int yd_fail(yamldoc *d, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[sizeof d->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* libyaml marks are 0-based */
    return sp_errorf(d->err, "%s:%d:%d: %s", d->path, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1,
                     msg);
}

int yd_open(yamldoc *d, const char *path, const char *what, sp_error *err)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    d->err = err;
    d->root = sp_yaml_load(path, what, "docs/profile-format.md", &d->doc, err);
    return d->root ? 0 : -1;
}

void yd_close(yamldoc *d)
{
    if (d->root) yaml_document_delete(&d->doc);
    d->root = NULL;
}

yaml_node_t *yd_node(yamldoc *d, int index) { return yaml_document_get_node(&d->doc, index); }

int yd_seq_len(const yaml_node_t *n)
{
    return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *yd_seq_item(yamldoc *d, const yaml_node_t *n, int i)
{
    return yd_node(d, n->data.sequence.items.start[i]);
}

const char *yd_text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *s = yd_text(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null");
}

static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a list";
    if (is_null(n)) return "nothing";
    snprintf(buf, size, "'%.60s'", yd_text(n));
    return buf;
}

int yd_mapping(yamldoc *d, yaml_node_t *n, const char *what, const char *const *known)
{
    char buf[80], list[400];
    if (n->type != YAML_MAPPING_NODE)
        return yd_fail(d, n, "%s must be a mapping of `key: value` lines, got %s; see docs/profile-format.md", what,
                       describe(n, buf, sizeof buf));
    list[0] = '\0';
    for (int i = 0; known[i]; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", known[i]);
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yd_node(d, p->key);
        if (k->type != YAML_SCALAR_NODE) return yd_fail(d, k, "keys in %s must be words; write `key: value`", what);
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(yd_text(k), known[i]);
        if (!ok)
            return yd_fail(d, k, "unknown key '%.60s' in %s; the keys allowed here are %s", yd_text(k), what, list);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
            if (!strcmp(yd_text(yd_node(d, q->key)), yd_text(k)))
                return yd_fail(d, k, "key '%s' appears twice in %s; remove one of them", yd_text(k), what);
    }
    return 0;
}

yaml_node_t *yd_get(yamldoc *d, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (!strcmp(yd_text(yd_node(d, p->key)), key)) return yd_node(d, p->value);
    return NULL;
}

yaml_node_t *yd_need(yamldoc *d, yaml_node_t *map, const char *key, const char *where, const char *hint)
{
    yaml_node_t *v = yd_get(d, map, key);
    if (!v) yd_fail(d, map, "missing key '%s' in %s; %s", key, where, hint);
    return v;
}

int yd_int(yamldoc *d, yaml_node_t *n, const char *name, long min, long max, int *out)
{
    char buf[80];
    if (n->type != YAML_SCALAR_NODE || is_null(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return yd_fail(d, n, "%s must be a plain integer, got %s; write a whole number from %ld to %ld", name,
                       describe(n, buf, sizeof buf), min, max);
    const char *s = yd_text(n);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end)
        return yd_fail(d, n, "%s must be an integer, got '%.40s'; write a whole number from %ld to %ld", name, s,
                       min, max);
    if (errno == ERANGE || v < min || v > max)
        return yd_fail(d, n, "%s %.40s is implausible; it must be from %ld to %ld", name, s, min, max);
    *out = (int)v;
    return 0;
}

int yd_num(yamldoc *d, yaml_node_t *n, const char *name, double min, double max, const char *unit, double *out)
{
    char buf[80];
    if (n->type != YAML_SCALAR_NODE || is_null(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return yd_fail(d, n, "%s must be a plain number (%s), got %s; write e.g. %g", name, unit,
                       describe(n, buf, sizeof buf), min > 0 ? min * 10 : 1.0);
    const char *s = yd_text(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return yd_fail(d, n, "%s must be a number (%s), got '%.40s'; write digits, a decimal point or an "
                             "exponent such as 117e6", name, unit, s);
    if (v < min || v > max)
        return yd_fail(d, n, "%s %.40s %s is implausible; it must be from %g to %g %s (check the unit)", name, s, unit,
                       min, max, unit);
    *out = v;
    return 0;
}

int yd_str(yamldoc *d, yaml_node_t *n, const char *name, char *buf, size_t size)
{
    char dbuf[80];
    if (n->type != YAML_SCALAR_NODE || is_null(n) || !*yd_text(n))
        return yd_fail(d, n, "%s must be text, got %s; write it after the colon", name,
                       describe(n, dbuf, sizeof dbuf));
    if (strlen(yd_text(n)) >= size)
        return yd_fail(d, n, "%s is longer than %zu characters; shorten it", name, size - 1);
    snprintf(buf, size, "%s", yd_text(n));
    return 0;
}

int yd_word(yamldoc *d, yaml_node_t *n, const char *name, char *buf, size_t size)
{
    if (yd_str(d, n, name, buf, size)) return -1;
    if (strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(buf))
        return yd_fail(d, n, "%s '%s' may contain only letters, digits, '.', '-' and '_'", name, buf);
    return 0;
}

static const struct {
    const char *suffix;
    double scale;
} size_units[] = {
    {"B", 1},      {"KB", 1e3},      {"MB", 1e6},      {"GB", 1e9},      {"TB", 1e12},
    {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
};

int yd_size(yamldoc *d, yaml_node_t *n, const char *name, uint64_t *out)
{
    char buf[80];
    const char *fix = "write bytes or a number with a B, KB, MB, GB, TB, KiB, MiB, GiB or TiB suffix, e.g. 7.6GiB";
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return yd_fail(d, n, "%s must be a size, got %s; %s", name, describe(n, buf, sizeof buf), fix);
    const char *s = yd_text(n);
    char *end;
    double x = strtod(s, &end);
    if (end == s || !(x >= 0) || !(*s >= '0' && *s <= '9')) return yd_fail(d, n, "%s '%.40s' is not a size; %s", name, s, fix);
    while (*end == ' ') end++;
    double scale = *end ? 0 : 1;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
        if (!strcmp(end, size_units[i].suffix)) scale = size_units[i].scale;
    if (!scale) return yd_fail(d, n, "%s '%.40s' has an unknown unit; %s", name, s, fix);
    double bytes = x * scale;
    if (bytes > 1e18) return yd_fail(d, n, "%s '%.40s' is implausibly large; %s", name, s, fix);
    *out = (uint64_t)llround(bytes);
    return 0;
}

void yd_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t unit = 1ull << units[i].shift;
        if (bytes < unit || bytes > UINT64_MAX / 1000 || (bytes * 1000) % unit) continue;
        uint64_t milli = bytes * 1000 / unit;
        int len = snprintf(buf, size, "%llu.%03llu", (unsigned long long)(milli / 1000),
                           (unsigned long long)(milli % 1000));
        while (len > 0 && buf[len - 1] == '0') buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '.') buf[--len] = '\0';
        snprintf(buf + len, size - (size_t)len, "%s", units[i].suffix);
        return;
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
}
