/* vexp.h: the H-step model value expansion target (Feinberg et al. 2018), the §6.2 ablation that
 * uses the model inside the critics' target instead of for data (docs/algorithm.md §13), on the
 * CPU backend.
 *
 * For a real transition (s0, a0, r0, s1, d0), the soft Bellman target expanded H steps through the
 * model is
 *   y = rs r0 + sum_{h=1..H} gamma^h C_h (rs r_h - alpha log pi(a_h|s_h))
 *             + gamma^{H+1} C_{H+1} (min_j Qt_j(s_{H+1}, a') - alpha log pi(a'|s_{H+1}))
 * with a_h ~ pi(.|s_h), (r_h, s_{h+1}) sampled from one elite member drawn per row, d_h the task's
 * termination rule on s_{h+1}, and C_h = prod_{t<h} (1 - d_t). It is the one-step target that
 * sac_update computes, y = rs r + gamma (1 - d) (min_j Qt_j(s', a') - alpha log pi(a'|s')), on the
 * rewritten row
 *   r' = r0 + sum_h gamma^h C_h (r_h - alpha log pi(a_h|s_h) / rs),  s' = s_{H+1},
 *   d' = 1 - gamma^H C_{H+1}
 * (the discount of the extra H steps is folded into the done column, which the update only uses
 * in the target), so SAC itself is unchanged. H = 0 leaves the row as it is. alpha is the
 * temperature before the update.
 *
 * Draws: key (seed, RNG_VALUE_EXPANSION), c0 = the update index (below 2^32), for expansion step h
 * (1-based) and row b: policy noise c1 = 4 (h - 1), n = b * act + i (sac_sample); elite pick
 * c1 = 4 (h - 1) + 1, n = b; model noise c1 = 4 (h - 1) + 2, n = b * D + d (d = 0 the reward). */
#ifndef MBPO_VEXP_H
#define MBPO_VEXP_H

#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "rollout.h"
#include "sac.h"

/** Workspaces of an expansion of up to Bmax rows, allocated once. */
typedef struct vexp {
  int H, Bmax, obs_dim, act_dim;
  rollout_ctx* r; /* the model's prediction workspaces (member picks, normalised inputs) */
  float *S, *A, *logp, *cont;
} vexp;

/** Workspaces for H-step expansions of up to Bmax rows with model m and the task's termination
 *  rule term_kind. */
vexp* vexp_create(const dyn_model* m, int Bmax, int H, int term_kind);

/** Free (NULL is allowed). */
void vexp_free(vexp* v);

/** Rewrite B <= Bmax real rows (rew [B], next_obs [B][obs], done [B], in place) so that sac_update's
 *  target on them is the H-step expanded target above, with the agent's policy and temperature, the
 *  elites of model m, discount gamma, reward scale rs > 0 and update index u. Returns 0, or -1 when
 *  a prediction for a row still running was not finite. */
int vexp_expand(vexp* v, const dyn_model* m, const sac* agent, int B, float gamma, float rs, rng_key key,
                uint64_t u, float* rew, float* next_obs, float* done);

#endif
