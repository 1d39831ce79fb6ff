/* model_dev.c: the device dynamics model (model_dev.h): creation, state transfer, the minibatch
 * loss, gradient and Adam step, normalising and prediction. The fit is in model_dev_train.c.
 * The order of operations follows host/cpu/model.c. */
#include "model_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_k.h"

DX_OP(modelk_keys, modelk_keys_args)
DX_OP(modelk_split_rows, modelk_split_rows_args)
DX_OP(modelk_norm_part, modelk_norm_part_args)
DX_OP(modelk_norm_fin, modelk_norm_fin_args)
DX_OP(modelk_boot, modelk_boot_args)
DX_OP(modelk_normalize, modelk_normalize_args)
DX_OP(modelk_norm_rows, modelk_norm_rows_args)
DX_OP(modelk_gather, modelk_gather_args)
DX_OP(modelk_nll, modelk_nll_args)
DX_OP(modelk_partials, modelk_partials_args)
DX_OP(modelk_finish, modelk_finish_args)
DX_OP(modelk_wd, modelk_wd_args)
DX_OP(modelk_mean, modelk_mean_args)
DX_OP(modelk_mse_rows, modelk_mse_rows_args)
DX_OP(modelk_mse_acc, modelk_mse_acc_args)
DX_OP(modelk_split_out, modelk_split_out_args)
DX_OP(modelk_loss_acc, modelk_loss_acc_args)
DX_OP(modelk_epoch_loss, modelk_epoch_loss_args)
DX_OP(modelk_copy_lists, modelk_copy_lists_args)
DX_OP(modelk_snap, modelk_snap_args)

void modeld_ws_alloc(dx_ctx* c, const model_dev* d, int P, int Bt, modeld_ws* w) {
  const int E = d->p.ensemble, D = d->D, L = d->net.nlayers;
  memset(w, 0, sizeof *w);
  w->P = P;
  w->Bt = Bt;
  w->cache = nnd_cache_alloc_runs(c, &d->net, P, Bt);
  w->cache->ps = (long)d->nparams;
  w->cache->dw_lane = 1; /* the backward's weight GEMMs beside its input-gradient chain (nn_dev.h) */
  const size_t EB = (size_t)P * E * Bt;
  w->out = dx_allocf(c, EB * 2 * D);
  w->dout = dx_allocf(c, EB * 2 * D);
  w->gbnd = dx_allocf(c, EB * 2 * D);
  w->rowsum = dx_alloc(c, EB * sizeof(double));
  long wmax = 1;
  for (int l = 0; l < L; l++) {
    long n = (long)E * d->net.dims[l] * d->net.dims[l + 1];
    if (n > wmax) wmax = n;
  }
  w->nbw = (int)ceil(sqrt((double)wmax));
  if (w->nbw > 4096) w->nbw = 4096;
  w->part = dx_alloc(c, (size_t)P * (size_t)modelk_npart(D, L, w->nbw) * sizeof(double));
}

void modeld_ws_free(dx_ctx* c, modeld_ws* w) {
  nnd_cache_free(c, w->cache);
  void* bufs[] = {w->out, w->dout, w->gbnd, w->rowsum, w->part};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  memset(w, 0, sizeof *w);
}

void modeld_set_shape(model_dev* d, const dyn_model* h) {
  d->p = h->p;
  d->obs_dim = h->obs_dim;
  d->act_dim = h->act_dim;
  d->in_dim = h->in_dim;
  d->D = h->D;
  d->key = h->key;
  d->net = h->net;
  d->nparams = h->nparams;
}

