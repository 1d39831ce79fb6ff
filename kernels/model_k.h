/* model_k.h: element ops of the device dynamics model (model_dev.h), one body each for the host
 * emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/cpu/model.c and
 * host/cpu/model_train.c expression by expression (float where they use float, double where they
 * accumulate in double), so that the device fit reproduces model_train within float tolerance.
 *
 * Reductions are deterministic and identical on both kinds: either one thread per output summing
 * in row order (the reference's order), or, for the per-step sums of a minibatch, fixed blocks
 * summed in order and then the block sums in order (two levels, about sqrt(n) each, so that no
 * thread runs long; the double sums then differ from the reference's order by ~1e-16 relative). */
#ifndef MBPO_MODEL_K_H
#define MBPO_MODEL_K_H

#include <math.h>
#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "model.h"

/** Blocks of the two-level per-step sums (mdk_partials). */
#define MDK_NB 64

/** sigmoid(x) = softplus'(x) without overflow (model.c's sigmoid). */
MBPO_HD static float mdk_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* ---- permutations, bootstrap ---- */

/* Sort keys of model_permutation for n positions of `members` independent streams (i over
 * members * n; e = i / n, j = i % n), stream c1 = (ctr ? *ctr * members : 0) + e:
 *   members == 1 (the holdout split):  key = u32 << 32 | j, vals[i] = j (vals may be NULL);
 *   members > 1 (the per-epoch shuffles, one sort for all members):
 *                                      key = e << 58 | u32 << 26 | j (j < 2^26, e < 64),
 * which orders by member, then by the random word, then by position. */
typedef struct mdk_keys_args {
  uint64_t* keys;
  int* vals;
  rng_key k;
  uint32_t c0;
  const uint64_t* ctr; /* the epoch (device), or NULL: c1 = e */
  int members;
  long n;
} mdk_keys_args;
MBPO_HD static void mdk_keys_body(long i, const mdk_keys_args* a) {
  long e = i / a->n, j = i % a->n;
  uint32_t c1 = (uint32_t)((a->ctr ? *a->ctr * (uint64_t)a->members : 0) + (uint64_t)e);
  uint64_t w = rng_u32(a->k, a->c0, c1, (uint64_t)j);
  if (a->members == 1) a->keys[i] = (w << 32) | (uint64_t)j;
  else a->keys[i] = ((uint64_t)e << 58) | (w << 26) | (uint64_t)j;
  if (a->vals) a->vals[i] = (int)j;
}

/* The fit's rows in permuted order (one thread per row i < N): g = perm[i];
 * X[i] = [obs[g], act[g]], Y[i] = [rew[g], next_obs[g] - obs[g]]. */
typedef struct mdk_split_rows_args {
  const float *obs, *act, *rew, *next_obs;
  const int* perm;
  float *X, *Y;
  int O, A;
} mdk_split_rows_args;
MBPO_HD static void mdk_split_rows_body(long i, const mdk_split_rows_args* a) {
  const int O = a->O, A = a->A, I = O + A, D = O + 1;
  const long g = a->perm[i];
  float* x = a->X + i * I;
  float* y = a->Y + i * D;
  for (int k = 0; k < O; k++) x[k] = a->obs[g * O + k];
  for (int k = 0; k < A; k++) x[O + k] = a->act[g * A + k];
  y[0] = a->rew[g];
  for (int k = 0; k < O; k++) y[1 + k] = a->next_obs[g * O + k] - a->obs[g * O + k];
}

/* Normaliser of n rows X [n][I]: mean and population std per column, two passes in double
 * (model.c's fit_column), each pass in MDK_NB blocks of rows per column so that no thread runs
 * over all rows: the block sums (i over I * MDK_NB; j = i / MDK_NB, b = i % MDK_NB), then one
 * thread per column adding its blocks in order. Pass 0 sums x, pass 1 sums (x - mu)². */
typedef struct mdk_norm_part_args {
  const float* X;
  const double* mu;    /* [I] (pass 1) */
  double* part;        /* [I][MDK_NB] */
  int n, I, pass;
} mdk_norm_part_args;
MBPO_HD static void mdk_norm_part_body(long i, const mdk_norm_part_args* a) {
  const int j = (int)(i / MDK_NB), b = (int)(i % MDK_NB);
  const long per = ((long)a->n + MDK_NB - 1) / MDK_NB;
  const long r1 = (b + 1) * per < a->n ? (b + 1) * per : a->n;
  const float* col = a->X + j;
  double s = 0.0;
  if (a->pass == 0)
    for (long r = b * per; r < r1; r++) s += col[r * a->I];
  else
    for (long r = b * per; r < r1; r++) {
      double d = col[r * a->I] - a->mu[j];
      s += d * d;
    }
  a->part[i] = s;
}

