/* test_model.c: the ensemble dynamics model (model.h): the loss and its gradient against finite
 * differences of an independent double-precision reference, the normaliser, the holdout split,
 * bootstrap and shuffles (sizes and determinism), fitting a synthetic system with known mean and
 * noise, the early-stopping rule, per-member snapshots and the elite choice, prediction. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rng.h"
#include "softclamp.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static model_params small_params(int E, int elites, int hidden, int layers, int batch) {
  model_params p;
  memset(&p, 0, sizeof p);
  p.ensemble = E;
  p.elites = elites;
  p.hidden = hidden;
  p.layers = layers;
  p.batch = batch;
  p.lr = 1e-3f;
  p.n_weight_decay = layers + 1;
  static const float wd[] = {2.5e-5f, 5e-5f, 7.5e-5f, 7.5e-5f, 1e-4f, 1e-4f, 1e-4f, 1e-4f};
  for (int l = 0; l <= layers; l++) p.weight_decay[l] = wd[l < 4 ? l : 4];
  p.logvar_coef = 0.01f;
  p.holdout_ratio = 0.2;
  p.max_holdout = 5000;
  p.patience = 5;
  p.improvement = 0.01;
  p.max_epochs = 0;
  return p;
}

static float nrm(uint32_t seed, uint32_t c1, uint64_t n) {
  return rng_normal((rng_key){seed, RNG_TEST}, 1, c1, n);
}

/* A synthetic system: s ~ N(0, 1), a ~ U(-1, 1); s' = s + A [s, a] + 0.3 sin(s0) + σ_s ε;
 * r = w . [s, a] + σ_r ε. Dimensions obs 3, act 2. mean_r / mean_ds: the noiseless targets. */
enum { SO = 3, SA = 2, SD = SO + 1 };
static const double SIG[SD] = {0.05, 0.1, 0.02, 0.2}; /* reward, Δs0, Δs1, Δs2 */
static const double AM[SO][SO + SA] = {
    {0.1, -0.2, 0.0, 0.5, 0.0}, {0.0, 0.1, 0.3, 0.0, -0.4}, {-0.3, 0.0, 0.1, 0.2, 0.2}};
static const double WR[SO + SA] = {0.5, -0.3, 0.2, 0.1, -0.6};

static void synth_mean(const float* s, const float* a, double* mu) {
  double x[SO + SA];
  for (int k = 0; k < SO; k++) x[k] = s[k];
  for (int k = 0; k < SA; k++) x[SO + k] = a[k];
  mu[0] = 0.0;
  for (int k = 0; k < SO + SA; k++) mu[0] += WR[k] * x[k];
  for (int i = 0; i < SO; i++) {
    mu[1 + i] = i == 0 ? 0.3 * sin(x[0]) : 0.0;
    for (int k = 0; k < SO + SA; k++) mu[1 + i] += AM[i][k] * x[k];
  }
}

static void synth(uint32_t seed, int N, float* obs, float* act, float* rew, float* nxt) {
  for (int i = 0; i < N; i++) {
    float* s = obs + (size_t)i * SO;
    float* a = act + (size_t)i * SA;
    for (int k = 0; k < SO; k++) s[k] = nrm(seed, 0, (uint64_t)i * SO + k);
    for (int k = 0; k < SA; k++)
      a[k] = 2.0f * rng_uniform((rng_key){seed, RNG_TEST}, 2, 0, (uint64_t)i * SA + k) - 1.0f;
    double mu[SD];
    synth_mean(s, a, mu);
    rew[i] = (float)(mu[0] + SIG[0] * nrm(seed, 3, (uint64_t)i * SD));
    for (int k = 0; k < SO; k++)
      nxt[(size_t)i * SO + k] = (float)(s[k] + mu[1 + k] + SIG[1 + k] * nrm(seed, 3, (uint64_t)i * SD + 1 + k));
  }
}

typedef struct data {
  int N;
  float *obs, *act, *rew, *nxt;
} data;

static data data_make(uint32_t seed, int N) {
  data d = {N, malloc(sizeof(float) * N * SO), malloc(sizeof(float) * N * SA), malloc(sizeof(float) * N),
            malloc(sizeof(float) * N * SO)};
  synth(seed, N, d.obs, d.act, d.rew, d.nxt);
  return d;
}

static void data_free(data* d) {
  free(d->obs);
  free(d->act);
  free(d->rew);
  free(d->nxt);
}

/* ---- the loss in double: an independent reference ---------------------------------------- */

