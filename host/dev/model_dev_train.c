/* model_dev_train.c: model_train's procedure (host/cpu/model_train.c) on a dx context: holdout
 * split, normaliser, bootstrap, then one captured graph per epoch (the minibatch steps, the epoch's
 * mean loss, the per-member shuffles, the holdout scoring) and one host decision per epoch, from
 * E + 1 doubles downloaded, for the early stopping. The random draws are model.h's. */
#include <math.h>
#include <time.h>

#include "log.h"
#include "model_dev.h"
#include "model_k.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Enqueue copies of member e's weights and biases (every layer) from src to dst. */
static void copy_member(model_dev* d, float* dst, const float* src, int e) {
  const nn_mlp* net = &d->net;
  for (int l = 0; l < net->nlayers; l++) {
    const size_t nw = (size_t)net->dims[l] * net->dims[l + 1], nb = (size_t)net->dims[l + 1];
    dx_copy(d->c, dst + net->w_off[l] + e * nw, src + net->w_off[l] + e * nw, nw * sizeof(float));
    dx_copy(d->c, dst + net->b_off[l] + e * nb, src + net->b_off[l] + e * nb, nb * sizeof(float));
  }
}

/* Enqueue the per-member plain MSE of n >= 1 rows (raw inputs Xs [n][in], targets Ys [n][D]) into
 * mse[E] (device): chunks of d->schunk rows normalised and run through every member, per-row sums
 * in double, added in row order (model_mse_rows_). */
static void score(model_dev* d, const float* Xs, const float* Ys, int n, double* mse) {
  dx_ctx* c = d->c;
  const int E = d->p.ensemble, I = d->in_dim, D = d->D;
  for (int r0 = 0; r0 < n; r0 += d->schunk) {
    const int nr = n - r0 < d->schunk ? n - r0 : d->schunk;
    mdk_norm_rows_args na = {Xs + (size_t)r0 * I, d->norm_mean, d->norm_std, d->sx, I};
    DX_RUN(c, mdk_norm_rows, na, (long)nr * I);
    dxn_forward(c, &d->net, d->params, nr, d->sx, 1, d->scache, d->sy);
    mdk_mse_rows_args ra = {d->sy, Ys + (size_t)r0 * D, d->srs, nr, D};
    DX_RUN(c, mdk_mse_rows, ra, (long)E * nr);
    mdk_mse_acc_args aa = {d->srs, d->sacc, mse, nr, r0 == 0, r0 + nr >= n, D, n};
    DX_RUN(c, mdk_mse_acc, aa, E);
  }
}

/* The fit's layout, fixed for its epochs. */
typedef struct fit_plan {
  uint32_t fit;
  int n_tr, nsteps, n_score;
  const float *Xtr, *Ytr, *Xs, *Ys;
} fit_plan;

/* Enqueue one epoch: the minibatch steps over the members' index arrays, the mean loss into
 * stat[0], the shuffles (the epoch number read from d->epoch, then advanced), the holdout MSEs
 * into stat[1..E]. Captured once per fit. */
static void epoch_program(model_dev* d, const fit_plan* f) {
  dx_ctx* c = d->c;
  const int E = d->p.ensemble, B = d->p.batch, n_tr = f->n_tr;
  for (int j = 0; j < f->nsteps; j++) {
    const int r0 = j * B, nb = n_tr - r0 < B ? n_tr - r0 : B;
    mdk_gather_args ga = {f->Xtr, f->Ytr, d->norm_mean, d->norm_std, d->boot, d->xb, d->yb,
                          n_tr, r0, nb, d->in_dim, d->D};
    DX_RUN(c, mdk_gather, ga, (long)E * nb);
    modeld_step_terms_(d, nb, d->xb, d->yb, d->loss + (size_t)j * (d->net.nlayers + 2));
  }
  mdk_mean_args ma = {d->loss, d->stat, f->nsteps, d->net.nlayers};
  DX_RUN(c, mdk_mean, ma, 1);
  const rng_key k_shuf = {d->key.seed, RNG_MODEL_SHUFFLE};
  const long nk = (long)E * n_tr;
  mdk_keys_args ka = {d->keys, NULL, k_shuf, f->fit, d->epoch, E, n_tr};
  DX_RUN(c, mdk_keys, ka, nk);
  dx_sort_pairs(c, d->keys, d->keys2, d->boot, d->boot2, nk);
  dx_copy(c, d->boot, d->boot2, (size_t)nk * sizeof(int));
  score(d, f->Xs, f->Ys, f->n_score, d->stat + 1);
  dxn_ctr_add(c, d->epoch, 1);
}

