/* ranks.h: the processes of `mpirun -n N mbpo train ...` (Open MPI). Each rank trains its slice of
 * the sweep on its local GPU; rank 0 writes the combined summary once all ranks are done. Without
 * mpirun (or in a build without MPI) there is one rank, 0 of 1. */
#ifndef MBPO_RANKS_H
#define MBPO_RANKS_H

/** Join the MPI job when the process was started by mpirun (MPI_Init); otherwise one rank. In a build
 *  without MPI, being started as one of several ranks is a fatal error that says how to build with
 *  MPI (rather than N ranks each training the whole sweep). */
void ranks_init(void);

/** This process's rank (0 .. size-1). */
int ranks_rank(void);

/** The number of ranks. */
int ranks_size(void);

/** This process's rank among the ranks on its machine (picks its GPU). */
int ranks_local(void);

/** The largest v over all ranks; every rank waits here for all of them. */
int ranks_max(int v);

/** Leave the MPI job (MPI_Finalize); a no-op with one rank. */
void ranks_finalize(void);

/** 1 when this binary was built with MPI. */
int ranks_built(void);

#endif
