/* test_model_dev.c: the device dynamics model (model_dev.h) against the CPU model (model.h), on
 * the host emulation always and on the GPU when one is usable (else each GPU case is a visible
 * skip). Hopper-like dimensions (obs 11, act 3), E = 7; hidden widths reduced for speed.
 * Errors are relative: max |got - ref| / max |ref| over a tensor.
 *   upload / download round trip (parameters, bounds, Adam m v t, normaliser, elites)   exact
 *   holdout permutation by one radix sort vs model_permutation                          exact
 *   one step: the loss, every gradient (weights, biases, bounds), the Adam step vs model_loss /
 *     nn_adam_step; one step captured and replayed 3 times vs 3 model_step    1e-5 host, 1e-4 GPU
 *   a fit (N = 2000, 3 epochs) vs model_train: permutation, bootstrap after the shuffles (exact);
 *     normaliser 1e-6; epochs, steps, best epochs, elites equal; loss, holdout MSEs, parameters
 *     1e-4 host, 1e-3 GPU; then an uncapped fit continuing from there (host: same tolerances;
 *     GPU: the early-stopping decisions may legitimately flip on ulps, so its epochs are reported
 *     and the state compared only when they agree)
 *   fit edge cases: no rows, no holdout rows (4 rows), NaN rewards: status, epochs, elites equal,
 *     holdout MSEs 1e-4 host, 1e-3 GPU (NaN for NaN)
 *   normalise + predict (3 chunks) vs model_predict                      1e-5 host, 1e-4 GPU
 *   a batched fit of 5 runs (modeld_fit_runs: different sizes, splits, learning rates, logvar
 *     coefficients, stopping rules and fit indices; one without rows, one with NaN rewards, one
 *     without holdout), twice, vs each run's modeld_train alone: statuses, epochs, steps, best
 *     epochs and elites equal; losses, MSEs, parameters, Adam state, normaliser exact on the host,
 *     1e-4 on the GPU (the GPU's state compared where the epochs agree); the second time with one
 *     minibatch step per block graph instead of 4 (the results may not depend on it); the fitters
 *     capture their three graphs at their first fit only (the second fits capture nothing, but
 *     the block graph whose size was changed); on the host the batched fit's graphs are replayed in
 *     other orders their lanes allow (dx_reorder: higher, then lower lanes first) */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dx.h"
#include "nn_dev.h"
#include "model.h"
#include "model_dev.h"
#include "rng.h"
#include "dx_test.h"
#include "test.h"

enum { OBS = 11, ACT = 3, IN = OBS + ACT, DD = OBS + 1, ENS = 7 };
static const rng_key K = {77, RNG_TEST};

static model_params params(int hidden, int batch) {
  model_params p;
  memset(&p, 0, sizeof p);
  p.ensemble = ENS;
  p.elites = 5;
  p.hidden = hidden;
  p.layers = 4;
  p.batch = batch;
  p.lr = 1e-3f;
  p.n_weight_decay = 5;
  const float wd[] = {2.5e-5f, 5e-5f, 7.5e-5f, 7.5e-5f, 1e-4f};
  for (int l = 0; l < 5; l++) p.weight_decay[l] = wd[l];
  p.logvar_coef = 0.01f;
  p.holdout_ratio = 0.2;
  p.max_holdout = 5000;
  p.patience = 5;
  p.improvement = 0.01;
  return p;
}

/* A host model whose whole state differs from a fresh one: non-zero biases, bounds near 0 with the
 * output layer scaled up (both soft clamps active), a normaliser, Adam moments and count. */