/* One thread per column j: pass 0: mu[j] = Σ blocks / n; pass 1: mean[j] = mu, std[j] =
 * sqrt(Σ blocks / n) (a std below 1e-12 becomes 1). */
typedef struct mdk_norm_fin_args {
  const double* part;
  double* mu;
  float *mean, *std;
  int n, pass;
} mdk_norm_fin_args;
MBPO_HD static void mdk_norm_fin_body(long j, const mdk_norm_fin_args* a) {
  double s = 0.0;
  for (int b = 0; b < MDK_NB; b++) s += a->part[j * MDK_NB + b];
  if (a->pass == 0) {
    a->mu[j] = a->n > 0 ? s / a->n : 0.0;
    return;
  }
  const double sd = a->n > 0 ? sqrt(s / a->n) : 0.0;
  a->mean[j] = (float)a->mu[j];
  a->std[j] = sd < 1e-12 ? 1.0f : (float)sd;
}

/* Bootstrap (i over E * n): boot[e][j] = rng_index(k, c0, e, j, n). */
typedef struct mdk_boot_args {
  int* boot;
  rng_key k;
  uint32_t c0;
  long n;
} mdk_boot_args;
MBPO_HD static void mdk_boot_body(long i, const mdk_boot_args* a) {
  long e = i / a->n, j = i % a->n;
  a->boot[i] = (int)rng_index(a->k, a->c0, (uint32_t)e, (uint64_t)j, (uint32_t)a->n);
}

/* ---- normalising and gathering ---- */

/* xn[r][k] = ([obs_r, act_r][k] - mean[k]) / std[k] (i over B * I). */
typedef struct mdk_normalize_args {
  const float *obs, *act, *mean, *std;
  float* xn;
  int O, A;
} mdk_normalize_args;
MBPO_HD static void mdk_normalize_body(long i, const mdk_normalize_args* a) {
  const int I = a->O + a->A;
  long r = i / I;
  int k = (int)(i % I);
  float v = k < a->O ? a->obs[r * a->O + k] : a->act[r * a->A + (k - a->O)];
  a->xn[i] = (v - a->mean[k]) / a->std[k];
}

/* xn[i] = (X[i] - mean) / std for rows of raw inputs X [n][I] (i over n * I). */
typedef struct mdk_norm_rows_args {
  const float *X, *mean, *std;
  float* xn;
  int I;
} mdk_norm_rows_args;
MBPO_HD static void mdk_norm_rows_body(long i, const mdk_norm_rows_args* a) {
  int k = (int)(i % a->I);
  a->xn[i] = (a->X[i] - a->mean[k]) / a->std[k];
}

/* A minibatch (one thread per row, i over E * nb; e = i / nb, r = i % nb):
 * g = idx[e * stride + r0 + r]; xb[e][r] = (Xtr[g] - mean) / std; yb[e][r] = Ytr[g]. */
typedef struct mdk_gather_args {
  const float *Xtr, *Ytr, *mean, *std;
  const int* idx;
  float *xb, *yb;
  long stride, r0;
  int nb, I, D;
} mdk_gather_args;
MBPO_HD static void mdk_gather_body(long i, const mdk_gather_args* a) {
  long e = i / a->nb, r = i % a->nb;
  const long g = a->idx[e * a->stride + a->r0 + r];
  const float* x = a->Xtr + g * a->I;
  float* xo = a->xb + i * a->I;
  for (int k = 0; k < a->I; k++) xo[k] = (x[k] - a->mean[k]) / a->std[k];
  const float* y = a->Ytr + g * a->D;
  float* yo = a->yb + i * a->D;
  for (int k = 0; k < a->D; k++) yo[k] = y[k];
}

/* ---- the loss ---- */

/* The Gaussian NLL with soft log-variance bounds of one row r (i over E * B) of the network output
 * out [E][B][2 D] against y [E][B][D] (model_loss's row loop): the row's data term into
 * rowsum[r] (double), dL/d(outputs) into dout, the row's share of the bound gradients into
 * gbnd[r] = [dmax_lv | dmin_lv]. s = 1 / (B D). */
