/* test_sac.c: SAC on the CPU (sac.h) against a double-precision reference of its three losses.
 *
 * Gradient checks: the float gradients of sac_compute_grads are compared with central differences
 * (step 1e-6) of the reference losses computed in double from the same parameters, batch and noise
 * (noise drawn by the documented convention), per element:
 *     |g - g_fd| <= 2e-4 * (|g_fd| + max|g_fd|).
 * The policy's log sigma outputs are shifted so that unit 0 straddles the upper clip (2) and unit 1
 * the lower clip (-20) over the batch: both sides of each bound are exercised. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sac.h"
#include "test.h"

enum { O = 3, A = 2, D = O + A, H = 6, NB = 8 };
static const rng_key K = {99, RNG_TEST};

typedef struct batch {
  float obs[NB * O], act[NB * A], rew[NB], next[NB * O], done[NB];
} batch;

static void make_batch(batch* b, uint32_t c0) {
  for (int i = 0; i < NB * O; i++) b->obs[i] = rng_normal(K, c0, 0, (uint64_t)i);
  for (int i = 0; i < NB * O; i++) b->next[i] = rng_normal(K, c0, 1, (uint64_t)i);
  for (int i = 0; i < NB * A; i++) b->act[i] = 2.0f * rng_uniform(K, c0, 2, (uint64_t)i) - 1.0f;
  for (int i = 0; i < NB; i++) b->rew[i] = rng_normal(K, c0, 3, (uint64_t)i);
  for (int i = 0; i < NB; i++) b->done[i] = (i % 3 == 1) ? 1.0f : 0.0f;
}

static sac_params small_params(void) {
  sac_params p = sac_params_default(A);
  p.hidden = H;
  p.batch = NB;
  p.gamma = 0.9f;
  p.reward_scale = 1.3f;
  p.target_entropy = -1.5f;
  p.act_chunk = 7;
  return p;
}

static float median(float* v, int n) { /* small n: insertion sort */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      float t = v[j];
      v[j] = v[j - 1], v[j - 1] = t;
    }
  return 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

/* An agent away from its initial state: log alpha -0.3, perturbed targets, nonzero biases, and
 * log sigma outputs straddling both clip bounds on batch b. */
static sac* make_agent(uint32_t seed, const batch* b) {
  sac_params p = small_params();
  sac* s = sac_create(O, A, &p, (rng_key){seed, 0});
  s->log_alpha[0] = -0.3f;
  for (size_t i = 0; i < s->q.nparams; i++) s->qt_w[i] += 0.05f * rng_normal(K, 50, 0, i);
  for (int l = 0; l < s->q.nlayers; l++)
    for (int j = 0; j < 2 * s->q.dims[l + 1]; j++) s->q_w[s->q.b_off[l] + j] = 0.1f * rng_normal(K, 51, (uint32_t)l, (uint64_t)j);
  float out[NB * 2 * A], v[NB];
  nn_forward(&s->pi, s->pi_w, NB, b->obs, 1, NULL, out);
  float* bias = s->pi_w + s->pi.b_off[s->pi.nlayers - 1];
  const float bound[2] = {SAC_LOG_STD_MAX, SAC_LOG_STD_MIN};
  for (int i = 0; i < 2; i++) {
    for (int r = 0; r < NB; r++) v[r] = out[r * 2 * A + A + i];
    bias[A + i] += bound[i] - median(v, NB);
  }
  bias[0] = 0.2f, bias[1] = -0.1f;
  return s;
}

/* ---- double-precision reference ---------------------------------------------------------- */

typedef struct ref {
  const sac* s;
  double obs[NB * O], act[NB * A], rew[NB], next[NB * O], done[NB], eps[NB * A], eps_n[NB * A];
  double *pi, *q, *qt, log_alpha;
} ref;

static void mlp_row(const nn_mlp* net, const double* P, int e, const double* x, double* y) {
  double cur[64], nxt[64];
  memcpy(cur, x, sizeof(double) * net->dims[0]);
  for (int l = 0; l < net->nlayers; l++) {
    int din = net->dims[l], dout = net->dims[l + 1];
    const double* W = P + net->w_off[l] + (size_t)e * din * dout;
    const double* bb = P + net->b_off[l] + (size_t)e * dout;
    for (int j = 0; j < dout; j++) {
      double z = bb[j];
      for (int i = 0; i < din; i++) z += cur[i] * W[i * dout + j];
      nxt[j] = (l < net->nlayers - 1 && z < 0) ? 0 : z;
    }
    memcpy(cur, nxt, sizeof(double) * dout);
  }
  memcpy(y, cur, sizeof(double) * net->dims[net->nlayers]);
}

