/* rollout_dev.h: branched model rollouts on a dx context (dx.h), the CUDA backend's twin of
 * rollout.h: the same procedure and the same random draws (rollout.h lists them), entirely on the
 * device, for up to Bmax (100,000 in the official settings) rows.
 *
 * Per step: the policy's forward (nnd_forward) and a fused op drawing the tanh-Gaussian actions
 * (sac_act's convention), the elite picks and the normalised model inputs; the model evaluated for
 * ALL E members with one strided-batched forward over the shared input (in chunks of rows, to bound
 * the workspaces) and a fused op taking each row's picked member, sampling [reward, Δobs], the next
 * state and the task's termination rule; the rows appended to the model pool at its device-side
 * next (pool_add's FIFO); statistics summed on the device; the rows still running compacted
 * stably with dx_select_flagged, so row b is the same row as on the CPU.
 *
 * Difference from the CPU backend: rollout_run evaluates only the picked member of each row (rows
 * grouped by member, a 1-member network); here every member is evaluated and one row selected. The
 * picked member's output is the same function, computed by GEMMs of other shapes, so the results
 * agree within float rounding (tests/test_rollout_dev.c states the tolerance), not bit for bit; a
 * predicted state within rounding of a termination threshold could end differently.
 *
 * The live batch size after compaction stays on the device: every op of a step is launched for the
 * first batch size and the indices past the live count do nothing (the GEMMs run over all rows).
 * The host waits once, at the end, for the statistics and the model pool's state.
 *
 * Populations: one rollout covers the runs of a population at once (rolloutd_run_runs, the
 * leading run dimension of docs/cuda.md §7): every op and GEMM spans the runs, and runs with
 * different rollout lengths share it (the runs are ordered by length, and step i covers only those
 * whose length exceeds i). A run's rows are drawn by their index within the run, so its results
 * are the same as its rollout alone. */
#ifndef MBPO_ROLLOUT_DEV_H
#define MBPO_ROLLOUT_DEV_H

#include <stdint.h>

#include "dx.h"
#include "nn.h"
#include "pool_dev.h"
#include "rng.h"
#include "rollout.h"

/** The dynamics model as the rollout reads it: device arrays in model.h's layout, elites on the
 *  host (best first, as model_elites). */
typedef struct rolloutd_model {
  const nn_mlp* net;                 /* E members, obs + act -> ... -> 2 D */
  const float *params, *max_lv, *min_lv, *norm_mean, *norm_std; /* device */
  const int* elites;                 /* host, n_elites entries */
  int n_elites;
} rolloutd_model;

/** One run's part of a rollout over several runs (rolloutd_run_runs): its inputs, and its results
 *  once the call returns. */
typedef struct rolloutd_job {
  rolloutd_model m;          /* its model (device arrays on any context of this device) */
  const float* pi_w;         /* its policy's parameters (device) */
  pool_dev *real, *model_pool;
  int k;                     /* rollout length */
  rng_key key;
  uint32_t fit_index;
  rollout_stats st;          /* out: as rolloutd_run's */
  int rc;                    /* out: 0, or -1 when a prediction was not finite */
} rolloutd_job;

/** Device workspaces of rollouts of up to Bmax rows for each of up to P runs (private). */
typedef struct rollout_dev rollout_dev;

/** Rows of one model forward per run by default on a GPU (the model's workspaces hold P x E x this
 *  many rows): 7 members x 200 wide x 4,096 rows x 4 bytes = 23 MB per activation buffer, so that
 *  a layer's input and output stay in an H100's 50 MB L2 (at 16,384 rows each was 92 MB). */
#define ROLLOUTD_CHUNK 4096

/** The default on the host emulation: the chunk of earlier versions, because OpenBLAS rounds a
 *  row differently for another row count (test_rollout_dev), and the emulation's bits stay. */
#define ROLLOUTD_CHUNK_HOST 16384

/** The chunk rows to use on c: setting (rollout.chunk_rows) when > 0, else ROLLOUTD_CHUNK (GPU)
 *  or ROLLOUTD_CHUNK_HOST (host emulation). */
int rolloutd_chunk_rows(const dx_ctx* c, long setting);

/** Allocate the workspaces of rollouts of up to Bmax rows on c for a model of shape model_net and a
 *  policy of shape pi (1 member, obs -> 2 act), with termination rule term_kind (termination.h).
 *  The model is run in chunks of rolloutd_chunk_rows(c) rows. */
rollout_dev* rolloutd_create(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                             int act_dim, int Bmax, int term_kind);

/** rolloutd_create for up to P runs at once (rolloutd_run_runs), the model run in chunks of
 *  `chunk` rows of every run (tests use small chunks). */
rollout_dev* rolloutd_create_runs(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                                  int act_dim, int P, int Bmax, int term_kind, int chunk);

/** Free the workspaces (NULL is allowed). */
void rolloutd_free(rollout_dev* r);

/** One branched rollout as rollout_run: B rows (at most Bmax) drawn from the real pool (its mirror
 *  size must be current, as after poold_add_host), k steps with model m and the policy pi with
 *  device parameters pi_w, every row appended to model_pool on the device. One host sync at the
 *  end fills st (rows added, steps run, mean reward, done fraction) and refreshes model_pool's
 *  mirror. Returns 0, or -1 when a prediction was not finite (st still filled). Not capturable
 *  (it waits for the statistics); allocates nothing. It is rolloutd_run_runs with one run. */
int rolloutd_run(rollout_dev* r, const rolloutd_model* m, const nn_mlp* pi, const float* pi_w,
                 pool_dev* real, pool_dev* model_pool, int B, int k, rng_key key, uint32_t fit_index,
                 rollout_stats* st);

/** The rollouts of n <= P runs in one: B rows each (at most Bmax), run j with its own model,
 *  policy, pools, length, key and fit index (jobs[j]); models and policies of one shape (the
 *  rollout's). Every op covers all runs; a step covers the runs whose length reaches it. Each run's
 *  rows, draws, pool appends and statistics are those of rolloutd_run for it alone. The models'
 *  and policies' parameters are copied into the rollout's own [P] arrays first (on c; the runs'
 *  contexts must have finished writing them). One host sync at the end fills jobs[j].st and .rc
 *  and refreshes the model pools' mirrors. Not capturable; allocates nothing. */
void rolloutd_run_runs(rollout_dev* r, const nn_mlp* pi, rolloutd_job* jobs, int n, int B);

#endif
