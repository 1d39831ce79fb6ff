/* nn_k.h: element ops of the device MLP (nn_dev.h), one body each for the host emulation and the GPU
 * (kernels/dx_op.h). The arithmetic follows host/cpu/nn.c expression by expression. */
#ifndef MBPO_NN_K_H
#define MBPO_NN_K_H

#include <math.h>
#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Activations of bias_act (NN_RELU, NN_SWISH from nn.h; NNK_LINEAR: none). */
#define NNK_LINEAR 2

MBPO_HD static float nnk_swish(float x) { return x / (1.0f + expf(-x)); }
MBPO_HD static float nnk_swish_grad(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s * (1.0f + x * (1.0f - s));
}

/* Where member m (= run * E + e of a population's [P][E] members) keeps its D biases: the runs'
 * parameter vectors are pstride floats apart, a run's members D apart. */
MBPO_HD static long nnk_member_at(long m, int E, long pstride, int D) {
  return (m / E) * pstride + (m % E) * (long)D;
}

/* z[m][r][j] += b[m][j]; a = act(z) (a may be NULL: linear output, z is the output); m over the
 * population's P * E members */
typedef struct nnk_bias_act_args {
  float* z;
  float* a;
  const float* b;
  long rows_per_member; /* B */
  int D, act;
  int E;                /* members per run */
  long pstride;         /* floats between runs' parameter vectors */
} nnk_bias_act_args;
MBPO_HD static void nnk_bias_act_body(long i, const nnk_bias_act_args* p) {
  long m = i / (p->rows_per_member * p->D);
  int j = (int)(i % p->D);
  float z = p->z[i] + p->b[nnk_member_at(m, p->E, p->pstride, p->D) + j];
  p->z[i] = z;
  if (p->act == 0) p->a[i] = z > 0.0f ? z : 0.0f;
  else if (p->act == 1) p->a[i] = nnk_swish(z);
}

/* d[i] *= act'(z[i]) */
typedef struct nnk_act_back_args {
  float* d;
  const float* z;
  int act;
} nnk_act_back_args;
MBPO_HD static void nnk_act_back_body(long i, const nnk_act_back_args* p) {
  if (p->act == 0) p->d[i] = p->z[i] > 0.0f ? p->d[i] : 0.0f;
  else p->d[i] *= nnk_swish_grad(p->z[i]);
}

/* out[m][j] = scale * sum_r x[m][r][j] (+ out); i = m * D + j, member m's out at
 * nnk_member_at(m, E, pstride, D) (E = 1, pstride = D: a plain [M][D]) */
typedef struct nnk_colsum_args {
  const float* x;
  float* out;
  int R, D, accumulate;
  float scale;
  int E;
  long pstride;
} nnk_colsum_args;
MBPO_HD static void nnk_colsum_body(long i, const nnk_colsum_args* p) {
  long m = i / p->D;
  int j = (int)(i % p->D);
  const float* x = p->x + m * (long)p->R * p->D + j;
  float s = 0.0f;
  for (int r = 0; r < p->R; r++) s += x[(long)r * p->D];
  s *= p->scale;
  float* o = p->out + nnk_member_at(m, p->E, p->pstride, p->D) + j;
  *o = p->accumulate ? *o + s : s;
}

/* The backward's step between two layers as one op: d[m][r][j] *= act'(z[m][r][j]) (nnk_act_back)
 * and the bias gradient out[m][j] = sum_r d[m][r][j] (+ out) (nnk_colsum, same order of the sum, so
 * the same bits), i = m * D + j over a column, which the index owns (one launch fewer per layer). */
typedef struct nnk_act_back_colsum_args {
  float* d;
  const float* z;
  float* out;
  int act, R, D, accumulate;
  int E;
  long pstride;
} nnk_act_back_colsum_args;
MBPO_HD static void nnk_act_back_colsum_body(long i, const nnk_act_back_colsum_args* p) {
  long m = i / p->D;
  int j = (int)(i % p->D);
  float* d = p->d + m * (long)p->R * p->D + j;
  const float* z = p->z + m * (long)p->R * p->D + j;
  float s = 0.0f;
  for (int r = 0; r < p->R; r++) {
    const long o = (long)r * p->D;
    float v = p->act == 0 ? (z[o] > 0.0f ? d[o] : 0.0f) : d[o] * nnk_swish_grad(z[o]);
    d[o] = v;
    s += v;
  }
  float* b = p->out + nnk_member_at(m, p->E, p->pstride, p->D) + j;
  *b = p->accumulate ? *b + s : s;
}

/* dx[q][r][k] = sum_e dxe[q][e][r][k], i over P * B * in (q the run) */
typedef struct nnk_sum_members_args {
  const float* dxe;
  float* dx;
  int E;
  long n; /* B * in */
} nnk_sum_members_args;
MBPO_HD static void nnk_sum_members_body(long i, const nnk_sum_members_args* p) {
  long q = i / p->n, r = i % p->n;
  const float* d = p->dxe + q * p->E * p->n + r;
  float s = d[0];
  for (int e = 1; e < p->E; e++) s += d[e * p->n];
  p->dx[i] = s;
}