int modeld_train(model_dev* d, int N, const float* obs, const float* act, const float* rew,
                 const float* next_obs, uint32_t fit, model_fit_stats* st) {
  const double t0 = now_s();
  const model_params* p = &d->p;
  dx_ctx* c = d->c;
  const int E = p->ensemble, I = d->in_dim, D = d->D;
  model_fit_stats S;
  if (model_fit_begin(p, N, &S) != MODEL_OK) {
    if (st) *st = S;
    return S.status;
  }
  if (N > d->max_rows) mbpo_fatal("modeld_train: %d rows, the model was made for %ld", N, d->max_rows);
  if (dx_capturing(c)) mbpo_fatal("modeld_train inside a capture");

  /* 1. split: the permutation by one sort; the first num_holdout rows are held out */
  const int n_ho = S.n_holdout, n_tr = S.n_train;
  modeld_permutation(d, (rng_key){d->key.seed, RNG_MODEL_SPLIT}, fit, N, d->perm);
  mdk_split_rows_args sa = {obs, act, rew, next_obs, d->perm, d->X, d->Y, d->obs_dim, d->act_dim};
  DX_RUN(c, mdk_split_rows, sa, N);
  fit_plan f;
  f.fit = fit;
  f.n_tr = n_tr;
  f.nsteps = (n_tr + p->batch - 1) / p->batch;
  f.Xtr = d->X + (size_t)n_ho * I;
  f.Ytr = d->Y + (size_t)n_ho * D;
  f.Xs = n_ho > 0 ? d->X : f.Xtr;
  f.Ys = n_ho > 0 ? d->Y : f.Ytr;
  f.n_score = n_ho > 0 ? n_ho : n_tr;

  /* 2. the normaliser, from the training split; 3. the bootstrap */
  for (int pass = 0; pass < 2; pass++) {
    mdk_norm_part_args np = {f.Xtr, d->nmu, d->npart, n_tr, I, pass};
    DX_RUN(c, mdk_norm_part, np, (long)I * MDK_NB);
    mdk_norm_fin_args nf = {d->npart, d->nmu, d->norm_mean, d->norm_std, n_tr, pass};
    DX_RUN(c, mdk_norm_fin, nf, I);
  }
  mdk_boot_args ba = {d->boot, {d->key.seed, RNG_MODEL_BOOT}, fit, n_tr};
  DX_RUN(c, mdk_boot, ba, (long)E * n_tr);

  /* 4. epochs: one graph, one download and one decision each */
  dx_zero(c, d->epoch, sizeof(uint64_t));
  dx_capture_begin(c);
  epoch_program(d, &f);
  dx_graph* g = dx_capture_end(c);
  int snap[MODEL_MAX_ENSEMBLE];
  model_stopper stop;
  model_stopper_begin(&stop, E, &S);
  for (int epoch = 0;; epoch++) {
    dx_graph_launch(c, g);
    dx_download(c, d->stat_h, d->stat, (size_t)(1 + E) * sizeof(double));
    dx_sync(c);
    S.steps += f.nsteps;
    S.epochs = epoch + 1;
    S.train_loss = d->stat_h[0];
    if (!isfinite(S.train_loss)) {
      S.status = MODEL_NONFINITE;
      break;
    }
    const int done = model_stopper_epoch(&stop, p, epoch, d->stat_h + 1, &S, snap);
    for (int e = 0; e < E; e++)
      if (snap[e]) copy_member(d, d->snap, d->params, e);
    if (done) break;
  }
  dx_graph_free(c, g);

  /* 5. each member back to its snapshot; 6. holdout MSE and elites */
  for (int e = 0; e < E; e++)
    if (S.best_epoch[e] >= 0) copy_member(d, d->params, d->snap, e);
  score(d, f.Xs, f.Ys, f.n_score, d->stat + 1);
  dx_download(c, d->stat_h, d->stat, (size_t)(1 + E) * sizeof(double));
  dx_sync(c);
  for (int e = 0; e < E; e++) S.holdout_mse[e] = d->stat_h[1 + e];
  model_choose_elites(p, &S, d->elites);
  S.seconds = now_s() - t0;
  if (st) *st = S;
  return S.status;
}
