/* rollout_k.h: element ops of branched model rollouts on the device (rollout_dev.h), one body each
 * for the host emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/rollout.c and
 * sac_policy_act (host/cpu/sac.c) expression by expression, with the same draws (rollout.h).
 *
 * The live batch size after compaction is known only on the device (*count), so every op is
 * launched for the rollout's first batch size B0 and the indices beyond *count do nothing (the
 * model step clears their keep flags, so that the compaction over B0 items ignores them). */
#ifndef MBPO_ROLLOUT_K_H
#define MBPO_ROLLOUT_K_H

#include <math.h>
#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "model.h"
#include "rng.h"
#include "sac.h"
#include "termination.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Partial sums of the statistics: rows are split into this many consecutive chunks, each summed in
 *  row order by one thread, then the chunks in order by one thread (deterministic). */
#define RDK_NCH 256

/** The statistics a rollout accumulates on the device, and the model pool's state at the end
 *  (downloaded once). */
typedef struct rdk_stats {
  double rew_sum, done_sum;
  int64_t rows_added, steps_run, bad;
  int64_t pool_size, pool_next;
} rdk_stats;

/* One thread: zero the statistics, *count = B. */
typedef struct rdk_init_args {
  rdk_stats* st;
  int* count;
  int B;
} rdk_init_args;
MBPO_HD static void rdk_init_body(long i, const rdk_init_args* p) {
  (void)i;
  rdk_stats z = {0, 0, 0, 0, 0, 0, 0};
  *p->st = z;
  *p->count = p->B;
}

/* rows[i] = i (the items that dx_select_flagged compacts). */
typedef struct rdk_iota_args {
  int* rows;
} rdk_iota_args;
MBPO_HD static void rdk_iota_body(long i, const rdk_iota_args* p) { p->rows[i] = (int)i; }

/* Policy sample, elite pick and normalisation of one step; i over B0 * act (row b, action j):
 *   A[b][j] = tanh(mu + exp(clip(log sigma)) eps), eps = rng_normal(key, c0, c_pol, b act + j)
 *   X[b][obs + j] = (A[b][j] - mean) / std;  j = 0 also: pick[b] = elites[rng_index(key, c0,
 *   c_pick, b, n_elites)] and X[b][0..obs) = (S[b] - mean) / std. */
typedef struct rdk_act_args {
  const float* po;    /* policy output [B0][2 act]: mu | raw log sigma */
  const float* S;     /* [B0][obs] */
  float* A;           /* [B0][act] */
  float* X;           /* [B0][obs + act] normalised model input */
  int* pick;          /* [B0] */
  const float* mean;  /* normaliser [obs + act] */
  const float* sd;
  const int* count;
  rng_key key;
  uint32_t c0, c_pol, c_pick;
  int od, ad, n_elites;
  int elites[MODEL_MAX_ENSEMBLE];
} rdk_act_args;
MBPO_HD static void rdk_act_body(long i, const rdk_act_args* p) {
  const int ad = p->ad, od = p->od, in = od + ad;
  long b = i / ad;
  int j = (int)(i % ad);
  if (b >= *p->count) return;
  const float* o = p->po + b * 2 * ad;
  float ls = o[ad + j];
  ls = ls < SAC_LOG_STD_MIN ? SAC_LOG_STD_MIN : (ls > SAC_LOG_STD_MAX ? SAC_LOG_STD_MAX : ls);
  float u = o[j];
  u += expf(ls) * rng_normal(p->key, p->c0, p->c_pol, (uint64_t)b * (uint64_t)ad + (uint64_t)j);
  float a = tanhf(u);
  p->A[b * ad + j] = a;
  float* x = p->X + b * in;
  x[od + j] = (a - p->mean[od + j]) / p->sd[od + j];
  if (j == 0) {
    p->pick[b] = p->elites[rng_index(p->key, p->c0, p->c_pick, (uint64_t)b, (uint32_t)p->n_elites)];
    const float* s = p->S + b * od;
    for (int k = 0; k < od; k++) x[k] = (s[k] - p->mean[k]) / p->sd[k];
  }
}

/* The model step of rows [r0, r0 + n) from the ensemble output of that chunk, mo [E][n][2 D]: the
 * picked member's mean and soft-clamped log-variance, y = mu + eps exp(lv / 2) with
 * eps = rng_normal(key, c0, c_noise, b D + d); rew[b] = y[0], S2[b] = S[b] + y[1..], done[b] =
 * term_done(S2[b]), keep[b] = !done, bad[b] = non-finite entries of y. i over n; rows at or past
 * *count only clear keep[b]. */
