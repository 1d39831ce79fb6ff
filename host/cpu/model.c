/* model.c: the ensemble dynamics model on the CPU (model.h): creation, the loss with the soft
 * log-variance bounds and its gradient, the normaliser, prediction. The training procedure is in
 * model_train.c. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nn_fused.h"
#include "softclamp.h"

/* Elementwise loops longer than this run OpenMP-parallel. */
#define MODEL_OMP_MIN 16384
/* Outputs per piece of a row in the loss (stack buffers); Hopper's D = 12 is one piece. */
#define NLL_PIECE 64
/* Rows per share of model_predict's output pass */
#define PREDICT_ROWS 64

model_params model_params_from_config(const mbpo_config* c) {
  model_params p;
  memset(&p, 0, sizeof p);
  p.ensemble = (int)c->model_ensemble;
  p.elites = (int)c->model_elites;
  p.hidden = (int)c->model_hidden;
  p.layers = (int)c->model_layers;
  p.batch = (int)c->model_batch;
  p.lr = (float)c->model_lr;
  p.n_weight_decay = c->model_weight_decay.n;
  for (int i = 0; i < c->model_weight_decay.n && i < NN_MAX_LAYERS; i++)
    p.weight_decay[i] = (float)c->model_weight_decay.v[i];
  p.logvar_coef = (float)c->model_logvar_coef;
  p.holdout_ratio = c->model_holdout_ratio;
  p.max_holdout = (int)c->model_max_holdout;
  p.patience = (int)c->model_patience;
  p.improvement = c->model_improvement;
  p.max_epochs = (int)c->model_max_epochs;
  p.predict_chunk = 0;
  return p;
}

static void check_params(int obs_dim, int act_dim, const model_params* p) {
  if (obs_dim < 1 || act_dim < 1) mbpo_fatal("model: bad dimensions obs %d, act %d", obs_dim, act_dim);
  if (p->ensemble < 1 || p->ensemble > MODEL_MAX_ENSEMBLE)
    mbpo_fatal("model.ensemble = %d: must be in [1, %d]", p->ensemble, MODEL_MAX_ENSEMBLE);
  if (p->elites < 1 || p->elites > p->ensemble)
    mbpo_fatal("model.elites = %d: must be in [1, model.ensemble = %d]", p->elites, p->ensemble);
  if (p->layers < 1 || p->layers + 1 > NN_MAX_LAYERS)
    mbpo_fatal("model.layers = %d: must be in [1, %d]", p->layers, NN_MAX_LAYERS - 1);
  if (p->hidden < 1) mbpo_fatal("model.hidden = %d: must be positive", p->hidden);
  if (p->batch < 1) mbpo_fatal("model.batch = %d: must be positive", p->batch);
  if (p->n_weight_decay != p->layers + 1)
    mbpo_fatal("model.weight_decay has %d values; model.layers = %d needs %d (one per hidden layer, "
               "then the output layer)",
               p->n_weight_decay, p->layers, p->layers + 1);
  if (!(p->lr > 0)) mbpo_fatal("model.lr = %g: must be positive", (double)p->lr);
  if (!(p->holdout_ratio >= 0 && p->holdout_ratio < 1))
    mbpo_fatal("model.holdout_ratio = %g: must be in [0, 1)", p->holdout_ratio);
  if (p->max_holdout < 0 || p->patience < 0 || p->max_epochs < 0 || p->predict_chunk < 0)
    mbpo_fatal("model: negative max_holdout, patience, max_epochs or predict_chunk");
}