static double ref_loss(const dyn_model* m, const double* P, int B, const float* x, const float* y) {
  const nn_mlp* net = &m->net;
  const int E = net->E, L = net->nlayers, D = m->D;
  const double* hi = P + net->nparams;
  const double* lo = hi + D;
  double h[2][512];
  double data = 0.0;
  for (int e = 0; e < E; e++)
    for (int b = 0; b < B; b++) {
      const float* xr = x + ((size_t)e * B + b) * net->dims[0];
      for (int k = 0; k < net->dims[0]; k++) h[0][k] = xr[k];
      int cur = 0;
      for (int l = 0; l < L; l++) {
        const int din = net->dims[l], dout = net->dims[l + 1];
        const double* W = P + net->w_off[l] + (size_t)e * din * dout;
        const double* bb = P + net->b_off[l] + (size_t)e * dout;
        for (int j = 0; j < dout; j++) {
          double z = bb[j];
          for (int k = 0; k < din; k++) z += h[cur][k] * W[(size_t)k * dout + j];
          h[1 - cur][j] = l < L - 1 ? z / (1.0 + exp(-z)) : z;
        }
        cur = 1 - cur;
      }
      const float* t = y + ((size_t)e * B + b) * D;
      for (int d = 0; d < D; d++) {
        double mu = h[cur][d], z = h[cur][D + d];
        double lv = hi[d] - log1p(exp(hi[d] - z));
        lv = lo[d] + log1p(exp(lv - lo[d]));
        data += (mu - t[d]) * (mu - t[d]) * exp(-lv) + lv;
      }
    }
  double loss = data / ((double)B * D);
  for (int l = 0; l < L; l++) {
    const size_t nw = (size_t)E * net->dims[l] * net->dims[l + 1];
    double ss = 0.0;
    for (size_t i = 0; i < nw; i++) ss += P[net->w_off[l] + i] * P[net->w_off[l] + i];
    loss += 0.5 * m->p.weight_decay[l] * ss;
  }
  for (int d = 0; d < D; d++) loss += m->p.logvar_coef * (hi[d] - lo[d]);
  return loss;
}

static void test_gradient(void) {
  model_params p = small_params(3, 2, 6, 2, 5);
  p.weight_decay[0] = 0.05f; /* large decays and coefficient so that their gradients show */
  p.weight_decay[1] = 0.1f;
  p.weight_decay[2] = 0.2f;
  p.logvar_coef = 0.3f;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){3, 0});
  const int E = 3, B = 5, I = SO + SA, D = SD;
  /* spread the raw log-variances over both bounds: bounds near 0, output layer scaled up */
  for (int d = 0; d < D; d++) {
    m->max_lv[d] = 0.2f + 0.1f * d;
    m->min_lv[d] = -0.6f - 0.1f * d;
  }
  const nn_mlp* net = &m->net;
  const int Lo = net->nlayers - 1;
  for (size_t i = 0; i < (size_t)E * net->dims[Lo] * net->dims[Lo + 1]; i++) m->params[net->w_off[Lo] + i] *= 6.0f;
  for (int l = 0; l < net->nlayers; l++) /* non-zero biases */
    for (size_t i = 0; i < (size_t)E * net->dims[l + 1]; i++) m->params[net->b_off[l] + i] = 0.1f * nrm(9, (uint32_t)l, i);
  float x[3 * 5 * 5], y[3 * 5 * 4];
  for (int i = 0; i < E * B * I; i++) x[i] = nrm(4, 0, (uint64_t)i);
  for (int i = 0; i < E * B * D; i++) y[i] = 0.7f * nrm(4, 1, (uint64_t)i);

  double loss = model_loss(m, B, x, y, m->grads);
  double* P = malloc(sizeof(double) * m->nparams);
  for (size_t i = 0; i < m->nparams; i++) P[i] = m->params[i];
  const double ref = ref_loss(m, P, B, x, y);
  CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "loss %.9g, double reference %.9g", loss, ref);

  /* the clamps are both active somewhere: some entries near each bound */
  int near_hi = 0, near_lo = 0;
  for (int i = 0; i < E * B; i++)
    for (int d = 0; d < D; d++) {
      float z = m->out[i * 2 * D + D + d];
      near_hi += z > m->max_lv[d] - 0.5f;
      near_lo += z < m->min_lv[d] + 0.5f;
    }
  CHECK(near_hi > 5 && near_lo > 5, "raw log-variances near max %d, near min %d", near_hi, near_lo);

  /* coordinates: 6 of each weight and bias tensor, and every bound */
  size_t idx[128];
  int n = 0;
  for (int l = 0; l < net->nlayers; l++) {
    size_t nw = (size_t)E * net->dims[l] * net->dims[l + 1], nb = (size_t)E * net->dims[l + 1];
    for (int k = 0; k < 6; k++) {
      idx[n++] = net->w_off[l] + rng_index((rng_key){5, RNG_TEST}, (uint32_t)l, 0, (uint64_t)k, (uint32_t)nw);
      idx[n++] = net->b_off[l] + rng_index((rng_key){5, RNG_TEST}, (uint32_t)l, 1, (uint64_t)k, (uint32_t)nb);
    }
  }
  for (int d = 0; d < 2 * D; d++) idx[n++] = net->nparams + (size_t)d;
  int bad = 0;
  double worst = 0.0;
  for (int k = 0; k < n; k++) {
    const size_t i = idx[k];
    const double h = 1e-5, p0 = P[i];
    P[i] = p0 + h;
    double lp = ref_loss(m, P, B, x, y);
    P[i] = p0 - h;
    double lm = ref_loss(m, P, B, x, y);
    P[i] = p0;
    const double fd = (lp - lm) / (2 * h), g = m->grads[i];
    const double err = fabs(g - fd) / (fabs(fd) + 1e-3);
    if (err > worst) worst = err;
    if (fabs(g - fd) > 2e-4 * fabs(fd) + 2e-6) {
      bad++;
      CHECK(0, "param %zu: analytic %.8g, finite difference %.8g", i, g, fd);
    }
  }
  CHECK(bad == 0, "%d of %d coordinates disagree", bad, n);
  /* the bound gradients carry the soft-clamp part, not only the coefficient */
  double moved = 0.0;
  for (int d = 0; d < 2 * D; d++) moved += fabs(fabs(m->grads[net->nparams + d]) - p.logvar_coef);
  CHECK(moved > 1e-2, "bound gradients are only the coefficient (%g)", moved);

  /* model_step = model_loss + one Adam step over all parameters, bounds included */
  float hi0 = m->max_lv[0], lo0 = m->min_lv[0];
  double l2 = model_step(m, B, x, y);
  CHECK_CLOSE(l2, loss, 1e-6);
  CHECK(m->adam->t == 1 && m->max_lv[0] != hi0 && m->min_lv[0] != lo0, "Adam step t %ld", m->adam->t);
  free(P);
  model_free(m);
}

