/* control.h - the channel between `shardpipe serve`'s supervisor (a
 * process outside MPI that owns the HTTP side, src/supervisor) and rank 0
 * of the MPI job it launches (`serve --worker PATH`, src/cluster/worker.c).
 * One Unix stream socket; one message per line of ASCII words:
 *
 *   supervisor -> rank 0
 *     J id max_new temperature top_k top_p min_p repeat_penalty
 *       repeat_last_n seed n tok_1 .. tok_n   a job: its prompt and the
 *                                            tokens already produced
 *     C id                                   cancel job id
 *   rank 0 -> supervisor
 *     L                                      MPI runs; the shards load
 *     R context slots stages                 loaded: jobs may come
 *     T id token eos                         a token of job id (eos 1:
 *                                            the end token, no text)
 *     D id finish n_cached                   job id ended (SP_CTL_*)
 *     H running waiting returned             alive (every 100 ms), with the
 *                                            micro-batches back so far:
 *                                            progress, prefill included
 *
 * Text keeps it debuggable (socat) and the rate is a few thousand lines a
 * second at most; floats go as %.9g, which reads back to the same bits. */
#ifndef SHARDPIPE_CONTROL_H
#define SHARDPIPE_CONTROL_H

#include <stddef.h>

#include "shardpipe/error.h"
#include "shardpipe/sampler.h"

enum { SP_CTL_EOS = 1, SP_CTL_LENGTH, SP_CTL_CANCELLED, SP_CTL_ABORTED };

typedef struct sp_ctl {
    int fd;
    char *buf;          /* bytes read and not yet taken as lines */
    size_t len, cap, taken;
} sp_ctl;

/* A listening socket at path (an old socket file there is replaced). */
int sp_ctl_listen(const char *path, sp_error *err);
/* Takes a waiting connection (the listener is non-blocking): 1, or 0 when
 * none is waiting. */
int sp_ctl_accept(int listen_fd, sp_ctl *c);
int sp_ctl_connect(sp_ctl *c, const char *path, sp_error *err);
/* One whole line (a newline is added); -1 when the peer has gone. */
int sp_ctl_send(sp_ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sp_ctl_send_job(sp_ctl *c, long id, const int *tokens, int n, int max_new, const sp_sampler_params *p);
/* Parses a J line (malloc'ed tokens); -1 when it is malformed. */
int sp_ctl_parse_job(const char *line, long *id, int **tokens, int *n, int *max_new, sp_sampler_params *p);
/* Waits up to timeout_s for input and reads what is there: 0, or -1 when
 * the peer closed the socket (lines read before still come out). */
int sp_ctl_poll(sp_ctl *c, double timeout_s);
/* The next complete line (without its newline; valid until the next call),
 * or NULL. */
char *sp_ctl_line(sp_ctl *c);
void sp_ctl_close(sp_ctl *c);

#endif