/* a = tanh(u), u = mu + sigma eps, log pi (softplus form) */
static double sample(const ref* r, const double* s_row, const double* eps, double* a) {
  double out[2 * A], lp = 0;
  mlp_row(&r->s->pi, r->pi, 0, s_row, out);
  for (int i = 0; i < A; i++) {
    double ls = fmin(fmax(out[A + i], -20.0), 2.0);
    double u = out[i] + exp(ls) * eps[i];
    a[i] = tanh(u);
    double sp = fmax(-2 * u, 0) + log1p(exp(-fabs(-2 * u)));
    lp += -0.5 * eps[i] * eps[i] - 0.5 * log(2 * M_PI) - ls - 2 * (log(2.0) - u - sp);
  }
  return lp;
}

static double q_of(const ref* r, const double* P, int j, const double* s_row, const double* a) {
  double x[D], y;
  memcpy(x, s_row, sizeof(double) * O);
  memcpy(x + O, a, sizeof(double) * A);
  mlp_row(&r->s->q, P, j, x, &y);
  return y;
}

static double target(const ref* r, int b) {
  double a[A];
  double lp = sample(r, r->next + b * O, r->eps_n + b * A, a);
  double qmin = fmin(q_of(r, r->qt, 0, r->next + b * O, a), q_of(r, r->qt, 1, r->next + b * O, a));
  const sac_params* p = &r->s->p;
  return p->reward_scale * r->rew[b] + p->gamma * (1 - r->done[b]) * (qmin - exp(r->log_alpha) * lp);
}

/* critic j's loss, or the sum of both for j < 0 */
static double q_loss(const ref* r, int j) {
  double L = 0;
  for (int b = 0; b < NB; b++) {
    double y = target(r, b);
    for (int k = 0; k < 2; k++)
      if (j < 0 || j == k) {
        double d = q_of(r, r->q, k, r->obs + b * O, r->act + b * A) - y;
        L += 0.5 * d * d / NB;
      }
  }
  return L;
}

static double mean_logp(const ref* r) {
  double a[A], s = 0;
  for (int b = 0; b < NB; b++) s += sample(r, r->obs + b * O, r->eps + b * A, a);
  return s / NB;
}

static double pi_loss(const ref* r) {
  double a[A], L = 0;
  for (int b = 0; b < NB; b++) {
    double lp = sample(r, r->obs + b * O, r->eps + b * A, a);
    double qmin = fmin(q_of(r, r->q, 0, r->obs + b * O, a), q_of(r, r->q, 1, r->obs + b * O, a));
    L += (exp(r->log_alpha) * lp - qmin) / NB;
  }
  return L;
}

static double alpha_loss(const ref* r) {
  return -r->log_alpha * (mean_logp(r) + r->s->p.target_entropy);
}

static double* to_double(const float* v, size_t n) {
  double* d = malloc(sizeof(double) * n);
  for (size_t i = 0; i < n; i++) d[i] = v[i];
  return d;
}

static void ref_init(ref* r, const sac* s, const batch* b, uint64_t k) {
  r->s = s;
  for (int i = 0; i < NB * O; i++) r->obs[i] = b->obs[i], r->next[i] = b->next[i];
  for (int i = 0; i < NB * A; i++) r->act[i] = b->act[i];
  for (int i = 0; i < NB; i++) r->rew[i] = b->rew[i], r->done[i] = b->done[i];
  rng_key nk = {s->noise_key.seed, RNG_SAC_NOISE};
  for (int n = 0; n < NB * A; n++) { /* the documented noise convention */
    r->eps_n[n] = rng_normal(nk, (uint32_t)k, (uint32_t)(k >> 32), (uint64_t)n);
    r->eps[n] = rng_normal(nk, (uint32_t)k, (uint32_t)(k >> 32), (uint64_t)(NB * A + n));
  }
  r->pi = to_double(s->pi_w, s->pi.nparams);
  r->q = to_double(s->q_w, s->q.nparams);
  r->qt = to_double(s->qt_w, s->q.nparams);
  r->log_alpha = s->log_alpha[0];
}

static void ref_free(ref* r) { free(r->pi), free(r->q), free(r->qt); }

