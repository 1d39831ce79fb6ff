/* sac.h: Soft Actor-Critic on the CPU backend, as the official MBPO code (softlearning) runs it
 * (docs/algorithm.md §10). The reference for kernels/sac.cu.
 *
 * Networks (Glorot-uniform weights, zero biases, drawn from (seed, RNG_INIT) with net ids
 * SAC_NET_POLICY and SAC_NET_CRITIC):
 *   policy  obs -> H -> H -> 2 act (ReLU), output [mu | log sigma], log sigma hard-clipped to
 *           [-20, 2]; a = tanh(u), u = mu + sigma * eps; deterministic action tanh(mu);
 *           log pi = sum_i (-eps_i^2 / 2 - log(2 pi) / 2 - log sigma_i) - sum_i 2 (log 2 - u_i - softplus(-2 u_i))
 *   critics twin Q as one 2-member ensemble, input [obs, act] -> H -> H -> 1 (ReLU), each with a
 *           target copy, hard-copied at creation.
 * One update (simultaneous: every loss uses the parameters from before the update):
 *   y     = reward_scale r + gamma (1 - d) (min_j Qt_j(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')
 *   L_Q_j = 0.5 mean_b (Q_j(s, a) - y)^2                       (y constant)
 *   L_pi  = mean_b (alpha log pi(a~|s) - min_j Q_j(s, a~))      (a~ reparameterised, Q fixed)
 *   L_a   = -mean_b (log alpha (log pi(a~|s) + target_entropy)) (log pi constant), alpha = exp(log alpha)
 *   then TF1 Adam (lr, 0.9, 0.999, 1e-8) on the critics (one Adam over the 2-member buffer =
 *   two separate Adams), the policy and log alpha; then Polyak tau on both target critics.
 * min_j splits its gradient equally between exact ties (as TF's reduce_min and torch.min do).
 *
 * Noise convention (the CUDA twin draws the same): update number k (uint64) draws from the key
 * (seed, RNG_SAC_NOISE) with c0 = (uint32)k, c1 = (uint32)(k >> 32); for a batch of B rows,
 *   eps' for a' at s' (row b, action i):   rng_normal(key, c0, c1, b * act + i)
 *   eps  for a~ at s  (row b, action i):   rng_normal(key, c0, c1, B * act + b * act + i).
 * Acting: sac_act draws eps for row b, action i as rng_normal(key, c0, c1, b * act + i). */
#ifndef MBPO_SAC_H
#define MBPO_SAC_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "nn.h"
#include "rng.h"

/** Network ids (c0 of the RNG_INIT draws) of the policy and the twin critics. */
#define SAC_NET_POLICY 100u
#define SAC_NET_CRITIC 101u

/** log sigma clip bounds. */
#define SAC_LOG_STD_MIN (-20.0f)
#define SAC_LOG_STD_MAX 2.0f

/** Settings of a SAC agent (plain numbers; sac_params_default / sac_params_from_config fill it). */
typedef struct sac_params {
  int hidden;           /* hidden width of policy and critics (256) */
  int layers;           /* hidden layers (2) */
  int batch;            /* largest batch sac_update accepts (256); buffers are sized for it */
  int act_chunk;        /* rows per chunk in sac_act (4096) */
  float lr;             /* Adam learning rate of critics, policy and log alpha (3e-4) */
  float gamma;          /* discount (0.99) */
  float tau;            /* Polyak rate of the target critics (5e-3) */
  float target_entropy; /* H-bar of the temperature loss (per task; -act if unknown) */
  float reward_scale;   /* reward scale in the Bellman target (1) */
  float log_alpha_init; /* initial log alpha (0) */
} sac_params;

/** The official settings for an agent with act_dim actions: hidden 256, 2 layers, batch 256,
 *  lr 3e-4, gamma 0.99, tau 5e-3, target entropy -act_dim, reward scale 1, log alpha 0. */
sac_params sac_params_default(int act_dim);

/** The settings of a run (sac.* keys; target entropy from sac.target_entropy). */
sac_params sac_params_from_config(const mbpo_config* c);

/** Statistics of one update, all computed with the pre-update parameters. */
typedef struct sac_stats {
  double q1_loss, q2_loss; /* 0.5 mean (Q_j(s,a) - y)^2 */
  double pi_loss;          /* mean (alpha log pi(a~|s) - min_j Q_j(s,a~)) */
  double alpha;            /* exp(log alpha) used in this update */
  double alpha_loss;       /* -mean log alpha (log pi(a~|s) + target_entropy) */
  double entropy;          /* -mean log pi(a~|s) */
  double q_mean;           /* mean over both critics and the batch of Q_j(s, a) */
} sac_stats;

struct sac_work;

/** A SAC agent. Parameters, gradients and optimiser state are public for checkpoints and tests
 *  (sac_tensors lists them by name); the layouts are those of nn.h. */