/* ---- normaliser, split, bootstrap, shuffles ------------------------------------------------ */

static void test_normalizer_basic(void) {
  model_params p = small_params(2, 1, 4, 1, 8);
  dyn_model* m = model_create(2, 1, &p, (rng_key){1, 0});
  float obs[] = {1, 5, 2, 5, 3, 5, 4, 5}, act[] = {1e-14f, -1e-14f, 1e-14f, -1e-14f};
  model_fit_normalizer(m, 4, obs, act);
  CHECK_CLOSE(m->norm_mean[0], 2.5, 1e-7);
  CHECK_CLOSE(m->norm_std[0], sqrt(1.25), 1e-7); /* ddof 0 */
  CHECK(m->norm_mean[1] == 5.0f && m->norm_std[1] == 1.0f, "constant column: %g %g", m->norm_mean[1],
        m->norm_std[1]);
  CHECK(m->norm_std[2] == 1.0f, "std 1e-14 column: std %g", m->norm_std[2]);
  float xn[12];
  model_normalize(m, 4, obs, act, xn);
  CHECK_CLOSE(xn[0], (1 - 2.5) / sqrt(1.25), 1e-6);
  CHECK(xn[1] == 0.0f, "%g", xn[1]);
  model_free(m);
}

static void test_normalizer_training_split(void) {
  const int N = 400;
  model_params p = small_params(2, 1, 8, 1, 32);
  p.holdout_ratio = 0.25;
  p.max_epochs = 1;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){21, 0});
  data d = data_make(77, N);
  /* plant: the rows that the split will hold out get a huge first input */
  int perm[400];
  uint64_t a[400], b[400];
  model_permutation((rng_key){21, RNG_MODEL_SPLIT}, 4, 0, N, NULL, perm, a, b);
  for (int i = 0; i < 100; i++) d.obs[(size_t)perm[i] * SO] = 1000.0f;
  for (int i = 0; i < N; i++) d.obs[(size_t)i * SO + 1] = 3.7f; /* constant column */
  model_fit_stats st;
  int rc = model_train(m, N, d.obs, d.act, d.rew, d.nxt, 4, &st);
  CHECK(rc == MODEL_OK && st.n_holdout == 100 && st.n_train == 300, "rc %d split %d/%d", rc, st.n_holdout,
        st.n_train);
  CHECK(memcmp(perm, m->perm, sizeof perm) == 0, "the fit's permutation is model_permutation(SPLIT, fit, 0)");
  for (int j = 0; j < SO + SA; j++) {
    double s = 0, s2 = 0;
    for (int i = 100; i < N; i++) {
      int g = perm[i];
      double v = j < SO ? d.obs[(size_t)g * SO + j] : d.act[(size_t)g * SA + j - SO];
      s += v;
    }
    double mu = s / 300;
    for (int i = 100; i < N; i++) {
      int g = perm[i];
      double v = j < SO ? d.obs[(size_t)g * SO + j] : d.act[(size_t)g * SA + j - SO];
      s2 += (v - mu) * (v - mu);
    }
    double sd = sqrt(s2 / 300);
    if (sd < 1e-12) sd = 1;
    CHECK_CLOSE(m->norm_mean[j], mu, 1e-5);
    CHECK(fabs(m->norm_std[j] - sd) <= 1e-5 * sd, "column %d std %.8g, expected %.8g", j, m->norm_std[j], sd);
  }
  CHECK(m->norm_std[1] == 1.0f, "constant column std %g", m->norm_std[1]);
  CHECK(fabs(m->norm_mean[0]) < 1.0f, "holdout rows leaked into the normaliser: mean %g", m->norm_mean[0]);
  data_free(&d);
  model_free(m);
}

