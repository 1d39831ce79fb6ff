/* sac_k.h: the fused element ops of the device SAC agent (sac_dev.h), one body each for the host
 * emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/cpu/sac.c expression by
 * expression (same operations in the same order, float where it is float and double where the host
 * sums in double), so that a DX_HOST context reproduces the CPU agent to rounding of the GEMMs.
 *
 * Everything that changes between replays of a captured update is read here from device memory:
 * the update number keying the noise (*ctr), alpha = exp(*log_alpha), the acting counter.
 *
 * Heads. Where an op reads a network's output, it may also add that output layer's bias first (hb
 * not NULL: the network ran with nnd_forward_head, which leaves the last layer's bias to its
 * reader), with nnk_bias_act's expression z + b, stored back: one op fewer per forward, the same
 * bits. Run q's bias for output column (or critic member) c is hb[q * hps + c]. */
#ifndef MBPO_SAC_K_H
#define MBPO_SAC_K_H

#include <math.h>
#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "nn_k.h"
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

/* The settings of one run of a population (device array [P]): the ops below cover all P runs of
 * a device agent in one launch, each run with its own noise key and hyperparameters. Rows are
 * [P][B], the critics' outputs [P][2][B]; a run's counters lie ctr_stride words apart. */
typedef struct sack_run {
  rng_key noise_key;
  float reward_scale, gamma, target_entropy, pad;
} sack_run;

/* Tanh-Gaussian sample with log-probability, one thread per row i = q * B + b (sample_row of sac.c):
 *   x[i] = [obs[i], tanh(u)] with u = mu + exp(clip(log sigma)) eps, the critic input;
 *   logp[i] = sum_k (-eps^2/2 - log(2 pi)/2 - ls - 2 (log 2 - u - softplus(-2 u)));
 *   eps[i][k] (when not NULL) = rng_normal(run q's key, c0, c1, idx0 + b * A + k), kept for the
 * backward, with (c0, c1) the low and high words of run q's update number. */
typedef struct sack_sample_args {
  float* out;        /* policy output [P][B][2A]: [mu | raw log sigma] (its bias added first: hb) */
  const float* obs;  /* [P][B][O] */
  float* x;          /* [P][B][O + A] */
  float* logp;       /* [P][B] */
  float* eps;        /* [P][B][A] or NULL */
  const uint64_t* ctr;
  const sack_run* runs;
  uint64_t idx0;     /* 0 for a' at s', B * A for a~ at s */
  long ctr_stride;
  int B, O, A;
  const float* hb;   /* the policy's output bias (heads, above) or NULL */
  long hps;
} sack_sample_args;
MBPO_HD static void sack_sample_body(long i, const sack_sample_args* p) {
  const int O = p->O, A = p->A, D = O + A;
  const long q = i / p->B, b = i % p->B;
  const uint64_t k = p->ctr[q * p->ctr_stride];
  const uint32_t c0 = (uint32_t)k, c1 = (uint32_t)(k >> 32);
  const rng_key key = p->runs[q].noise_key;
  float* out = p->out + i * 2 * A;
  if (p->hb)
    for (int c = 0; c < 2 * A; c++) out[c] = out[c] + p->hb[q * p->hps + c];
  float* x = p->x + i * D;
  for (int j = 0; j < O; j++) x[j] = p->obs[i * O + j];
  float lp = 0.0f;
  for (int a = 0; a < A; a++) {
    float e = rng_normal(key, c0, c1, p->idx0 + (uint64_t)b * (uint64_t)A + (uint64_t)a);
    if (p->eps) p->eps[i * A + a] = e;
    float ls = sack_clip_log_std(out[A + a]);
    float ui = out[a] + expf(ls) * e;
    x[O + a] = tanhf(ui);
    lp += -0.5f * e * e - SACK_HALF_LOG_2PI - ls - 2.0f * (SACK_LOG_2 - ui - sack_softplus(-2.0f * ui));
  }
  p->logp[i] = lp;
}

/* Bellman target, one thread per row i = q * B + b:
 *   y = rs r + gamma (1 - d) (min(Qt_0, Qt_1) - alpha log pi'),  alpha = exp(log_alpha[q]) */
