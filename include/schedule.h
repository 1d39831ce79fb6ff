/* schedule.h: the rollout-length schedule and the sizes that follow from it (host/schedule.c;
 * docs/algorithm.md §4-§5). */
#ifndef MBPO_SCHEDULE_H
#define MBPO_SCHEDULE_H

#include "config.h"

/** Rollout length k at epoch e: k_min up to e_min, then linear to k_max at e_max, floored. */
int mbpo_rollout_length(const mbpo_config* c, int epoch);

/** Model-pool capacity for rollout length k:
 *  retain_epochs * floor(k * rollout_batch * epoch_length / train_freq). */
long mbpo_model_pool_capacity(const mbpo_config* c, int k);

/** Number of epochs of a run: ceil(steps / epoch_length) (exploration steps are extra). */
long mbpo_epochs(const mbpo_config* c);

#endif