static int cmp_int(const void* a, const void* b) {
  int x = *(const int*)a, y = *(const int*)b;
  return (x > y) - (x < y);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

static void test_permutation(void) {
  enum { n = 3001 };
  static int out[n], in[n], seen[n];
  static uint64_t a[n], b[n], ref[n];
  rng_key k = {9, RNG_MODEL_SHUFFLE};
  for (int i = 0; i < n; i++) in[i] = 10 * i;
  model_permutation(k, 2, 5, n, in, out, a, b);
  /* reference: qsort of (key, position) */
  for (int j = 0; j < n; j++) ref[j] = ((uint64_t)rng_u32(k, 2, 5, (uint64_t)j) << 32) | (uint64_t)j;
  qsort(ref, n, sizeof ref[0], cmp_u64);
  int ok = 1;
  for (int j = 0; j < n; j++) ok &= out[j] == in[(uint32_t)ref[j]];
  CHECK(ok, "radix order differs from sorting (key, position)");
  memset(seen, 0, sizeof seen);
  for (int j = 0; j < n; j++) seen[out[j] / 10]++;
  int perm = 1;
  for (int j = 0; j < n; j++) perm &= seen[j] == 1;
  CHECK(perm, "not a permutation");
  /* no input: the order itself */
  static int o2[n];
  model_permutation(k, 2, 5, n, NULL, o2, a, b);
  for (int j = 0; j < n; j++) ok &= o2[j] == (int)(uint32_t)ref[j];
  CHECK(ok, "identity input");
}

static void test_split_sizes(void) {
  data d = data_make(5, 1000);
  struct {
    int N, max_holdout;
    double ratio;
    int expect;
  } cases[] = {{1000, 5000, 0.2, 200}, {1000, 50, 0.2, 50}, {4, 5000, 0.2, 0}, {1000, 5000, 0.0, 0},
               {7, 5000, 0.3, 2}};
  for (int c = 0; c < 5; c++) {
    model_params p = small_params(3, 2, 8, 1, 64);
    p.holdout_ratio = cases[c].ratio;
    p.max_holdout = cases[c].max_holdout;
    p.max_epochs = 2;
    dyn_model* m = model_create(SO, SA, &p, (rng_key){8, 0});
    model_fit_stats st;
    int rc = model_train(m, cases[c].N, d.obs, d.act, d.rew, d.nxt, 0, &st);
    CHECK(rc == MODEL_OK, "case %d rc %d", c, rc);
    CHECK(st.n_holdout == cases[c].expect && st.n_train == cases[c].N - cases[c].expect,
          "case %d: holdout %d (expected %d), train %d", c, st.n_holdout, cases[c].expect, st.n_train);
    CHECK(st.steps == 2L * ((st.n_train + 63) / 64), "case %d: %ld steps", c, st.steps);
    for (int e = 0; e < 3; e++) CHECK(isfinite(st.holdout_mse[e]), "case %d member %d mse %g", c, e, st.holdout_mse[e]);
    model_free(m);
  }
  model_params p = small_params(3, 2, 8, 1, 64);
  dyn_model* m = model_create(SO, SA, &p, (rng_key){8, 0});
  CHECK(model_train(m, 0, d.obs, d.act, d.rew, d.nxt, 0, NULL) == MODEL_NO_DATA, "N = 0");
  model_free(m);
  data_free(&d);
}

static void test_bootstrap_and_shuffle(void) {
  const int N = 500, E = 3;
  data d = data_make(6, N);
  model_params p = small_params(E, 2, 8, 1, 64);
  p.max_epochs = 1;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){12, 0});
  model_fit_stats st;
  model_train(m, N, d.obs, d.act, d.rew, d.nxt, 3, &st);
  const int nt = st.n_train;
  CHECK(nt == 400, "n_train %d", nt);
  static int orig[400], expect[400], a1[400];
  static uint64_t s1[400], s2[400];
  int ok = 1, distinct = 0;
  for (int e = 0; e < E; e++) {
    for (int j = 0; j < nt; j++)
      orig[j] = (int)rng_index((rng_key){12, RNG_MODEL_BOOT}, 3, (uint32_t)e, (uint64_t)j, (uint32_t)nt);
    /* after epoch 0, the array was shuffled with c1 = 0 * E + e */
    model_permutation((rng_key){12, RNG_MODEL_SHUFFLE}, 3, (uint32_t)e, nt, orig, expect, s1, s2);
    ok &= memcmp(expect, m->boot + (size_t)e * nt, sizeof(int) * nt) == 0;
    memcpy(a1, orig, sizeof(int) * nt);
    qsort(a1, nt, sizeof(int), cmp_int);
    for (int j = 0; j < nt; j++) distinct += j == 0 || a1[j] != a1[j - 1];
  }
  CHECK(ok, "bootstrap arrays are not the documented draws + shuffle");
  /* with replacement: about 1 - 1/e = 63% distinct rows per member */
  double frac = distinct / (double)(E * nt);
  CHECK(frac > 0.55 && frac < 0.70, "distinct fraction %g", frac);
  model_free(m);
  data_free(&d);
}