typedef struct sack_target_args {
  float* qn;         /* [P][2][B] target critics at [s', a'] (their bias added first: hb) */
  const float* logp_n;
  const float* rew;
  const float* done;
  const float* log_alpha; /* [P] */
  const sack_run* runs;
  float* y;
  int B;
  const float* hb;   /* the target critics' output biases (heads, above) or NULL */
  long hps;
} sack_target_args;
MBPO_HD static void sack_target_body(long i, const sack_target_args* p) {
  const long q = i / p->B, b = i % p->B;
  const float alpha = expf(p->log_alpha[q]);
  float* qn = p->qn + q * 2 * p->B;
  if (p->hb) {
    qn[b] = qn[b] + p->hb[q * p->hps];
    qn[p->B + b] = qn[p->B + b] + p->hb[q * p->hps + 1];
  }
  float qmin = fminf(qn[b], qn[p->B + b]);
  p->y[i] = p->runs[q].reward_scale * p->rew[i] +
            p->runs[q].gamma * (1.0f - p->done[i]) * (qmin - alpha * p->logp_n[i]);
}

/* Critic loss gradient dL/dQ_j = (Q_j - y) / B, one thread per (q, j, b), i = (q * 2 + j) * B + b. */
typedef struct sack_critic_grad_args {
  float* qv;         /* [P][2][B] critics at [s, a] (their bias added first: hb) */
  const float* y;    /* [P][B] */
  float* dq;         /* [P][2][B] */
  int B;
  float invB;
  const float* hb;   /* the critics' output biases (heads, above) or NULL */
  long hps;
} sack_critic_grad_args;
MBPO_HD static void sack_critic_grad_body(long i, const sack_critic_grad_args* p) {
  const long q = i / (2L * p->B);
  if (p->hb) p->qv[i] = p->qv[i] + p->hb[q * p->hps + (i / p->B) % 2];
  float diff = p->qv[i] - p->y[q * p->B + i % p->B];
  p->dq[i] = diff * p->invB;
}

/* Output gradient of the critics at [s, a~] for the policy loss -mean_b min_j Q_j: -1/B to the
 * smaller Q, split equally between exact ties. One thread per row i = q * B + b. */
typedef struct sack_pi_q_grad_args {
  float* qp;         /* [P][2][B] (their bias added first: hb) */
  float* dqp;        /* [P][2][B] */
  int B;
  float invB;
  const float* hb;   /* the critics' output biases (heads, above) or NULL */
  long hps;
} sack_pi_q_grad_args;
MBPO_HD static void sack_pi_q_grad_body(long i, const sack_pi_q_grad_args* p) {
  const long q = i / p->B, b = i % p->B, o = q * 2 * p->B;
  if (p->hb) {
    p->qp[o + b] = p->qp[o + b] + p->hb[q * p->hps];
    p->qp[o + p->B + b] = p->qp[o + p->B + b] + p->hb[q * p->hps + 1];
  }
  float q0 = p->qp[o + b], q1 = p->qp[o + p->B + b];
  float g0 = q0 < q1 ? 1.0f : (q0 > q1 ? 0.0f : 0.5f);
  p->dqp[o + b] = -p->invB * g0;
  p->dqp[o + p->B + b] = -p->invB * (1.0f - g0);
}

/* Policy output gradient through tanh, the sample and the log sigma clip, one thread per (row, k):
 *   dL/du = (alpha / B) 2 tanh(u) + dL/da~ (1 - tanh(u)^2);  dL/dmu = dL/du;
 *   dL/dlog sigma = -alpha / B + dL/du sigma eps inside [-20, 2], else 0.
 * dL/da~ is the action columns of the critics' input gradient at [s, a~]: dxp, or (dxe not NULL)
 * the sum over the E members of their input gradients, in nnk_sum_members' order. */
