/* mbpo.h: training with MBPO (Algorithm 2 of Janner et al. 2019, as the official code runs it;
 * docs/algorithm.md), one run or a population of runs in one process (host/mbpo.c). */
#ifndef MBPO_MBPO_H
#define MBPO_MBPO_H

#include "config.h"
#include "schedule.h"

/** Train MBPO with the resolved config c, writing the run folder. Returns the process exit status
 *  (0 on success); errors that stop the run are reported with the phase named. */
int mbpo_train(const mbpo_config* c);

/** Train a population of n independent runs cfgs[0..n-1] in one process: each with its own seed
 *  key, run folder, logs and checkpoints, giving exactly what it gives alone; the runs step in
 *  lockstep rounds, their host work spread over a pool of threads and each phase of the backend
 *  covering all of them. The device setting of cfgs[0] picks the backend of all. Returns the
 *  largest exit status of the runs; a run that fails (NaN) stops alone, with its message. */
int mbpo_train_population(const mbpo_config* cfgs, int n);

/** Continue the n run folders paths[0..n-1] together as one population (each from its newest
 *  checkpoint, with its config.ini). Returns the largest exit status. */
int mbpo_resume_population(int n, char* const* paths);

/** Continue the run in the folder run_path from its newest checkpoint (checkpoint.latest) with the
 *  folder's config.ini. Returns the process exit status; bad or missing checkpoints are fatal. */
int mbpo_resume(const char* run_path);

#endif
