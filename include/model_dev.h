/* model_dev.h: the probabilistic ensemble dynamics model on a dx context (dx.h): the CUDA
 * backend's twin of model.h, with the same parameter layout, the same training procedure and the
 * same random draws (model.h documents them), so that a fit on the device reproduces model_train
 * within float tolerance and the state moves between the backends as plain copies.
 *
 * Training runs on device arrays, for one model (modeld_train) or the models of P runs at once
 * (modeld_fit_runs, a population's fits; modeld_train is it with one run): the holdout split (one
 * radix sort), the normaliser, the bootstrap, then epochs. An epoch — the minibatch Adam steps of
 * every run, the loss means, the per-member shuffles (one segmented sort per run) and the holdout
 * scoring — is launches of three graphs that a fitter captures once for its life (a block of K
 * steps, the epoch's tail, a scoring chunk), since every number that changes between launches or
 * fits (step, chunk, epoch, the runs' sizes, seeds and fit indices) is read from device memory;
 * the host downloads P (E + 1) doubles per epoch (the
 * holdout MSEs and the epoch's loss of each run) and makes each run's early-stopping decision,
 * with one op for the snapshots of the members that improved. Runs whose training sets differ in
 * size share each step: a run's minibatch is padded to the batch size with rows of zero gradient
 * (and a run past its last step of the epoch, or stopped, takes no Adam step).
 *
 * All workspaces are allocated by modeld_create / modeld_fitter_create for fits of up to max_rows
 * rows; after that only modeld_reserve_predict allocates (outside captures). */
#ifndef MBPO_MODEL_DEV_H
#define MBPO_MODEL_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "dx.h"
#include "nn_dev.h"
#include "model.h"

/** Workspaces of one loss-and-gradient step over P runs' minibatches of up to Bt rows per member
 *  (internal: model_dev.c allocates them, modeld_step_runs_ uses them). */
typedef struct modeld_ws {
  int P, Bt;
  nnd_cache* cache;                  /* P runs, Bt rows, runs nparams apart */
  float *out, *dout, *gbnd;          /* [P][E][Bt][2 D] */
  double *rowsum, *part;             /* [P][E][Bt], [P][modelk_npart] */
  int nbw;                           /* blocks of the weight-decay sums */
} modeld_ws;

/** The batched fitter of up to P runs' models (model_dev_train.c). */
typedef struct modeld_fitter modeld_fitter;

/** The device model. Public fields are device memory unless marked host; change them only
 *  through the functions below. */
typedef struct model_dev {
  dx_ctx* c;
  model_params p;
  int obs_dim, act_dim, in_dim, D;
  rng_key key;
  nn_mlp net;
  size_t nparams;                    /* net.nparams + 2 D */
  float *params, *max_lv, *min_lv;   /* model.h layout: max_lv = params + net.nparams, min_lv = max_lv + D */
  float *norm_mean, *norm_std;       /* [in] */
  float* grads;                      /* [nparams]: the last step's gradient */
  nnd_adam* adam;                    /* over all nparams */
  int elites[MODEL_MAX_ENSEMBLE];    /* host: the members by holdout MSE, best first (first p.elites are the elites) */

  /* private: the single steps (p.batch rows per member) */
  modeld_ws ws;
  int* bvals;                        /* [p.batch + 1]: bvals[b] = b, a step's row count read by its ops */
  double* terms;                     /* [L + 2] a step's loss terms (modeld_loss_grads) */
  /* private: this model's own fitter (NULL when made with max_rows 0) */
  modeld_fitter* fit;
  /* private: prediction output, [E][pred_rows][2 D] */
  int pred_rows;
  float* pred_y;
} model_dev;

/** Create the device model of a host model's shape and settings on c, with its state uploaded
 *  (modeld_upload). max_rows: the largest N of a fit (the real pool's capacity; < 2^26), or 0 for a
 *  model that is only fitted by a population's fitter (modeld_fit_runs; no modeld_train). */
model_dev* modeld_create(dx_ctx* c, const dyn_model* host, long max_rows);

/** Free a device model (NULL is allowed). */
void modeld_free(model_dev* d);

/** Copy the host model's state to the device: parameters (with the bounds), Adam m, v and t, the
 *  normaliser, the elites (the host and device models must have the same shape). */
void modeld_upload(model_dev* d, const dyn_model* host);

/** Copy the same state back to the host model (synchronised): for checkpoints and tests. */
void modeld_download(model_dev* d, dyn_model* host);

/** model_train on device arrays of N <= max_rows rows (obs [N][obs], act [N][act], rew [N],
 *  next_obs [N][obs]): holdout split, normaliser, bootstrap, epochs with per-member early stopping
 *  and snapshots, restore, elites, with model.h's random draws. Fills st (may be NULL; host
 *  statistics as model_train's). Returns MODEL_OK, MODEL_NO_DATA or MODEL_NONFINITE as
 *  model_train. Not inside a capture. */
int modeld_train(model_dev* d, int N, const float* obs, const float* act, const float* rew,
                 const float* next_obs, uint32_t fit_index, model_fit_stats* st);

/** Normalise B rows on the device: xn [B][in] = ([obs, act] - mean) / std. Capturable. */
void modeld_normalize(model_dev* d, const float* obs, const float* act, int B, float* xn);