static dyn_model* busy_model(int hidden, int batch, uint32_t seed) {
  model_params p = params(hidden, batch);
  dyn_model* m = model_create(OBS, ACT, &p, (rng_key){seed, 0});
  const nn_mlp* net = &m->net;
  const int Lo = net->nlayers - 1;
  for (size_t i = 0; i < (size_t)ENS * net->dims[Lo] * net->dims[Lo + 1]; i++) m->params[net->w_off[Lo] + i] *= 6.0f;
  for (int l = 0; l < net->nlayers; l++)
    fill_normal(m->params + net->b_off[l], (size_t)ENS * net->dims[l + 1], K, 40 + l, 5, 0.1f);
  for (int d = 0; d < DD; d++) {
    m->max_lv[d] = 0.2f + 0.05f * d;
    m->min_lv[d] = -0.6f - 0.05f * d;
  }
  fill_normal(m->norm_mean, IN, K, 50, 5, 1.0f);
  for (int j = 0; j < IN; j++) m->norm_std[j] = 0.5f + 0.1f * j;
  for (size_t i = 0; i < m->nparams; i++) {
    m->adam->m[i] = 1e-3f * rng_normal(K, 51, 0, i);
    m->adam->v[i] = 1e-6f * fabsf(rng_normal(K, 52, 0, i));
  }
  m->adam->t = 17;
  for (int e = 0; e < ENS; e++) m->elites[e] = (e * 3 + 2) % ENS;
  return m;
}

/* ---- round trip, permutation ---- */

static void test_roundtrip(void) {
  NEED_KIND();
  dyn_model* a = busy_model(24, 16, 3);
  model_params p = params(24, 16);
  dyn_model* b = model_create(OBS, ACT, &p, (rng_key){9, 0});
  model_dev* d = modeld_create(ctx(), a, 100);
  modeld_download(d, b);
  CHECK(!memcmp(a->params, b->params, a->nparams * 4), "parameters differ");
  CHECK(!memcmp(a->norm_mean, b->norm_mean, IN * 4) && !memcmp(a->norm_std, b->norm_std, IN * 4),
        "normaliser differs");
  CHECK(!memcmp(a->adam->m, b->adam->m, a->nparams * 4) && !memcmp(a->adam->v, b->adam->v, a->nparams * 4),
        "Adam moments differ");
  CHECK(b->adam->t == 17, "Adam t %ld", b->adam->t);
  CHECK(!memcmp(a->elites, b->elites, sizeof a->elites), "elites differ");
  modeld_free(d);
  model_free(a);
  model_free(b);
}

static void test_permutation(void) {
  NEED_KIND();
  const int ns[] = {1, 5, 1000, 12347};
  model_params p = params(8, 16);
  dyn_model* m = model_create(OBS, ACT, &p, (rng_key){5, 0});
  model_dev* d = modeld_create(ctx(), m, 12347);
  int* perm = dx_alloc(ctx(), 12347 * sizeof(int));
  int* ref = malloc(12347 * sizeof(int));
  uint64_t* sk = malloc(2 * 12347 * sizeof(uint64_t));
  for (int t = 0; t < 4; t++) {
    const rng_key k = {123, RNG_MODEL_SPLIT};
    modeld_permutation(d, k, (uint32_t)t + 4, ns[t], perm);
    model_permutation(k, (uint32_t)t + 4, 0, ns[t], NULL, ref, sk, sk + 12347);
    int* got = down_bytes(perm, (size_t)ns[t] * sizeof(int));
    CHECK(!memcmp(got, ref, (size_t)ns[t] * sizeof(int)), "n %d: permutations differ", ns[t]);
    free(got);
  }
  dx_free(ctx(), perm);
  free(ref);
  free(sk);
  modeld_free(d);
  model_free(m);
}

/* ---- one step ---- */

