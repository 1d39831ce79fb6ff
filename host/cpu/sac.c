/* sac.c: Soft Actor-Critic on the CPU (sac.h), the reference for kernels/sac.cu.
 *
 * One update, with B rows, O = obs, A = act, D = O + A:
 *   1. policy at s'        -> mu', log sigma' -> a' = tanh(mu' + sigma' eps'), log pi'
 *   2. target critics at [s', a'] -> y = rs r + gamma (1 - d) (min_j Qt_j - alpha log pi')
 *   3. critics at [s, a]   -> dL/dQ_j = (Q_j - y) / B -> critic gradients
 *   4. policy at s         -> a~ = tanh(u), u = mu + sigma eps, log pi
 *   5. critics at [s, a~]  -> dL/da~ = -(1/B) d min_j Q_j / da~ (input gradient only)
 *   6. dL/du = (alpha / B) 2 tanh(u) + dL/da~ (1 - tanh(u)^2)   [d log pi / du = 2 tanh u]
 *      dL/dmu = dL/du; dL/dlog sigma = -alpha / B + dL/du sigma eps inside [-20, 2], else 0
 *   7. dL/dlog alpha = -mean(log pi + target entropy)
 * All from the same (pre-update) parameters; sac_apply_grads then steps the three Adams and moves
 * the targets. */
#include "sac.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "log.h"

struct sac_work {
  int Bmax, chunk;
  nn_cache *pi_c, *pin_c, *q_c, *qp_c, *qt_c, *act_c;
  float *x_sa, *x_na, *x_sp; /* critic inputs [B][D]: [s, a], [s', a'], [s, a~] */
  float *pi_out, *pin_out;   /* policy outputs [B][2A] at s and s' */
  float *eps, *eps_n;        /* noise [B][A] for a~ and a' */
  float *u;                  /* pre-tanh sample [B][A] at s */
  float *logp, *logp_n;      /* [B] */
  float *y;                  /* [B] Bellman target */
  float *qv, *qn, *qp;       /* critic outputs [2][B]: Q(s,a), Qt(s',a'), Q(s,a~) */
  float *dq, *dqp;           /* [2][B] output gradients */
  float *dxp;                /* [B][D] input gradient of the critics at [s, a~] */
  float *dpi;                /* [B][2A] output gradient of the policy */
  float *act_out;            /* [chunk][2A] acting workspace */
};

sac_params sac_params_default(int act_dim) {
  sac_params p;
  p.hidden = 256;
  p.layers = 2;
  p.batch = 256;
  p.act_chunk = 4096;
  p.lr = 3e-4f;
  p.gamma = 0.99f;
  p.tau = 5e-3f;
  p.target_entropy = -(float)act_dim;
  p.reward_scale = 1.0f;
  p.log_alpha_init = 0.0f;
  return p;
}

sac_params sac_params_from_config(const mbpo_config* c) {
  sac_params p = sac_params_default(1);
  p.hidden = (int)c->sac_hidden;
  p.layers = (int)c->sac_layers;
  p.batch = (int)c->sac_batch;
  p.lr = (float)c->sac_lr;
  p.gamma = (float)c->sac_gamma;
  p.tau = (float)c->sac_tau;
  p.target_entropy = (float)c->sac_target_entropy;
  p.reward_scale = (float)c->sac_reward_scale;
  return p;
}