/** Every member on B normalised rows xn [B][in] (shared input): mean and soft-clamped log-variance
 *  [E][B][D] (either may be NULL), in chunks of cache->Bmax rows; cache from
 *  nnd_cache_alloc(c, &d->net, Bmax). Uses an output workspace of cache->Bmax rows: reserve it
 *  with modeld_reserve_predict before capturing (otherwise the first call allocates it). */
void modeld_predict(model_dev* d, const float* xn, int B, float* mean, float* logvar, nnd_cache* cache);

/** Size modeld_predict's output workspace for chunks of up to rows rows (allocates; not inside a
 *  capture). */
void modeld_reserve_predict(model_dev* d, int rows);

/** One minibatch's loss and gradient on the device (model_loss): x [E][B][in] normalised inputs,
 *  y [E][B][D] targets (device), B <= p.batch; the loss goes to *loss (device double), the gradient
 *  to d->grads. Capturable. */
void modeld_loss_grads(model_dev* d, int B, const float* x, const float* y, double* loss);

/** modeld_loss_grads then one Adam step (model_step). Capturable. */
void modeld_step(model_dev* d, int B, const float* x, const float* y, double* loss);

/** The holdout split's permutation of model_permutation(key, c0, 0, n, NULL, ...) into perm
 *  (device [n], n <= max_rows), by one stable radix sort of (u32 key << 32 | position). Needs the
 *  model's own fitter (max_rows > 0). */
void modeld_permutation(model_dev* d, rng_key key, uint32_t c0, int n, int* perm);

/* ---- batched fits ---- */

/** One run's fit in a batched fit. */
typedef struct modeld_fit_job {
  model_dev* m;        /* the run's model: its state is copied in, fitted and copied back */
  int N;               /* rows (N <= the fitter's max_rows) */
  const float *obs, *act, *rew, *next_obs; /* device [N][...], on any context of this device, ready */
  uint32_t fit_index;
  model_fit_stats st;  /* out: as modeld_train's */
  int rc;              /* out: MODEL_OK, MODEL_NO_DATA or MODEL_NONFINITE */
} modeld_fit_job;

/** A fitter on c for up to P runs' models of shape's shape and batch settings (ensemble, batch,
 *  weight decays: a fit's models must agree on them) of up to max_rows rows each. */
modeld_fitter* modeld_fitter_create(dx_ctx* c, const dyn_model* shape, int P, long max_rows);

/** Free a fitter (NULL is allowed). */
void modeld_fitter_free(modeld_fitter* f);

/** The rows per run a fitter was made for (max_rows). */
long modeld_fitter_rows(const modeld_fitter* f);

/** Minibatch steps per launch of the fitter's block graph, 1 to 4 (and at most the steps of
 *  max_rows rows; the default is that bound). Steps past a run's last are no-ops for it, so the
 *  results do not depend on K; tests and benchmarks set it. Not inside a capture. */
void modeld_fitter_set_block(modeld_fitter* f, int K);

/** modeld_train for n <= P runs at once: every epoch's minibatch steps, shuffles and holdout
 *  scoring of all the runs are launches of the fitter's graphs, each run with its own rows, split, normaliser,
 *  bootstrap, draws, early stopping and snapshots; a run that stops (or whose loss turns NaN) takes
 *  no more Adam steps while the others go on. A run's results are those of modeld_train for it
 *  alone (bit for bit on the host emulation). The models' contexts must be idle; their state is
 *  final when this returns. Not inside a capture. */
void modeld_fit_runs(modeld_fitter* f, modeld_fit_job* jobs, int n);

/* ---- the step shared by one model (model_dev.c) and the batched fitter (model_dev_train.c) ---- */

struct modelk_frun; /* kernels/model_k.h */

/** Copy the host model's shape and settings (sizes, elites, logvar bounds' shape) into d. */
void modeld_set_shape(model_dev* d, const dyn_model* h);

/** Workspace of P runs' minibatch steps of up to Bt rows per member for models shaped like shape. */
void modeld_ws_alloc(dx_ctx* c, const model_dev* shape, int P, int Bt, modeld_ws* w);

/** Free a workspace from modeld_ws_alloc. */
void modeld_ws_free(dx_ctx* c, modeld_ws* w);

/** One minibatch step of P runs: the loss terms of run q into terms[q][L + 2] (modelk_finish), the
 *  gradients into grads [P][nparams], then (when adam is not NULL) Adam over the runs with
 *  act[q] != 0. nb: device [P] rows per member of each run in x [P][E][Bt][in], y [P][E][Bt][D]
 *  (the rest padding); runs: the fit's table (each run's logvar_coef), or NULL for shape's.
 *  Capturable. */
void modeld_step_runs(dx_ctx* c, const model_dev* shape, modeld_ws* w, int P, int Bt, const int* nb,
                      const struct modelk_frun* runs, float* params, float* grads, nnd_adam* adam,
                      const int* act, const float* x, const float* y, double* terms);

/** Allocate d's own buffers on c for the host model's shape (modeld_create, model_dev_train.c,
 *  adds the fitter and the upload). */
void modeld_init(model_dev* d, dx_ctx* c, const dyn_model* h);

/** Free what modeld_init allocated (after a sync of d's context). */
void modeld_release(model_dev* d);

/** For tests: after a fit, run q's shuffled member lists (device [E][n_train]). */
const int* modeld_fit_boot(const modeld_fitter* f, int q);

/** For tests: the holdout permutation of the fit's last run (device [N]). */
const int* modeld_fit_perm(const modeld_fitter* f);

#endif