static void test_determinism(void) {
  const int N = 600;
  data d = data_make(7, N);
  model_params p = small_params(3, 2, 16, 2, 64);
  p.max_epochs = 3;
  dyn_model* a = model_create(SO, SA, &p, (rng_key){31, 0});
  dyn_model* b = model_create(SO, SA, &p, (rng_key){31, 0});
  dyn_model* c = model_create(SO, SA, &p, (rng_key){32, 0});
  model_fit_stats sa, sb, sc;
  model_train(a, N, d.obs, d.act, d.rew, d.nxt, 5, &sa);
  model_train(b, N, d.obs, d.act, d.rew, d.nxt, 5, &sb);
  model_train(c, N, d.obs, d.act, d.rew, d.nxt, 5, &sc);
  CHECK(memcmp(a->params, b->params, sizeof(float) * a->nparams) == 0, "same key, different parameters");
  CHECK(memcmp(a->perm, b->perm, sizeof(int) * N) == 0, "same key, different split");
  CHECK(sa.train_loss == sb.train_loss && sa.holdout_mse[1] == sb.holdout_mse[1], "same key, different stats");
  CHECK(memcmp(a->perm, c->perm, sizeof(int) * N) != 0, "different seeds, same split");
  /* the fit index changes the split */
  model_train(b, N, d.obs, d.act, d.rew, d.nxt, 6, &sb);
  CHECK(memcmp(a->perm, b->perm, sizeof(int) * N) != 0, "different fit index, same split");
  model_free(a);
  model_free(b);
  model_free(c);
  data_free(&d);
}

/* ---- fitting ------------------------------------------------------------------------------ */

static void test_synthetic_fit(void) {
  const int N = 3000, NT = 1000, E = 3;
  data d = data_make(101, N), t = data_make(202, NT);
  model_params p = small_params(E, 2, 64, 2, 64);
  p.max_epochs = 150;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){41, 0});
  model_fit_stats st;
  int rc = model_train(m, N, d.obs, d.act, d.rew, d.nxt, 0, &st);
  CHECK(rc == MODEL_OK, "rc %d", rc);
  float* mean = malloc(sizeof(float) * E * NT * SD);
  float* lv = malloc(sizeof(float) * E * NT * SD);
  model_predict(m, t.obs, t.act, NT, mean, lv);
  for (int di = 0; di < SD; di++) {
    double err = 0, lvm = 0;
    for (int e = 0; e < E; e++)
      for (int i = 0; i < NT; i++) {
        double mu[SD];
        synth_mean(t.obs + (size_t)i * SO, t.act + (size_t)i * SA, mu);
        double pm = mean[((size_t)e * NT + i) * SD + di];
        err += (pm - mu[di]) * (pm - mu[di]);
        lvm += lv[((size_t)e * NT + i) * SD + di];
      }
    err /= E * NT;
    lvm /= E * NT;
    double s2 = SIG[di] * SIG[di];
    /* the mean: squared error below a quarter of the noise variance; the variance: exp(mean lv)
     * within a factor 1.5 of sigma^2 (|mean lv - log sigma^2| < 0.405) */
    CHECK(err < 0.25 * s2, "dim %d: mean squared error %.3g vs sigma^2 %.3g", di, err, s2);
    CHECK(fabs(lvm - log(s2)) < 0.405, "dim %d: mean log-variance %.3f vs log sigma^2 %.3f", di, lvm, log(s2));
    if (getenv("TEST_VERBOSE"))
      fprintf(stderr, "  dim %d: mse/sigma^2 %.3f, exp(mean lv)/sigma^2 %.3f (epochs %d)\n", di, err / s2,
              exp(lvm) / s2, st.epochs);
  }
  /* model_holdout_mse agrees with the predicted means */
  double hm[3];
  model_holdout_mse(m, NT, t.obs, t.act, t.rew, t.nxt, hm);
  for (int e = 0; e < E; e++) {
    double s = 0;
    for (int i = 0; i < NT; i++)
      for (int di = 0; di < SD; di++) {
        double y = di == 0 ? t.rew[i] : (double)t.nxt[(size_t)i * SO + di - 1] - t.obs[(size_t)i * SO + di - 1];
        double df = mean[((size_t)e * NT + i) * SD + di] - y;
        s += df * df;
      }
    CHECK(fabs(hm[e] - s / (NT * SD)) <= 1e-5 * hm[e], "member %d: %g vs %g", e, hm[e], s / (NT * SD));
  }
  free(mean);
  free(lv);
  model_free(m);
  data_free(&d);
  data_free(&t);
}

static void test_stop_rule(void) {
  const int N = 300;
  data d = data_make(8, N);
  int pats[] = {5, 2, 0};
  for (int k = 0; k < 3; k++) {
    model_params p = small_params(3, 2, 8, 1, 64);
    p.lr = 1e-9f; /* cannot improve: every epoch after the first scores within 1% of the first */
    p.patience = pats[k];
    dyn_model* m = model_create(SO, SA, &p, (rng_key){9, 0});
    model_fit_stats st;
    model_train(m, N, d.obs, d.act, d.rew, d.nxt, 0, &st);
    CHECK(st.epochs == pats[k] + 2, "patience %d: %d epochs, expected %d", pats[k], st.epochs, pats[k] + 2);
    for (int e = 0; e < 3; e++) CHECK(st.best_epoch[e] == 0, "member %d best epoch %d", e, st.best_epoch[e]);
    model_free(m);
  }
  model_params p = small_params(3, 2, 8, 1, 64);
  p.max_epochs = 3;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){9, 0});
  model_fit_stats st;
  model_train(m, N, d.obs, d.act, d.rew, d.nxt, 0, &st);
  CHECK(st.epochs == 3 && st.steps == 3 * 4, "max_epochs 3: %d epochs, %ld steps", st.epochs, st.steps);
  model_free(m);
  data_free(&d);
}

