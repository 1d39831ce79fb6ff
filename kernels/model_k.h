/* model_k.h: element ops of the device dynamics model (model_dev.h), one body each for the host
 * emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/cpu/model.c and
 * host/cpu/model_train.c expression by expression (float where they use float, double where they
 * accumulate in double), so that the device fit reproduces model_train within float tolerance.
 *
 * Reductions are deterministic and identical on both kinds: either one thread per output summing
 * in row order (the reference's order), or, for the per-step sums of a minibatch, fixed blocks
 * summed in order and then the block sums in order (two levels, about sqrt(n) each, so that no
 * thread runs long; the double sums then differ from the reference's order by ~1e-16 relative).
 *
 * Runs. The fit's ops cover P runs' models at once (modeld_fit_runs): parameters [P][nparams]
 * (model.h's layout each, bounds after the network), minibatches [P][E][Bt][...] of which the first
 * nb[q] rows per member are run q's (the rest are padding with zero gradient, so that runs with
 * different training-set sizes share a step), fit sizes in a device table modelk_frun[P]. A run's
 * numbers never depend on the other runs: each sum runs over its own rows in the order of a fit
 * alone. */
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

/** Blocks of the two-level per-step sums (modelk_partials). */
#define MODELK_NB 64

/** One run's fit (device table of a batched fit): its rows are X[q][0..n_ho) held out, then n_tr
 *  training rows; the scored rows are X[q][0..n_score) (the holdout, or the training rows when
 *  there is no holdout); an epoch is nsteps minibatch steps; coef is its model's logvar_coef; seed
 *  its model's key seed and fit its fit index (the per-epoch shuffles' key and counter). A slot
 *  without a run is all zeros: no rows, no steps. */
typedef struct modelk_frun {
  int n_tr, n_ho, n_score, nsteps;
  float coef;
  uint32_t seed, fit;
} modelk_frun;

/** sigmoid(x) = softplus'(x) without overflow (model.c's sigmoid). */
MBPO_HD static float modelk_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* ---- permutations, bootstrap ---- */

/* Sort keys of model_permutation for n positions of `members` independent streams (i over
 * members * n; e = i / n, j = i % n), stream c1 = (ctr ? *ctr * members : 0) + e. With a run
 * (device), its n_tr, seed and fit replace n, k.seed and c0, and indices past members * n_tr do
 * nothing (a captured shuffle launched for the largest training set):
 *   members == 1 (the holdout split):  key = u32 << 32 | j, vals[i] = j (vals may be NULL);
 *   members > 1 (the per-epoch shuffles, one sort for all members):
 *                                      key = e << 58 | u32 << 26 | j (j < 2^26, e < 64),
 * which orders by member, then by the random word, then by position. */
typedef struct modelk_keys_args {
  uint64_t* keys;
  int* vals;
  rng_key k;
  uint32_t c0;
  const uint64_t* ctr; /* the epoch (device), or NULL: c1 = e */
  int members;
  long n;
  const modelk_frun* run; /* or NULL */
} modelk_keys_args;
MBPO_HD static void modelk_keys_body(long i, const modelk_keys_args* a) {
  rng_key k = a->k;
  uint32_t c0 = a->c0;
  long n = a->n;
  if (a->run) {
    k.seed = a->run->seed, c0 = a->run->fit, n = a->run->n_tr;
    if (i >= (long)a->members * n) return;
  }
  long e = i / n, j = i % n;
  uint32_t c1 = (uint32_t)((a->ctr ? *a->ctr * (uint64_t)a->members : 0) + (uint64_t)e);
  uint64_t w = rng_u32(k, c0, c1, (uint64_t)j);
  if (a->members == 1) a->keys[i] = (w << 32) | (uint64_t)j;
  else a->keys[i] = ((uint64_t)e << 58) | (w << 26) | (uint64_t)j;
  if (a->vals) a->vals[i] = (int)j;
}

/* The fit's rows in permuted order (one thread per row i < N): g = perm[i];
 * X[i] = [obs[g], act[g]], Y[i] = [rew[g], next_obs[g] - obs[g]]. */
