/* nn_k.h: element ops of the device MLP (dxn.h), one body each for the host emulation and the GPU
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

/* z[e][r][j] += b[e][j]; a = act(z) (a may be NULL: linear output, z is the output) */
typedef struct nnk_bias_act_args {
  float* z;
  float* a;
  const float* b;
  long rows_per_member; /* B */
  int D, act;
} nnk_bias_act_args;
MBPO_HD static void nnk_bias_act_body(long i, const nnk_bias_act_args* p) {
  long e = i / (p->rows_per_member * p->D);
  int j = (int)(i % p->D);
  float z = p->z[i] + p->b[e * p->D + j];
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

/* out[e][j] = scale * sum_r x[e][r][j] (+ out) ; i = e * D + j */
typedef struct nnk_colsum_args {
  const float* x;
  float* out;
  int R, D, accumulate;
  float scale;
} nnk_colsum_args;
MBPO_HD static void nnk_colsum_body(long i, const nnk_colsum_args* p) {
  long e = i / p->D;
  int j = (int)(i % p->D);
  const float* x = p->x + e * (long)p->R * p->D + j;
  float s = 0.0f;
  for (int r = 0; r < p->R; r++) s += x[(long)r * p->D];
  s *= p->scale;
  p->out[i] = p->accumulate ? p->out[i] + s : s;
}

/* dx[r][k] = sum_e dxe[e][r][k], i over B * in */
typedef struct nnk_sum_members_args {
  const float* dxe;
  float* dx;
  int E;
  long n; /* B * in */
} nnk_sum_members_args;
MBPO_HD static void nnk_sum_members_body(long i, const nnk_sum_members_args* p) {
  float s = p->dxe[i];
  for (int e = 1; e < p->E; e++) s += p->dxe[e * p->n + i];
  p->dx[i] = s;
}

/* one thread: t += 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) in double, rounded once (TF1) */
typedef struct nnk_adam_tick_args {
  int64_t* t;
  float* lr_t;
  float lr, b1, b2;
} nnk_adam_tick_args;
MBPO_HD static void nnk_adam_tick_body(long i, const nnk_adam_tick_args* p) {
  (void)i;
  int64_t t = *p->t + 1;
  *p->t = t;
  double bc1 = 1.0 - pow((double)p->b1, (double)t);
  double bc2 = 1.0 - pow((double)p->b2, (double)t);
  *p->lr_t = (float)((double)p->lr * sqrt(bc2) / bc1);
}

typedef struct nnk_adam_args {
  float* p;
  const float* g;
  float* m;
  float* v;
  const float* lr_t;
  float b1, b2, eps;
} nnk_adam_args;
MBPO_HD static void nnk_adam_body(long i, const nnk_adam_args* a) {
  float g = a->g[i];
  float m = a->b1 * a->m[i] + (1.0f - a->b1) * g;
  float v = a->b2 * a->v[i] + (1.0f - a->b2) * g * g;
  a->m[i] = m;
  a->v[i] = v;
  a->p[i] -= *a->lr_t * m / (sqrtf(v) + a->eps);
}

typedef struct nnk_polyak_args {
  float* t;
  const float* s;
  float tau;
} nnk_polyak_args;
MBPO_HD static void nnk_polyak_body(long i, const nnk_polyak_args* a) {
  a->t[i] = a->tau * a->s[i] + (1.0f - a->tau) * a->t[i];
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

/* one thread: *ctr += v (device-side counters that captured graphs advance) */
typedef struct nnk_ctr_add_args {
  uint64_t* ctr;
  uint64_t v;
} nnk_ctr_add_args;
MBPO_HD static void nnk_ctr_add_body(long i, const nnk_ctr_add_args* p) {
  (void)i;
  *p->ctr += p->v;
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

extern const dx_op dxop_nnk_bias_act, dxop_nnk_act_back, dxop_nnk_colsum, dxop_nnk_sum_members,
    dxop_nnk_adam_tick, dxop_nnk_adam, dxop_nnk_polyak, dxop_nnk_concat, dxop_nnk_fill, dxop_nnk_ctr_add, dxop_nnk_rng;

#ifdef __cplusplus
}
#endif
#endif
