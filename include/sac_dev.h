/* sac_dev.h: the SAC agent on a dx context (dx.h), the CUDA backend's twin of sac.h.
 *
 * The agent's whole state (parameters, targets, log alpha, the three Adams with their step counts)
 * lives in device memory with exactly sac.h's layouts, so that it moves to and from a host agent
 * (checkpoints, the evaluation's policy snapshot) as plain copies. One update is the same
 * computation as sac_update, expression by expression (host/cpu/sac.c): the networks run through
 * nn_dev.h (strided-batched GEMMs), everything elementwise or row-wise through the fused element ops of
 * kernels/sac_k.h. On a DX_HOST context it reproduces the CPU agent to rounding; that is how it is
 * tested without a GPU (tests/test_sac_dev.c).
 *
 * Capture. sacd_update and sacd_act only enqueue work: no host read, no allocation, no sync. The
 * numbers that change between replays of a captured graph (the update number that keys the noise,
 * the env step that keys the acting noise, the Adam step counts) are read by the kernels from
 * device memory, so the training loop captures G updates (with batch sampling and nnd_ctr_add of
 * the update counter) plus the next action into one graph per env step and replays it.
 *
 * Populations. One device agent may hold P agents (the runs of a population, docs/cuda.md §7):
 * every buffer gets a leading [P] (parameters [P][nparams], rows [P][B][...]), each run keeps its
 * own noise key, hyperparameters (lr, gamma, tau, target entropy, reward scale), Adam step counts
 * and counters, and every op and GEMM of an update covers all P runs in one launch. A run q of a
 * population computes exactly what the same agent alone computes (on a DX_HOST context bit for
 * bit: tests/test_sac_dev.c). P = 1 is the plain agent. */
#ifndef MBPO_SAC_DEV_H
#define MBPO_SAC_DEV_H

#include <stdint.h>

#include "dx.h"
#include "nn_dev.h"
#include "sac.h"

struct sacd_work;

/** A SAC agent on a device. Public fields are device buffers (sac.h layouts); the host never
 *  dereferences them. */
typedef struct sac_dev {
  dx_ctx* c;
  int P;                     /* runs */
  int obs_dim, act_dim;
  sac_params p;              /* run 0's settings (shapes are every run's) */
  rng_key noise_key;         /* run 0's (seed, RNG_SAC_NOISE), as the host agent's */
  nn_mlp pi, q;              /* shapes, as the host agent's */
  float *pi_w, *q_w, *qt_w, *log_alpha; /* device [P][...], sac.h layouts per run */
  float *pi_g, *q_g, *log_alpha_g;      /* device gradients of the last update */
  struct sack_run* runs;     /* device [P]: noise keys and per-run settings */
  float* taus;               /* device [P]: Polyak rates */
  nnd_adam *pi_adam, *q_adam, *alpha_adam;
  int act_rows;              /* largest B of sacd_act */
  struct sacd_work* w;       /* private workspaces, all allocated in sacd_create */
} sac_dev;

/** Create a device agent on c with the host agent's shapes and settings and upload its whole state
 *  (sacd_upload). act_rows is the largest B that sacd_act will be given. Allocates everything the
 *  agent will ever use. */
sac_dev* sacd_create(dx_ctx* c, const sac* host, int act_rows);

/** Create a device agent of P runs on c from P host agents of equal shapes (fatal otherwise) and
 *  upload their states. act_rows is the largest B per run of sacd_act_runs. */
sac_dev* sacd_create_runs(dx_ctx* c, const sac* const* hosts, int P, int act_rows);

/** Free a device agent (NULL is allowed). */
void sacd_free(sac_dev* d);

/** Copy the host agent's state to the device: pi_w, q_w, qt_w, log_alpha and the three Adams' m, v
 *  and step counts t. Shapes must match (fatal otherwise). Returns after the copies have run. */
void sacd_upload(sac_dev* d, const sac* host);

/** Copy the same state back into a host agent of the same shapes (synced: the host agent holds it
 *  on return). For checkpoints and the evaluation's policy snapshot. */
void sacd_download(const sac_dev* d, sac* host);

/** sacd_upload / sacd_download of run q. */
void sacd_upload_run(sac_dev* d, int q, const sac* host);
void sacd_download_run(const sac_dev* d, int q, sac* host);

/** Run q's policy parameters (device). */
float* sacd_pi_params(const sac_dev* d, int q);

/** Number of floats of a device statistics array (sac_stats order: q1_loss, q2_loss, pi_loss,
 *  alpha, alpha_loss, entropy, q_mean). */
#define SACD_NSTATS 7

/** One full update, as sac_update: the three losses' gradients at the pre-update parameters, then
 *  the Adam steps of the critics, the policy and log alpha, then Polyak averaging of the targets.
 *  obs, next_obs [B][obs], act [B][act], rew, done [B] are device buffers, B <= p.batch.
 *  The noise is that of update number *update_index (sac.h's convention: c0 = low 32 bits, c1 =
 *  high 32 bits), read on the device; the counter is not advanced. stats (device, SACD_NSTATS
 *  floats; may be NULL) gets the update's statistics. Capturable. */
void sacd_update(sac_dev* d, const float* obs, const float* act, const float* rew, const float* next_obs,
                 const float* done, int B, const uint64_t* update_index, float* stats);

/** One update of every run q with active[q] != 0 (device [P]; NULL = all): rows [P][B][...], run
 *  q's update number at update_index[q * ctr_stride], stats [P][SACD_NSTATS] (may be NULL). An
 *  inactive run's parameters, targets, log alpha and Adam state stay as they are (its gradients
 *  and statistics are computed and meaningless). Capturable. */
void sacd_update_runs(sac_dev* d, const float* obs, const float* act, const float* rew,
                      const float* next_obs, const float* done, int B, const uint64_t* update_index,
                      long ctr_stride, const int* active, float* stats);

/** sacd_update_runs, then update_index[q * ctr_stride] += 1 for every active run (as
 *  nnd_ctr_add_runs with v = 1), done inside the update's Adam tick once its draws have read the
 *  counter: one op fewer, off the update's critical path. Capturable. */
void sacd_update_runs_advance(sac_dev* d, const float* obs, const float* act, const float* rew,
                              const float* next_obs, const float* done, int B, uint64_t* update_index,
                              long ctr_stride, const int* active, float* stats);

/** Convert a statistics array downloaded from sacd_update into sac_stats. */
void sacd_stats_to_host(const float* stats_host, sac_stats* st);

/** Actions in [-1, 1] for B <= act_rows rows of device obs [B][obs] into device act [B][act]:
 *  sac_act's computation and draws, with c1 = (uint32_t)*c1_ctr read on the device (the acting
 *  counter is the env step; c1_ctr may be NULL when deterministic). deterministic: tanh(mu).
 *  Capturable. */
void sacd_act(sac_dev* d, const float* obs, int B, int deterministic, rng_key key, uint32_t c0,
              const uint64_t* c1_ctr, float* act);

/** sacd_act for every run: obs [P][B][obs] -> act [P][B][act], run q with key keys[q] (device
 *  [P]) and c1 = (uint32_t)c1_ctr[q * ctr_stride]. Capturable. */
void sacd_act_runs(sac_dev* d, const float* obs, int B, int deterministic, const rng_key* keys, uint32_t c0,
                   const uint64_t* c1_ctr, long ctr_stride, float* act);

#endif
