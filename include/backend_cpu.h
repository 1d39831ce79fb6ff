/* backend_cpu.h: the CPU reference backend of the loop (host/cpu/backend_cpu.c). */
#ifndef MBPO_BACKEND_CPU_H
#define MBPO_BACKEND_CPU_H

#include "mbpo_backend.h"

/** Open the CPU backend over the P runs: each run's phases on its own host components (sac.h,
 *  model.h, pool.h, rollout.h), the runs of a phase spread over the threads of w. */
mbpo_backend* backend_cpu_open(struct mbpo_state* const* runs, int P, struct workers* w);

/** Refuse (fatal, naming the sizes and a rollout.batch that would fit) a population of P runs
 *  whose model pools would need more than 80% of this machine's memory at their largest (the
 *  §6.2 ablation's k = 200 or 500 makes pools of k x rollout.batch x epoch_length /
 *  model.train_freq rows); warn above 50%. Called before any run folder is made. */
void backend_cpu_check(const struct mbpo_config* cfgs, int P);

#endif