typedef struct sack_pi_back_args {
  const float* x_sp; /* [P][B][D]: tanh(u) in the action columns */
  const float* dxp;  /* [P][B][D] (unused when dxe is set) */
  const float* out;  /* policy output at s [P][B][2A] */
  const float* eps;  /* [P][B][A] */
  const float* log_alpha; /* [P] */
  float* dpi;        /* [P][B][2A] */
  int B, O, A;
  float invB;
  const float* dxe;  /* per-member input gradients [P][E][B][D] or NULL */
  int E;
} sack_pi_back_args;
MBPO_HD static void sack_pi_back_body(long n, const sack_pi_back_args* p) {
  const int O = p->O, A = p->A, D = O + A;
  const long r = n / A;
  const int i = (int)(n % A);
  const float alpha = expf(p->log_alpha[r / p->B]), invB = p->invB;
  const float* out = p->out + r * 2 * A;
  float* d = p->dpi + r * 2 * A;
  float t = p->x_sp[r * D + O + i];
  float ga;
  if (p->dxe) {
    const long n = (long)p->B * D, q = r / p->B;
    const float* d = p->dxe + q * p->E * n + (r % p->B) * D + O + i;
    ga = d[0];
    for (int e = 1; e < p->E; e++) ga += d[e * n];
  } else {
    ga = p->dxp[r * D + O + i];
  }
  float gu = alpha * invB * 2.0f * t + ga * (1.0f - t * t);
  float raw = out[A + i];
  int inside = raw >= SACK_LOG_STD_MIN && raw <= SACK_LOG_STD_MAX;
  d[i] = gu;
  d[A + i] = inside ? -alpha * invB + gu * expf(raw) * p->eps[r * A + i] : 0.0f;
}

/* Temperature gradient and statistics of run q, each index summing the batch in order in double
 * (as sac.c); i = q * K + k with K = 1 + SACD_NSTATS (stats not NULL) or 1:
 *   k = 0: log_alpha_g[q] = -(mean log pi + target entropy);
 *   k = 1 + j: statistic j in sac_stats order into stats[q][j]. */
typedef struct sack_alpha_stats_args {
  const float* qv;   /* [P][2][B] critics at [s, a] */
  const float* y;    /* [P][B] */
  const float* qp;   /* [P][2][B] critics at [s, a~] */
  const float* logp; /* [P][B] at s */
  const float* log_alpha;
  const sack_run* runs;
  float* log_alpha_g;
  float* stats;      /* [P][nstats] or NULL */
  int B, nstats;
} sack_alpha_stats_args;
MBPO_HD static void sack_alpha_stats_body(long n, const sack_alpha_stats_args* p) {
  const int B = p->B, K = p->stats ? 1 + p->nstats : 1;
  const long q = n / K;
  const int i = (int)(n % K);
  const float* qv = p->qv + q * 2 * B;
  const float* qp = p->qp + q * 2 * B;
  const float* y = p->y + q * B;
  const float* logp = p->logp + q * B;
  const float target_entropy = p->runs[q].target_entropy;
  const float alpha = expf(p->log_alpha[q]);
  double lsum = 0;
  for (int b = 0; b < B; b++) lsum += logp[b];
  const double mean_logp = lsum / B;
  if (i == 0) {
    p->log_alpha_g[q] = (float)(-(mean_logp + target_entropy));
    return;
  }
  double s = 0;
  switch (i - 1) {
    case 0: /* q1_loss */
    case 1: /* q2_loss */
      for (int b = 0; b < B; b++) {
        float diff = qv[(long)(i - 1) * B + b] - y[b];
        s += 0.5 * (double)diff * diff;
      }
      s /= B;
      break;
    case 2: /* pi_loss */
      for (int b = 0; b < B; b++) s += (double)alpha * logp[b] - fminf(qp[b], qp[B + b]);
      s /= B;
      break;
    case 3: s = alpha; break;
    case 4: s = -(double)p->log_alpha[q] * (mean_logp + target_entropy); break;
    case 5: s = -mean_logp; break;
    default: /* q_mean */
      for (long j = 0; j < 2L * B; j++) s += qv[j];
      s /= (2.0 * B);
      break;
  }
  p->stats[q * p->nstats + i - 1] = (float)s;
}

/* The apply step of an update, fused into two ops (sac_apply_grads' arithmetic and order per
 * element): the Adam states of the critics (set 0), the policy (1) and log alpha (2) of P runs,
 * then Polyak averaging of the target critics. Runs with active[q] == 0 (active may be NULL: all)
 * are left as they are. */