/* one thread per run q: t += 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) in double, rounded once
 * (TF1); runs with active[q] == 0 (active may be NULL: all) are left as they are */
typedef struct nnk_adam_tick_args {
  int64_t* t;        /* [P] */
  float* lr_t;       /* [P] */
  const float* lr;   /* [P] */
  const int* active; /* [P] or NULL */
  float b1, b2;
} nnk_adam_tick_args;
/* the tick of one Adam state (shared with the SAC agent's fused apply step, kernels/sac_k.h) */
MBPO_HD static void nnk_adam_tick_one(int64_t* tp, float* lr_t, float lr, float b1, float b2) {
  int64_t t = *tp + 1;
  *tp = t;
  double bc1 = 1.0 - pow((double)b1, (double)t);
  double bc2 = 1.0 - pow((double)b2, (double)t);
  *lr_t = (float)((double)lr * sqrt(bc2) / bc1);
}
MBPO_HD static void nnk_adam_tick_body(long q, const nnk_adam_tick_args* p) {
  if (p->active && !p->active[q]) return;
  nnk_adam_tick_one(&p->t[q], &p->lr_t[q], p->lr[q], p->b1, p->b2);
}

/* one Adam step of element i (shared with kernels/sac_k.h) */
MBPO_HD static void nnk_adam_elem(float* p, const float* gv, float* mv, float* vv, long i, float lr_t, float b1,
                                  float b2, float eps) {
  float g = gv[i];
  float m = b1 * mv[i] + (1.0f - b1) * g;
  float v = b2 * vv[i] + (1.0f - b2) * g * g;
  mv[i] = m;
  vv[i] = v;
  p[i] -= lr_t * m / (sqrtf(v) + eps);
}

/* i over P * n: run q = i / n takes its step with lr_t[q] (skipped when inactive) */
typedef struct nnk_adam_args {
  float* p;
  const float* g;
  float* m;
  float* v;
  const float* lr_t;
  const int* active;
  long n;
  float b1, b2, eps;
} nnk_adam_args;
MBPO_HD static void nnk_adam_body(long i, const nnk_adam_args* a) {
  const long q = i / a->n;
  if (a->active && !a->active[q]) return;
  nnk_adam_elem(a->p, a->g, a->m, a->v, i, a->lr_t[q], a->b1, a->b2, a->eps);
}

/* target = tau src + (1 - tau) target, i over P * n; run q = i / n uses taus[q] when taus is not
 * NULL (else tau) and is skipped when inactive */
typedef struct nnk_polyak_args {
  float* t;
  const float* s;
  const float* taus;
  const int* active;
  long n;
  float tau;
} nnk_polyak_args;
MBPO_HD static void nnk_polyak_body(long i, const nnk_polyak_args* a) {
  const long q = i / a->n;
  if (a->active && !a->active[q]) return;
  const float tau = a->taus ? a->taus[q] : a->tau;
  a->t[i] = tau * a->s[i] + (1.0f - tau) * a->t[i];
}

/* out[r] = [a[r], b[r]], i over R * (da + db) */
typedef struct nnk_concat_args {
  const float* a;
  const float* b;
  float* out;
  int da, db;
} nnk_concat_args;
MBPO_HD static void nnk_concat_body(long i, const nnk_concat_args* p) {
  int w = p->da + p->db;
  long r = i / w;
  int k = (int)(i % w);
  p->out[i] = k < p->da ? p->a[r * p->da + k] : p->b[r * p->db + (k - p->da)];
}

typedef struct nnk_fill_args {
  float* x;
  float v;
} nnk_fill_args;
MBPO_HD static void nnk_fill_body(long i, const nnk_fill_args* p) { p->x[i] = p->v; }

/* one thread per run q: ctr[q] += v unless inactive (device-side counters that captured graphs
 * advance) */
typedef struct nnk_ctr_add_args {
  uint64_t* ctr;
  const int* active;
  uint64_t v;
} nnk_ctr_add_args;
MBPO_HD static void nnk_ctr_add_body(long q, const nnk_ctr_add_args* p) {
  if (p->active && !p->active[q]) return;
  p->ctr[q] += p->v;
}

/* out[i] = rng_u32 / rng_normal of the stream (key, c0, c1) at index first + i (device = cuRAND's
 * Philox; the test holds both kinds equal) */
typedef struct nnk_rng_args {
  rng_key key;
  uint32_t c0, c1;
  uint64_t first;
  uint32_t* u;
  float* z;
} nnk_rng_args;
MBPO_HD static void nnk_rng_body(long i, const nnk_rng_args* p) {
  if (p->u) p->u[i] = rng_u32(p->key, p->c0, p->c1, p->first + (uint64_t)i);
  if (p->z) p->z[i] = rng_normal(p->key, p->c0, p->c1, p->first + (uint64_t)i);
}

extern const dx_op dxop_nnk_bias_act, dxop_nnk_act_back, dxop_nnk_colsum, dxop_nnk_act_back_colsum, dxop_nnk_sum_members,
    dxop_nnk_adam_tick, dxop_nnk_adam, dxop_nnk_polyak, dxop_nnk_concat, dxop_nnk_fill, dxop_nnk_ctr_add, dxop_nnk_rng;

#ifdef __cplusplus
}
#endif
#endif
