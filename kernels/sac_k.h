/* sac_k.h: the fused element ops of the device SAC agent (sac_dev.h), one body each for the host
 * emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/cpu/sac.c expression by
 * expression (same operations in the same order, float where it is float and double where the host
 * sums in double), so that a DX_HOST context reproduces the CPU agent to rounding of the GEMMs.
 *
 * Everything that changes between replays of a captured update is read here from device memory:
 * the update number keying the noise (*ctr), alpha = exp(*log_alpha), the acting counter. */
#ifndef MBPO_SAC_K_H
#define MBPO_SAC_K_H

#include <math.h>
#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* the constants of host/cpu/sac.c and sac.h (SAC_LOG_STD_MIN / MAX) */
#define SACK_LOG_STD_MIN (-20.0f)
#define SACK_LOG_STD_MAX 2.0f
#define SACK_HALF_LOG_2PI 0.91893853320467274178f
#define SACK_LOG_2 0.69314718055994530942f

MBPO_HD static float sack_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

MBPO_HD static float sack_clip_log_std(float x) {
  return x < SACK_LOG_STD_MIN ? SACK_LOG_STD_MIN : (x > SACK_LOG_STD_MAX ? SACK_LOG_STD_MAX : x);
}

/* Tanh-Gaussian sample with log-probability, one thread per row b (sample_row of sac.c):
 *   x[b] = [obs[b], tanh(u)] with u = mu + exp(clip(log sigma)) eps, the critic input;
 *   logp[b] = sum_i (-eps^2/2 - log(2 pi)/2 - ls - 2 (log 2 - u - softplus(-2 u)));
 *   eps[b][i] (when not NULL) = rng_normal(key, c0, c1, idx0 + b * A + i), kept for the backward,
 * with (c0, c1) the low and high words of *ctr (the update number). */
typedef struct sack_sample_args {
  const float* out;  /* policy output [B][2A]: [mu | raw log sigma] */
  const float* obs;  /* [B][O] */
  float* x;          /* [B][O + A] */
  float* logp;       /* [B] */
  float* eps;        /* [B][A] or NULL */
  const uint64_t* ctr;
  uint64_t idx0;     /* 0 for a' at s', B * A for a~ at s */
  rng_key key;
  int O, A;
} sack_sample_args;
MBPO_HD static void sack_sample_body(long b, const sack_sample_args* p) {
  const int O = p->O, A = p->A, D = O + A;
  const uint64_t k = *p->ctr;
  const uint32_t c0 = (uint32_t)k, c1 = (uint32_t)(k >> 32);
  const float* out = p->out + b * 2 * A;
  float* x = p->x + b * D;
  for (int j = 0; j < O; j++) x[j] = p->obs[b * O + j];
  float lp = 0.0f;
  for (int i = 0; i < A; i++) {
    float e = rng_normal(p->key, c0, c1, p->idx0 + (uint64_t)b * (uint64_t)A + (uint64_t)i);
    if (p->eps) p->eps[b * A + i] = e;
    float ls = sack_clip_log_std(out[A + i]);
    float ui = out[i] + expf(ls) * e;
    x[O + i] = tanhf(ui);
    lp += -0.5f * e * e - SACK_HALF_LOG_2PI - ls - 2.0f * (SACK_LOG_2 - ui - sack_softplus(-2.0f * ui));
  }
  p->logp[b] = lp;
}

/* Bellman target, one thread per row:
 *   y = rs r + gamma (1 - d) (min(Qt_0, Qt_1) - alpha log pi'),  alpha = exp(*log_alpha) */
typedef struct sack_target_args {
  const float* qn;   /* [2][B] target critics at [s', a'] */
  const float* logp_n;
  const float* rew;
  const float* done;
  const float* log_alpha;
  float* y;
  int B;
  float reward_scale, gamma;
} sack_target_args;
MBPO_HD static void sack_target_body(long b, const sack_target_args* p) {
  const float alpha = expf(p->log_alpha[0]);
  float qmin = fminf(p->qn[b], p->qn[p->B + b]);
  p->y[b] = p->reward_scale * p->rew[b] + p->gamma * (1.0f - p->done[b]) * (qmin - alpha * p->logp_n[b]);
}

/* Critic loss gradient dL/dQ_j = (Q_j - y) / B, one thread per (j, b), i = j * B + b. */
typedef struct sack_critic_grad_args {
  const float* qv;   /* [2][B] critics at [s, a] */
  const float* y;
  float* dq;         /* [2][B] */
  int B;
  float invB;
} sack_critic_grad_args;
MBPO_HD static void sack_critic_grad_body(long i, const sack_critic_grad_args* p) {
  float diff = p->qv[i] - p->y[i % p->B];
  p->dq[i] = diff * p->invB;
}

/* Output gradient of the critics at [s, a~] for the policy loss -mean_b min_j Q_j: -1/B to the
 * smaller Q, split equally between exact ties. One thread per row. */
typedef struct sack_pi_q_grad_args {
  const float* qp;   /* [2][B] */
  float* dqp;        /* [2][B] */
  int B;
  float invB;
} sack_pi_q_grad_args;
MBPO_HD static void sack_pi_q_grad_body(long b, const sack_pi_q_grad_args* p) {
  float q0 = p->qp[b], q1 = p->qp[p->B + b];
  float g0 = q0 < q1 ? 1.0f : (q0 > q1 ? 0.0f : 0.5f);
  p->dqp[b] = -p->invB * g0;
  p->dqp[p->B + b] = -p->invB * (1.0f - g0);
}