static float softplusf(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

static float clip_log_std(float x) {
  return x < SAC_LOG_STD_MIN ? SAC_LOG_STD_MIN : (x > SAC_LOG_STD_MAX ? SAC_LOG_STD_MAX : x);
}

#define HALF_LOG_2PI 0.91893853320467274178f
#define LOG_2 0.69314718055994530942f

/* One row: policy output out = [mu | raw log sigma] (A each) and noise eps -> u (may be NULL),
 * a = tanh(u); returns log pi(a) with the exact tanh correction computed from u. */
static float sample_row(const float* out, const float* eps, int A, float* u, float* a) {
  float lp = 0.0f;
  for (int i = 0; i < A; i++) {
    float ls = clip_log_std(out[A + i]);
    float ui = out[i] + expf(ls) * eps[i];
    if (u) u[i] = ui;
    a[i] = tanhf(ui);
    lp += -0.5f * eps[i] * eps[i] - HALF_LOG_2PI - ls - 2.0f * (LOG_2 - ui - softplusf(-2.0f * ui));
  }
  return lp;
}

sac* sac_create(int obs_dim, int act_dim, const sac_params* p, rng_key key) {
  if (obs_dim < 1 || act_dim < 1) mbpo_fatal("sac_create: obs %d, act %d", obs_dim, act_dim);
  if (p->hidden < 1 || p->layers < 1 || p->layers + 1 > NN_MAX_LAYERS || p->batch < 1)
    mbpo_fatal("sac_create: hidden %d, layers %d, batch %d", p->hidden, p->layers, p->batch);
  sac* s = calloc(1, sizeof *s);
  struct sac_work* w = calloc(1, sizeof *w);
  if (!s || !w) mbpo_fatal("out of memory");
  s->obs_dim = obs_dim;
  s->act_dim = act_dim;
  s->p = *p;
  if (s->p.act_chunk < 1) s->p.act_chunk = 4096;
  s->noise_key = (rng_key){key.seed, RNG_SAC_NOISE};
  s->w = w;

  const int O = obs_dim, A = act_dim, D = O + A, L = p->layers + 1;
  int dp[NN_MAX_LAYERS + 1], dq[NN_MAX_LAYERS + 1];
  dp[0] = O, dq[0] = D;
  for (int l = 1; l < L; l++) dp[l] = dq[l] = p->hidden;
  dp[L] = 2 * A, dq[L] = 1;
  s->pi = nn_mlp_make(1, L, dp, NN_RELU);
  s->q = nn_mlp_make(2, L, dq, NN_RELU);

  s->pi_w = nn_alloc(s->pi.nparams);
  s->q_w = nn_alloc(s->q.nparams);
  s->qt_w = nn_alloc(s->q.nparams);
  s->pi_g = nn_alloc(s->pi.nparams);
  s->q_g = nn_alloc(s->q.nparams);
  s->log_alpha = nn_alloc(1);
  s->log_alpha_g = nn_alloc(1);
  rng_key ik = {key.seed, RNG_INIT};
  nn_init_glorot(&s->pi, s->pi_w, ik, SAC_NET_POLICY);
  nn_init_glorot(&s->q, s->q_w, ik, SAC_NET_CRITIC);
  memcpy(s->qt_w, s->q_w, s->q.nparams * sizeof(float));
  s->log_alpha[0] = p->log_alpha_init;
  s->pi_adam = nn_adam_alloc(s->pi.nparams, p->lr);
  s->q_adam = nn_adam_alloc(s->q.nparams, p->lr);
  s->alpha_adam = nn_adam_alloc(1, p->lr);

  const size_t B = (size_t)p->batch;
  w->Bmax = p->batch;
  w->chunk = s->p.act_chunk;
  w->pi_c = nn_cache_alloc(&s->pi, p->batch);
  w->pin_c = nn_cache_alloc(&s->pi, p->batch);
  w->q_c = nn_cache_alloc(&s->q, p->batch);
  w->qp_c = nn_cache_alloc(&s->q, p->batch);
  w->qt_c = nn_cache_alloc(&s->q, p->batch);
  w->act_c = nn_cache_alloc(&s->pi, w->chunk);
  w->x_sa = nn_alloc(B * D);
  w->x_na = nn_alloc(B * D);
  w->x_sp = nn_alloc(B * D);
  w->pi_out = nn_alloc(B * 2 * A);
  w->pin_out = nn_alloc(B * 2 * A);
  w->eps = nn_alloc(B * A);
  w->eps_n = nn_alloc(B * A);
  w->u = nn_alloc(B * A);
  w->logp = nn_alloc(B);
  w->logp_n = nn_alloc(B);
  w->y = nn_alloc(B);
  w->qv = nn_alloc(2 * B);
  w->qn = nn_alloc(2 * B);
  w->qp = nn_alloc(2 * B);
  w->dq = nn_alloc(2 * B);
  w->dqp = nn_alloc(2 * B);
  w->dxp = nn_alloc(B * D);
  w->dpi = nn_alloc(B * 2 * A);
  w->act_out = nn_alloc((size_t)w->chunk * 2 * A);
  return s;
}

void sac_free(sac* s) {
  if (!s) return;
  struct sac_work* w = s->w;
  nn_cache_free(w->pi_c), nn_cache_free(w->pin_c), nn_cache_free(w->q_c);
  nn_cache_free(w->qp_c), nn_cache_free(w->qt_c), nn_cache_free(w->act_c);
  float* bufs[] = {w->x_sa, w->x_na, w->x_sp, w->pi_out, w->pin_out, w->eps, w->eps_n, w->u,
                   w->logp, w->logp_n, w->y, w->qv, w->qn, w->qp, w->dq, w->dqp, w->dxp,
                   w->dpi, w->act_out};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(w);
  free(s->pi_w), free(s->q_w), free(s->qt_w), free(s->pi_g), free(s->q_g);
  free(s->log_alpha), free(s->log_alpha_g);
  nn_adam_free(s->pi_adam), nn_adam_free(s->q_adam), nn_adam_free(s->alpha_adam);
  free(s);
}

/* x[b] = [s[b], (actions filled later)] */
static void put_obs(float* x, const float* obs, int B, int O, int D) {
  for (int b = 0; b < B; b++) memcpy(x + (size_t)b * D, obs + (size_t)b * O, (size_t)O * sizeof(float));
}

void sac_compute_grads(sac* s, const float* obs, const float* act, const float* rew,
                       const float* next_obs, const float* done, int B, uint64_t update_index,
                       sac_stats* st) {
  struct sac_work* w = s->w;
  const int O = s->obs_dim, A = s->act_dim, D = O + A;
  if (B < 1 || B > w->Bmax) mbpo_fatal("sac_update: batch of %d rows (1..%d)", B, w->Bmax);
  const uint32_t c0 = (uint32_t)update_index, c1 = (uint32_t)(update_index >> 32);
  const float alpha = expf(s->log_alpha[0]), invB = 1.0f / (float)B;
  const sac_params* p = &s->p;

  /* noise: eps' at index b*A + i, eps at B*A + b*A + i */
  for (size_t n = 0; n < (size_t)B * A; n++) {
    w->eps_n[n] = rng_normal(s->noise_key, c0, c1, n);
    w->eps[n] = rng_normal(s->noise_key, c0, c1, (size_t)B * A + n);
  }

  /* 1-2: the Bellman target from the target critics and a fresh a' ~ pi(.|s') */
  nn_forward(&s->pi, s->pi_w, B, next_obs, 1, w->pin_c, w->pin_out);
  put_obs(w->x_na, next_obs, B, O, D);
  for (int b = 0; b < B; b++)
    w->logp_n[b] = sample_row(w->pin_out + (size_t)b * 2 * A, w->eps_n + (size_t)b * A, A, NULL,
                              w->x_na + (size_t)b * D + O);
  nn_forward(&s->q, s->qt_w, B, w->x_na, 1, w->qt_c, w->qn);
  for (int b = 0; b < B; b++) {
    float qmin = fminf(w->qn[b], w->qn[B + b]);
    w->y[b] = p->reward_scale * rew[b] + p->gamma * (1.0f - done[b]) * (qmin - alpha * w->logp_n[b]);
  }

  /* 3: critic loss 0.5 mean (Q_j - y)^2 per critic */
  put_obs(w->x_sa, obs, B, O, D);
  for (int b = 0; b < B; b++)
    memcpy(w->x_sa + (size_t)b * D + O, act + (size_t)b * A, (size_t)A * sizeof(float));
  nn_forward(&s->q, s->q_w, B, w->x_sa, 1, w->q_c, w->qv);
  double ql[2] = {0, 0}, qsum = 0;
  for (int j = 0; j < 2; j++)
    for (int b = 0; b < B; b++) {
      float diff = w->qv[(size_t)j * B + b] - w->y[b];
      ql[j] += 0.5 * (double)diff * diff;
      qsum += w->qv[(size_t)j * B + b];
      w->dq[(size_t)j * B + b] = diff * invB;
    }
  nn_zero(s->q_g, s->q.nparams);
  nn_backward(&s->q, s->q_w, w->q_c, w->dq, s->q_g, NULL);

  /* 4: a~ = tanh(mu + sigma eps) at s */
  nn_forward(&s->pi, s->pi_w, B, obs, 1, w->pi_c, w->pi_out);
  put_obs(w->x_sp, obs, B, O, D);
  for (int b = 0; b < B; b++)
    w->logp[b] = sample_row(w->pi_out + (size_t)b * 2 * A, w->eps + (size_t)b * A, A,
                            w->u + (size_t)b * A, w->x_sp + (size_t)b * D + O);

  /* 5: policy loss mean (alpha log pi - min_j Q_j(s, a~)) and its gradient wrt a~ */
  nn_forward(&s->q, s->q_w, B, w->x_sp, 1, w->qp_c, w->qp);
  double pl = 0, lsum = 0;
  for (int b = 0; b < B; b++) {
    float q0 = w->qp[b], q1 = w->qp[B + b];
    float g0 = q0 < q1 ? 1.0f : (q0 > q1 ? 0.0f : 0.5f); /* share of min's gradient to Q_0 */
    w->dqp[b] = -invB * g0;
    w->dqp[B + b] = -invB * (1.0f - g0);
    pl += (double)alpha * w->logp[b] - fminf(q0, q1);
    lsum += w->logp[b];
  }
  nn_backward(&s->q, s->q_w, w->qp_c, w->dqp, NULL, w->dxp);

  /* 6: through tanh, the sample and the log sigma clip into the policy */
  for (int b = 0; b < B; b++) {
    const float* out = w->pi_out + (size_t)b * 2 * A;
    float* d = w->dpi + (size_t)b * 2 * A;
    for (int i = 0; i < A; i++) {
      float t = w->x_sp[(size_t)b * D + O + i]; /* tanh(u) */
      float ga = w->dxp[(size_t)b * D + O + i];
      float gu = alpha * invB * 2.0f * t + ga * (1.0f - t * t);
      float raw = out[A + i];
      int inside = raw >= SAC_LOG_STD_MIN && raw <= SAC_LOG_STD_MAX;
      d[i] = gu;
      d[A + i] = inside ? -alpha * invB + gu * expf(raw) * w->eps[(size_t)b * A + i] : 0.0f;
    }
  }
  nn_zero(s->pi_g, s->pi.nparams);
  nn_backward(&s->pi, s->pi_w, w->pi_c, w->dpi, s->pi_g, NULL);

  /* 7: temperature */
  const double mean_logp = lsum / B;
  s->log_alpha_g[0] = (float)(-(mean_logp + p->target_entropy));

  if (st) {
    st->q1_loss = ql[0] / B;
    st->q2_loss = ql[1] / B;
    st->pi_loss = pl / B;
    st->alpha = alpha;
    st->alpha_loss = -(double)s->log_alpha[0] * (mean_logp + p->target_entropy);
    st->entropy = -mean_logp;
    st->q_mean = qsum / (2.0 * B);
  }
}

void sac_apply_grads(sac* s) {
  nn_adam_step(s->q_adam, s->q_w, s->q_g);
  nn_adam_step(s->pi_adam, s->pi_w, s->pi_g);
  nn_adam_step(s->alpha_adam, s->log_alpha, s->log_alpha_g);
  nn_polyak(s->qt_w, s->q_w, s->q.nparams, s->p.tau);
}

void sac_update(sac* s, const float* obs, const float* act, const float* rew, const float* next_obs,
                const float* done, int B, uint64_t update_index, sac_stats* st) {
  sac_compute_grads(s, obs, act, rew, next_obs, done, B, update_index, st);
  sac_apply_grads(s);
}

void sac_policy_act(const nn_mlp* pi, const float* pi_w, nn_cache* cache, float* out, const float* obs,
                    int B, int deterministic, rng_key key, uint32_t c0, uint32_t c1, float* act) {
  const int O = pi->dims[0], A = pi->dims[pi->nlayers] / 2, chunk = cache->Bmax;
  for (int r0 = 0; r0 < B; r0 += chunk) {
    const int n = B - r0 < chunk ? B - r0 : chunk;
    nn_forward(pi, pi_w, n, obs + (size_t)r0 * O, 1, cache, out);
#pragma omp parallel for if ((size_t)n * A >= (1u << 16)) schedule(static)
    for (int r = 0; r < n; r++) {
      const float* o = out + (size_t)r * 2 * A;
      float* a = act + ((size_t)r0 + r) * A;
      for (int i = 0; i < A; i++) {
        float u = o[i];
        if (!deterministic)
          u += expf(clip_log_std(o[A + i])) *
               rng_normal(key, c0, c1, ((uint64_t)r0 + (uint64_t)r) * A + (uint64_t)i);
        a[i] = tanhf(u);
      }
    }
  }
}

void sac_policy_gaussian(const nn_mlp* pi, const float* pi_w, nn_cache* cache, float* out, const float* obs,
                         int B, float* mu, float* log_std) {
  const int O = pi->dims[0], A = pi->dims[pi->nlayers] / 2, chunk = cache->Bmax;
  for (int r0 = 0; r0 < B; r0 += chunk) {
    const int n = B - r0 < chunk ? B - r0 : chunk;
    nn_forward(pi, pi_w, n, obs + (size_t)r0 * O, 1, cache, out);
    for (int r = 0; r < n; r++)
      for (int i = 0; i < A; i++) {
        mu[((size_t)r0 + r) * A + i] = out[(size_t)r * 2 * A + i];
        log_std[((size_t)r0 + r) * A + i] = clip_log_std(out[(size_t)r * 2 * A + A + i]);
      }
  }
}

double sac_gaussian_kl(const float* mu_p, const float* ls_p, const float* mu_q, const float* ls_q, int n) {
  double kl = 0.0;
  for (int i = 0; i < n; i++) {
    const double lp = ls_p[i], lq = ls_q[i], d = (double)mu_p[i] - (double)mu_q[i];
    kl += lq - lp + (exp(2.0 * lp) + d * d) / (2.0 * exp(2.0 * lq)) - 0.5;
  }
  return kl;
}

void sac_act(const sac* s, const float* obs, int B, int deterministic, rng_key key, uint32_t c0,
             uint32_t c1, float* act) {
  sac_policy_act(&s->pi, s->pi_w, s->w->act_c, s->w->act_out, obs, B, deterministic, key, c0, c1, act);
}

void sac_sample(const sac* s, const float* obs, int B, rng_key key, uint32_t c0, uint32_t c1, float* act,
                float* logp) {
  const int O = s->obs_dim, A = s->act_dim, chunk = s->w->act_c->Bmax;
  float* out = s->w->act_out;
  for (int r0 = 0; r0 < B; r0 += chunk) {
    const int n = B - r0 < chunk ? B - r0 : chunk;
    nn_forward(&s->pi, s->pi_w, n, obs + (size_t)r0 * O, 1, s->w->act_c, out);
    for (int r = 0; r < n; r++) {
      float eps[ENV_MAX_ACT];
      for (int i = 0; i < A; i++) eps[i] = rng_normal(key, c0, c1, ((uint64_t)r0 + (uint64_t)r) * A + (uint64_t)i);
      logp[r0 + r] = sample_row(out + (size_t)r * 2 * A, eps, A, NULL, act + ((size_t)r0 + r) * A);
    }
  }
}

int sac_tensors(sac* s, sac_tensor* out) {
  const sac_tensor t[SAC_NTENSORS] = {
      {"policy", s->pi_w, s->pi.nparams},
      {"q", s->q_w, s->q.nparams},
      {"q_target", s->qt_w, s->q.nparams},
      {"log_alpha", s->log_alpha, 1},
      {"adam_policy_m", s->pi_adam->m, s->pi.nparams},
      {"adam_policy_v", s->pi_adam->v, s->pi.nparams},
      {"adam_q_m", s->q_adam->m, s->q.nparams},
      {"adam_q_v", s->q_adam->v, s->q.nparams},
      {"adam_alpha_m", s->alpha_adam->m, 1},
      {"adam_alpha_v", s->alpha_adam->v, 1},
  };
  memcpy(out, t, sizeof t);
  return SAC_NTENSORS;
}