typedef struct modelk_split_rows_args {
  const float *obs, *act, *rew, *next_obs;
  const int* perm;
  float *X, *Y;
  int O, A;
} modelk_split_rows_args;
MBPO_HD static void modelk_split_rows_body(long i, const modelk_split_rows_args* a) {
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
 * (model.c's fit_column), each pass in MODELK_NB blocks of rows per column so that no thread runs
 * over all rows: the block sums (i over I * MODELK_NB; j = i / MODELK_NB, b = i % MODELK_NB), then one
 * thread per column adding its blocks in order. Pass 0 sums x, pass 1 sums (x - mu)². */
typedef struct modelk_norm_part_args {
  const float* X;
  const double* mu;    /* [I] (pass 1) */
  double* part;        /* [I][MODELK_NB] */
  int n, I, pass;
} modelk_norm_part_args;
MBPO_HD static void modelk_norm_part_body(long i, const modelk_norm_part_args* a) {
  const int j = (int)(i / MODELK_NB), b = (int)(i % MODELK_NB);
  const long per = ((long)a->n + MODELK_NB - 1) / MODELK_NB;
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
typedef struct modelk_norm_fin_args {
  const double* part;
  double* mu;
  float *mean, *std;
  int n, pass;
} modelk_norm_fin_args;
MBPO_HD static void modelk_norm_fin_body(long j, const modelk_norm_fin_args* a) {
  double s = 0.0;
  for (int b = 0; b < MODELK_NB; b++) s += a->part[j * MODELK_NB + b];
  if (a->pass == 0) {
    a->mu[j] = a->n > 0 ? s / a->n : 0.0;
    return;
  }
  const double sd = a->n > 0 ? sqrt(s / a->n) : 0.0;
  a->mean[j] = (float)a->mu[j];
  a->std[j] = sd < 1e-12 ? 1.0f : (float)sd;
}

/* Bootstrap (i over E * n): boot[e][j] = rng_index(k, c0, e, j, n). */
typedef struct modelk_boot_args {
  int* boot;
  rng_key k;
  uint32_t c0;
  long n;
} modelk_boot_args;
MBPO_HD static void modelk_boot_body(long i, const modelk_boot_args* a) {
  long e = i / a->n, j = i % a->n;
  a->boot[i] = (int)rng_index(a->k, a->c0, (uint32_t)e, (uint64_t)j, (uint32_t)a->n);
}

/* ---- normalising and gathering ---- */

/* xn[r][k] = ([obs_r, act_r][k] - mean[k]) / std[k] (i over B * I). */
typedef struct modelk_normalize_args {
  const float *obs, *act, *mean, *std;
  float* xn;
  int O, A;
} modelk_normalize_args;
MBPO_HD static void modelk_normalize_body(long i, const modelk_normalize_args* a) {
  const int I = a->O + a->A;
  long r = i / I;
  int k = (int)(i % I);
  float v = k < a->O ? a->obs[r * a->O + k] : a->act[r * a->A + (k - a->O)];
  a->xn[i] = (v - a->mean[k]) / a->std[k];
}

/* The normalised rows r0 .. r0 + nr of each run's scored rows, r0 = *chunk nr (the chunk number in
 * device memory, so that one captured chunk serves them all) (i over P * nr * I; q, row r, column
 * k): xn[q][r][k] = (X[q][r0 + r][k] - mean[q][k]) / std[q][k], 0 past the run's n_score. X is
 * [P][R][I], mean and std [P][I]. */
typedef struct modelk_norm_rows_args {
  const float *X, *mean, *std;
  const modelk_frun* runs;
  float* xn;
  long R;
  const uint64_t* chunk;
  int nr, I;
} modelk_norm_rows_args;
MBPO_HD static void modelk_norm_rows_body(long i, const modelk_norm_rows_args* a) {
  const int I = a->I, k = (int)(i % I);
  const long q = i / ((long)a->nr * I), r = (i / I) % a->nr, row = (long)*a->chunk * a->nr + r;
  if (row >= a->runs[q].n_score) {
    a->xn[i] = 0.0f;
    return;
  }
  a->xn[i] = (a->X[(q * a->R + row) * I + k] - a->mean[q * I + k]) / a->std[q * I + k];
}

/** Rows of minibatch step j of a run with n_tr training rows: min(max(n_tr - j Bt, 0), Bt). */
MBPO_HD static int modelk_step_rows(int n_tr, long j, int Bt) {
  const long left = (long)n_tr - j * Bt;
  return left < 0 ? 0 : left < Bt ? (int)left : Bt;
}

/* The minibatch of step j = *step + k of each run (one thread per row, i over P * E * Bt; q, member
 * e, row r), the step number in device memory so that one captured block of steps serves every
 * epoch and fit: nb = modelk_step_rows(n_tr, j, Bt); rows r < nb are g = idx[q][e][j Bt + r] (idx
 * [P][E][R], member e's list n_tr long), xb[q][e][r] = (X[q][n_ho + g] - mean[q]) / std[q],
 * yb[q][e][r] = Y[q][n_ho + g]; the padding rows are 0. The thread of (q, 0, 0) also writes the
 * step's nbo[q] = nb and its Adam flag acto[q] = alive[q] and nb > 0, which the step's later ops
 * read. */
typedef struct modelk_gather_args {
  const float *X, *Y, *mean, *std;
  const int* idx;
  const modelk_frun* runs;
  const int* alive;      /* [P] */
  const uint64_t* step;  /* the block's first step */
  int *nbo, *acto;       /* [P] */
  float *xb, *yb;
  long R;
  int k, Bt, E, I, D;
} modelk_gather_args;
MBPO_HD static void modelk_gather_body(long i, const modelk_gather_args* a) {
  const long EB = (long)a->E * a->Bt, q = i / EB, e = (i % EB) / a->Bt, r = i % a->Bt;
  const int I = a->I, D = a->D;
  const modelk_frun f = a->runs[q];
  const long j = (long)*a->step + a->k;
  const int nb = modelk_step_rows(f.n_tr, j, a->Bt);
  if (e == 0 && r == 0) {
    a->nbo[q] = nb;
    a->acto[q] = a->alive[q] && nb > 0;
  }
  float* xo = a->xb + i * I;
  float* yo = a->yb + i * D;
  if (r >= nb) {
    for (int k = 0; k < I; k++) xo[k] = 0.0f;
    for (int k = 0; k < D; k++) yo[k] = 0.0f;
    return;
  }
  const long g = q * a->R + f.n_ho + a->idx[q * a->E * a->R + e * (long)f.n_tr + j * a->Bt + r];
  const float* x = a->X + g * I;
  const float *mu = a->mean + q * I, *sd = a->std + q * I;
  for (int k = 0; k < I; k++) xo[k] = (x[k] - mu[k]) / sd[k];
  const float* y = a->Y + g * D;
  for (int k = 0; k < D; k++) yo[k] = y[k];
}

/* ---- the loss ---- */

/* The Gaussian NLL with soft log-variance bounds of one row (i over P * E * Bt; run q, row r) of
 * the network output out [P][E][Bt][2 D] against y [P][E][Bt][D] (model_loss's row loop): the
 * row's data term into rowsum[i] (double), dL/d(outputs) into dout, the row's share of the bound
 * gradients into gbnd[i] = [dmax_lv | dmin_lv]; s = 1 / (nb[q] D). Padding rows (r >= nb[q]) get
 * zeros. The bounds of run q are at params + q ps + netn. */
typedef struct modelk_nll_args {
  const float *out, *y, *params;
  float *dout, *gbnd;
  double* rowsum;
  const int* nb;
  long ps, netn;
  int Bt, E, D;
} modelk_nll_args;
MBPO_HD static void modelk_nll_body(long i, const modelk_nll_args* p) {
  const int D = p->D, D2 = 2 * D;
  const long q = i / ((long)p->E * p->Bt), r = i % p->Bt;
  const int nb = p->nb[q];
  float* g = p->dout + i * D2;
  float* gb = p->gbnd + i * D2;
  if (r >= nb) {
    for (int d = 0; d < D2; d++) g[d] = gb[d] = 0.0f;
    p->rowsum[i] = 0.0;
    return;
  }
  const float* o = p->out + i * D2;
  const float* t = p->y + i * D;
  const float* hi = p->params + q * p->ps + p->netn;
  const float* lo = hi + D;
  const float s = 1.0f / (float)(nb * D);
  double acc = 0.0;
  for (int d = 0; d < D; d++) {
    const float z = o[D + d];
    const float a = hi[d] - z;
    const float lv1 = hi[d] - model_softplus(a);
    const float c = lv1 - lo[d];
    const float lv = lo[d] + model_softplus(c);
    const float inv = expf(-lv);
    const float diff = o[d] - t[d];
    const float sq = diff * diff * inv;
    acc += (double)sq + (double)lv;
    const float glv = s * (1.0f - sq);
    const float sc = modelk_sigmoid(c), sa = modelk_sigmoid(a);
    g[d] = s * 2.0f * diff * inv;
    g[D + d] = glv * sc * sa;
    gb[d] = glv * sc * (1.0f - sa);
    gb[D + d] = glv * (1.0f - sc);
  }
  p->rowsum[i] = acc;
}

/** Partials per run of modelk_partials: (1 + 2D) MODELK_NB row blocks, then L nbw weight blocks. */
MBPO_HD static long modelk_npart(int D, int L, int nbw) { return (long)(1 + 2 * D) * MODELK_NB + (long)L * nbw; }

/* First level of the per-step sums, per run (i over P * modelk_npart; run q, then as one run). Rows
 * (j < (1 + 2D) MODELK_NB; k = j / MODELK_NB, block b = j % MODELK_NB): the run's n = E nb[q] valid rows,
 * taken member by member (row v is member v / nb[q], row v % nb[q]: a fit alone's contiguous
 * order), in blocks of ceil(n / MODELK_NB) consecutive rows summed in order in double:
 *   k = 0:             rowsum                                    (the data term)
 *   k = 1 .. 2D:       gbnd[.][k - 1]                            (the bound gradients)
 * Weights (j = (1 + 2D) MODELK_NB + l nbw + b, l < L, b < nbw): Σ W_l[k]² over k = b, b + nbw, ...
 * (interleaved, so that neighbouring threads read neighbouring weights). part is [P][modelk_npart]. */
typedef struct modelk_partials_args {
  const double* rowsum;
  const float* gbnd;
  const float* params;
  double* part;
  const int* nb;
  long ps;
  int Bt, E, D, L, nbw;
  long w_off[NN_MAX_LAYERS];
  long w_len[NN_MAX_LAYERS];
} modelk_partials_args;
MBPO_HD static void modelk_partials_body(long i, const modelk_partials_args* a) {
  const int D2 = 2 * a->D;
  const long np = modelk_npart(a->D, a->L, a->nbw), q = i / np, j = i % np;
  const long nrow = (long)(1 + D2) * MODELK_NB;
  double s = 0.0;
  if (j < nrow) {
    const int k = (int)(j / MODELK_NB), b = (int)(j % MODELK_NB), nb = a->nb[q];
    const long n = (long)a->E * nb;
    const long per = (n + MODELK_NB - 1) / MODELK_NB;
    const long v0 = b * per, v1 = (b + 1) * per < n ? (b + 1) * per : n;
    if (v0 < v1) {
      long e = v0 / nb, r = v0 % nb; /* walk the valid rows without a division per row */
      const long base = q * a->E * (long)a->Bt;
      for (long v = v0; v < v1; v++) {
        const long at = base + e * a->Bt + r;
        s += k == 0 ? a->rowsum[at] : (double)a->gbnd[at * D2 + (k - 1)];
        if (++r == nb) r = 0, e++;
      }
    }
  } else {
    const int l = (int)((j - nrow) / a->nbw), b = (int)((j - nrow) % a->nbw);
    const float* x = a->params + q * a->ps + a->w_off[l];
    for (long k = b; k < a->w_len[l]; k += a->nbw) s += (double)x[k] * (double)x[k];
  }
  a->part[i] = s;
}

/** Terms of a step's loss (modelk_finish): [0] the data term, [1 + l] layer l's weight decay
 *  (l < L), [1 + L] the bound term; the loss is their sum in that order (model_loss's order). */
MBPO_HD static double modelk_loss_total(const double* t, int L) {
  double loss = t[0];
  for (int l = 0; l < L; l++) loss += t[1 + l];
  return loss + t[1 + L];
}

/* Second level, per run (i over P (1 + 2D + L); run q, j = i % (1 + 2D + L)), each thread summing
 * its partials in order, s = 1 / (nb[q] D) (0 for a run without rows in this step):
 * j = 0: terms[q][0] = data s and terms[q][1 + L] = coef Σ_d (max_lv - min_lv);
 * j = 1 .. D: grads of max_lv = Σ + coef; j = D + 1 .. 2D: grads of min_lv = Σ - coef;
 * j = 2D + 1 + l: terms[q][1 + l] = ½ wd_l Σ W_l². terms is [P][L + 2]; the bounds and their
 * gradients are at params / grads + q ps + netn; coef is runs[q].coef (runs NULL: a->coef). */
typedef struct modelk_finish_args {
  const double* part;
  const float* params;
  float* grads;
  double* terms;
  const int* nb;
  const modelk_frun* runs;
  long ps, netn;
  float coef;
  int D, L, nbw;
  float wd[NN_MAX_LAYERS];
} modelk_finish_args;
MBPO_HD static void modelk_finish_body(long i, const modelk_finish_args* a) {
  const int D = a->D, F = 1 + 2 * D + a->L;
  const long q = i / F, j = i % F;
  const double* part = a->part + q * modelk_npart(D, a->L, a->nbw);
  const float* hi = a->params + q * a->ps + a->netn;
  const float* lo = hi + D;
  double* terms = a->terms + q * (a->L + 2);
  const double coef = a->runs ? (double)a->runs[q].coef : (double)a->coef;
  if (j == 0) {
    const int nb = a->nb[q];
    const float s = nb > 0 ? 1.0f / (float)(nb * D) : 0.0f;
    double data = 0.0;
    for (int b = 0; b < MODELK_NB; b++) data += part[b];
    terms[0] = data * (double)s;
    double bsum = 0.0;
    for (int d = 0; d < D; d++) bsum += (double)hi[d] - (double)lo[d];
    terms[1 + a->L] = coef * bsum;
  } else if (j <= 2 * D) {
    const double* pq = part + j * MODELK_NB;
    double s = 0.0;
    for (int b = 0; b < MODELK_NB; b++) s += pq[b];
    float* gbounds = a->grads + q * a->ps + a->netn;
    gbounds[j - 1] = j <= D ? (float)(s + coef) : (float)(s - coef);
  } else {
    const int l = (int)(j - 2 * D - 1);
    const double* pl = part + (long)(1 + 2 * D) * MODELK_NB + (long)l * a->nbw;
    double ss = 0.0;
    for (int b = 0; b < a->nbw; b++) ss += pl[b];
    terms[1 + l] = 0.5 * (double)a->wd[l] * ss;
  }
}

/* Weight decay gradient (i over P netn; run q, k = i % netn): g[q][k] += wd_l W[q][k] where k is one
 * of layer l's weights; biases unchanged (runs ps apart). */
typedef struct modelk_wd_args {
  const float* params;
  float* grads;
  long ps, netn;
  int L;
  long w_off[NN_MAX_LAYERS];
  long w_len[NN_MAX_LAYERS];
  float wd[NN_MAX_LAYERS];
} modelk_wd_args;
MBPO_HD static void modelk_wd_body(long i, const modelk_wd_args* a) {
  const long q = i / a->netn, k = i % a->netn, at = q * a->ps + k;
  for (int l = 0; l < a->L; l++)
    if (k >= a->w_off[l] && k < a->w_off[l] + a->w_len[l]) {
      a->grads[at] += a->wd[l] * a->params[at];
      return;
    }
}

/* One thread per run q: out[q ostride] = Σ_j loss_j (in order) / n, the mean loss of the run's n
 * steps of an epoch (n = runs[q].nsteps, or a->n when runs is NULL), loss_j the total of step j's
 * terms (modelk_loss_total): terms [steps][P][L + 2]. */
typedef struct modelk_mean_args {
  const double* terms;
  double* out;
  const modelk_frun* runs;
  int n, P, L, ostride;
} modelk_mean_args;
MBPO_HD static void modelk_mean_body(long q, const modelk_mean_args* a) {
  const int n = a->runs ? a->runs[q].nsteps : a->n;
  const long step = (long)a->P * (a->L + 2);
  double s = 0.0;
  for (int j = 0; j < n; j++) s += modelk_loss_total(a->terms + j * step + q * (a->L + 2), a->L);
  a->out[q * a->ostride] = s / n;
}

/* After step j = *step + k of an epoch (one thread per run q): sum[q] += the step's loss total
 * (modelk_loss_total of terms [P][L + 2]) when j < runs[q].nsteps. Added step by step from 0, the
 * sum is modelk_mean's, bit for bit. */
typedef struct modelk_loss_acc_args {
  const double* terms;
  double* sum;
  const modelk_frun* runs;
  const uint64_t* step;
  int k, L;
} modelk_loss_acc_args;
MBPO_HD static void modelk_loss_acc_body(long q, const modelk_loss_acc_args* a) {
  if ((long)*a->step + a->k < a->runs[q].nsteps) a->sum[q] += modelk_loss_total(a->terms + q * (a->L + 2), a->L);
}

/* The epoch's mean loss of run q (one thread per run): out[q ostride] = sum[q] / runs[q].nsteps,
 * then sum[q] = 0 for the next epoch. */
typedef struct modelk_epoch_loss_args {
  double *sum, *out;
  const modelk_frun* runs;
  int ostride;
} modelk_epoch_loss_args;
MBPO_HD static void modelk_epoch_loss_body(long q, const modelk_epoch_loss_args* a) {
  a->out[q * a->ostride] = a->sum[q] / a->runs[q].nsteps;
  a->sum[q] = 0.0;
}

/* The per-member lists of run q after the shuffle's sort (i over E R): dst[i] = src[i] for i <
 * E n_tr (launched for the largest training set). */
typedef struct modelk_copy_lists_args {
  int* dst;
  const int* src;
  const modelk_frun* run;
  int E;
} modelk_copy_lists_args;
MBPO_HD static void modelk_copy_lists_body(long i, const modelk_copy_lists_args* a) {
  if (i < (long)a->E * a->run->n_tr) a->dst[i] = a->src[i];
}

/* Copy the flagged members' weights and biases (i over P netn; run q, k = i % netn): dst[q dstride
 * + k] = src[q sstride + k] where k belongs to member e of some layer and flags[q E + e] != 0 (the
 * per-member snapshots and their restore). */
typedef struct modelk_snap_args {
  float* dst;
  const float* src;
  const int* flags;
  long dstride, sstride, netn;
  int E, L;
  long w_off[NN_MAX_LAYERS], w_len[NN_MAX_LAYERS]; /* per member: din dout */
  long b_off[NN_MAX_LAYERS], b_len[NN_MAX_LAYERS]; /* per member: dout */
} modelk_snap_args;
MBPO_HD static void modelk_snap_body(long i, const modelk_snap_args* a) {
  const long q = i / a->netn, k = i % a->netn;
  long e = -1;
  for (int l = 0; l < a->L && e < 0; l++) {
    if (k >= a->w_off[l] && k < a->w_off[l] + a->E * a->w_len[l]) e = (k - a->w_off[l]) / a->w_len[l];
    else if (k >= a->b_off[l] && k < a->b_off[l] + a->E * a->b_len[l]) e = (k - a->b_off[l]) / a->b_len[l];
  }
  if (e >= 0 && a->flags[q * a->E + e]) a->dst[q * a->dstride + k] = a->src[q * a->sstride + k];
}

/* ---- scoring and prediction ---- */

/* Per-row squared error of a chunk of nr scored rows r0 = *chunk nr .. of each run (i over P E nr;
 * run q, member e, row r): rs[i] = Σ_d (μ - y)² in double, μ from py [P][E][nr][2 D], y = Y[q][r0 +
 * r] (Y [P][R][D]); 0 past the run's n_score. */
typedef struct modelk_mse_rows_args {
  const float *py, *Y;
  const modelk_frun* runs;
  double* rs;
  long R;
  const uint64_t* chunk;
  int nr, E, D;
} modelk_mse_rows_args;
MBPO_HD static void modelk_mse_rows_body(long i, const modelk_mse_rows_args* a) {
  const int D = a->D;
  const long q = i / ((long)a->E * a->nr), row = (long)*a->chunk * a->nr + i % a->nr;
  if (row >= a->runs[q].n_score) {
    a->rs[i] = 0.0;
    return;
  }
  const float* o = a->py + i * 2 * D;
  const float* y = a->Y + (q * a->R + row) * D;
  double s = 0.0;
  for (int d = 0; d < D; d++) {
    double df = (double)o[d] - (double)y[d];
    s += df * df;
  }
  a->rs[i] = s;
}

/* One thread per (run q, member e), i over P E: the chunk's rows of the run (n = its rows in r0 ..
 * r0 + nr, r0 = *chunk nr) added in row order to acc[i] (0 at r0 = 0); on the run's last chunk
 * mse[q ostride + e] = acc / (n_score D) (NaN when n_score < 1). */
typedef struct modelk_mse_acc_args {
  const double* rs;
  double *acc, *mse;
  const modelk_frun* runs;
  const uint64_t* chunk;
  int nr, E, D, ostride;
} modelk_mse_acc_args;
MBPO_HD static void modelk_mse_acc_body(long i, const modelk_mse_acc_args* a) {
  const long q = i / a->E, e = i % a->E, r0 = (long)*a->chunk * a->nr;
  const long N = a->runs[q].n_score;
  double* mse = a->mse + q * a->ostride + e;
  if (N < 1) {
    if (r0 == 0) *mse = (double)NAN;
    return;
  }
  const long n = N - r0 < a->nr ? N - r0 : a->nr;
  if (n <= 0) return;
  double s = r0 == 0 ? 0.0 : a->acc[i];
  const double* r = a->rs + i * a->nr;
  for (long k = 0; k < n; k++) s += r[k];
  a->acc[i] = s;
  if (r0 + n >= N) *mse = s / ((double)N * a->D);
}

/* Split a chunk's network output py [E][n][2 D] into mean and soft-clamped log-variance
 * [E][B][D] at rows r0.. (i over E * n * D); either output may be NULL. */
typedef struct modelk_split_out_args {
  const float *py, *hi, *lo;
  float *mean, *logvar;
  long n, B, r0;
  int D;
} modelk_split_out_args;
MBPO_HD static void modelk_split_out_body(long i, const modelk_split_out_args* a) {
  const int D = a->D;
  const long e = i / (a->n * D), rem = i % (a->n * D), r = rem / D;
  const int d = (int)(rem % D);
  const float* o = a->py + (e * a->n + r) * 2 * D;
  const long at = (e * a->B + a->r0 + r) * D + d;
  if (a->mean) a->mean[at] = o[d];
  if (a->logvar) a->logvar[at] = model_soft_clamp(o[D + d], a->hi[d], a->lo[d]);
}

extern const dx_op dxop_modelk_keys, dxop_modelk_split_rows, dxop_modelk_norm_part, dxop_modelk_norm_fin, dxop_modelk_boot,
    dxop_modelk_normalize, dxop_modelk_norm_rows, dxop_modelk_gather, dxop_modelk_nll, dxop_modelk_partials,
    dxop_modelk_finish, dxop_modelk_wd, dxop_modelk_mean, dxop_modelk_mse_rows, dxop_modelk_mse_acc,
    dxop_modelk_split_out, dxop_modelk_loss_acc, dxop_modelk_epoch_loss, dxop_modelk_copy_lists,
    dxop_modelk_snap;

#ifdef __cplusplus
}
#endif
#endif