dyn_model* model_create(int obs_dim, int act_dim, const model_params* p, rng_key key) {
  check_params(obs_dim, act_dim, p);
  dyn_model* m = calloc(1, sizeof *m);
  if (!m) mbpo_fatal("out of memory");
  m->p = *p;
  m->obs_dim = obs_dim;
  m->act_dim = act_dim;
  m->in_dim = obs_dim + act_dim;
  m->D = obs_dim + 1;
  m->key = key;
  const int E = p->ensemble, L = p->layers + 1, D = m->D;
  int dims[NN_MAX_LAYERS + 1];
  dims[0] = m->in_dim;
  for (int l = 1; l < L; l++) dims[l] = p->hidden;
  dims[L] = 2 * D;
  m->net = nn_mlp_make(E, L, dims, NN_SWISH);
  m->nparams = m->net.nparams + 2 * (size_t)D;
  m->params = nn_alloc(m->nparams);
  m->max_lv = m->params + m->net.nparams;
  m->min_lv = m->max_lv + D;
  m->grads = nn_alloc(m->nparams);
  m->adam = nn_adam_alloc(m->nparams, p->lr);
  m->norm_mean = nn_alloc((size_t)m->in_dim);
  m->norm_std = nn_alloc((size_t)m->in_dim);
  for (int j = 0; j < m->in_dim; j++) m->norm_std[j] = 1.0f;
  for (int i = 0; i < E; i++) m->elites[i] = i;

  rng_key ik = {key.seed, RNG_INIT};
  nn_init_truncnormal(&m->net, m->params, ik, MODEL_NET_ID);
  for (int d = 0; d < D; d++) {
    m->max_lv[d] = 0.5f;
    m->min_lv[d] = -10.0f;
  }

  const size_t EB = (size_t)E * p->batch;
  m->tcache = nn_cache_alloc(&m->net, p->batch);
  m->xb = nn_alloc(EB * m->in_dim);
  m->yb = nn_alloc(EB * D);
  m->out = nn_alloc(EB * 2 * D);
  m->dout = nn_alloc(EB * 2 * D);
  m->gbnd = nn_alloc(EB * 2 * D);
  m->snap = nn_alloc(m->net.nparams);
  m->chunk = p->predict_chunk > 0 ? p->predict_chunk : MODEL_PREDICT_CHUNK;
  m->pcache = nn_cache_alloc(&m->net, m->chunk);
  m->px = nn_alloc((size_t)m->chunk * m->in_dim);
  m->py = nn_alloc((size_t)E * m->chunk * 2 * D);
  m->pt = nn_alloc((size_t)m->chunk * D);
  size_t nrow = EB > (size_t)m->chunk ? EB : (size_t)m->chunk;
  m->rowsum = calloc(nrow, sizeof(double));
  if (!m->rowsum) mbpo_fatal("out of memory");
  return m;
}

void model_free(dyn_model* m) {
  if (!m) return;
  free(m->params);
  free(m->grads);
  nn_adam_free(m->adam);
  free(m->norm_mean);
  free(m->norm_std);
  nn_cache_free(m->tcache);
  free(m->xb);
  free(m->yb);
  free(m->out);
  free(m->dout);
  free(m->gbnd);
  free(m->rowsum);
  free(m->snap);
  nn_cache_free(m->pcache);
  free(m->px);
  free(m->py);
  free(m->pt);
  free(m->X);
  free(m->Y);
  free(m->perm);
  free(m->boot);
  free(m->itmp);
  free(m->sk);
  free(m->sk2);
  free(m);
}

const int* model_elites(const dyn_model* m, int* n) {
  if (n) *n = m->p.elites;
  return m->elites;
}

/* ---- the loss ----------------------------------------------------------------------------- */

/* Blocks b0 .. b0 + 7 of sum_squares side by side, each chain summed in its own scalar order (the
 * same bits): one dependent chain of double adds per block waits 4 cycles an element, 8 chains
 * interleave. Kept scalar (no gathers: they cost more than the chains). */