/* analytic g[n] vs central differences of loss(r) wrt v[n]; returns the number of bad elements */
static int fd_check(const char* what, const float* g, double* v, size_t n, ref* r,
                    double (*loss)(const ref*, int), int arg) {
  const double h = 1e-6;
  double* fd = malloc(sizeof(double) * n);
  double gmax = 0, worst = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + h;
    double lp = loss(r, arg);
    v[i] = keep - h;
    double lm = loss(r, arg);
    v[i] = keep;
    fd[i] = (lp - lm) / (2 * h);
    gmax = fmax(gmax, fabs(fd[i]));
  }
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double err = fabs(g[i] - fd[i]);
    worst = fmax(worst, err / (fabs(fd[i]) + gmax));
    if (err > 2e-4 * (fabs(fd[i]) + gmax)) {
      if (bad < 5) fprintf(stderr, "  %s[%zu]: analytic %.8g, fd %.8g\n", what, i, g[i], fd[i]);
      bad++;
    }
  }
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "  %s: %zu values, max |g| %.3g, worst scaled error %.2e\n", what, n, gmax, worst);
  CHECK(gmax > 0, "%s: zero gradient", what);
  free(fd);
  return bad;
}

static double q_loss_arg(const ref* r, int j) { return q_loss(r, j); }
static double pi_loss_arg(const ref* r, int unused) { (void)unused; return pi_loss(r); }
static double alpha_loss_arg(const ref* r, int unused) { (void)unused; return alpha_loss(r); }

static const uint64_t KIDX = 0x300000007ull; /* an update index with a nonzero high word */

static void test_losses_and_grads(void) {
  batch b;
  make_batch(&b, 1);
  sac* s = make_agent(5, &b);
  sac_stats st;
  sac_compute_grads(s, b.obs, b.act, b.rew, b.next, b.done, NB, KIDX, &st);
  ref r;
  ref_init(&r, s, &b, KIDX);

  /* both sides of both clip bounds are present */
  float out[NB * 2 * A];
  nn_forward(&s->pi, s->pi_w, NB, b.obs, 1, NULL, out);
  int above = 0, below = 0, in_hi = 0, in_lo = 0;
  for (int k = 0; k < NB; k++) {
    above += out[k * 2 * A + A] > 2.0f, in_hi += out[k * 2 * A + A] < 2.0f;
    below += out[k * 2 * A + A + 1] < -20.0f, in_lo += out[k * 2 * A + A + 1] > -20.0f;
  }
  CHECK(above && in_hi && below && in_lo, "clip regions: %d above 2, %d below, %d below -20, %d above",
        above, in_hi, below, in_lo);

  /* loss values */
  CHECK_CLOSE(st.q1_loss, q_loss(&r, 0), 1e-5);
  CHECK_CLOSE(st.q2_loss, q_loss(&r, 1), 1e-5);
  CHECK_CLOSE(st.pi_loss, pi_loss(&r), 1e-5);
  CHECK_CLOSE(st.alpha_loss, alpha_loss(&r), 1e-5);
  CHECK_CLOSE(st.entropy, -mean_logp(&r), 1e-5);

  /* gradients: critic loss (both critics) wrt the critics, actor loss wrt the policy, temperature */
  CHECK(fd_check("dLq/dq", s->q_g, r.q, s->q.nparams, &r, q_loss_arg, -1) == 0, "critic gradient");
  CHECK(fd_check("dLpi/dpi", s->pi_g, r.pi, s->pi.nparams, &r, pi_loss_arg, 0) == 0, "actor gradient");
  CHECK(fd_check("dLa/dlog_alpha", s->log_alpha_g, &r.log_alpha, 1, &r, alpha_loss_arg, 0) == 0,
        "temperature gradient");
  ref_free(&r);
  sac_free(s);
}

/* the gradients used by sac_update are those at the pre-update parameters (Q, policy and alpha
 * simultaneously), and the result is exactly one TF1 Adam step from them, then Polyak */
