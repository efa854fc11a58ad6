/* supervise.h - naming a rank that the kernel or a user killed (kill -9,
 * the out-of-memory killer). hydra kills every other rank at once when one
 * dies, so nothing in the job can report it afterwards. Instead each rank
 * runs as the child of a small supervisor process (forked before MPI_Init):
 * when the rank dies of a signal the supervisor prints which rank, host and
 * stage it was, then dies of the same signal, and hydra's banner follows. */
#ifndef SHARDPIPE_CLUSTER_SUPERVISE_H
#define SHARDPIPE_CLUSTER_SUPERVISE_H

/* Under hydra (PMI_FD set) and unless SHARDPIPE_NO_SUPERVISOR is set: forks;
 * returns in the child, which goes on as the rank; the parent never returns
 * (it exits as the child did). */
void sp_supervise_start(void);

/* What the supervisor will call this rank ("rank 1 (host pi5) (stage 1,
 * layers 3-4)"); each call replaces the last. */
void sp_supervise_name(const char *who);

#endif