static void test_step(void) {
  NEED_KIND();
  const int H = 64, B = 48;
  dyn_model* m = busy_model(H, B, 11);
  dx_ctx* c = ctx();
  model_dev* d = modeld_create(c, m, 100);
  const size_t nx = (size_t)ENS * B * IN, ny = (size_t)ENS * B * DD;
  float *x = malloc(nx * 4), *y = malloc(ny * 4);
  fill_normal(x, nx, K, 60, 5, 1.0f);
  fill_normal(y, ny, K, 61, 5, 0.7f);
  float *dxb = up_bytes(x, nx * 4), *dyb = up_bytes(y, ny * 4);
  double* dloss = dx_alloc(c, sizeof(double));

  const double lref = model_loss(m, B, x, y, m->grads);
  modeld_loss_grads(d, B, dxb, dyb, dloss);
  double* lg = down_bytes(dloss, sizeof(double));
  float* g = down_bytes(d->grads, m->nparams * 4);
  CHECK(fabs(*lg - lref) <= tol(1e-6, 1e-5) * fabs(lref), "loss %.9g vs %.9g", *lg, lref);
  const nn_mlp* net = &m->net;
  double worst = 0;
  for (int l = 0; l < net->nlayers; l++) {
    size_t nw = (size_t)ENS * net->dims[l] * net->dims[l + 1], nb = (size_t)ENS * net->dims[l + 1];
    double ew = rel_err(g + net->w_off[l], m->grads + net->w_off[l], nw);
    double eb = rel_err(g + net->b_off[l], m->grads + net->b_off[l], nb);
    CHECK(ew < tol(1e-5, 1e-4) && eb < tol(1e-5, 1e-4), "layer %d: weight grad %.3g, bias grad %.3g", l, ew, eb);
    worst = fmax(worst, fmax(ew, eb));
  }
  double eh = rel_err(g + net->nparams, m->grads + net->nparams, DD);
  double el = rel_err(g + net->nparams + DD, m->grads + net->nparams + DD, DD);
  CHECK(eh < tol(1e-5, 1e-4) && el < tol(1e-5, 1e-4), "bound grads: max_lv %.3g, min_lv %.3g", eh, el);
  worst = fmax(worst, fmax(eh, el));

  /* the Adam step */
  nn_adam_step(m->adam, m->params, m->grads);
  nnd_adam_step(c, d->adam, d->params, d->grads);
  float* pp = down_bytes(d->params, m->nparams * 4);
  double ep = rel_err(pp, m->params, m->nparams);
  CHECK(ep < tol(1e-6, 1e-5), "params after the step: %.3g", ep);
  fprintf(stderr, "  [%s] step: loss %.3g, grads %.3g, params after Adam %.3g\n",
          g_kind == DX_CUDA ? "cuda" : "host", fabs(*lg - lref) / fabs(lref), worst, ep);

  /* one step captured, replayed three times, against three model_step */
  dx_capture_begin(c);
  modeld_step(d, B, dxb, dyb, dloss);
  dx_graph* gr = dx_capture_end(c);
  double l3 = 0;
  for (int i = 0; i < 3; i++) {
    dx_graph_launch(c, gr);
    l3 = model_step(m, B, x, y);
  }
  float* p3 = down_bytes(d->params, m->nparams * 4);
  double* lg3 = down_bytes(dloss, sizeof(double));
  double e3 = rel_err(p3, m->params, m->nparams);
  CHECK(e3 < tol(1e-5, 1e-4), "params after 3 replays: %.3g", e3);
  CHECK(fabs(*lg3 - l3) <= tol(1e-5, 1e-4) * fabs(l3), "loss of the 3rd replay %.9g vs %.9g", *lg3, l3);
  dyn_model* back = busy_model(H, B, 12);
  modeld_download(d, back);
  CHECK(back->adam->t == m->adam->t, "Adam t %ld vs %ld", back->adam->t, m->adam->t);
  fprintf(stderr, "  [%s] 3 captured steps: params %.3g\n", g_kind == DX_CUDA ? "cuda" : "host", e3);
  dx_graph_free(c, gr);
  model_free(back);
  free(lg);
  free(lg3);
  free(g);
  free(pp);
  free(p3);
  dx_free(c, dxb);
  dx_free(c, dyb);
  dx_free(c, dloss);
  free(x);
  free(y);
  modeld_free(d);
  model_free(m);
}

/* ---- a fit ---- */

/* Hopper-like synthetic transitions: s' = s + 0.1 tanh(M [s, a]) + noise, r = w . [s, a] + noise. */
typedef struct data {
  int N;
  float *obs, *act, *rew, *nxt;
} data;

