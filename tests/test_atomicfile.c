/* test_atomicfile.c - every output goes through sp_atomic_open/commit: a
 * regular file is replaced whole, but a device node, a FIFO or a symlink at
 * the path must survive (renaming over /dev/null as root once left CI's
 * machine without one), and nothing planted beside the path is followed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shardpipe/atomicfile.h"
#include "testutil.h"

static void write_text(const char *path, const char *text)
{
    sp_atomic_file a;
    sp_error err = {{0}};
    cr_assert_eq(sp_atomic_open(&a, path, "the test file", &err), 0, "%s", err.msg);
    fputs(text, a.f);
    cr_assert_eq(sp_atomic_commit(&a, true, &err), 0, "%s", err.msg);
}

static char *slurp(const char *path)
{
    size_t n;
    char *s = sp_test_read_file(path, &n);
    cr_assert(s, "%s unreadable", path);
    return s;
}

Test(atomicfile, regular_file_replaced_whole_no_temporary_left)
{
    const char *p = sp_test_tmpfile("plain.txt");
    write_text(p, "first");
    write_text(p, "second");
    cr_assert_str_eq(slurp(p), "second");
    cr_assert(!sp_test_tmp_left(p));
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    cr_assert_eq(st.st_mode & 0777, 0666 & ~mask, "new files get 0666 less the umask, not mkstemp's 0600");
}

Test(atomicfile, character_device_is_written_in_place)
{
    if (geteuid() != 0) {
        cr_skip_test("SKIP atomicfile device node: mknod needs root (CI runs as root)");
        return;
    }
    const char *p = sp_test_tmpfile("null-dev");
    cr_assert_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
    write_text(p, "into the void");
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISCHR(st.st_mode), "the device node was replaced by a file");
    cr_assert(!sp_test_tmp_left(p));
}

static void *read_fifo(void *arg)
{
    static char got[64];
    int fd = open(arg, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    if (fd >= 0) close(fd);
    return got;
}

Test(atomicfile, fifo_is_written_in_place, .timeout = 20)
{
    const char *p = sp_test_tmpfile("pipe");
    cr_assert_eq(mkfifo(p, 0600), 0, "mkfifo: %s", strerror(errno));
    pthread_t t;
    pthread_create(&t, NULL, read_fifo, (void *)p);
    write_text(p, "through the pipe");
    void *got;
    pthread_join(t, &got);
    cr_assert_str_eq(got, "through the pipe");
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the FIFO was replaced by a file");
}

Test(atomicfile, symlink_at_path_stays_a_link_and_target_is_replaced)
{
    const char *target = sp_test_tmpfile("target.txt");
    const char *link = sp_test_tmpfile("link.txt");
    write_text(target, "old");
    cr_assert_eq(symlink(target, link), 0);
    write_text(link, "new");
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink was replaced by a file");
    cr_assert_str_eq(slurp(target), "new");
}

Test(atomicfile, symlink_planted_at_old_temporary_name_is_not_followed)
{
    const char *victim = sp_test_tmpfile("victim.txt");
    const char *p = sp_test_tmpfile("out.txt");
    char planted[600];
    snprintf(planted, sizeof planted, "%s.tmp", p);
    write_text(victim, "keep me");
    cr_assert_eq(symlink(victim, planted), 0);
    write_text(p, "output");
    cr_assert_str_eq(slurp(victim), "keep me");
    cr_assert_str_eq(slurp(p), "output");
}

Test(atomicfile, abandoned_write_leaves_old_file_and_no_temporary)
{
    const char *p = sp_test_tmpfile("keep.txt");
    write_text(p, "finished work");
    sp_atomic_file a;
    sp_error err = {{0}};
    cr_assert_eq(sp_atomic_open(&a, p, "the test file", &err), 0);
    fputs("half", a.f);
    cr_assert_eq(sp_atomic_commit(&a, false, &err), -1);
    cr_assert_str_eq(slurp(p), "finished work");
    cr_assert(!sp_test_tmp_left(p));
}

Test(atomicfile, folder_is_refused_by_name)
{
    sp_atomic_file a;
    sp_error err = {{0}};
    const char *d = sp_test_tmpdir();
    cr_assert_eq(sp_atomic_open(&a, d, "the plan", &err), -1);
    cr_assert(strstr(err.msg, "is a folder"), "%s", err.msg);
}
