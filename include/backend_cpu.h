/* backend_cpu.h: the CPU reference backend of the loop (host/cpu/backend_cpu.c). */
#ifndef MBPO_BACKEND_CPU_H
#define MBPO_BACKEND_CPU_H

#include "mbpo_backend.h"

/** Open the CPU backend over the P runs: each run's phases on its own host components (sac.h,
 *  model.h, pool.h, rollout.h), the runs of a phase spread over the threads of w. */
mbpo_backend* backend_cpu_open(struct mbpo_state* const* runs, int P, struct workers* w);

#endif
