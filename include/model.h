/* model.h: the probabilistic ensemble dynamics model of MBPO (docs/algorithm.md §7) and its
 * training procedure (§8), CPU backend (the reference for the CUDA kernels).
 *
 * Model. E members (7), each an MLP in = obs + act -> H x layers (swish) -> 2 D (linear), D = obs + 1.
 * Output columns [0, D) are the mean of [reward, Δobs]; columns [D, 2D) are the raw log-variance z,
 * soft-clamped by learned bounds max_lv, min_lv [D] shared by all members (init +0.5 and -10):
 *     lv = max_lv - softplus(max_lv - z);   lv = min_lv + softplus(lv - min_lv).
 * Inputs are normalised, x̂ = (x - mean) / std, with the mean and population std (ddof 0) of the
 * training split of the last fit (std < 1e-12 -> 1); targets are raw: [r, s' - s].
 *
 * Loss of a batch of B rows per member (x̂ [E][B][in], y [E][B][D]):
 *     L = Σ_m [ mean_{b,d} (μ - y)² exp(-lv) + mean_{b,d} lv ]
 *       + Σ_l wd_l · ½ Σ W_l²  (weights only, all members)  + coef · (Σ max_lv - Σ min_lv).
 * One TF1-form Adam (nn.h) covers all weights, biases, max_lv and min_lv; its state persists.
 *
 * Parameter buffer (params, nparams floats): the ensemble MLP's parameters (nn.h layout: per layer
 * weights [E][in][out] then biases [E][out]), then max_lv [D], then min_lv [D]. grads, the Adam
 * moments and the snapshot buffer share that layout.
 *
 * Random draws (key = (seed, stream), all pure functions of the fit index, nothing carried):
 *   init      RNG_INIT,          c0 = MODEL_NET_ID, c1 = layer (nn_init_truncnormal)
 *   holdout   RNG_MODEL_SPLIT,   c0 = fit index, c1 = 0: the permutation of the N rows sorts the
 *             rows by the 32-bit key u32(n = row), ties by row (see model_permutation)
 *   bootstrap RNG_MODEL_BOOT,    c0 = fit index, c1 = member: index n = rng_index(n, N_train)
 *   shuffles  RNG_MODEL_SHUFFLE, c0 = fit index, c1 = epoch * E + member (epoch 0-based, the
 *             shuffle after that epoch): the member's index array is reordered by sorting its
 *             positions by key u32(n = position), ties by position — the official shuffle_rows
 *             (argsort of uniform keys), which a GPU does as one radix sort. */
#ifndef MBPO_MODEL_H
#define MBPO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <math.h>

#include "config.h"
#include "hd.h"
#include "nn.h"
#include "rng.h"