/* Policy output gradient through tanh, the sample and the log sigma clip, one thread per (b, i):
 *   dL/du = (alpha / B) 2 tanh(u) + dL/da~ (1 - tanh(u)^2);  dL/dmu = dL/du;
 *   dL/dlog sigma = -alpha / B + dL/du sigma eps inside [-20, 2], else 0.
 * dL/da~ is the action columns of the critics' input gradient at [s, a~]. */
typedef struct sack_pi_back_args {
  const float* x_sp; /* [B][D]: tanh(u) in the action columns */
  const float* dxp;  /* [B][D] */
  const float* out;  /* policy output at s [B][2A] */
  const float* eps;  /* [B][A] */
  const float* log_alpha;
  float* dpi;        /* [B][2A] */
  int O, A;
  float invB;
} sack_pi_back_args;
MBPO_HD static void sack_pi_back_body(long n, const sack_pi_back_args* p) {
  const int O = p->O, A = p->A, D = O + A;
  const long b = n / A;
  const int i = (int)(n % A);
  const float alpha = expf(p->log_alpha[0]), invB = p->invB;
  const float* out = p->out + b * 2 * A;
  float* d = p->dpi + b * 2 * A;
  float t = p->x_sp[b * D + O + i];
  float ga = p->dxp[b * D + O + i];
  float gu = alpha * invB * 2.0f * t + ga * (1.0f - t * t);
  float raw = out[A + i];
  int inside = raw >= SACK_LOG_STD_MIN && raw <= SACK_LOG_STD_MAX;
  d[i] = gu;
  d[A + i] = inside ? -alpha * invB + gu * expf(raw) * p->eps[b * A + i] : 0.0f;
}

/* Temperature gradient and statistics, each index summing the batch in order in double (as sac.c):
 *   i = 0: log_alpha_g = -(mean log pi + target entropy);
 *   i = 1 + k (k < SACD_NSTATS, only when stats is not NULL): statistic k in sac_stats order. */
typedef struct sack_alpha_stats_args {
  const float* qv;   /* [2][B] critics at [s, a] */
  const float* y;
  const float* qp;   /* [2][B] critics at [s, a~] */
  const float* logp; /* [B] at s */
  const float* log_alpha;
  float* log_alpha_g;
  float* stats;
  int B;
  float target_entropy;
} sack_alpha_stats_args;
MBPO_HD static void sack_alpha_stats_body(long i, const sack_alpha_stats_args* p) {
  const int B = p->B;
  const float alpha = expf(p->log_alpha[0]);
  double lsum = 0;
  for (int b = 0; b < B; b++) lsum += p->logp[b];
  const double mean_logp = lsum / B;
  if (i == 0) {
    p->log_alpha_g[0] = (float)(-(mean_logp + p->target_entropy));
    return;
  }
  double s = 0;
  switch (i - 1) {
    case 0: /* q1_loss */
    case 1: /* q2_loss */
      for (int b = 0; b < B; b++) {
        float diff = p->qv[(long)(i - 1) * B + b] - p->y[b];
        s += 0.5 * (double)diff * diff;
      }
      s /= B;
      break;
    case 2: /* pi_loss */
      for (int b = 0; b < B; b++) s += (double)alpha * p->logp[b] - fminf(p->qp[b], p->qp[B + b]);
      s /= B;
      break;
    case 3: s = alpha; break;
    case 4: s = -(double)p->log_alpha[0] * (mean_logp + p->target_entropy); break;
    case 5: s = -mean_logp; break;
    default: /* q_mean */
      for (long j = 0; j < 2L * B; j++) s += p->qv[j];
      s /= (2.0 * B);
      break;
  }
  p->stats[i - 1] = (float)s;
}

/* Acting, one thread per (r, i): a = tanh(mu + exp(clip(log sigma)) eps) with
 * eps = rng_normal(key, c0, (uint32_t)*c1_ctr, r * A + i), or tanh(mu) when deterministic. */
typedef struct sack_act_args {
  const float* out;  /* [B][2A] */
  float* act;        /* [B][A] */
  const uint64_t* c1_ctr;
  rng_key key;
  uint32_t c0;
  int A, deterministic;
} sack_act_args;
MBPO_HD static void sack_act_body(long n, const sack_act_args* p) {
  const int A = p->A;
  const long r = n / A;
  const int i = (int)(n % A);
  const float* o = p->out + r * 2 * A;
  float u = o[i];
  if (!p->deterministic)
    u += expf(sack_clip_log_std(o[A + i])) * rng_normal(p->key, p->c0, (uint32_t)*p->c1_ctr, (uint64_t)n);
  p->act[n] = tanhf(u);
}

extern const dx_op dxop_sack_sample, dxop_sack_target, dxop_sack_critic_grad, dxop_sack_pi_q_grad,
    dxop_sack_pi_back, dxop_sack_alpha_stats, dxop_sack_act;

#ifdef __cplusplus
}
#endif
#endif