__attribute__((optimize("no-tree-vectorize"))) static void sum_squares8(const float* x, long n, long per,
                                                                         int b0, double* part) {
  long len[8], common = per;
  for (int k = 0; k < 8; k++) {
    const long i0 = (b0 + k) * per, i1 = (b0 + k + 1) * per < n ? (b0 + k + 1) * per : n;
    len[k] = i1 > i0 ? i1 - i0 : 0;
    if (len[k] < common) common = len[k];
  }
  const float* p = x + (long)b0 * per;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0;
  for (long i = 0; i < common; i++) {
    const double v0 = p[i], v1 = p[per + i], v2 = p[2 * per + i], v3 = p[3 * per + i];
    const double v4 = p[4 * per + i], v5 = p[5 * per + i], v6 = p[6 * per + i], v7 = p[7 * per + i];
    s0 += v0 * v0, s1 += v1 * v1, s2 += v2 * v2, s3 += v3 * v3;
    s4 += v4 * v4, s5 += v5 * v5, s6 += v6 * v6, s7 += v7 * v7;
  }
  double s[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
  for (int k = 0; k < 8; k++) {
    const float* xb = p + (long)k * per;
    for (long i = common; i < len[k]; i++) s[k] += (double)xb[i] * (double)xb[i];
    part[b0 + k] = s[k];
  }
}

/* Blocks of Σ x_i² over n floats (NB_SQ fixed blocks, summed in order afterwards: the same sums for
 * any thread count), shared out among the threads of the caller's parallel region (nowait). */
enum { NB_SQ = 64 };
static void sum_squares_for(const float* x, long n, double* part) {
  const long per = (n + NB_SQ - 1) / NB_SQ;
#pragma omp for schedule(static) nowait
  for (int g = 0; g < NB_SQ / 8; g++) sum_squares8(x, n, per, 8 * g, part);
}

double model_loss(dyn_model* m, int B, const float* x, const float* y, float* grads) {
  const int E = m->p.ensemble, D = m->D, D2 = 2 * D, L = m->net.nlayers;
  if (B < 1 || B > m->p.batch) mbpo_fatal("model_loss: %d rows (1 to %d allowed)", B, m->p.batch);
  nn_forward(&m->net, m->params, B, x, 0, m->tcache, m->out);
  const float* hi = m->max_lv;
  const float* lo = m->min_lv;
  const float s = 1.0f / (float)(B * D); /* the mean over rows and dims */
  const long n = (long)E * B;
  /* Row r (member r / B, row r % B): its data term into rowsum[r]; the gradient wrt its outputs
   * into dout; its share of the bound gradients into gbnd[r] ([dmax_lv | dmin_lv]). Summed over
   * rows afterwards, in order, so that results do not depend on the thread count.
   * One parallel region (each costs a thread wake-up, some 30 us on a 2-vCPU VM) also sums the
   * weight-decay blocks and zeroes the gradients for the backward. */
  double part[NN_MAX_LAYERS][NB_SQ];
#pragma omp parallel if (n * D > MODEL_OMP_MIN)
  {
#pragma omp for schedule(static) nowait
    for (long r = 0; r < n; r++) {
      const float* o = m->out + r * D2;
      float sq[NLL_PIECE], lv[NLL_PIECE];
      double acc = 0.0;
      for (int d0 = 0; d0 < D; d0 += NLL_PIECE) { /* pieces of a row: dims beyond NLL_PIECE (big bodies) */
        const int k = D - d0 < NLL_PIECE ? D - d0 : NLL_PIECE;
        float* g = m->dout + r * D2 + d0;
        float* gb = m->gbnd + r * D2 + d0;
        nll_row(o + d0, o + D + d0, y + r * D + d0, hi + d0, lo + d0, k, s, sq, lv, grads ? g : NULL, g + D, gb,
                gb + D);
        for (int d = 0; d < k; d++) acc += (double)sq[d] + (double)lv[d]; /* in order */
      }
      m->rowsum[r] = acc;
    }
    for (int l = 0; l < L; l++)
      sum_squares_for(m->params + m->net.w_off[l], (long)E * m->net.dims[l] * m->net.dims[l + 1], part[l]);
    if (grads) {
      const long nb = ((long)m->nparams + 16383) / 16384;
#pragma omp for schedule(static) nowait
      for (long k = 0; k < nb; k++) {
        const size_t i0 = (size_t)k * 16384, i1 = i0 + 16384 < m->nparams ? i0 + 16384 : m->nparams;
        nn_zero(grads + i0, i1 - i0);
      }
    }
  }
  double data = 0.0;
  for (long r = 0; r < n; r++) data += m->rowsum[r];
  double loss = data * (double)s;

  /* weight decay: Σ_l wd_l ½ Σ W_l², over the weights of every member */
  for (int l = 0; l < L; l++) {
    double sq = 0.0;
    for (int k = 0; k < NB_SQ; k++) sq += part[l][k];
    loss += 0.5 * (double)m->p.weight_decay[l] * sq;
  }
  /* the bound term: coef (Σ max_lv - Σ min_lv) */
  double bsum = 0.0;
  for (int d = 0; d < D; d++) bsum += (double)hi[d] - (double)lo[d];
  loss += (double)m->p.logvar_coef * bsum;

  if (grads) {
    /* the swish net's backward (nn_backward's for it), the weight decay added in its tasks */
    nnf_backward_decay(&m->net, m->params, m->tcache, m->dout, grads, NULL, m->p.weight_decay);
    float* g_hi = grads + m->net.nparams;
    float* g_lo = g_hi + D;
    for (int d = 0; d < D; d++) {
      double sh = 0.0, sl = 0.0;
      for (long r = 0; r < n; r++) {
        sh += m->gbnd[r * D2 + d];
        sl += m->gbnd[r * D2 + D + d];
      }
      g_hi[d] = (float)(sh + (double)m->p.logvar_coef);
      g_lo[d] = (float)(sl - (double)m->p.logvar_coef);
    }
  }
  return loss;
}

double model_step(dyn_model* m, int B, const float* x, const float* y) {
  double loss = model_loss(m, B, x, y, m->grads);
  nn_adam_step(m->adam, m->params, m->grads);
  return loss;
}

/* ---- normaliser --------------------------------------------------------------------------- */

/* Mean and population std (ddof 0) of a column of n values at stride `stride`, two passes in
 * double; a std below 1e-12 becomes 1. */
static void fit_column(const float* col, int stride, int n, float* mean, float* std) {
  double s = 0.0;
  for (int i = 0; i < n; i++) s += col[(size_t)i * stride];
  const double mu = n > 0 ? s / n : 0.0;
  double v = 0.0;
  for (int i = 0; i < n; i++) {
    double d = col[(size_t)i * stride] - mu;
    v += d * d;
  }
  const double sd = n > 0 ? sqrt(v / n) : 0.0;
  *mean = (float)mu;
  *std = sd < 1e-12 ? 1.0f : (float)sd;
}

void model_fit_normalizer_rows(dyn_model* m, int n, const float* X) {
#pragma omp parallel for if ((long)n * m->in_dim > MODEL_OMP_MIN) schedule(static)
  for (int j = 0; j < m->in_dim; j++)
    fit_column(X + j, m->in_dim, n, &m->norm_mean[j], &m->norm_std[j]);
}

void model_fit_normalizer(dyn_model* m, int N, const float* obs, const float* act) {
  const int O = m->obs_dim, A = m->act_dim;
#pragma omp parallel for if ((long)N * m->in_dim > MODEL_OMP_MIN) schedule(static)
  for (int j = 0; j < m->in_dim; j++) {
    if (j < O) fit_column(obs + j, O, N, &m->norm_mean[j], &m->norm_std[j]);
    else fit_column(act + (j - O), A, N, &m->norm_mean[j], &m->norm_std[j]);
  }
}

void model_normalize(const dyn_model* m, int N, const float* obs, const float* act, float* xn) {
  const int O = m->obs_dim, A = m->act_dim, I = m->in_dim;
  const float *mu = m->norm_mean, *sd = m->norm_std;
#pragma omp parallel for if ((long)N * I > MODEL_OMP_MIN) schedule(static)
  for (int i = 0; i < N; i++) {
    const float* s = obs + (size_t)i * O;
    const float* a = act + (size_t)i * A;
    float* x = xn + (size_t)i * I;
    for (int j = 0; j < O; j++) x[j] = (s[j] - mu[j]) / sd[j];
    for (int j = 0; j < A; j++) x[O + j] = (a[j] - mu[O + j]) / sd[O + j];
  }
}

/* ---- prediction --------------------------------------------------------------------------- */

/* Forward of n <= chunk normalised rows in m->px into m->py [E][n][2 D]. */
static void forward_chunk(dyn_model* m, int n) {
  nn_forward_chunked(&m->net, m->params, n, m->px, 1, m->pcache, m->py); /* nothing kept */
}

void model_predict(dyn_model* m, const float* obs, const float* act, int B, float* mean,
                   float* logvar) {
  const int E = m->p.ensemble, D = m->D, D2 = 2 * D, O = m->obs_dim, A = m->act_dim;
  for (int r0 = 0; r0 < B; r0 += m->chunk) {
    const int n = B - r0 < m->chunk ? B - r0 : m->chunk;
    model_normalize(m, n, obs + (size_t)r0 * O, act + (size_t)r0 * A, m->px);
    forward_chunk(m, n);
    /* member e's rows in blocks of PREDICT_ROWS: means copied, log-variances clamped */
    const int nb = (n + PREDICT_ROWS - 1) / PREDICT_ROWS;
#pragma omp parallel for if ((long)E * n * D > MODEL_OMP_MIN) schedule(static)
    for (int k = 0; k < E * nb; k++) {
      const int e = k / nb, i0 = (k % nb) * PREDICT_ROWS, i1 = i0 + PREDICT_ROWS < n ? i0 + PREDICT_ROWS : n;
      const float* o = m->py + ((size_t)e * n + i0) * D2;
      const size_t at = ((size_t)e * B + r0 + i0) * D;
      if (mean)
        for (int i = 0; i < i1 - i0; i++) memcpy(mean + at + (size_t)i * D, o + (size_t)i * D2, sizeof(float) * D);
      if (logvar) softclamp_rows(o + D, D2, m->max_lv, m->min_lv, D, i1 - i0, logvar + at, D);
    }
  }
}

/* Per-row sums are added in row order, so the result does not depend on the thread count. */
void model_mse_rows(dyn_model* m, int N, model_fill_fn fill, const void* ctx, double* mse) {
  const int E = m->p.ensemble, D = m->D, D2 = 2 * D;
  double acc[MODEL_MAX_ENSEMBLE] = {0};
  for (int r0 = 0; r0 < N; r0 += m->chunk) {
    const int n = N - r0 < m->chunk ? N - r0 : m->chunk;
    const float* y = fill(m, r0, n, ctx);
    forward_chunk(m, n);
    for (int e = 0; e < E; e++) {
      const float* o = m->py + (size_t)e * n * D2;
#pragma omp parallel for if ((long)n * D > MODEL_OMP_MIN) schedule(static)
      for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int d = 0; d < D; d++) {
          double df = (double)o[(size_t)i * D2 + d] - (double)y[(size_t)i * D + d];
          s += df * df;
        }
        m->rowsum[i] = s;
      }
      for (int i = 0; i < n; i++) acc[e] += m->rowsum[i]; /* in order: deterministic */
    }
  }
  for (int e = 0; e < E; e++) mse[e] = N > 0 ? acc[e] / ((double)N * D) : NAN;
}

