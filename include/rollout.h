/* rollout.h: branched model rollouts (docs/algorithm.md §6), CPU backend.
 *
 * From B start states drawn uniformly from the real pool, k steps of: stochastic policy actions, one
 * elite member drawn per row, a Gaussian sample of [reward, Δobs] from that member, the task's
 * termination rule on the predicted next state; every row is appended to the model pool and rows
 * that are done leave the batch (stable compaction, so row numbers stay comparable across backends).
 *
 * Random draws, key (seed, RNG_ROLLOUT), c0 = the model fit index, for rollout step i (0-based) and
 * current row b (after compaction):
 *   start states   c1 = 3:          row index rng_index(n = b, real pool size)
 *   policy noise   c1 = 4 i:        rng_normal(n = b * act + j)          (sac_act's convention)
 *   elite pick     c1 = 4 i + 1:    elites[rng_index(n = b, n_elites)]
 *   model noise    c1 = 4 i + 2:    rng_normal(n = b * D + d), D = obs + 1, d = 0 the reward
 * The official code samples all members and then picks one per row; only the picked member's sample
 * is used, so evaluating and sampling only that member gives the same distribution (and saves the
 * other members' work). */
#ifndef MBPO_ROLLOUT_H
#define MBPO_ROLLOUT_H

#include <stdint.h>

#include "model.h"
#include "pool.h"
#include "rng.h"
#include "sac.h"

/** Workspaces of a rollout of up to Bmax rows, allocated once. */
typedef struct rollout_ctx {
  int obs_dim, act_dim, D, in_dim, Bmax, term_kind;
  float *S, *S2, *A, *X, *XM, *OM, *mean, *lv, *rew, *done;
  uint32_t *idx;
  int *pick, *rows;
  float* member_w;   /* one member's parameters (1-member copy of the ensemble MLP) */
  nn_mlp net1;       /* the 1-member network shape */
  nn_cache* cache;
} rollout_ctx;

/** Statistics of one rollout. */
typedef struct rollout_stats {
  long rows_added;   /* transitions appended to the model pool */
  int steps_run;     /* rollout steps taken (< k when every row finished early) */
  double mean_reward;/* mean predicted reward over the appended rows */
  double done_frac;  /* fraction of appended rows that were terminal */
} rollout_stats;

/** Allocate workspaces for rollouts of up to Bmax rows with model m. */
rollout_ctx* rollout_create(const dyn_model* m, int Bmax, int term_kind);

/** Free workspaces. */
void rollout_free(rollout_ctx* r);

/** The mean and soft-clamped log-variance ([B][D] in r->mean, r->lv) of each row of the
 *  normalised inputs r->X from its picked member r->pick[b] (an elite), evaluating only that
 *  member. One step of rollout_run; public for the benchmark. */
void rollout_predict_picked(rollout_ctx* r, const dyn_model* md, int B);

/** One branched rollout of B rows and k steps from the real pool into the model pool, with the
 *  draws described above. Returns 0, or -1 when a prediction was not finite (st still filled). */
int rollout_run(rollout_ctx* r, dyn_model* m, const sac* agent, const pool* real, pool* model_pool,
                int B, int k, rng_key key, uint32_t fit_index, rollout_stats* st);

#endif