static data make_data(int N) {
  data t = {N, malloc((size_t)N * OBS * 4), malloc((size_t)N * ACT * 4), malloc((size_t)N * 4),
            malloc((size_t)N * OBS * 4)};
  fill_normal(t.obs, (size_t)N * OBS, K, 70, 5, 1.0f);
  for (size_t i = 0; i < (size_t)N * ACT; i++) t.act[i] = 2.0f * rng_uniform(K, 71, 0, i) - 1.0f;
  for (int i = 0; i < N; i++) {
    const float* s = t.obs + (size_t)i * OBS;
    const float* a = t.act + (size_t)i * ACT;
    double r = 0.05 * rng_normal(K, 72, 0, (uint64_t)i);
    for (int k = 0; k < OBS; k++) r += (0.1 + 0.03 * k) * s[k];
    for (int k = 0; k < ACT; k++) r -= 0.2 * a[k] * a[k];
    t.rew[i] = (float)r;
    for (int k = 0; k < OBS; k++) {
      double z = 0.3 * s[(k + 1) % OBS] - 0.2 * s[k] + 0.5 * a[k % ACT];
      t.nxt[(size_t)i * OBS + k] = (float)(s[k] + 0.1 * tanh(z) + 0.02 * rng_normal(K, 73, (uint32_t)k, (uint64_t)i));
    }
  }
  return t;
}

static void free_data(data* t) {
  free(t->obs);
  free(t->act);
  free(t->rew);
  free(t->nxt);
}

/* Compare one fit of each; returns 1 when the epochs agreed (the state was compared). */
static int compare_fit(dyn_model* m, model_dev* d, const data* t, float* const dev[4], uint32_t fit,
                       int strict_epochs, double tl) {
  model_fit_stats sr, sd;
  int rr = model_train(m, t->N, t->obs, t->act, t->rew, t->nxt, fit, &sr);
  int rd = modeld_train(d, t->N, dev[0], dev[1], dev[2], dev[3], fit, &sd);
  CHECK(rr == rd && rr == MODEL_OK, "status %d vs %d", rd, rr);
  CHECK(sd.n_train == sr.n_train && sd.n_holdout == sr.n_holdout, "split %d/%d vs %d/%d", sd.n_train,
        sd.n_holdout, sr.n_train, sr.n_holdout);
  fprintf(stderr, "  [%s] fit %u: epochs %d (reference %d), %.2fs (reference %.2fs)\n",
          g_kind == DX_CUDA ? "cuda" : "host", fit, sd.epochs, sr.epochs, sd.seconds, sr.seconds);
  if (sd.epochs != sr.epochs) {
    CHECK(!strict_epochs, "epochs %d vs %d", sd.epochs, sr.epochs);
    return 0;
  }
  CHECK(sd.steps == sr.steps, "steps %ld vs %ld", sd.steps, sr.steps);
  CHECK(fabs(sd.train_loss - sr.train_loss) <= tl * fabs(sr.train_loss), "train loss %.9g vs %.9g",
        sd.train_loss, sr.train_loss);
  double emse = 0;
  for (int e = 0; e < ENS; e++) {
    emse = fmax(emse, fabs(sd.holdout_mse[e] - sr.holdout_mse[e]) / sr.holdout_mse[e]);
    CHECK(sd.best_epoch[e] == sr.best_epoch[e], "member %d: best epoch %d vs %d", e, sd.best_epoch[e],
          sr.best_epoch[e]);
    CHECK(sd.elites[e] == sr.elites[e] && d->elites[e] == m->elites[e], "elite %d: %d vs %d", e, sd.elites[e],
          sr.elites[e]);
  }
  CHECK(emse <= tl, "holdout MSE rel err %.3g", emse);
  CHECK(fabs(sd.elite_mse - sr.elite_mse) <= tl * sr.elite_mse, "elite MSE %.9g vs %.9g", sd.elite_mse, sr.elite_mse);

  /* the permutation, the shuffled bootstrap indices (exact), the normaliser, the parameters */
  int* perm = down_bytes(modeld_fit_perm(d->fit), (size_t)t->N * sizeof(int));
  CHECK(!memcmp(perm, m->perm, (size_t)t->N * sizeof(int)), "holdout permutations differ");
  int* boot = down_bytes(modeld_fit_boot(d->fit, 0), (size_t)ENS * sr.n_train * sizeof(int));
  CHECK(!memcmp(boot, m->boot, (size_t)ENS * sr.n_train * sizeof(int)), "shuffled bootstrap indices differ");
  model_params p = m->p;
  dyn_model* back = model_create(OBS, ACT, &p, (rng_key){1, 0});
  modeld_download(d, back);
  double en = fmax(rel_err(back->norm_mean, m->norm_mean, IN), rel_err(back->norm_std, m->norm_std, IN));
  CHECK(en < 1e-6, "normaliser rel err %.3g", en);
  double ep = rel_err(back->params, m->params, m->nparams);
  double ea = fmax(rel_err(back->adam->m, m->adam->m, m->nparams), rel_err(back->adam->v, m->adam->v, m->nparams));
  CHECK(ep < tl, "parameters rel err %.3g", ep);
  CHECK(ea < 10 * tl, "Adam moments rel err %.3g", ea);
  CHECK(back->adam->t == m->adam->t, "Adam t %ld vs %ld", back->adam->t, m->adam->t);
  fprintf(stderr, "  [%s] fit %u: loss %.3g, holdout MSE %.3g, normaliser %.3g, params %.3g, Adam %.3g\n",
          g_kind == DX_CUDA ? "cuda" : "host", fit, fabs(sd.train_loss - sr.train_loss) / fabs(sr.train_loss),
          emse, en, ep, ea);
  model_free(back);
  free(perm);
  free(boot);
  return 1;
}