static void test_snapshots(void) {
  /* small data, high learning rate: the members overfit at different epochs */
  const int N = 250, E = 5;
  data d = data_make(10, N);
  model_params p = small_params(E, 3, 64, 2, 16);
  p.lr = 3e-3f;
  p.max_epochs = 400;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){51, 0});
  model_fit_stats st;
  model_train(m, N, d.obs, d.act, d.rew, d.nxt, 0, &st);
  int last = -1, differ = 0;
  for (int e = 0; e < E; e++) {
    CHECK(st.best_epoch[e] >= 0, "member %d has no snapshot", e);
    /* the restored member scores exactly what it scored when it was snapshotted */
    CHECK(st.holdout_mse[e] == st.best_mse[e], "member %d: holdout %.10g after restore, %.10g at its epoch %d",
          e, st.holdout_mse[e], st.best_mse[e], st.best_epoch[e]);
    if (st.best_epoch[e] > last) last = st.best_epoch[e];
    differ += st.best_epoch[e] != st.best_epoch[0];
  }
  if (st.epochs < p.max_epochs)
    CHECK(last == st.epochs - p.patience - 2, "last improvement at epoch %d of %d", last, st.epochs);
  CHECK(differ > 0, "all members snapshotted at epoch %d: the per-member test is weak", st.best_epoch[0]);
  /* elites: the lowest holdout MSEs, best first */
  int n;
  const int* el = model_elites(m, &n);
  CHECK(n == 3, "%d elites", n);
  for (int i = 0; i < n; i++) CHECK(el[i] == st.elites[i], "elite %d", i);
  for (int i = 0; i + 1 < E; i++)
    CHECK(st.holdout_mse[st.elites[i]] <= st.holdout_mse[st.elites[i + 1]], "ranking at %d", i);
  /* the bounds and the Adam state were not restored */
  CHECK(m->adam->t == st.steps, "Adam t %ld, steps %ld", m->adam->t, st.steps);
  CHECK(m->max_lv[0] != 0.5f, "bounds untouched");
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "  epochs %d, best epochs %d %d %d %d %d\n", st.epochs, st.best_epoch[0], st.best_epoch[1],
            st.best_epoch[2], st.best_epoch[3], st.best_epoch[4]);
  model_free(m);
  data_free(&d);
}

static void test_planted_elites(void) {
  const int N = 600, E = 7;
  data d = data_make(11, N);
  model_params p = small_params(E, 5, 16, 2, 64);
  p.max_epochs = 20;
  dyn_model* m = model_create(SO, SA, &p, (rng_key){61, 0});
  model_train(m, N, d.obs, d.act, d.rew, d.nxt, 0, NULL);
  /* corrupt members 2 and 5 (output biases of the mean), then a fit that cannot repair them */
  const nn_mlp* net = &m->net;
  const int Lo = net->nlayers - 1, out = net->dims[Lo + 1];
  for (int e = 2; e < E; e += 3)
    for (int j = 0; j < SD; j++) m->params[net->b_off[Lo] + (size_t)e * out + j] += 5.0f;
  m->adam->lr = 1e-9f;
  model_fit_stats st;
  model_train(m, N, d.obs, d.act, d.rew, d.nxt, 1, &st);
  int n;
  const int* el = model_elites(m, &n);
  CHECK(n == 5, "%d elites", n);
  for (int i = 0; i < n; i++) CHECK(el[i] != 2 && el[i] != 5, "corrupted member %d is elite %d", el[i], i);
  CHECK(st.holdout_mse[2] > 10 && st.holdout_mse[5] > 10, "corrupted members' mse %g %g", st.holdout_mse[2],
        st.holdout_mse[5]);
  model_free(m);
  data_free(&d);
}

/* ---- the vector soft clamp and NLL terms (softclamp.h) against their scalar twins ------------ */

static int same_bits(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }

/* log1pf's vector path equals log1pf bit for bit: a strided sweep over every float in [0, 1] (the
 * softplus's arguments: expf(-|x|)), the branch edges, and lanes sent back to log1pf */