static void test_simultaneous_update(void) {
  batch b;
  make_batch(&b, 2);
  sac *s = make_agent(6, &b), *c = make_agent(6, &b);
  sac_compute_grads(c, b.obs, b.act, b.rew, b.next, b.done, NB, KIDX, NULL); /* pre-update grads */
  sac_stats st;
  sac_update(s, b.obs, b.act, b.rew, b.next, b.done, NB, KIDX, &st);
  CHECK(memcmp(s->pi_g, c->pi_g, sizeof(float) * s->pi.nparams) == 0, "policy gradient = pre-update");
  /* the reported temperature (progress.csv's alpha) is the one the losses used, before the update */
  CHECK(s->log_alpha[0] != c->log_alpha[0] && st.alpha == expf(c->log_alpha[0]) && st.alpha != expf(s->log_alpha[0]),
        "stats alpha %.9g; exp(log alpha) before the update %.9g, after %.9g", st.alpha, expf(c->log_alpha[0]),
        expf(s->log_alpha[0]));
  CHECK(memcmp(s->q_g, c->q_g, sizeof(float) * s->q.nparams) == 0, "critic gradient = pre-update");
  CHECK(s->log_alpha_g[0] == c->log_alpha_g[0], "temperature gradient = pre-update");

  /* one Adam step by hand (t = 1: p -= lr sqrt(1 - b2) / (1 - b1) m / (sqrt(v) + eps)) */
  const double lr = 3e-4f, b1 = 0.9f, b2 = 0.999f, lr_t = lr * sqrt(1 - b2) / (1 - b1);
  struct { const float *pre, *g, *post; size_t n; const char* name; } t[3] = {
      {c->pi_w, c->pi_g, s->pi_w, s->pi.nparams, "policy"},
      {c->q_w, c->q_g, s->q_w, s->q.nparams, "critics"},
      {c->log_alpha, c->log_alpha_g, s->log_alpha, 1, "log alpha"}};
  for (int k = 0; k < 3; k++) {
    double worst = 0;
    for (size_t i = 0; i < t[k].n; i++) {
      double g = t[k].g[i], m = (1 - b1) * g, v = (1 - b2) * g * g;
      double want = t[k].pre[i] - lr_t * m / (sqrt(v) + 1e-8);
      /* error in units of lr, less the float rounding of the parameter itself */
      double err = fabs(t[k].post[i] - want) - 1.2e-7 * fabs(want);
      worst = fmax(worst, err / lr);
    }
    CHECK(worst < 1e-3, "%s: after the update, worst error %g lr vs a hand Adam step", t[k].name, worst);
  }
  /* Polyak after the update: qt = tau q_new + (1 - tau) qt_old, as nn_polyak computes it */
  int ok = 1;
  const float tau = 5e-3f;
  for (size_t i = 0; i < s->q.nparams; i++) ok &= s->qt_w[i] == tau * s->q_w[i] + (1.0f - tau) * c->qt_w[i];
  CHECK(ok, "target = tau q + (1 - tau) target after the update");
  CHECK(s->pi_adam->t == 1 && s->q_adam->t == 1 && s->alpha_adam->t == 1, "Adam steps");
  sac_free(s);
  sac_free(c);
}

static void test_create(void) {
  sac_params p = sac_params_default(3);
  p.batch = 16;
  sac* s = sac_create(11, 3, &p, (rng_key){7, RNG_INIT});
  CHECK(memcmp(s->q_w, s->qt_w, sizeof(float) * s->q.nparams) == 0, "targets hard-copied at creation");
  CHECK(s->log_alpha[0] == 0.0f, "log alpha 0");
  CHECK(s->pi.dims[0] == 11 && s->pi.dims[1] == 256 && s->pi.dims[2] == 256 && s->pi.dims[3] == 6 &&
            s->pi.nlayers == 3 && s->pi.E == 1, "policy shape");
  CHECK(s->q.dims[0] == 14 && s->q.dims[3] == 1 && s->q.E == 2, "critic shape");
  /* Glorot: first policy layer bound sqrt(6 / (11 + 256)), drawn from (seed, RNG_INIT, net id) */
  float lim = sqrtf(6.0f / 267.0f);
  CHECK(s->pi_w[3] == (2.0f * rng_uniform((rng_key){7, RNG_INIT}, SAC_NET_POLICY, 0, 3) - 1.0f) * lim,
        "policy init convention");
  CHECK(memcmp(s->q_w, s->q_w + 14 * 256, sizeof(float) * 64) != 0, "the two critics differ");
  sac_tensor t[SAC_NTENSORS];
  int n = sac_tensors(s, t);
  CHECK(n == SAC_NTENSORS && strcmp(t[2].name, "q_target") == 0 && t[2].data == s->qt_w, "tensors");
  mbpo_config c;
  cfg_defaults(&c);
  sac_params q = sac_params_from_config(&c);
  CHECK(q.hidden == 256 && q.layers == 2 && q.batch == 256 && q.lr == 3e-4f && q.gamma == 0.99f &&
            q.tau == 5e-3f && q.target_entropy == -1.0f && q.reward_scale == 1.0f,
        "settings from the config");
  sac_free(s);
}

