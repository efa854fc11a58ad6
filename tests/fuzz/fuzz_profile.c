/* fuzz_profile.c - libFuzzer target: a board profile (YAML) from the input
 * through sp_profile_load. A profile the loader accepts must be written
 * back by sp_profile_write (what `shardpipe profile -o` does) and load again
 * with the same name, cores, RAM and thread entries. */
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "shardpipe/profile.h"

/* sp_profile_write writes a control character of the free text (origin,
 * cpu) as a space, on purpose: compare with that applied. */
static void blank_controls(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("profile.yaml", data, size);
    static sp_profile p, again;
    sp_error err = {{0}};
    if (sp_profile_load(path, &p, &err)) {
        if (strncmp(err.msg, path, strlen(path)) != 0) fz_fail("the error does not name the profile: %s", err.msg);
        return 0;
    }
    if (p.n_perf < 1 || p.n_perf > SP_PROFILE_MAX_THREADS) fz_fail("profile loaded with %d entries", p.n_perf);
    for (int i = 0; i < p.n_perf; i++)
        if (sp_profile_perf(&p, p.perf[i].threads) != &p.perf[i]) fz_fail("entry %d not found by threads", i);

    char out[600];
    snprintf(out, sizeof out, "%s/written.yaml", fz_dir());
    if (sp_profile_write(&p, out, "header\nline two", &err)) fz_fail("sp_profile_write: %s", err.msg);
    if (sp_profile_load(out, &again, &err)) fz_fail("the profile written back does not load: %s", err.msg);
    blank_controls(p.origin);
    blank_controls(p.cpu);
    if (strcmp(p.name, again.name) || strcmp(p.cpu, again.cpu) || strcmp(p.arch, again.arch) ||
        strcmp(p.origin, again.origin) || strcmp(p.date, again.date) || p.cores != again.cores ||
        p.ram_total != again.ram_total || p.ram_available != again.ram_available || p.n_perf != again.n_perf ||
        p.measured != again.measured)
        fz_fail("the profile written back reads differently (name '%s' / '%s', cpu '%s' / '%s', origin '%s' / '%s', "
                "date '%s' / '%s', cores %d / %d, RAM %llu+%llu / %llu+%llu, entries %d / %d)", p.name, again.name,
                p.cpu, again.cpu, p.origin, again.origin, p.date, again.date, p.cores, again.cores,
                (unsigned long long)p.ram_total, (unsigned long long)p.ram_available,
                (unsigned long long)again.ram_total, (unsigned long long)again.ram_available, p.n_perf, again.n_perf);
    for (int i = 0; i < p.n_perf; i++)
        if (p.perf[i].threads != again.perf[i].threads || p.perf[i].sgemm_min_rows != again.perf[i].sgemm_min_rows)
            fz_fail("entry %d written back reads differently", i);
    return 0;
}