static void test_log1pf_bits(void) {
  enum { N = 1 << 16 };
  float *x = nn_alloc(N), *y = nn_alloc(N);
  long bad = 0, n = 0;
  uint32_t u = 0;
  while (u <= 0x3f800000u) {
    int k = 0;
    for (; k < N && u <= 0x3f800000u; k++, u += 61) memcpy(&x[k], &u, 4);
    softclamp_log1pf(x, y, k);
    for (int i = 0; i < k; i++) bad += !same_bits(log1pf(x[i]), y[i]);
    n += k;
  }
  const uint32_t edge[] = {0x00000000, 0x80000000, 0x30ffffff, 0x31000000, 0x24800000, 0x3ed413d6, 0x3ed413d7,
                           0x3ed413d8, 0x3f7fffff, 0x3f800000, 0x3f800001, 0x3f3504f6, 0x3f3504f7, 0x3f3504f8,
                           0x3f7ffffe, 0x3f7ffffd, 0xbf000000, 0x7f800000, 0x7fc00000, 0x40000000, 0x3e000000};
  const int ne = sizeof edge / sizeof edge[0];
  memcpy(x, edge, sizeof edge);
  softclamp_log1pf(x, y, ne);
  for (int i = 0; i < ne; i++) bad += !same_bits(log1pf(x[i]), y[i]);
  CHECK(bad == 0, "%ld of %ld log1pf values differ", bad, n + ne);
  free(x), free(y);
}

/* softclamp_row and nll_row equal their scalar twins bit for bit: rows of 1 to 40 outputs (vector
 * tails), raw log-variances from the bounds' neighbourhood to ±1e30, ±inf and NaN */
static void test_softclamp_bits(void) {
  enum { MAXN = 40 };
  long bad = 0, rows = 0;
  for (int it = 0; it < 20000; it++) {
    const int n = 1 + it % MAXN;
    float mu[MAXN], z[MAXN], t[MAXN], hi[MAXN], lo[MAXN], a[MAXN], b[MAXN];
    float q[2][MAXN], lv[2][MAXN], gm[2][MAXN], gz[2][MAXN], gh[2][MAXN], gl[2][MAXN];
    const float sc = it % 3 == 0 ? 60.0f : 4.0f;
    for (int d = 0; d < n; d++) {
      const uint64_t k = (uint64_t)it * MAXN + d;
      mu[d] = sc * nrm(31, 0, k), t[d] = sc * nrm(31, 1, k), z[d] = sc * nrm(31, 2, k);
      hi[d] = 0.5f + 0.5f * nrm(31, 3, k), lo[d] = -10.0f + 2.0f * nrm(31, 4, k);
    }
    static const float odd[] = {1e30f, -1e30f, INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 88.5f, -104.0f};
    if (it % 5 == 0) z[it % n] = odd[(it / 5) % 9];
    if (it % 7 == 0) z[(it / 7) % n] = hi[(it / 7) % n]; /* softplus(0): log1pf(1) */
    softclamp_row(z, hi, lo, n, a);
    softclamp_row_scalar(z, hi, lo, n, b);
    const int g = it % 2;
    nll_row(mu, z, t, hi, lo, n, 1.0f / 3072, q[0], lv[0], g ? gm[0] : NULL, gz[0], gh[0], gl[0]);
    nll_row_scalar(mu, z, t, hi, lo, n, 1.0f / 3072, q[1], lv[1], g ? gm[1] : NULL, gz[1], gh[1], gl[1]);
    int row_bad = 0;
    for (int d = 0; d < n; d++) {
      row_bad |= !same_bits(a[d], b[d]) || !same_bits(q[0][d], q[1][d]) || !same_bits(lv[0][d], lv[1][d]);
      if (g)
        row_bad |= !same_bits(gm[0][d], gm[1][d]) || !same_bits(gz[0][d], gz[1][d]) ||
                   !same_bits(gh[0][d], gh[1][d]) || !same_bits(gl[0][d], gl[1][d]);
    }
    bad += row_bad;
    rows++;
  }
  CHECK(bad == 0, "%ld of %ld rows differ from the scalar soft clamp / NLL", bad, rows);
  /* softclamp_rows: blocks of 8 rows and the rows after them, at strides, with odd values */
  enum { R = 21, ZS = 2 * MAXN + 3 };
  float *z = malloc(sizeof(float) * R * ZS), *a = malloc(sizeof(float) * R * MAXN), *b = malloc(sizeof(float) * R * MAXN);
  float hi[MAXN], lo[MAXN];
  long bad_rows = 0;
  for (int n = 1; n <= MAXN; n += 3) {
    for (int d = 0; d < n; d++) hi[d] = 0.5f + 0.5f * nrm(32, 0, (uint64_t)n * MAXN + d), lo[d] = -10.0f + nrm(32, 1, d);
    for (int i = 0; i < R * ZS; i++) z[i] = (n % 2 ? 60.0f : 4.0f) * nrm(32, 2, (uint64_t)n * R * ZS + i);
    z[5] = NAN, z[ZS + 1] = INFINITY, z[2 * ZS] = -1e30f, z[3 * ZS + n - 1] = hi[n - 1];
    for (int rows_n = 1; rows_n <= R; rows_n += 4) {
      softclamp_rows(z, ZS, hi, lo, n, rows_n, a, MAXN);
      for (int r = 0; r < rows_n; r++) softclamp_row_scalar(z + r * ZS, hi, lo, n, b + r * MAXN);
      for (int r = 0; r < rows_n; r++)
        for (int d = 0; d < n; d++)
          if (!same_bits(a[r * MAXN + d], b[r * MAXN + d])) {
            bad_rows++;
            break;
          }
    }
  }
  CHECK(bad_rows == 0, "%ld rows of softclamp_rows differ from the scalar soft clamp", bad_rows);
  free(z), free(a), free(b);
}

