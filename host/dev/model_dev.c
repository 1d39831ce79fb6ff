/* model_dev.c: the device dynamics model (model_dev.h): creation, state transfer, the minibatch
 * loss, gradient and Adam step, normalising and prediction. The fit is in model_dev_train.c.
 * The order of operations follows host/cpu/model.c. */
#include "model_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_k.h"

DX_OP(mdk_keys, mdk_keys_args)
DX_OP(mdk_split_rows, mdk_split_rows_args)
DX_OP(mdk_norm_part, mdk_norm_part_args)
DX_OP(mdk_norm_fin, mdk_norm_fin_args)
DX_OP(mdk_boot, mdk_boot_args)
DX_OP(mdk_normalize, mdk_normalize_args)
DX_OP(mdk_norm_rows, mdk_norm_rows_args)
DX_OP(mdk_gather, mdk_gather_args)
DX_OP(mdk_nll, mdk_nll_args)
DX_OP(mdk_partials, mdk_partials_args)
DX_OP(mdk_finish, mdk_finish_args)
DX_OP(mdk_wd, mdk_wd_args)
DX_OP(mdk_mean, mdk_mean_args)
DX_OP(mdk_mse_rows, mdk_mse_rows_args)
DX_OP(mdk_mse_acc, mdk_mse_acc_args)
DX_OP(mdk_split_out, mdk_split_out_args)

/* Largest scoring chunk (rows per forward of the holdout scoring). */
#define MODELD_SCORE_CHUNK 8192

model_dev* modeld_create(dx_ctx* c, const dyn_model* h, long max_rows) {
  if (max_rows < 1 || max_rows >= (1L << 26))
    mbpo_fatal("modeld_create: max_rows %ld (1 to 2^26 - 1 allowed)", max_rows);
  if (dx_capturing(c)) mbpo_fatal("modeld_create inside a capture");
  model_dev* d = calloc(1, sizeof *d);
  if (!d) mbpo_fatal("out of memory");
  d->c = c;
  d->p = h->p;
  d->obs_dim = h->obs_dim;
  d->act_dim = h->act_dim;
  d->in_dim = h->in_dim;
  d->D = h->D;
  d->key = h->key;
  d->net = h->net;
  d->nparams = h->nparams;
  const int E = d->p.ensemble, I = d->in_dim, D = d->D, L = d->net.nlayers, Bt = d->p.batch;
  d->params = dx_allocf(c, d->nparams);
  d->max_lv = d->params + d->net.nparams;
  d->min_lv = d->max_lv + D;
  d->norm_mean = dx_allocf(c, (size_t)I);
  d->norm_std = dx_allocf(c, (size_t)I);
  d->grads = dx_allocf(c, d->nparams);
  d->adam = dxn_adam_alloc(c, d->nparams, d->p.lr);

  const size_t EB = (size_t)E * Bt;
  d->tcache = dxn_cache_alloc(c, &d->net, Bt);
  d->xb = dx_allocf(c, EB * I);
  d->yb = dx_allocf(c, EB * D);
  d->out = dx_allocf(c, EB * 2 * D);
  d->dout = dx_allocf(c, EB * 2 * D);
  d->gbnd = dx_allocf(c, EB * 2 * D);
  d->rowsum = dx_alloc(c, EB * sizeof(double));
  long wmax = 1;
  for (int l = 0; l < L; l++) {
    long n = (long)E * d->net.dims[l] * d->net.dims[l + 1];
    if (n > wmax) wmax = n;
  }
  d->nbw = (int)ceil(sqrt((double)wmax));
  if (d->nbw > 4096) d->nbw = 4096;
  d->part = dx_alloc(c, ((size_t)(1 + 2 * D) * MDK_NB + (size_t)L * d->nbw) * sizeof(double));
  d->terms = dx_alloc(c, (size_t)(L + 2) * sizeof(double));
  d->loss = dx_alloc(c, (size_t)((max_rows + Bt - 1) / Bt + 1) * (L + 2) * sizeof(double));
  d->snap = dx_allocf(c, d->net.nparams);
  d->npart = dx_alloc(c, (size_t)I * MDK_NB * sizeof(double));
  d->nmu = dx_alloc(c, (size_t)I * sizeof(double));

  d->max_rows = max_rows;
  const size_t R = (size_t)max_rows;
  d->X = dx_allocf(c, R * I);
  d->Y = dx_allocf(c, R * D);
  d->perm = dx_alloc(c, R * sizeof(int));
  d->boot = dx_alloc(c, R * E * sizeof(int));
  d->boot2 = dx_alloc(c, R * E * sizeof(int));
  d->keys = dx_alloc(c, R * E * sizeof(uint64_t));
  d->keys2 = dx_alloc(c, R * E * sizeof(uint64_t));
  d->epoch = dx_alloc(c, sizeof(uint64_t));
  d->stat = dx_alloc(c, (size_t)(1 + E) * sizeof(double));
  d->stat_h = dx_alloc_pinned(c, (size_t)(1 + E) * sizeof(double));
  dx_reserve_sort(c, (long)R * E);

  d->schunk = (int)(max_rows < MODELD_SCORE_CHUNK ? max_rows : MODELD_SCORE_CHUNK);
  d->scache = dxn_cache_alloc(c, &d->net, d->schunk);
  d->sx = dx_allocf(c, (size_t)d->schunk * I);
  d->sy = dx_allocf(c, (size_t)E * d->schunk * 2 * D);
  d->srs = dx_alloc(c, (size_t)E * d->schunk * sizeof(double));
  d->sacc = dx_alloc(c, (size_t)E * sizeof(double));
  modeld_upload(d, h);
  return d;
}