typedef struct sac {
  int obs_dim, act_dim;
  sac_params p;
  rng_key noise_key;        /* (seed, RNG_SAC_NOISE) */
  nn_mlp pi;                /* policy: 1 member, obs -> ... -> 2 act */
  nn_mlp q;                 /* critics: 2 members, obs + act -> ... -> 1 */
  float* pi_w;              /* policy parameters [pi.nparams] */
  float* q_w;               /* critic parameters [q.nparams] (both members) */
  float* qt_w;              /* target critic parameters [q.nparams] */
  float* log_alpha;         /* [1] */
  float* pi_g;              /* gradients of the last sac_compute_grads, same layouts */
  float* q_g;
  float* log_alpha_g;       /* [1] */
  nn_adam* pi_adam;         /* Adam states; their t counts the updates */
  nn_adam* q_adam;
  nn_adam* alpha_adam;
  struct sac_work* w;       /* workspaces (private) */
} sac;

/** Create an agent: Glorot-uniform init from (key.seed, RNG_INIT) (key.stream is ignored), targets
 *  copied from the critics, log alpha = p->log_alpha_init, Adam moments zero. Every buffer is
 *  allocated here. Fatal on bad dimensions. */
sac* sac_create(int obs_dim, int act_dim, const sac_params* p, rng_key key);

/** Free an agent (NULL is allowed). */
void sac_free(sac* s);

/** One gradient step on a batch of B <= p.batch rows (row-major: obs and next_obs [B][obs],
 *  act [B][act] in [-1, 1], rew and done [B]), with noise from update number update_index (see the
 *  convention above): sac_compute_grads, then sac_apply_grads. st may be NULL. */
void sac_update(sac* s, const float* obs, const float* act, const float* rew, const float* next_obs,
                const float* done, int B, uint64_t update_index, sac_stats* st);

/** The first half of sac_update: the three losses and their gradients (into pi_g, q_g,
 *  log_alpha_g, overwritten) at the current parameters; nothing is updated. st may be NULL. */
void sac_compute_grads(sac* s, const float* obs, const float* act, const float* rew,
                       const float* next_obs, const float* done, int B, uint64_t update_index,
                       sac_stats* st);

/** The second half of sac_update: Adam steps from pi_g, q_g, log_alpha_g, then Polyak averaging of
 *  the target critics. */
void sac_apply_grads(sac* s);

/** Actions in [-1, 1] for B rows of obs ([B][obs] -> act [B][act]); any B (chunks of p.act_chunk
 *  rows). deterministic: tanh(mu); otherwise tanh(mu + sigma eps) with
 *  eps = rng_normal(key, c0, c1, b * act + i). Uses the agent's acting workspace: one call at a
 *  time per agent. */
void sac_act(const sac* s, const float* obs, int B, int deterministic, rng_key key, uint32_t c0,
             uint32_t c1, float* act);

/** Stochastic actions and their log-probabilities for B rows of obs: act [B][act] as sac_act draws
 *  them (eps = rng_normal(key, c0, c1, b * act + i)) and logp [B] = log pi(a|s) with the tanh
 *  correction, as the update computes it. Uses the agent's acting workspace. */
void sac_sample(const sac* s, const float* obs, int B, rng_key key, uint32_t c0, uint32_t c1, float* act,
                float* logp);

/** sac_act without an agent: the policy pi with parameters pi_w (a snapshot, e.g. for evaluation
 *  in another thread) and a caller's cache (nn_cache_alloc(pi, rows)) whose Bmax sets the chunk;
 *  out is a workspace of cache->Bmax * 2 * act_dim floats. Same draws as sac_act. */
void sac_policy_act(const nn_mlp* pi, const float* pi_w, nn_cache* cache, float* out, const float* obs,
                    int B, int deterministic, rng_key key, uint32_t c0, uint32_t c1, float* act);

/** The policy's pre-tanh Gaussian N(mu, sigma^2) for B rows of obs ([B][obs]): mu and log sigma
 *  ([B][act] each; log sigma clipped to [SAC_LOG_STD_MIN, SAC_LOG_STD_MAX] as acting clips it).
 *  Arguments as sac_policy_act's (a caller's cache and its workspace out). The analyses compare
 *  policies through it: the tanh squashing is a bijection, so the KL of two squashed policies is
 *  the KL of these Gaussians (sac_gaussian_kl). */
void sac_policy_gaussian(const nn_mlp* pi, const float* pi_w, nn_cache* cache, float* out, const float* obs,
                         int B, float* mu, float* log_std);

/** KL(p || q) of two diagonal Gaussians over n dims (means mu_*, log sigmas ls_*), in double:
 *  sum_i [ ls_q - ls_p + (exp(2 ls_p) + (mu_p - mu_q)^2) / (2 exp(2 ls_q)) - 1/2 ]. */
double sac_gaussian_kl(const float* mu_p, const float* ls_p, const float* mu_q, const float* ls_q, int n);

/** A named parameter or optimiser tensor of an agent. */
typedef struct sac_tensor {
  const char* name;
  float* data;
  size_t n;
} sac_tensor;

/** Number of tensors sac_tensors lists. */
#define SAC_NTENSORS 10

/** List the agent's state for checkpoints: "policy", "q", "q_target", "log_alpha" and the Adam
 *  moments "adam_{policy,q,alpha}_{m,v}" (the Adam step counts are s->pi_adam->t etc.; gradients are
 *  not state). Writes SAC_NTENSORS entries to out and returns the count. */
int sac_tensors(sac* s, sac_tensor* out);

#endif