static void test_predict_chunks(void) {
  const int B = 1003, E = 3;
  data d = data_make(12, B);
  model_params p = small_params(E, 2, 16, 2, 64);
  p.predict_chunk = 7;
  dyn_model* a = model_create(SO, SA, &p, (rng_key){71, 0});
  p.predict_chunk = 4096;
  dyn_model* b = model_create(SO, SA, &p, (rng_key){71, 0});
  /* a non-trivial state: fit a, copy everything to b */
  model_train(a, B, d.obs, d.act, d.rew, d.nxt, 0, NULL);
  memcpy(b->params, a->params, sizeof(float) * a->nparams);
  memcpy(b->norm_mean, a->norm_mean, sizeof(float) * a->in_dim);
  memcpy(b->norm_std, a->norm_std, sizeof(float) * a->in_dim);
  float *m1 = malloc(sizeof(float) * E * B * SD), *l1 = malloc(sizeof(float) * E * B * SD);
  float *m2 = malloc(sizeof(float) * E * B * SD), *l2 = malloc(sizeof(float) * E * B * SD);
  model_predict(a, d.obs, d.act, B, m1, l1);
  model_predict(b, d.obs, d.act, B, m2, l2);
  double dm = 0, dl = 0;
  int inside = 1;
  for (int i = 0; i < E * B * SD; i++) {
    dm = fmax(dm, fabs(m1[i] - m2[i]));
    dl = fmax(dl, fabs(l1[i] - l2[i]));
    int dd = i % SD;
    inside &= l1[i] <= a->max_lv[dd] + 1e-6f && l1[i] >= a->min_lv[dd] - 1e-6f;
  }
  CHECK(dm < 1e-5 && dl < 1e-5, "chunked predictions differ: mean %g, logvar %g", dm, dl);
  CHECK(inside, "log-variance outside [min_lv, max_lv]");
  /* one row through model_loss's forward gives the same mean */
  float x[3 * 1 * (SO + SA)], y[3 * SD] = {0};
  for (int e = 0; e < E; e++) model_normalize(a, 1, d.obs + 5 * SO, d.act + 5 * SA, x + e * (SO + SA));
  model_loss(a, 1, x, y, NULL);
  for (int e = 0; e < E; e++)
    CHECK_CLOSE(a->out[e * 2 * SD + 1], m1[((size_t)e * B + 5) * SD + 1], 1e-5);
  free(m1);
  free(l1);
  free(m2);
  free(l2);
  model_free(a);
  model_free(b);
  data_free(&d);
}

static void test_tensors(void) {
  model_params p = small_params(7, 5, 20, 4, 32);
  dyn_model* m = model_create(11, 3, &p, (rng_key){1, 0});
  model_tensor t[MODEL_MAX_TENSORS];
  int n = model_tensors(m, t);
  CHECK(n == 2 * 5 + 6, "%d tensors", n);
  size_t total = 0;
  for (int i = 0; i < 10; i++) {
    size_t c = 1;
    for (int k = 0; k < t[i].ndim; k++) c *= (size_t)t[i].shape[k];
    total += c;
  }
  CHECK(total == m->net.nparams, "weights and biases %zu of %zu", total, m->net.nparams);
  CHECK(t[0].shape[0] == 7 && t[0].shape[1] == 14 && t[0].shape[2] == 20, "W0 shape");
  CHECK(t[9].shape[1] == 24 && !strcmp(t[10].name, "max_logvar") && t[10].data[0] == 0.5f &&
            t[11].data[11] == -10.0f,
        "bounds");
  /* truncated normal init: |w| <= 2 std, std 1/(2 sqrt(fan_in)) */
  double sd = 1.0 / (2.0 * sqrt(14.0)), mx = 0, s2 = 0;
  size_t nw = (size_t)7 * 14 * 20;
  for (size_t i = 0; i < nw; i++) {
    mx = fmax(mx, fabs(t[0].data[i]));
    s2 += t[0].data[i] * t[0].data[i];
  }
  CHECK(mx <= 2 * sd + 1e-7, "max |w| %g > 2 std %g", mx, 2 * sd);
  CHECK(fabs(sqrt(s2 / nw) / sd - 0.88) < 0.06, "std ratio %g (truncated normal: 0.880)", sqrt(s2 / nw) / sd);
  model_free(m);
}

int main(void) {
  RUN(test_gradient);
  RUN(test_normalizer_basic);
  RUN(test_normalizer_training_split);
  RUN(test_permutation);
  RUN(test_split_sizes);
  RUN(test_bootstrap_and_shuffle);
  RUN(test_determinism);
  RUN(test_synthetic_fit);
  RUN(test_stop_rule);
  RUN(test_snapshots);
  RUN(test_planted_elites);
  RUN(test_predict_chunks);
  RUN(test_log1pf_bits);
  RUN(test_softclamp_bits);
  RUN(test_tensors);
  return test_done();
}