void modeld_init(model_dev* d, dx_ctx* c, const dyn_model* h) {
  if (dx_capturing(c)) mbpo_fatal("modeld_create inside a capture");
  d->c = c;
  modeld_set_shape(d, h);
  const int I = d->in_dim, D = d->D, L = d->net.nlayers, Bt = d->p.batch;
  d->params = dx_allocf(c, d->nparams);
  d->max_lv = d->params + d->net.nparams;
  d->min_lv = d->max_lv + D;
  d->norm_mean = dx_allocf(c, (size_t)I);
  d->norm_std = dx_allocf(c, (size_t)I);
  d->grads = dx_allocf(c, d->nparams);
  d->adam = nnd_adam_alloc(c, d->nparams, d->p.lr);

  modeld_ws_alloc(c, d, 1, Bt, &d->ws);
  d->terms = dx_alloc(c, (size_t)(L + 2) * sizeof(double));
  int* bv = malloc(((size_t)Bt + 1) * sizeof(int));
  if (!bv) mbpo_fatal("out of memory");
  for (int b = 0; b <= Bt; b++) bv[b] = b;
  d->bvals = dx_alloc(c, ((size_t)Bt + 1) * sizeof(int));
  dx_upload(c, d->bvals, bv, ((size_t)Bt + 1) * sizeof(int));
  dx_sync(c);
  free(bv);
}

void modeld_release(model_dev* d) {
  dx_ctx* c = d->c;
  dx_sync(c);
  dx_free(c, d->params);
  dx_free(c, d->norm_mean);
  dx_free(c, d->norm_std);
  dx_free(c, d->grads);
  nnd_adam_free(c, d->adam);
  modeld_ws_free(c, &d->ws);
  dx_free(c, d->terms);
  dx_free(c, d->bvals);
  dx_free(c, d->pred_y);
}

static void check_shape(const model_dev* d, const dyn_model* h) {
  if (h->nparams != d->nparams || h->in_dim != d->in_dim || h->D != d->D ||
      h->p.ensemble != d->p.ensemble)
    mbpo_fatal("model_dev: host model of another shape (%zu vs %zu parameters)", h->nparams, d->nparams);
}

void modeld_upload(model_dev* d, const dyn_model* h) {
  check_shape(d, h);
  dx_ctx* c = d->c;
  dx_upload(c, d->params, h->params, d->nparams * sizeof(float));
  dx_upload(c, d->norm_mean, h->norm_mean, (size_t)d->in_dim * sizeof(float));
  dx_upload(c, d->norm_std, h->norm_std, (size_t)d->in_dim * sizeof(float));
  nnd_adam_upload(c, d->adam, h->adam); /* synchronises: the pageable sources may change after */
  memcpy(d->elites, h->elites, sizeof d->elites);
}

void modeld_download(model_dev* d, dyn_model* h) {
  check_shape(d, h);
  dx_ctx* c = d->c;
  dx_download(c, h->params, d->params, d->nparams * sizeof(float));
  dx_download(c, h->norm_mean, d->norm_mean, (size_t)d->in_dim * sizeof(float));
  dx_download(c, h->norm_std, d->norm_std, (size_t)d->in_dim * sizeof(float));
  nnd_adam_download(c, d->adam, h->adam); /* synchronises */
  memcpy(h->elites, d->elites, sizeof h->elites);
}

/* ---- the minibatch step ---- */