static void test_fit(void) {
  NEED_KIND();
  const int N = 2000;
  model_params p = params(48, 128);
  p.max_epochs = 3;
  dyn_model* m = model_create(OBS, ACT, &p, (rng_key){21, 0});
  dx_ctx* c = ctx();
  /* the device pool holds more rows than the fit uses (rows 0..N-1 of a larger pool) */
  model_dev* d = modeld_create(c, m, 2 * N);
  data t = make_data(N);
  float* dev[4] = {up_bytes(t.obs, (size_t)N * OBS * 4), up_bytes(t.act, (size_t)N * ACT * 4),
                   up_bytes(t.rew, (size_t)N * 4), up_bytes(t.nxt, (size_t)N * OBS * 4)};
  const double tl = tol(1e-4, 1e-3);
  compare_fit(m, d, &t, dev, 0, 1, tl);
  /* then an uncapped fit from there (early stopping decides) */
  m->p.max_epochs = 0;
  d->p.max_epochs = 0;
  compare_fit(m, d, &t, dev, 1, g_kind == DX_HOST, tl);
  for (int i = 0; i < 4; i++) dx_free(c, dev[i]);
  free_data(&t);
  modeld_free(d);
  model_free(m);
}

/* Edge cases of a fit: no rows; no holdout rows (int(0.2 N) = 0: the training rows are scored);
 * a NaN in every reward (MODEL_NONFINITE after the first epoch). Status, epochs, elites and, when
 * finite, the holdout MSEs agree with model_train. */
