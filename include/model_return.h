/* model_return.h: the return a policy gets inside its learned model (the paper's §6 check that the
 * policy does not exploit the model), shared by `mbpo analyze exploitation` and the evaluations of
 * a run with eval.model_return = 1.
 *
 * M rollouts start from one real initial state s0 and run the deterministic policy (tanh of the
 * mean) in the model for at most T steps, each step drawing one elite per rollout and a Gaussian
 * sample of [r, Δs] from it (as training's rollouts do, rollout.h); a rollout ends when the task's
 * termination rule (termination.h) holds for its predicted next state, or before a step whose
 * prediction is not finite (that step is not counted). A rollout's return is the sum of its
 * predicted rewards. Draws, for step t and rollout id (0..M-1), with the caller's key and counters:
 *   elite pick   rng_index(key, c_pick, t, n0 + id, n_elites)
 *   model noise  rng_normal(key, c_noise, t, (n0 + id) * D + d), D = obs + 1, d = 0 the reward. */
#ifndef MBPO_MODEL_RETURN_H
#define MBPO_MODEL_RETURN_H

#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "rollout.h"
#include "sac.h"

/** The M rollouts described above of agent's policy in model m (workspace r of at least M rows of
 *  m, whose term_kind is the task's): returns into ret[M], lengths into len[M]. Returns the count
 *  of rollouts ended by a non-finite prediction. Uses the agent's acting workspace. */
long model_return_rollouts(const sac* agent, dyn_model* m, rollout_ctx* r, rng_key key, uint32_t c_pick,
                           uint32_t c_noise, uint64_t n0, const float* s0, int T, int M, double* ret, int* len);

#endif
