/* links.h - the link measurement of links.c, shared by `profile --links`
 * and `profile --all` (profall.c). */
#ifndef SHARDPIPE_CLUSTER_LINKS_H
#define SHARDPIPE_CLUSTER_LINKS_H

#include <stdbool.h>

#include "comm.h"
#include "shardpipe/profile.h"

/* Collective: every pair of ranks, one pair at a time; rank 0 gets the
 * latency and bandwidth of each in cl->links (and prints them unless
 * quiet). dim sizes the messages (hidden states of dim floats). */
void sp_links_measure(sp_comm *c, int dim, bool quiet, sp_cluster *cl);

/* Every rank's host name (c->hosts) made a word a cluster file accepts:
 * letters, digits, '.', '-', '_' (others become '-'). */
void sp_links_host_words(sp_comm *c);
/* The lowest rank on rank's host. */
int sp_links_host_first(const sp_comm *c, int rank);
/* Ranks (this one included) whose host name equals rank's. */
int sp_links_sharing(const sp_comm *c, int rank);

/* One board per rank, named after its host; ranks that share a host are
 * HOST-rRANK. Sets n_boards, and each board's name and host. */
void sp_links_name_boards(const sp_comm *c, sp_cluster *cl);

#endif