typedef struct mdk_nll_args {
  const float *out, *y, *hi, *lo;
  float *dout, *gbnd;
  double* rowsum;
  float s;
  int D;
} mdk_nll_args;
MBPO_HD static void mdk_nll_body(long r, const mdk_nll_args* p) {
  const int D = p->D, D2 = 2 * D;
  const float* o = p->out + r * D2;
  const float* t = p->y + r * D;
  float* g = p->dout + r * D2;
  float* gb = p->gbnd + r * D2;
  const float s = p->s;
  double acc = 0.0;
  for (int d = 0; d < D; d++) {
    const float z = o[D + d];
    const float a = p->hi[d] - z;
    const float lv1 = p->hi[d] - model_softplus(a);
    const float c = lv1 - p->lo[d];
    const float lv = p->lo[d] + model_softplus(c);
    const float inv = expf(-lv);
    const float diff = o[d] - t[d];
    const float sq = diff * diff * inv;
    acc += (double)sq + (double)lv;
    const float glv = s * (1.0f - sq);
    const float sc = mdk_sigmoid(c), sa = mdk_sigmoid(a);
    g[d] = s * 2.0f * diff * inv;
    g[D + d] = glv * sc * sa;
    gb[d] = glv * sc * (1.0f - sa);
    gb[D + d] = glv * (1.0f - sc);
  }
  p->rowsum[r] = acc;
}

/* First level of the per-step sums. Rows (i < (1 + 2D) MDK_NB; q = i / MDK_NB, block
 * b = i % MDK_NB): blocks of ceil(n / MDK_NB) consecutive rows summed in order in double:
 *   q = 0:             rowsum[0..n)                              (the data term)
 *   q = 1 .. 2D:       gbnd[r][q - 1] over r < n                 (the bound gradients)
 * Weights (i = (1 + 2D) MDK_NB + l nbw + b, l < L, b < nbw): Σ W_l[k]² over k = b, b + nbw, ...
 * (interleaved, so that neighbouring threads read neighbouring weights). */
typedef struct mdk_partials_args {
  const double* rowsum;
  const float* gbnd;
  const float* params;
  double* part;
  long n;              /* rows E * B */
  int D, L, nbw;
  long w_off[NN_MAX_LAYERS];
  long w_len[NN_MAX_LAYERS];
} mdk_partials_args;
MBPO_HD static void mdk_partials_body(long i, const mdk_partials_args* a) {
  const int D2 = 2 * a->D;
  const long nrow = (long)(1 + D2) * MDK_NB;
  double s = 0.0;
  if (i < nrow) {
    const int q = (int)(i / MDK_NB), b = (int)(i % MDK_NB);
    const long per = (a->n + MDK_NB - 1) / MDK_NB;
    const long r1 = (b + 1) * per < a->n ? (b + 1) * per : a->n;
    if (q == 0)
      for (long r = b * per; r < r1; r++) s += a->rowsum[r];
    else
      for (long r = b * per; r < r1; r++) s += a->gbnd[r * D2 + (q - 1)];
  } else {
    const int l = (int)((i - nrow) / a->nbw), b = (int)((i - nrow) % a->nbw);
    const float* x = a->params + a->w_off[l];
    for (long k = b; k < a->w_len[l]; k += a->nbw) s += (double)x[k] * (double)x[k];
  }
  a->part[i] = s;
}

/** Terms of a step's loss (mdk_finish): [0] the data term, [1 + l] layer l's weight decay
 *  (l < L), [1 + L] the bound term; the loss is their sum in that order (model_loss's order). */
MBPO_HD static double mdk_loss_total(const double* t, int L) {
  double loss = t[0];
  for (int l = 0; l < L; l++) loss += t[1 + l];
  return loss + t[1 + L];
}

/* Second level (i over 1 + 2D + L), each thread summing its partials in order:
 * i = 0: terms[0] = data s and terms[1 + L] = coef Σ_d (max_lv - min_lv);
 * i = 1 .. D: grads of max_lv = Σ + coef; i = D + 1 .. 2D: grads of min_lv = Σ - coef;
 * i = 2D + 1 + l: terms[1 + l] = ½ wd_l Σ W_l². */
typedef struct mdk_finish_args {
  const double* part;
  const float *hi, *lo;
  float* gbounds;      /* grads + net.nparams: [dmax_lv (D) | dmin_lv (D)] */
  double* terms;       /* [L + 2] */
  float s, coef;
  int D, L, nbw;
  float wd[NN_MAX_LAYERS];
} mdk_finish_args;
MBPO_HD static void mdk_finish_body(long i, const mdk_finish_args* a) {
  const int D = a->D;
  if (i == 0) {
    double data = 0.0;
    for (int b = 0; b < MDK_NB; b++) data += a->part[b];
    a->terms[0] = data * (double)a->s;
    double bsum = 0.0;
    for (int d = 0; d < D; d++) bsum += (double)a->hi[d] - (double)a->lo[d];
    a->terms[1 + a->L] = (double)a->coef * bsum;
  } else if (i <= 2 * D) {
    const double* pq = a->part + i * MDK_NB;
    double s = 0.0;
    for (int b = 0; b < MDK_NB; b++) s += pq[b];
    a->gbounds[i - 1] = i <= D ? (float)(s + (double)a->coef) : (float)(s - (double)a->coef);
  } else {
    const int l = (int)(i - 2 * D - 1);
    const double* pl = a->part + (long)(1 + 2 * D) * MDK_NB + (long)l * a->nbw;
    double ss = 0.0;
    for (int b = 0; b < a->nbw; b++) ss += pl[b];
    a->terms[1 + l] = 0.5 * (double)a->wd[l] * ss;
  }
}