void modeld_free(model_dev* d) {
  if (!d) return;
  dx_ctx* c = d->c;
  dx_sync(c);
  dx_free(c, d->params);
  dx_free(c, d->norm_mean);
  dx_free(c, d->norm_std);
  dx_free(c, d->grads);
  dxn_adam_free(c, d->adam);
  dxn_cache_free(c, d->tcache);
  void* bufs[] = {d->xb, d->yb, d->out, d->dout, d->gbnd, d->rowsum, d->part, d->terms, d->loss, d->snap, d->npart, d->nmu,
                  d->X, d->Y, d->perm, d->boot, d->boot2, d->keys, d->keys2, d->epoch, d->stat,
                  d->sx, d->sy, d->srs, d->sacc, d->pred_y};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dx_free_pinned(c, d->stat_h);
  dxn_cache_free(c, d->scache);
  free(d);
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
  dxn_adam_upload(c, d->adam, h->adam); /* synchronises: the pageable sources may change after */
  memcpy(d->elites, h->elites, sizeof d->elites);
}

void modeld_download(model_dev* d, dyn_model* h) {
  check_shape(d, h);
  dx_ctx* c = d->c;
  dx_download(c, h->params, d->params, d->nparams * sizeof(float));
  dx_download(c, h->norm_mean, d->norm_mean, (size_t)d->in_dim * sizeof(float));
  dx_download(c, h->norm_std, d->norm_std, (size_t)d->in_dim * sizeof(float));
  dxn_adam_download(c, d->adam, h->adam); /* synchronises */
  memcpy(h->elites, d->elites, sizeof h->elites);
}

/* ---- the minibatch step ---- */