void modeld_step_runs(dx_ctx* c, const model_dev* d, modeld_ws* w, int P, int Bt, const int* nb,
                       const modelk_frun* runs, float* params, float* grads, nnd_adam* adam, const int* act, const float* x,
                       const float* y, double* terms) {
  const int E = d->p.ensemble, D = d->D, L = d->net.nlayers;
  if (Bt < 1 || Bt > w->Bt || P < 1 || P > w->P)
    mbpo_fatal("modeld_step: %d rows of %d runs (workspaces for %d of %d)", Bt, P, w->Bt, w->P);
  const long rows = (long)P * E * Bt, ps = (long)d->nparams, netn = (long)d->net.nparams;
  nnd_cache_use_runs(w->cache, P);
  nnd_forward(c, &d->net, params, Bt, x, 0, w->cache, w->out);
  modelk_nll_args nl = {w->out, y, params, w->dout, w->gbnd, w->rowsum, nb, ps, netn, Bt, E, D};
  DX_RUN(c, modelk_nll, nl, rows);
  modelk_partials_args pa = {.rowsum = w->rowsum, .gbnd = w->gbnd, .params = params, .part = w->part, .nb = nb,
                          .ps = ps, .Bt = Bt, .E = E, .D = D, .L = L, .nbw = w->nbw};
  modelk_wd_args wa = {.params = params, .grads = grads, .ps = ps, .netn = netn, .L = L};
  modelk_finish_args fa = {.part = w->part, .params = params, .grads = grads, .terms = terms, .nb = nb, .runs = runs,
                        .ps = ps, .netn = netn, .coef = d->p.logvar_coef, .D = D, .L = L, .nbw = w->nbw};
  for (int l = 0; l < L; l++) {
    pa.w_off[l] = wa.w_off[l] = (long)d->net.w_off[l];
    pa.w_len[l] = wa.w_len[l] = (long)E * d->net.dims[l] * d->net.dims[l + 1];
    wa.wd[l] = fa.wd[l] = d->p.weight_decay[l];
  }
  /* The loss's sums and the bounds' gradients (lane 2) beside the backward and the decay (this
   * lane): they read the parameters before the step and write apart (the backward the network's
   * gradients, beta = 0; modelk_finish the bounds' and the terms); Adam waits for both. */
  const int lane = dx_lane_get(c);
  if (lane == 2 || lane == 1) mbpo_fatal("modeld_step_runs on lane %d (lanes 1 and 2 are its own)", lane);
  dx_wait(c, 2, lane);
  dx_lane(c, 2);
  DX_RUN(c, modelk_partials, pa, (long)P * modelk_npart(D, L, w->nbw));
  DX_RUN(c, modelk_finish, fa, (long)P * (1 + 2 * D + L));
  dx_lane(c, lane);
  nnd_backward_set(c, &d->net, params, w->cache, w->dout, grads, NULL);
  DX_RUN(c, modelk_wd, wa, (long)P * netn);
  dx_wait(c, lane, 2);
  if (adam) nnd_adam_step_runs(c, adam, params, grads, act);
}

void modeld_loss_grads(model_dev* d, int B, const float* x, const float* y, double* loss) {
  if (B < 1 || B > d->p.batch) mbpo_fatal("modeld_step: %d rows (1 to %d allowed)", B, d->p.batch);
  modeld_step_runs(d->c, d, &d->ws, 1, B, d->bvals + B, NULL, d->params, d->grads, NULL, NULL, x, y, d->terms);
  modelk_mean_args ta = {d->terms, loss, NULL, 1, 1, d->net.nlayers, 1};
  DX_RUN(d->c, modelk_mean, ta, 1);
}

void modeld_step(model_dev* d, int B, const float* x, const float* y, double* loss) {
  modeld_loss_grads(d, B, x, y, loss);
  nnd_adam_step(d->c, d->adam, d->params, d->grads);
}

/* ---- permutation ---- */

/* ---- normalising and prediction ---- */

void modeld_normalize(model_dev* d, const float* obs, const float* act, int B, float* xn) {
  modelk_normalize_args a = {obs, act, d->norm_mean, d->norm_std, xn, d->obs_dim, d->act_dim};
  DX_RUN(d->c, modelk_normalize, a, (long)B * d->in_dim);
}

void modeld_reserve_predict(model_dev* d, int rows) {
  if (rows <= d->pred_rows) return;
  if (dx_capturing(d->c))
    mbpo_fatal("modeld_predict: its workspace (%d rows) must be reserved (modeld_reserve_predict, %d "
               "rows) before a capture", d->pred_rows, rows);
  dx_sync(d->c);
  dx_free(d->c, d->pred_y);
  d->pred_y = dx_allocf(d->c, (size_t)d->p.ensemble * rows * 2 * d->D);
  d->pred_rows = rows;
}

void modeld_predict(model_dev* d, const float* xn, int B, float* mean, float* logvar, nnd_cache* cache) {
  const int chunk = cache->Bmax;
  modeld_reserve_predict(d, chunk);
  for (int r0 = 0; r0 < B; r0 += chunk) {
    const int n = B - r0 < chunk ? B - r0 : chunk;
    nnd_forward(d->c, &d->net, d->params, n, xn + (size_t)r0 * d->in_dim, 1, cache, d->pred_y);
    modelk_split_out_args a = {d->pred_y, d->max_lv, d->min_lv, mean, logvar, n, B, r0, d->D};
    DX_RUN(d->c, modelk_split_out, a, (long)d->p.ensemble * n * d->D);
  }
}