static void test_fit_edges(void) {
  NEED_KIND();
  model_params p = params(16, 32);
  dx_ctx* c = ctx();
  data t = make_data(300);
  float* dev[4] = {up_bytes(t.obs, 300 * OBS * 4), up_bytes(t.act, 300 * ACT * 4), up_bytes(t.rew, 300 * 4),
                   up_bytes(t.nxt, 300 * OBS * 4)};
  for (int k = 0; k < 3; k++) {
    const int N = k == 0 ? 0 : k == 1 ? 4 : 300;
    p.max_epochs = k == 2 ? 3 : 0;
    dyn_model* m = model_create(OBS, ACT, &p, (rng_key){(uint32_t)k + 40, 0});
    model_dev* d = modeld_create(c, m, 300);
    if (k == 2) {
      for (int i = 0; i < N; i++) t.rew[i] = NAN;
      dx_upload(c, dev[2], t.rew, (size_t)N * 4);
      dx_sync(c);
    }
    model_fit_stats sr, sd;
    int rr = model_train(m, N, t.obs, t.act, t.rew, t.nxt, 3, &sr);
    int rd = modeld_train(d, N, dev[0], dev[1], dev[2], dev[3], 3, &sd);
    const int want = k == 0 ? MODEL_NO_DATA : k == 1 ? MODEL_OK : MODEL_NONFINITE;
    CHECK(rr == want && rd == want, "case %d: status %d, reference %d, expected %d", k, rd, rr, want);
    CHECK(sd.epochs == sr.epochs && sd.n_holdout == sr.n_holdout, "case %d: epochs %d vs %d, holdout %d vs %d", k,
          sd.epochs, sr.epochs, sd.n_holdout, sr.n_holdout);
    for (int e = 0; k > 0 && e < ENS; e++) {
      CHECK(sd.elites[e] == sr.elites[e] && sd.best_epoch[e] == sr.best_epoch[e], "case %d member %d", k, e);
      if (k == 1)
        CHECK(fabs(sd.holdout_mse[e] - sr.holdout_mse[e]) <= tol(1e-4, 1e-3) * sr.holdout_mse[e],
              "case %d member %d: MSE %.9g vs %.9g", k, e, sd.holdout_mse[e], sr.holdout_mse[e]);
      else
        CHECK(isnan(sd.holdout_mse[e]) && isnan(sr.holdout_mse[e]), "case %d member %d: MSE %g vs %g", k, e,
              sd.holdout_mse[e], sr.holdout_mse[e]);
    }
    if (k == 1)
      fprintf(stderr, "  [%s] fit of 4 rows without holdout: %d epochs (reference %d)\n",
              g_kind == DX_CUDA ? "cuda" : "host", sd.epochs, sr.epochs);
    modeld_free(d);
    model_free(m);
  }
  for (int i = 0; i < 4; i++) dx_free(c, dev[i]);
  free_data(&t);
}

/* ---- batched fits ---- */

/* A's fit equals B's: bit for bit on the host (exact), else within tol where the epochs agree. */
static void same_fit(int q, const model_fit_stats* a, const model_fit_stats* b, int ra, int rb, model_dev* da,
                     model_dev* db, double tl) {
  CHECK(ra == rb, "run %d: status %d vs %d alone", q, ra, rb);
  CHECK(a->n_train == b->n_train && a->n_holdout == b->n_holdout, "run %d: split", q);
  if (a->epochs != b->epochs) {
    CHECK(g_kind == DX_CUDA, "run %d: epochs %d vs %d alone", q, a->epochs, b->epochs);
    return;
  }
  CHECK(a->steps == b->steps, "run %d: steps %ld vs %ld", q, a->steps, b->steps);
  const double lt = fabs(a->train_loss - b->train_loss), ls = fabs(b->train_loss);
  CHECK(tl == 0 ? !memcmp(&a->train_loss, &b->train_loss, sizeof(double)) : (lt <= tl * ls || (isnan(a->train_loss) && isnan(b->train_loss))),
        "run %d: train loss %.17g vs %.17g alone", q, a->train_loss, b->train_loss);
  for (int e = 0; e < ENS; e++) {
    CHECK(a->best_epoch[e] == b->best_epoch[e] && a->elites[e] == b->elites[e] && da->elites[e] == db->elites[e],
          "run %d member %d: best epoch / elite", q, e);
    const double x = a->holdout_mse[e], y = b->holdout_mse[e];
    CHECK(tl == 0 ? !memcmp(&x, &y, sizeof x) : (fabs(x - y) <= tl * fabs(y) || (isnan(x) && isnan(y))),
          "run %d member %d: holdout MSE %.17g vs %.17g alone", q, e, x, y);
  }
  model_params p = da->p;
  dyn_model* ha = model_create(OBS, ACT, &p, (rng_key){1, 0});
  dyn_model* hb = model_create(OBS, ACT, &p, (rng_key){1, 0});
  modeld_download(da, ha);
  modeld_download(db, hb);
  const size_t n = ha->nparams;
  double ep = rel_err(ha->params, hb->params, n);
  double ea = fmax(rel_err(ha->adam->m, hb->adam->m, n), rel_err(ha->adam->v, hb->adam->v, n));
  double en = fmax(rel_err(ha->norm_mean, hb->norm_mean, IN), rel_err(ha->norm_std, hb->norm_std, IN));
  if (tl == 0)
    CHECK(!memcmp(ha->params, hb->params, n * 4) && !memcmp(ha->adam->m, hb->adam->m, n * 4) &&
              !memcmp(ha->adam->v, hb->adam->v, n * 4) && !memcmp(ha->norm_mean, hb->norm_mean, IN * 4) &&
              !memcmp(ha->norm_std, hb->norm_std, IN * 4),
          "run %d: state differs from the fit alone (params %.3g, Adam %.3g, normaliser %.3g)", q, ep, ea, en);
  else
    CHECK(ep < tl && ea < 10 * tl && en < tl, "run %d: params %.3g, Adam %.3g, normaliser %.3g", q, ep, ea, en);
  CHECK(ha->adam->t == hb->adam->t, "run %d: Adam t %ld vs %ld", q, ha->adam->t, hb->adam->t);
  model_free(ha);
  model_free(hb);
}