typedef struct raw_rows {
  const float *obs, *act, *rew, *next_obs;
  float* y; /* [chunk][D] */
} raw_rows;

static const float* fill_raw(dyn_model* m, int r0, int n, const void* ctx) {
  const raw_rows* r = ctx;
  const int O = m->obs_dim, A = m->act_dim, D = m->D;
  model_normalize(m, n, r->obs + (size_t)r0 * O, r->act + (size_t)r0 * A, m->px);
  for (int i = 0; i < n; i++) {
    const size_t g = (size_t)r0 + i;
    r->y[(size_t)i * D] = r->rew[g];
    for (int k = 0; k < O; k++)
      r->y[(size_t)i * D + 1 + k] = r->next_obs[g * O + k] - r->obs[g * O + k];
  }
  return r->y;
}

void model_holdout_mse(dyn_model* m, int N, const float* obs, const float* act, const float* rew,
                       const float* next_obs, double* mse) {
  raw_rows r = {obs, act, rew, next_obs, m->pt};
  model_mse_rows(m, N, fill_raw, &r, mse);
}

/* ---- tensors ------------------------------------------------------------------------------ */

static void put(model_tensor* t, const char* name, float* data, int ndim, long a, long b, long c) {
  snprintf(t->name, sizeof t->name, "%s", name);
  t->data = data;
  t->ndim = ndim;
  t->shape[0] = a;
  t->shape[1] = b;
  t->shape[2] = c;
}

int model_tensors(dyn_model* m, model_tensor* out) {
  int k = 0;
  const long E = m->p.ensemble;
  for (int l = 0; l < m->net.nlayers; l++) {
    char nm[16];
    snprintf(nm, sizeof nm, "W%d", l);
    put(&out[k++], nm, m->params + m->net.w_off[l], 3, E, m->net.dims[l], m->net.dims[l + 1]);
    snprintf(nm, sizeof nm, "b%d", l);
    put(&out[k++], nm, m->params + m->net.b_off[l], 2, E, m->net.dims[l + 1], 0);
  }
  put(&out[k++], "max_logvar", m->max_lv, 1, m->D, 0, 0);
  put(&out[k++], "min_logvar", m->min_lv, 1, m->D, 0, 0);
  put(&out[k++], "norm_mean", m->norm_mean, 1, m->in_dim, 0, 0);
  put(&out[k++], "norm_std", m->norm_std, 1, m->in_dim, 0, 0);
  put(&out[k++], "adam_m", m->adam->m, 1, (long)m->nparams, 0, 0);
  put(&out[k++], "adam_v", m->adam->v, 1, (long)m->nparams, 0, 0);
  return k;
}
