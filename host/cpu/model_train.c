/* model_train.c: the model-training procedure of the official code (docs/algorithm.md §8) on the CPU:
 * holdout split, normaliser, bootstrap, epochs with per-member shuffles, per-member early stopping
 * with snapshots, restore, elites. The random draws are listed in model.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "model.h"

/* ---- permutations ------------------------------------------------------------------------- */

void model_permutation(rng_key key, uint32_t c0, uint32_t c1, int n, const int* in, int* out,
                       uint64_t* sk, uint64_t* sk2) {
  /* sort keys: the random word in the high half, the position in the low half, so that sorting
   * the 64-bit values orders by key and then by position */
  const long nb = ((long)n + 3) / 4;
#pragma omp parallel for if (n > 16384) schedule(static)
  for (long b = 0; b < nb; b++) {
    rng_u4 w = rng_block(key, c0, c1, (uint64_t)b * 4);
    for (int k = 0; k < 4; k++) {
      long j = b * 4 + k;
      if (j < n) sk[j] = ((uint64_t)w.x[k] << 32) | (uint64_t)j;
    }
  }
  /* LSD radix sort on the high 32 bits, 8 bits a pass; the low halves are already ascending and
   * each pass is stable, so ties stay in position order */
  uint64_t *a = sk, *b = sk2;
  for (int pass = 0; pass < 4; pass++) {
    const int shift = 32 + 8 * pass;
    size_t cnt[257];
    memset(cnt, 0, sizeof cnt);
    for (int j = 0; j < n; j++) cnt[((a[j] >> shift) & 255u) + 1]++;
    for (int k = 0; k < 256; k++) cnt[k + 1] += cnt[k];
    for (int j = 0; j < n; j++) b[cnt[(a[j] >> shift) & 255u]++] = a[j];
    uint64_t* t = a;
    a = b;
    b = t;
  }
  /* four passes: the result is back in sk */
  for (int j = 0; j < n; j++) {
    const int pos = (int)(uint32_t)a[j];
    out[j] = in ? in[pos] : pos;
  }
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void* grow(void* p, size_t bytes) {
  void* q = realloc(p, bytes ? bytes : 1);
  if (!q) mbpo_fatal("out of memory (%zu bytes for the model fit)", bytes);
  return q;
}

/* Size the fit workspaces for N rows (the only allocation of a fit, before its epochs). */
static void reserve(dyn_model* m, int N) {
  if (N <= m->cap_rows) return;
  const size_t n = (size_t)N;
  m->X = grow(m->X, n * m->in_dim * sizeof(float));
  m->Y = grow(m->Y, n * m->D * sizeof(float));
  m->perm = grow(m->perm, n * sizeof(int));
  m->boot = grow(m->boot, n * m->p.ensemble * sizeof(int));
  m->itmp = grow(m->itmp, n * sizeof(int));
  m->sk = grow(m->sk, n * sizeof(uint64_t));
  m->sk2 = grow(m->sk2, n * sizeof(uint64_t));
  m->cap_rows = N;
}

/* Copy member e's weights and biases (every layer) from src to dst (both net-parameter layout). */
static void copy_member(const nn_mlp* net, float* dst, const float* src, int e) {
  for (int l = 0; l < net->nlayers; l++) {
    const size_t nw = (size_t)net->dims[l] * net->dims[l + 1], nb = (size_t)net->dims[l + 1];
    memcpy(dst + net->w_off[l] + e * nw, src + net->w_off[l] + e * nw, nw * sizeof(float));
    memcpy(dst + net->b_off[l] + e * nb, src + net->b_off[l] + e * nb, nb * sizeof(float));
  }
}

/* Rows to score: raw inputs X [n][in], targets Y [n][D]. */
typedef struct score_rows {
  const float *X, *Y;
} score_rows;

static const float* fill_rows(dyn_model* m, int r0, int n, const void* ctx) {
  const score_rows* s = ctx;
  const int I = m->in_dim;
  const float *mu = m->norm_mean, *sd = m->norm_std;
  for (int i = 0; i < n; i++) {
    const float* x = s->X + ((size_t)r0 + i) * I;
    float* o = m->px + (size_t)i * I;
    for (int j = 0; j < I; j++) o[j] = (x[j] - mu[j]) / sd[j];
  }
  return s->Y + (size_t)r0 * m->D;
}

void model_rank_members(const double* mse, int E, int* order) {
  for (int i = 0; i < E; i++) order[i] = i;
  for (int i = 1; i < E; i++) { /* insertion sort: stable */
    int k = order[i], j = i - 1;
    double v = isnan(mse[k]) ? INFINITY : mse[k];
    while (j >= 0 && (isnan(mse[order[j]]) ? INFINITY : mse[order[j]]) > v) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = k;
  }
}

int model_fit_begin(const model_params* p, int N, model_fit_stats* st) {
  memset(st, 0, sizeof *st);
  if (N < 1) {
    st->status = MODEL_NO_DATA;
    return MODEL_NO_DATA;
  }
  long nh = (long)(p->holdout_ratio * (double)N); /* Python's int(): truncation */
  if (nh > p->max_holdout) nh = p->max_holdout;
  st->n_holdout = (int)nh;
  st->n_train = N - (int)nh;
  return MODEL_OK;
}

void model_stopper_begin(model_stopper* s, int E, model_fit_stats* st) {
  for (int e = 0; e < E; e++) {
    s->best[e] = 1e10;
    st->best_epoch[e] = -1;
    st->best_mse[e] = NAN;
  }
  s->since = 0;
}

int model_stopper_epoch(model_stopper* s, const model_params* p, int epoch, const double* mse,
                        model_fit_stats* st, int* snap) {
  int updated = 0;
  for (int e = 0; e < p->ensemble; e++) {
    const double imp = (s->best[e] - mse[e]) / s->best[e];
    snap[e] = imp > p->improvement;
    if (snap[e]) {
      s->best[e] = mse[e];
      st->best_mse[e] = mse[e];
      st->best_epoch[e] = epoch;
      updated = 1;
    }
  }
  s->since = updated ? 0 : s->since + 1;
  return s->since > p->patience || (p->max_epochs > 0 && st->epochs >= p->max_epochs);
}

void model_choose_elites(const model_params* p, model_fit_stats* st, int* elites) {
  const int E = p->ensemble;
  int order[MODEL_MAX_ENSEMBLE];
  model_rank_members(st->holdout_mse, E, order);
  st->n_elites = p->elites;
  st->elite_mse = 0.0;
  for (int i = 0; i < E; i++) {
    elites[i] = order[i];
    st->elites[i] = order[i];
  }
  for (int i = 0; i < p->elites; i++) st->elite_mse += st->holdout_mse[order[i]] / p->elites;
}

/* ---- the procedure ------------------------------------------------------------------------ */

int model_train(dyn_model* m, int N, const float* obs, const float* act, const float* rew,
                const float* next_obs, uint32_t fit, model_fit_stats* st) {
  const double t0 = now_s();
  const model_params* p = &m->p;
  const int E = p->ensemble, I = m->in_dim, D = m->D, O = m->obs_dim, A = m->act_dim;
  model_fit_stats S;
  if (model_fit_begin(p, N, &S) != MODEL_OK) {
    if (st) *st = S;
    return S.status;
  }

  /* 1. split: a random permutation; the first num_holdout rows are held out */
  const int n_ho = S.n_holdout, n_tr = S.n_train;
  reserve(m, N);
  const rng_key k_split = {m->key.seed, RNG_MODEL_SPLIT};
  const rng_key k_boot = {m->key.seed, RNG_MODEL_BOOT};
  const rng_key k_shuf = {m->key.seed, RNG_MODEL_SHUFFLE};
  model_permutation(k_split, fit, 0, N, NULL, m->perm, m->sk, m->sk2);
#pragma omp parallel for if ((long)N * I > 65536) schedule(static)
  for (int i = 0; i < N; i++) {
    const size_t g = (size_t)m->perm[i];
    float* x = m->X + (size_t)i * I;
    float* y = m->Y + (size_t)i * D;
    memcpy(x, obs + g * O, (size_t)O * sizeof(float));
    memcpy(x + O, act + g * A, (size_t)A * sizeof(float));
    y[0] = rew[g];
    for (int k = 0; k < O; k++) y[1 + k] = next_obs[g * O + k] - obs[g * O + k];
  }
  const float* Xtr = m->X + (size_t)n_ho * I;
  const float* Ytr = m->Y + (size_t)n_ho * D;

  /* 2. the normaliser, from the training split */
  model_fit_normalizer_rows(m, n_tr, Xtr);

  /* 3. bootstrap: member e's index array, N_train draws with replacement */
#pragma omp parallel for collapse(2) if ((long)E * n_tr > 65536) schedule(static)
  for (int e = 0; e < E; e++)
    for (int j = 0; j < n_tr; j++)
      m->boot[(size_t)e * n_tr + j] = (int)rng_index(k_boot, fit, (uint32_t)e, (uint64_t)j, (uint32_t)n_tr);

  /* the rows that early stopping and the elite choice score: the holdout, or with no holdout
   * rows the training split */
  const score_rows score = n_ho > 0 ? (score_rows){m->X, m->Y} : (score_rows){Xtr, Ytr};
  const int n_score = n_ho > 0 ? n_ho : n_tr;

  /* 4. epochs with per-member early stopping */
  const int B = p->batch, nsteps = (n_tr + B - 1) / B;
  double mse[MODEL_MAX_ENSEMBLE];
  int snap[MODEL_MAX_ENSEMBLE];
  model_stopper stop;
  model_stopper_begin(&stop, E, &S);
  for (int epoch = 0;; epoch++) {
    double lsum = 0.0;
    for (int j = 0; j < nsteps; j++) {
      const int r0 = j * B, nb = n_tr - r0 < B ? n_tr - r0 : B;
      /* gather [E][nb] rows, normalising the inputs */
#pragma omp parallel for collapse(2) if ((long)E * nb * I > 65536) schedule(static)
      for (int e = 0; e < E; e++)
        for (int r = 0; r < nb; r++) {
          const size_t g = (size_t)m->boot[(size_t)e * n_tr + r0 + r];
          const float* x = Xtr + g * I;
          float* xo = m->xb + ((size_t)e * nb + r) * I;
          for (int k = 0; k < I; k++) xo[k] = (x[k] - m->norm_mean[k]) / m->norm_std[k];
          memcpy(m->yb + ((size_t)e * nb + r) * D, Ytr + g * D, (size_t)D * sizeof(float));
        }
      lsum += model_step(m, nb, m->xb, m->yb);
    }
    S.steps += nsteps;
    S.epochs = epoch + 1;
    S.train_loss = lsum / nsteps;

    /* shuffle each member's index array independently */
    for (int e = 0; e < E; e++) {
      int* idx = m->boot + (size_t)e * n_tr;
      memcpy(m->itmp, idx, (size_t)n_tr * sizeof(int));
      model_permutation(k_shuf, fit, (uint32_t)(epoch * E + e), n_tr, m->itmp, idx, m->sk, m->sk2);
    }
    if (!isfinite(S.train_loss)) {
      S.status = MODEL_NONFINITE;
      break;
    }

    /* early stopping: a member improving by more than `improvement` (relative) is snapshotted */
    model_mse_rows(m, n_score, fill_rows, &score, mse);
    const int done = model_stopper_epoch(&stop, p, epoch, mse, &S, snap);
    for (int e = 0; e < E; e++)
      if (snap[e]) copy_member(&m->net, m->snap, m->params, e);
    if (done) break;
  }

  /* 5. each member back to its own snapshot (weights and biases; the bounds, the normaliser and
   * the Adam state keep their end values) */
  for (int e = 0; e < E; e++)
    if (S.best_epoch[e] >= 0) copy_member(&m->net, m->params, m->snap, e);

  /* 6. holdout MSE and elites */
  model_mse_rows(m, n_score, fill_rows, &score, S.holdout_mse);
  model_choose_elites(p, &S, m->elites);
  S.seconds = now_s() - t0;
  if (st) *st = S;
  return S.status;
}