/* The loss and gradient, the loss as its terms (mdk_finish). */
static void loss_grads_terms(model_dev* d, int B, const float* x, const float* y, double* terms) {
  dx_ctx* c = d->c;
  const int E = d->p.ensemble, D = d->D, L = d->net.nlayers;
  if (B < 1 || B > d->p.batch) mbpo_fatal("modeld_step: %d rows (1 to %d allowed)", B, d->p.batch);
  const long n = (long)E * B;
  const float s = 1.0f / (float)(B * D);
  dxn_forward(c, &d->net, d->params, B, x, 0, d->tcache, d->out);
  mdk_nll_args nl = {d->out, y, d->max_lv, d->min_lv, d->dout, d->gbnd, d->rowsum, s, D};
  DX_RUN(c, mdk_nll, nl, n);
  mdk_partials_args pa;
  memset(&pa, 0, sizeof pa);
  pa.rowsum = d->rowsum;
  pa.gbnd = d->gbnd;
  pa.params = d->params;
  pa.part = d->part;
  pa.n = n;
  pa.D = D;
  pa.L = L;
  pa.nbw = d->nbw;
  mdk_wd_args wa;
  memset(&wa, 0, sizeof wa);
  wa.params = d->params;
  wa.grads = d->grads;
  wa.L = L;
  mdk_finish_args fa;
  memset(&fa, 0, sizeof fa);
  fa.part = d->part;
  fa.hi = d->max_lv;
  fa.lo = d->min_lv;
  fa.gbounds = d->grads + d->net.nparams;
  fa.terms = terms;
  fa.s = s;
  fa.coef = d->p.logvar_coef;
  fa.D = D;
  fa.L = L;
  fa.nbw = d->nbw;
  for (int l = 0; l < L; l++) {
    pa.w_off[l] = wa.w_off[l] = (long)d->net.w_off[l];
    pa.w_len[l] = wa.w_len[l] = (long)E * d->net.dims[l] * d->net.dims[l + 1];
    wa.wd[l] = fa.wd[l] = d->p.weight_decay[l];
  }
  /* the loss's sums read the parameters before the step */
  DX_RUN(c, mdk_partials, pa, (long)(1 + 2 * D) * MDK_NB + (long)L * d->nbw);
  dx_zero(c, d->grads, d->net.nparams * sizeof(float));
  dxn_backward(c, &d->net, d->params, d->tcache, d->dout, d->grads, NULL);
  DX_RUN(c, mdk_wd, wa, (long)d->net.nparams);
  DX_RUN(c, mdk_finish, fa, 1 + 2 * D + L);
}

void modeld_loss_grads(model_dev* d, int B, const float* x, const float* y, double* loss) {
  loss_grads_terms(d, B, x, y, d->terms);
  mdk_mean_args ta = {d->terms, loss, 1, d->net.nlayers};
  DX_RUN(d->c, mdk_mean, ta, 1);
}

void modeld_step(model_dev* d, int B, const float* x, const float* y, double* loss) {
  modeld_loss_grads(d, B, x, y, loss);
  dxn_adam_step(d->c, d->adam, d->params, d->grads);
}

void modeld_step_terms_(model_dev* d, int B, const float* x, const float* y, double* terms) {
  loss_grads_terms(d, B, x, y, terms);
  dxn_adam_step(d->c, d->adam, d->params, d->grads);
}

/* ---- permutation ---- */

void modeld_permutation(model_dev* d, rng_key key, uint32_t c0, int n, int* perm) {
  if (n < 0 || n > d->max_rows) mbpo_fatal("modeld_permutation: %d rows (at most %ld)", n, d->max_rows);
  mdk_keys_args ka = {d->keys, d->boot2, key, c0, NULL, 1, n};
  DX_RUN(d->c, mdk_keys, ka, n);
  dx_sort_pairs(d->c, d->keys, d->keys2, d->boot2, perm, n);
}

/* ---- normalising and prediction ---- */

void modeld_normalize(model_dev* d, const float* obs, const float* act, int B, float* xn) {
  mdk_normalize_args a = {obs, act, d->norm_mean, d->norm_std, xn, d->obs_dim, d->act_dim};
  DX_RUN(d->c, mdk_normalize, a, (long)B * d->in_dim);
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

void modeld_predict(model_dev* d, const float* xn, int B, float* mean, float* logvar, dxn_cache* cache) {
  const int chunk = cache->Bmax;
  modeld_reserve_predict(d, chunk);
  for (int r0 = 0; r0 < B; r0 += chunk) {
    const int n = B - r0 < chunk ? B - r0 : chunk;
    dxn_forward(d->c, &d->net, d->params, n, xn + (size_t)r0 * d->in_dim, 1, cache, d->pred_y);
    mdk_split_out_args a = {d->pred_y, d->max_lv, d->min_lv, mean, logvar, n, B, r0, d->D};
    DX_RUN(d->c, mdk_split_out, a, (long)d->p.ensemble * n * d->D);
  }
}