static void test_fit_runs(void) {
  NEED_KIND();
  enum { NJ = 5, ROWS = 700 };
  dx_ctx* c = ctx();
  data t = make_data(ROWS);
  float* dev[4] = {up_bytes(t.obs, ROWS * OBS * 4), up_bytes(t.act, ROWS * ACT * 4), up_bytes(t.rew, ROWS * 4),
                   up_bytes(t.nxt, ROWS * OBS * 4)};
  float* nan_rew = malloc(ROWS * 4);
  for (int i = 0; i < ROWS; i++) nan_rew[i] = i == 37 ? NAN : t.rew[i];
  float* dnan = up_bytes(nan_rew, ROWS * 4);
  /* per run: rows, then settings that may differ within a population */
  const int N[NJ] = {700, 300, 0, 450, 4};
  dyn_model* host[NJ];
  model_dev *dm[NJ], *alone[NJ];
  modeld_fitter* f = modeld_fitter_create(c, (host[0] = busy_model(16, 32, 60)), NJ + 1, ROWS);
  for (int q = 0; q < NJ; q++) {
    if (q > 0) host[q] = busy_model(16, 32, 60 + (uint32_t)q);
    model_params* p = &host[q]->p;
    p->max_epochs = q == 4 ? 6 : 12;
    if (q == 1) p->holdout_ratio = 0.1, p->patience = 0, p->improvement = 0.5, p->lr = 5e-4f, p->logvar_coef = 0.03f;
    if (q == 3) p->lr = 2e-3f;
    host[q]->adam->lr = p->lr;
    dm[q] = modeld_create(c, host[q], 0);
    alone[q] = modeld_create(c, host[q], ROWS);
  }
  for (int round = 0; round < 2; round++) {
    modeld_fit_job jobs[NJ];
    memset(jobs, 0, sizeof jobs);
    model_fit_stats sa[NJ];
    int ra[NJ];
    for (int q = 0; q < NJ; q++) {
      const int n = N[q] > 0 ? N[q] - 3 * round * (q & 1) : 0; /* the sizes change between fits */
      const float* rew = q == 3 ? dnan : dev[2];
      jobs[q] = (modeld_fit_job){dm[q], n, dev[0], dev[1], rew, dev[3], (uint32_t)(5 * q + round), {0}, 0};
      const long c0 = dx_captures_total();
      ra[q] = modeld_train(alone[q], n, dev[0], dev[1], rew, dev[3], (uint32_t)(5 * q + round), &sa[q]);
      const long want = round == 0 && n > 0 ? 3 : 0; /* a fit without rows captures nothing */
      CHECK(dx_captures_total() - c0 == want, "round %d run %d alone: %ld graphs captured (expected %ld)", round, q,
            dx_captures_total() - c0, want);
    }
    if (round == 1) modeld_fitter_set_block(f, 1);
    const long c0 = dx_captures_total();
    dx_reorder(c, 2 - round); /* the graphs replayed higher, then lower lanes first: a missing wait shows */
    modeld_fit_runs(f, jobs, NJ);
    dx_reorder(c, 0);
    CHECK(dx_captures_total() - c0 == (round == 0 ? 3 : 1), "round %d: the batched fit captured %ld graphs (expected %d)",
          round, dx_captures_total() - c0, round == 0 ? 3 : 1);
    const int want[NJ] = {MODEL_OK, MODEL_OK, MODEL_NO_DATA, MODEL_NONFINITE, MODEL_OK};
    for (int q = 0; q < NJ; q++) {
      CHECK(jobs[q].rc == want[q], "round %d run %d: status %d, expected %d", round, q, jobs[q].rc, want[q]);
      same_fit(q, &jobs[q].st, &sa[q], jobs[q].rc, ra[q], dm[q], alone[q], tol(0, 1e-4));
    }
    fprintf(stderr, "  [%s] batched fit round %d: epochs %d %d %d %d %d (run 1 stops early, run 3 NaN)\n",
            g_kind == DX_CUDA ? "cuda" : "host", round, jobs[0].st.epochs, jobs[1].st.epochs, jobs[2].st.epochs,
            jobs[3].st.epochs, jobs[4].st.epochs);
    CHECK(jobs[1].st.epochs < jobs[0].st.epochs && jobs[3].st.epochs == 1, "the runs should stop apart");
  }
  for (int q = 0; q < NJ; q++) {
    modeld_free(dm[q]);
    modeld_free(alone[q]);
    model_free(host[q]);
  }
  modeld_fitter_free(f);
  for (int i = 0; i < 4; i++) dx_free(c, dev[i]);
  dx_free(c, dnan);
  free(nan_rew);
  free_data(&t);
}