/** softplus(x) = log(1 + e^x) without overflow (host and device). */
MBPO_HD static float model_softplus(float x) {
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/** The soft clamp of a raw log-variance z between the learned bounds (host and device):
 *  lv = hi - softplus(hi - z), then lo + softplus(lv - lo). */
MBPO_HD static float model_soft_clamp(float z, float hi, float lo) {
  float lv = hi - model_softplus(hi - z);
  return lo + model_softplus(lv - lo);
}

/** Largest ensemble (the config's bound on model.ensemble). */
#define MODEL_MAX_ENSEMBLE 64

/** Network id of the dynamics model in the RNG_INIT stream (c0). */
#define MODEL_NET_ID 7u

/** Default rows per chunk of model_predict / model_holdout_mse. */
#define MODEL_PREDICT_CHUNK 1024

/** Settings of the model and of its training procedure. */
typedef struct model_params {
  int ensemble;             /* members E (7) */
  int elites;               /* elites kept after each fit (5) */
  int hidden;               /* hidden width H (200) */
  int layers;               /* hidden layers (4) */
  int batch;                /* minibatch rows per member (256) */
  float lr;                 /* Adam learning rate (1e-3) */
  int n_weight_decay;       /* must be layers + 1 */
  float weight_decay[NN_MAX_LAYERS]; /* per linear layer, weights only */
  float logvar_coef;        /* coefficient of Σ max_lv - Σ min_lv (0.01) */
  double holdout_ratio;     /* num_holdout = min(int(ratio * N), max_holdout) */
  int max_holdout;          /* 5000 */
  int patience;             /* stop when epochs without improvement > patience (5) */
  double improvement;       /* relative improvement that counts (0.01) */
  int max_epochs;           /* cap on epochs per fit; 0 = none (official) */
  int predict_chunk;        /* rows per chunk of prediction; 0 = MODEL_PREDICT_CHUNK */
} model_params;

/** The model settings of a resolved config (weight decays copied from model.weight_decay). */
model_params model_params_from_config(const mbpo_config* c);

/** Statistics of one fit (model_train). */
typedef struct model_fit_stats {
  int status;               /* 0, or model_train's error code */
  int n_train, n_holdout;   /* split sizes (n_holdout 0: scored on the training rows) */
  int epochs;               /* epochs run */
  long steps;               /* Adam steps taken in this fit */
  double train_loss;        /* mean of the loss L over the last epoch's steps */
  double holdout_mse[MODEL_MAX_ENSEMBLE]; /* per member, after restoring the snapshots */
  double best_mse[MODEL_MAX_ENSEMBLE];    /* per member, the score its snapshot was taken at */
  int best_epoch[MODEL_MAX_ENSEMBLE];     /* per member, the epoch of its snapshot (-1: none) */
  int elites[MODEL_MAX_ENSEMBLE];         /* the n_elites members with the lowest holdout MSE */
  int n_elites;
  double elite_mse;         /* mean holdout MSE of the elites */
  double seconds;           /* wall time of the fit */
} model_fit_stats;

/** The dynamics model: parameters, optimiser, normaliser, elites, and workspaces. Fields are
 *  public for checkpoints and tests; change them only through the functions below (or restore
 *  them all from a checkpoint). A model's functions use its workspaces: call them from one thread
 *  at a time (each parallelises internally with OpenMP and the BLAS). */
typedef struct dyn_model {
  model_params p;
  int obs_dim, act_dim;
  int in_dim;               /* obs + act */
  int D;                    /* obs + 1: [reward, Δobs]; the network has 2 D outputs */
  rng_key key;              /* the run's key; its seed is used with the model's streams */
  nn_mlp net;               /* E members, in -> H x layers -> 2 D */
  size_t nparams;           /* net.nparams + 2 D */
  float* params;            /* [nparams] (layout above) */
  float* max_lv;            /* = params + net.nparams, [D] */
  float* min_lv;            /* = max_lv + D, [D] */
  float* grads;             /* [nparams] */
  nn_adam* adam;            /* over all nparams */
  float* norm_mean;         /* [in] */
  float* norm_std;          /* [in] */
  int elites[MODEL_MAX_ENSEMBLE]; /* first p.elites entries: the elite members, best first */

  /* workspaces, sized at creation */
  nn_cache* tcache;         /* training forward/backward, p.batch rows */
  float *xb, *yb;           /* a minibatch: [E][batch][in], [E][batch][D] */
  float *out, *dout;        /* network output and its gradient, [E][batch][2 D] */
  float* gbnd;              /* per-row bound gradients [E][batch][2 D] (dmax_lv, dmin_lv) */
  double* rowsum;           /* per-row partial sums [max(E batch, chunk)] */
  float* snap;              /* per-member snapshots of weights and biases [net.nparams] */
  int chunk;                /* rows per prediction chunk */
  nn_cache* pcache;         /* prediction forward, chunk rows */
  float *px, *py;           /* [chunk][in], [E][chunk][2 D] */
  float* pt;                /* [chunk][D] targets (model_holdout_mse) */

  /* fit workspaces, grown at the start of a fit when N exceeds cap_rows */
  int cap_rows;
  float *X, *Y;             /* the fit's rows in permuted order: [N][in] raw inputs, [N][D] targets */
  int* perm;                /* [N]: the last fit's permutation; rows perm[0..n_holdout) were held out */
  int* boot;                /* [E][N_train]: bootstrap indices into the training rows */
  int* itmp;                /* [N] */
  uint64_t *sk, *sk2;       /* [N] sort keys */
} dyn_model;

/** Create a model for obs_dim + act_dim inputs: truncated-normal weights (RNG_INIT, c0 =
 *  MODEL_NET_ID), zero biases, bounds +0.5 / -10, identity normaliser, Adam at t = 0, elites
 *  0..elites-1. Bad settings (n_weight_decay != layers + 1, elites > ensemble, ...) are fatal with
 *  a message. */
dyn_model* model_create(int obs_dim, int act_dim, const model_params* p, rng_key key);

/** Free a model (NULL is allowed). */
void model_free(dyn_model* m);

/** Error codes of model_train. */
enum model_status { MODEL_OK = 0, MODEL_NO_DATA = -1, MODEL_NONFINITE = -2 };

/** Fit the model on N real transitions (obs [N][obs], act [N][act], rew [N], next_obs [N][obs];
 *  targets [r, s' - s]) by the official procedure (docs/algorithm.md §8): holdout split,
 *  normaliser re-fit on the training split, per-member bootstrap, epochs of ceil(N_train / batch)
 *  batched Adam steps with a per-member shuffle after each, per-member early stopping and
 *  snapshots, restore, elites.
 *  fit_index numbers the fits of a run (the c0 of every draw; the caller counts them and a
 *  checkpoint keeps the count). With no holdout rows (int(ratio N) = 0) the early stopping and the
 *  elite choice score the training rows instead. Fills st (may be NULL). Returns MODEL_OK,
 *  MODEL_NO_DATA (N < 1: nothing done) or MODEL_NONFINITE (a training loss was NaN/Inf: stopped
 *  after that epoch, snapshots restored). */
int model_train(dyn_model* m, int N, const float* obs, const float* act, const float* rew,
                const float* next_obs, uint32_t fit_index, model_fit_stats* st);

/** Predict for B rows (any B; obs [B][obs], act [B][act]) with every member: mean and log-variance
 *  [E][B][D] in raw target space ([reward, Δobs]: the caller adds the state), log-variance soft-
 *  clamped. Either output may be NULL. Uses the current normaliser; allocates nothing. */
void model_predict(dyn_model* m, const float* obs, const float* act, int B, float* mean,
                   float* logvar);

/** Plain MSE per member (mean over rows and dims of (μ - y)², targets [r, s' - s]) on N rows,
 *  into mse[E] (NaN when N < 1). Allocates nothing. */
void model_holdout_mse(dyn_model* m, int N, const float* obs, const float* act, const float* rew,
                       const float* next_obs, double* mse);

/** The order of E members by MSE (order[0] the best), NaN last, ties by index: how a fit ranks
 *  its members for the elites (shared by both backends). */
void model_rank_members(const double* mse, int E, int* order);

/** The start of a fit of N rows, shared by both backends: st zeroed, then the holdout split,
 *  st->n_holdout = min(int(holdout_ratio N), max_holdout) (Python's int(): truncation) and
 *  st->n_train the rest. Returns MODEL_OK, or MODEL_NO_DATA (also in st->status) when N < 1. */
int model_fit_begin(const model_params* p, int N, model_fit_stats* st);

/** The per-member early stopping of a fit (docs/algorithm.md §8), kept on the host by both
 *  backends: each member's best score so far and the epochs since any member last improved. */
typedef struct model_stopper {
  double best[MODEL_MAX_ENSEMBLE];
  int since;
} model_stopper;

/** Start a fit's early stopping for E members: best scores 1e10, no snapshot in st (best_epoch -1,
 *  best_mse NaN). */
void model_stopper_begin(model_stopper* s, int E, model_fit_stats* st);

/** The decision after epoch `epoch` (st->epochs already counts it) from the members' scores
 *  mse[E]: a member whose score improves on its best by more than p->improvement (relative) gets
 *  snap[e] = 1, its score and epoch recorded in st (the caller snapshots its weights); the others
 *  snap[e] = 0. Returns 1 when the fit stops (more than p->patience epochs without a snapshot, or
 *  p->max_epochs reached), else 0. Shared by both backends, so they stop alike. */
int model_stopper_epoch(model_stopper* s, const model_params* p, int epoch, const double* mse,
                        model_fit_stats* st, int* snap);

/** The end of a fit, from st->holdout_mse (after the snapshots are restored): the members ranked
 *  (model_rank_members) into st->elites and elites[E] (the model's list), st->n_elites and
 *  st->elite_mse (the mean holdout MSE of the first p->elites). Shared by both backends. */
void model_choose_elites(const model_params* p, model_fit_stats* st, int* elites);

/** The elite members (best first); *n gets their count. */
const int* model_elites(const dyn_model* m, int* n);

/** Re-fit the normaliser on N rows of inputs [obs, act] (mean, population std, std < 1e-12 -> 1).
 *  model_train does this with its training split. */
void model_fit_normalizer(dyn_model* m, int N, const float* obs, const float* act);

/** The same from n rows of already concatenated inputs X [n][in] (model_train's training split). */
void model_fit_normalizer_rows(dyn_model* m, int n, const float* X);

/** Fills rows r0..r0+n-1 of a scoring set, normalised, into m->px and returns their targets
 *  [n][D] (model_mse_rows). */
typedef const float* (*model_fill_fn)(dyn_model* m, int r0, int n, const void* ctx);

/** Each member's plain MSE over N rows, chunk by chunk through fill, into mse[E]. The sums do not
 *  depend on the thread count. */
void model_mse_rows(dyn_model* m, int N, model_fill_fn fill, const void* ctx, double* mse);

/** Normalise N input rows: xn[i] = ([obs_i, act_i] - mean) / std, xn [N][in]. */
void model_normalize(const dyn_model* m, int N, const float* obs, const float* act, float* xn);

/** The loss L of one batch, B <= p.batch rows per member: x [E][B][in] normalised inputs,
 *  y [E][B][D] targets. When grads is not NULL it is overwritten with dL/dparams (all nparams:
 *  weights, biases, max_lv, min_lv). */
double model_loss(dyn_model* m, int B, const float* x, const float* y, float* grads);

/** One Adam step of L on a batch (as model_loss); returns the loss before the step. */
double model_step(dyn_model* m, int B, const float* x, const float* y);

/** A permutation of n items: out[j] = in[order[j]] (in NULL: the identity), where order sorts the
 *  positions 0..n-1 by the key rng_u32(key, c0, c1, position), ties by position. sk and sk2 are
 *  workspaces of n entries. Used for the holdout split and the per-epoch shuffles. */
void model_permutation(rng_key key, uint32_t c0, uint32_t c1, int n, const int* in, int* out,
                       uint64_t* sk, uint64_t* sk2);

/** One named float tensor of the model's state (for checkpoints). */
typedef struct model_tensor {
  char name[32];
  float* data;
  int ndim;
  long shape[3];
} model_tensor;

/** Largest number of tensors model_tensors lists. */
#define MODEL_MAX_TENSORS (2 * NN_MAX_LAYERS + 6)

/** List the model's float state: W<l> [E][in][out], b<l> [E][out] per layer, max_logvar [D],
 *  min_logvar [D], norm_mean [in], norm_std [in], adam_m [nparams], adam_v [nparams]. Returns the
 *  count. Integer state lives in fields: adam->t and elites[0..p.elites). */
int model_tensors(dyn_model* m, model_tensor* out);

#endif
