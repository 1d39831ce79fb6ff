/* model_dev.h: the probabilistic ensemble dynamics model on a dx context (dx.h): the CUDA
 * backend's twin of model.h, with the same parameter layout, the same training procedure and the
 * same random draws (model.h documents them), so that a fit on the device reproduces model_train
 * within float tolerance and the state moves between the backends as plain copies.
 *
 * Training (modeld_train) runs on device arrays: the holdout split (one radix sort), the
 * normaliser, the bootstrap, then epochs. Each epoch — its minibatch Adam steps, the loss mean, the
 * per-member shuffles (one sort, the epoch number read from device memory) and the holdout
 * scoring — is one graph, captured once per fit (N changes between fits) and launched once per
 * epoch; the host downloads E + 1 doubles per epoch (the holdout MSEs and the epoch's loss) and
 * makes the early-stopping decision, enqueueing the snapshot copies of the members that improved.
 *
 * All workspaces are allocated by modeld_create for fits of up to max_rows rows; after that only
 * modeld_reserve_predict allocates (outside captures). */
#ifndef MBPO_MODEL_DEV_H
#define MBPO_MODEL_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "dx.h"
#include "dxn.h"
#include "model.h"

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
  dxn_adam* adam;                    /* over all nparams */
  int elites[MODEL_MAX_ENSEMBLE];    /* host: the members by holdout MSE, best first (first p.elites are the elites) */

  /* private: training step (p.batch rows per member) */
  dxn_cache* tcache;
  float *xb, *yb, *out, *dout, *gbnd;  /* [E][batch][in], [E][batch][D], 3 x [E][batch][2 D] */
  double *rowsum, *part;               /* [E batch], [(1 + 2 D) MDK_NB + L nbw] */
  int nbw;                             /* blocks of the weight-decay sums */
  double* terms;                       /* [L + 2] a step's loss terms (modeld_loss_grads) */
  double* loss;                        /* [max steps per epoch][L + 2] per-step loss terms */
  float* snap;                         /* [net.nparams] per-member snapshots */
  double *npart, *nmu;                 /* normaliser sums: [in][MDK_NB], [in] */
  /* private: fit (max_rows rows) */
  long max_rows;
  float *X, *Y;                        /* [max_rows][in], [max_rows][D]: the rows in permuted order */
  int *perm, *boot, *boot2;            /* [max_rows], [E][max_rows] x 2 */
  uint64_t *keys, *keys2;              /* [E max_rows] */
  uint64_t* epoch;                     /* [1] the current epoch of a fit (read by the shuffle) */
  double* stat;                        /* [1 + E]: epoch loss, holdout MSEs */
  double* stat_h;                      /* host (pinned) copy of stat */
  /* private: scoring */
  int schunk;
  dxn_cache* scache;
  float *sx, *sy;                      /* [schunk][in], [E][schunk][2 D] */
  double *srs, *sacc;                  /* [E][schunk], [E] */
  /* private: prediction output, [E][pred_rows][2 D] */
  int pred_rows;
  float* pred_y;
} model_dev;

/** Create the device model of a host model's shape and settings on c, with its state uploaded
 *  (modeld_upload). max_rows: the largest N of a fit (the real pool's capacity; < 2^26). */
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
 *  dxn_cache_alloc(c, &d->net, Bmax). Uses an output workspace of cache->Bmax rows: reserve it
 *  with modeld_reserve_predict before capturing (otherwise the first call allocates it). */
void modeld_predict(model_dev* d, const float* xn, int B, float* mean, float* logvar, dxn_cache* cache);

/** Size modeld_predict's output workspace for chunks of up to rows rows (allocates; not inside a
 *  capture). */
void modeld_reserve_predict(model_dev* d, int rows);

/** One minibatch's loss and gradient on the device (model_loss): x [E][B][in] normalised inputs,
 *  y [E][B][D] targets (device), B <= p.batch; the loss goes to *loss (device double), the gradient
 *  to d->grads. Capturable. */
void modeld_loss_grads(model_dev* d, int B, const float* x, const float* y, double* loss);

/** modeld_loss_grads then one Adam step (model_step). Capturable. */
void modeld_step(model_dev* d, int B, const float* x, const float* y, double* loss);

/* Internal (model_dev_train.c): the step with the loss left as its L + 2 terms (mdk_loss_total),
 * added up later, which saves the step one kernel. */
void modeld_step_terms_(model_dev* d, int B, const float* x, const float* y, double* terms);

/** The holdout split's permutation of model_permutation(key, c0, 0, n, NULL, ...) into perm
 *  (device [n], n <= max_rows), by one stable radix sort of (u32 key << 32 | position). */
void modeld_permutation(model_dev* d, rng_key key, uint32_t c0, int n, int* perm);

#endif