typedef struct sack_adam_set {
  float* p;          /* [P][n] parameters */
  const float* g;    /* [P][n] gradients */
  float* m;
  float* v;
  int64_t* t;        /* [P] */
  float* lr_t;       /* [P] */
  const float* lr;   /* [P] */
  long n;
  float b1, b2, eps;
} sack_adam_set;

/* one thread per (set k, run q), i = k * P + q: t += 1 and the step's rate (nnk_adam_tick_one);
 * with ctr (not NULL) also k = 3: the update counter ctr[q * ctr_stride] += 1 (nnk_ctr_add's
 * effect, for sacd_update_runs_advance), over 4 P indices */
typedef struct sack_apply_tick_args {
  sack_adam_set s[3];
  const int* active;
  int P;
  uint64_t* ctr;
  long ctr_stride;
} sack_apply_tick_args;
MBPO_HD static void sack_apply_tick_body(long i, const sack_apply_tick_args* p) {
  const long k = i / p->P, q = i % p->P;
  if (p->active && !p->active[q]) return;
  if (k == 3) {
    p->ctr[q * p->ctr_stride] += 1;
    return;
  }
  const sack_adam_set* s = &p->s[k];
  nnk_adam_tick_one(&s->t[q], &s->lr_t[q], s->lr[q], s->b1, s->b2);
}

/* one thread per parameter of the three sets (set 0's P n[0] first, then set 1's, then set 2's):
 * its Adam step; a critic parameter then moves its target: qt = tau q + (1 - tau) qt */
typedef struct sack_apply_args {
  sack_adam_set s[3];
  float* qt;         /* [P][n0] target critics */
  const float* taus; /* [P] */
  const int* active;
  int P;
} sack_apply_args;
MBPO_HD static void sack_apply_body(long i, const sack_apply_args* p) {
  const long e0 = (long)p->P * p->s[0].n, e1 = e0 + (long)p->P * p->s[1].n;
  const int k = i < e0 ? 0 : (i < e1 ? 1 : 2);
  const long j = i - (k == 0 ? 0 : (k == 1 ? e0 : e1));
  const sack_adam_set* s = &p->s[k];
  const long q = j / s->n;
  if (p->active && !p->active[q]) return;
  nnk_adam_elem(s->p, s->g, s->m, s->v, j, s->lr_t[q], s->b1, s->b2, s->eps);
  if (k == 0) {
    const float tau = p->taus[q];
    p->qt[j] = tau * s->p[j] + (1.0f - tau) * p->qt[j];
  }
}

/* Acting, one thread per (q, r, k), n = (q * B + r) * A + k: a = tanh(mu + exp(clip(log sigma)) eps)
 * with eps = rng_normal(key, c0, (uint32_t)c1_ctr[q * ctr_stride], r * A + k), key = keys[q] (a
 * device array; NULL: the one key), or tanh(mu) when deterministic. */
typedef struct sack_act_args {
  const float* out;  /* [P][B][2A] */
  float* act;        /* [P][B][A] */
  const uint64_t* c1_ctr;
  const rng_key* keys;
  rng_key key;
  uint32_t c0;
  long ctr_stride;
  int B, A, deterministic;
} sack_act_args;
MBPO_HD static void sack_act_body(long n, const sack_act_args* p) {
  const int A = p->A;
  const long row = n / A, q = row / p->B, r = row % p->B;
  const int i = (int)(n % A);
  const float* o = p->out + row * 2 * A;
  float u = o[i];
  if (!p->deterministic) {
    const rng_key key = p->keys ? p->keys[q] : p->key;
    const uint32_t c1 = (uint32_t)p->c1_ctr[q * p->ctr_stride];
    u += expf(sack_clip_log_std(o[A + i])) * rng_normal(key, p->c0, c1, (uint64_t)(r * A + i));
  }
  p->act[n] = tanhf(u);
}

extern const dx_op dxop_sack_apply_tick, dxop_sack_apply, dxop_sack_sample, dxop_sack_target, dxop_sack_critic_grad, dxop_sack_pi_q_grad,
    dxop_sack_pi_back, dxop_sack_alpha_stats, dxop_sack_act;

#ifdef __cplusplus
}
#endif
#endif