/* Weight decay gradient (i over net.nparams): g[i] += wd_l W[i] where i is one of layer l's
 * weights; biases unchanged. */
typedef struct mdk_wd_args {
  const float* params;
  float* grads;
  int L;
  long w_off[NN_MAX_LAYERS];
  long w_len[NN_MAX_LAYERS];
  float wd[NN_MAX_LAYERS];
} mdk_wd_args;
MBPO_HD static void mdk_wd_body(long i, const mdk_wd_args* a) {
  for (int l = 0; l < a->L; l++)
    if (i >= a->w_off[l] && i < a->w_off[l] + a->w_len[l]) {
      a->grads[i] += a->wd[l] * a->params[i];
      return;
    }
}

/* One thread: out[0] = Σ_j loss_j (in order) / n, the mean loss of an epoch's n steps, loss_j the
 * total of step j's terms (terms [n][L + 2], mdk_loss_total). */
typedef struct mdk_mean_args {
  const double* terms;
  double* out;
  int n, L;
} mdk_mean_args;
MBPO_HD static void mdk_mean_body(long i, const mdk_mean_args* a) {
  (void)i;
  double s = 0.0;
  for (int j = 0; j < a->n; j++) s += mdk_loss_total(a->terms + (long)j * (a->L + 2), a->L);
  *a->out = s / a->n;
}

/* ---- scoring and prediction ---- */

/* Per-row squared error of a chunk of n scored rows (i over E * n; e = i / n, r = i % n):
 * rs[i] = Σ_d (μ - y)² in double, μ from py [E][n][2 D], y [n][D]. */
typedef struct mdk_mse_rows_args {
  const float *py, *y;
  double* rs;
  int n, D;
} mdk_mse_rows_args;
MBPO_HD static void mdk_mse_rows_body(long i, const mdk_mse_rows_args* a) {
  const int D = a->D;
  const long r = i % a->n;
  const float* o = a->py + i * 2 * D;
  const float* y = a->y + r * D;
  double s = 0.0;
  for (int d = 0; d < D; d++) {
    double df = (double)o[d] - (double)y[d];
    s += df * df;
  }
  a->rs[i] = s;
}

/* One thread per member e: acc[e] (= 0 first) += Σ_r rs[e][r] in row order; on the last chunk
 * mse[e] = acc[e] / (N D) (NaN when N < 1). */
typedef struct mdk_mse_acc_args {
  const double* rs;
  double *acc, *mse;
  int n, first, last, D;
  long N;
} mdk_mse_acc_args;
MBPO_HD static void mdk_mse_acc_body(long e, const mdk_mse_acc_args* a) {
  double s = a->first ? 0.0 : a->acc[e];
  const double* r = a->rs + e * a->n;
  for (int k = 0; k < a->n; k++) s += r[k];
  a->acc[e] = s;
  if (a->last) a->mse[e] = a->N > 0 ? s / ((double)a->N * a->D) : (double)NAN;
}

/* Split a chunk's network output py [E][n][2 D] into mean and soft-clamped log-variance
 * [E][B][D] at rows r0.. (i over E * n * D); either output may be NULL. */
typedef struct mdk_split_out_args {
  const float *py, *hi, *lo;
  float *mean, *logvar;
  long n, B, r0;
  int D;
} mdk_split_out_args;
MBPO_HD static void mdk_split_out_body(long i, const mdk_split_out_args* a) {
  const int D = a->D;
  const long e = i / (a->n * D), rem = i % (a->n * D), r = rem / D;
  const int d = (int)(rem % D);
  const float* o = a->py + (e * a->n + r) * 2 * D;
  const long at = (e * a->B + a->r0 + r) * D + d;
  if (a->mean) a->mean[at] = o[d];
  if (a->logvar) a->logvar[at] = model_soft_clamp(o[D + d], a->hi[d], a->lo[d]);
}

extern const dx_op dxop_mdk_keys, dxop_mdk_split_rows, dxop_mdk_norm_part, dxop_mdk_norm_fin, dxop_mdk_boot,
    dxop_mdk_normalize, dxop_mdk_norm_rows, dxop_mdk_gather, dxop_mdk_nll, dxop_mdk_partials,
    dxop_mdk_finish, dxop_mdk_wd, dxop_mdk_mean, dxop_mdk_mse_rows, dxop_mdk_mse_acc,
    dxop_mdk_split_out;

#ifdef __cplusplus
}
#endif
#endif