static void test_determinism(void) {
  batch b;
  make_batch(&b, 3);
  sac_params p = small_params();
  sac *s1 = sac_create(O, A, &p, (rng_key){11, 0}), *s2 = sac_create(O, A, &p, (rng_key){11, 0});
  sac* s3 = sac_create(O, A, &p, (rng_key){11, 0});
  sac_stats a1, a2;
  for (uint64_t k = 0; k < 3; k++) {
    sac_update(s1, b.obs, b.act, b.rew, b.next, b.done, NB, k, &a1);
    sac_update(s2, b.obs, b.act, b.rew, b.next, b.done, NB, k, &a2);
    sac_update(s3, b.obs, b.act, b.rew, b.next, b.done, NB, k + 100, NULL);
  }
  CHECK(memcmp(s1->pi_w, s2->pi_w, sizeof(float) * s1->pi.nparams) == 0 &&
            memcmp(s1->q_w, s2->q_w, sizeof(float) * s1->q.nparams) == 0 &&
            memcmp(s1->qt_w, s2->qt_w, sizeof(float) * s1->q.nparams) == 0 &&
            s1->log_alpha[0] == s2->log_alpha[0] && memcmp(&a1, &a2, sizeof a1) == 0,
        "same key and update indices, same bits");
  CHECK(memcmp(s1->pi_w, s3->pi_w, sizeof(float) * s1->pi.nparams) != 0, "other update indices differ");
  sac* s4 = sac_create(O, A, &p, (rng_key){12, 0});
  CHECK(memcmp(s1->pi_w, s4->pi_w, sizeof(float) * 8) != 0, "other seed, other init");
  sac_free(s1), sac_free(s2), sac_free(s3), sac_free(s4);
}

static void test_act(void) {
  batch b;
  make_batch(&b, 4);
  sac* s = make_agent(8, &b); /* act_chunk 7 < 20 rows: three chunks */
  enum { R = 20 };
  float obs[R * O], a_det[R * A], a_sto[R * A], out[R * 2 * A];
  for (int i = 0; i < R * O; i++) obs[i] = rng_normal(K, 60, 0, (uint64_t)i);
  rng_key ak = {8, RNG_ACT};
  sac_act(s, obs, R, 1, ak, 0, 5, a_det);
  sac_act(s, obs, R, 0, ak, 0, 5, a_sto);
  nn_forward(&s->pi, s->pi_w, R, obs, 1, NULL, out);
  double e_det = 0, e_sto = 0;
  int in_range = 1;
  for (int r = 0; r < R; r++)
    for (int i = 0; i < A; i++) {
      double mu = out[r * 2 * A + i], ls = fmin(fmax(out[r * 2 * A + A + i], -20.0), 2.0);
      double eps = rng_normal(ak, 0, 5, (uint64_t)(r * A + i));
      e_det = fmax(e_det, fabs(a_det[r * A + i] - tanh(mu)));
      e_sto = fmax(e_sto, fabs(a_sto[r * A + i] - tanh(mu + exp(ls) * eps)));
      in_range &= fabsf(a_sto[r * A + i]) <= 1.0f && fabsf(a_det[r * A + i]) <= 1.0f;
    }
  CHECK(e_det < 1e-6, "deterministic action error %g", e_det);
  CHECK(e_sto < 1e-5, "stochastic action error %g (noise index b * act + i)", e_sto);
  CHECK(in_range, "actions in [-1, 1]");
  /* the agent-free form with a snapshot and another chunk size draws the same */
  nn_cache* c = nn_cache_alloc(&s->pi, 3);
  float ws[3 * 2 * A], a2[R * A];
  sac_policy_act(&s->pi, s->pi_w, c, ws, obs, R, 0, ak, 0, 5, a2);
  double e2 = 0;
  for (int i = 0; i < R * A; i++) e2 = fmax(e2, fabs(a2[i] - a_sto[i]));
  CHECK(e2 < 1e-6, "sac_policy_act differs from sac_act by %g", e2);
  nn_cache_free(c);
  sac_free(s);
}

int main(void) {
  RUN(test_create);
  RUN(test_losses_and_grads);
  RUN(test_simultaneous_update);
  RUN(test_determinism);
  RUN(test_act);
  return test_done();
}