/* ---- prediction ---- */

static void test_predict(void) {
  NEED_KIND();
  const int B = 2500;
  dyn_model* m = busy_model(64, 32, 31);
  dx_ctx* c = ctx();
  model_dev* d = modeld_create(c, m, 100);
  data t = make_data(B);
  const size_t no = (size_t)ENS * B * DD;
  float *mean = malloc(no * 4), *lv = malloc(no * 4);
  model_predict(m, t.obs, t.act, B, mean, lv);
  float *dobs = up_bytes(t.obs, (size_t)B * OBS * 4), *dact = up_bytes(t.act, (size_t)B * ACT * 4);
  float *xn = dx_allocf(c, (size_t)B * IN), *dmean = dx_allocf(c, no), *dlv = dx_allocf(c, no);
  nnd_cache* cache = nnd_cache_alloc(c, &d->net, 1000);
  modeld_normalize(d, dobs, dact, B, xn);
  modeld_predict(d, xn, B, dmean, dlv, cache);
  float *gm = down_bytes(dmean, no * 4), *gl = down_bytes(dlv, no * 4);
  double em = rel_err(gm, mean, no), el = rel_err(gl, lv, no);
  CHECK(em < tol(1e-5, 1e-4) && el < tol(1e-5, 1e-4), "mean %.3g, logvar %.3g", em, el);
  /* the normalised inputs as model_normalize */
  float* xr = malloc((size_t)B * IN * 4);
  model_normalize(m, B, t.obs, t.act, xr);
  float* gx = down_bytes(xn, (size_t)B * IN * 4);
  double ex = rel_err(gx, xr, (size_t)B * IN);
  CHECK(ex < 1e-6, "normalised inputs %.3g", ex);
  fprintf(stderr, "  [%s] predict: inputs %.3g, mean %.3g, logvar %.3g\n", g_kind == DX_CUDA ? "cuda" : "host",
          ex, em, el);
  nnd_cache_free(c, cache);
  dx_free(c, dobs);
  dx_free(c, dact);
  dx_free(c, xn);
  dx_free(c, dmean);
  dx_free(c, dlv);
  free(mean);
  free(lv);
  free(gm);
  free(gl);
  free(xr);
  free(gx);
  free_data(&t);
  modeld_free(d);
  model_free(m);
}

int main(void) {
  for (g_kind = DX_HOST; g_kind <= DX_CUDA; g_kind++) {
    RUN(test_roundtrip);
    RUN(test_permutation);
    RUN(test_step);
    RUN(test_predict);
    RUN(test_fit);
    RUN(test_fit_edges);
    RUN(test_fit_runs);
  }
  dxt_destroy_all();
  return test_done();
}