typedef struct rdk_step_args {
  const float* mo;
  const int* pick;
  const float* S;
  float* S2;
  float* rew;
  float* done;
  uint8_t* keep;
  int* bad;
  const float* max_lv;
  const float* min_lv;
  const int* count;
  rng_key key;
  uint32_t c0, c_noise;
  long r0, n;
  int od, D, term_kind;
} rdk_step_args;
MBPO_HD static void rdk_step_body(long i, const rdk_step_args* p) {
  const long b = p->r0 + i;
  const int D = p->D, od = p->od;
  if (b >= *p->count) {
    p->keep[b] = 0;
    return;
  }
  const float* o = p->mo + ((long)p->pick[b] * p->n + i) * 2 * D;
  const float* s = p->S + b * od;
  float* s2 = p->S2 + b * od;
  int bad = 0;
  for (int d = 0; d < D; d++) {
    float lv = model_soft_clamp(o[D + d], p->max_lv[d], p->min_lv[d]);
    float y = o[d] + rng_normal(p->key, p->c0, p->c_noise, (uint64_t)b * (uint64_t)D + (uint64_t)d) *
                         expf(0.5f * lv);
    bad += !isfinite(y);
    if (d == 0) p->rew[b] = y;
    else s2[d - 1] = s[d - 1] + y;
  }
  int dn = term_done(p->term_kind, s2, od);
  p->done[b] = (float)dn;
  p->keep[b] = (uint8_t)(dn == 0);
  p->bad[b] = bad;
}

/* Chunk sums of the step's rows [0, *count): part[c] = sum rew, part[nch + c] = sum done,
 * part[2 nch + c] = sum bad over rows [c chunk, (c + 1) chunk), in row order. i over nch. */
typedef struct rdk_partial_args {
  const float* rew;
  const float* done;
  const int* bad;
  const int* count;
  double* part;
  long chunk;
  int nch;
} rdk_partial_args;
MBPO_HD static void rdk_partial_body(long i, const rdk_partial_args* p) {
  long lo = i * p->chunk, hi = lo + p->chunk, cnt = *p->count;
  if (hi > cnt) hi = cnt;
  double r = 0, d = 0, e = 0;
  for (long b = lo; b < hi; b++) {
    r += p->rew[b];
    d += p->done[b];
    e += p->bad[b];
  }
  p->part[i] = r;
  p->part[p->nch + i] = d;
  p->part[2 * p->nch + i] = e;
}

/* One thread: add the step's chunk sums (in chunk order) and its rows to the statistics; a step
 * with rows sets steps_run = step + 1. */
typedef struct rdk_total_args {
  rdk_stats* st;
  const double* part;
  const int* count;
  int nch, step;
} rdk_total_args;
MBPO_HD static void rdk_total_body(long i, const rdk_total_args* p) {
  (void)i;
  int cnt = *p->count;
  if (cnt <= 0) return;
  double r = 0, d = 0, e = 0;
  for (int c = 0; c < p->nch; c++) {
    r += p->part[c];
    d += p->part[p->nch + c];
    e += p->part[2 * p->nch + c];
  }
  rdk_stats* st = p->st;
  st->rew_sum += r;
  st->done_sum += d;
  st->bad += (int64_t)e;
  st->rows_added += cnt;
  st->steps_run = p->step + 1;
}

/* Compaction of the surviving rows' next states: S[j] = S2[sel[j]] for j < *count (the count after
 * dx_select_flagged). i over B0 * obs. */
typedef struct rdk_compact_args {
  float* S;
  const float* S2;
  const int* sel;
  const int* count;
  int od;
} rdk_compact_args;
MBPO_HD static void rdk_compact_body(long i, const rdk_compact_args* p) {
  long j = i / p->od;
  if (j >= *p->count) return;
  p->S[i] = p->S2[(long)p->sel[j] * p->od + i % p->od];
}

/* One thread: copy the model pool's device state into the statistics (one download at the end). */
typedef struct rdk_finish_args {
  rdk_stats* st;
  const long* state;
} rdk_finish_args;
MBPO_HD static void rdk_finish_body(long i, const rdk_finish_args* p) {
  (void)i;
  p->st->pool_size = p->state[0];
  p->st->pool_next = p->state[1];
}

extern const dx_op dxop_rdk_init, dxop_rdk_iota, dxop_rdk_act, dxop_rdk_step, dxop_rdk_partial,
    dxop_rdk_total, dxop_rdk_compact, dxop_rdk_finish;

#ifdef __cplusplus
}
#endif
#endif
