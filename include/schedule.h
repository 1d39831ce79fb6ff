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

/** Whether a run fits the model: it draws model rows (sac.real_ratio < 1) or expands its critics'
 *  target with the model (sac.value_expansion > 0). The §6.2 no-model ablation fits none. */
int mbpo_fits_model(const mbpo_config* c);

/** Whether a run makes branched rollouts into a model pool (sac.real_ratio < 1). */
int mbpo_rolls_out(const mbpo_config* c);

/** The most bytes a run's model pool holds at once over the run (od observations, ad actions):
 *  a capacity change (pool_resize) holds the old pool and the new one together; the rows per epoch
 *  follow the rollout schedule. *rows and *at_k get the capacity and k at that peak. 0 for a run
 *  that makes no rollout. */
double mbpo_model_pool_peak_bytes(const mbpo_config* c, int od, int ad, long* rows, int* at_k);

#endif
