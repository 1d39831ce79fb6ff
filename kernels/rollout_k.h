/* rollout_k.h: element ops of branched model rollouts on the device (rollout_dev.h), one body each
 * for the host emulation and the GPU (kernels/dx_op.h). The arithmetic follows host/cpu/rollout.c and
 * sac_policy_act (host/cpu/sac.c) expression by expression, with the same draws (rollout.h).
 *
 * A rollout covers the n runs of a population at once (n = 1 alone). Run p's rows are [p][B][...]
 * (B rows launched per run); its key, fit index, length k and elites are in the run table rolloutk_run
 * [n]; its live row count after compaction is count[p], known only on the device, so every op is
 * launched for all n B rows and the rows of run p at or past count[p] do nothing (the model step
 * clears their keep flags, so that the compaction ignores them). A row's draws use its index b
 * within its run, so run p's rows are exactly the rows it would roll out alone.
 *
 * The model input X is laid out chunk by chunk, each chunk [n][nc][in] (nc rows of every run, the
 * last chunk shorter), so that each chunk is one shared-input forward over the n runs (nn_dev.h). */
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

/** Partial sums of the statistics: a run's rows are split into this many consecutive chunks, each
 *  summed in row order by one thread, then the chunks in order by one thread (deterministic). */
#define ROLLOUTK_NCH 256

/** Partial sums per chunk: reward, done, non-finite, kept. */
#define ROLLOUTK_NSUM 4

/** The statistics a run's rollout accumulates on the device, and its model pool's state at the
 *  end (downloaded once). */
typedef struct rolloutk_stats {
  double rew_sum, done_sum;
  int64_t rows_added, steps_run, bad;
  int64_t pool_size, pool_next;
} rolloutk_stats;

/** One run of a rollout: its draws, length, elites and model pool (device table [n]). */
typedef struct rolloutk_run {
  rng_key key;
  uint32_t c0;       /* the fit index */
  int k;             /* steps (0: the run adds nothing) */
  int n_elites;
  int elites[MODEL_MAX_ENSEMBLE];
  const long* pool_state; /* the run's model pool state (size, next) */
} rolloutk_run;

/* Row b of run p in the chunked model input: chunk c = b / chunk holds [n][nc][in]. */
MBPO_HD static long rolloutk_xrow(long p, long b, long n, long B, long chunk) {
  long c = b / chunk, r = b - c * chunk, nc = B - c * chunk < chunk ? B - c * chunk : chunk;
  return c * chunk * n + p * nc + r;
}

/* One thread per run: zero its statistics, count[p] = B when it has steps to run, else 0. */
typedef struct rolloutk_init_args {
  rolloutk_stats* st;
  int* count;
  const rolloutk_run* tab;
  int B;
} rolloutk_init_args;
MBPO_HD static void rolloutk_init_body(long i, const rolloutk_init_args* p) {
  rolloutk_stats z = {0, 0, 0, 0, 0, 0, 0};
  p->st[i] = z;
  p->count[i] = p->tab[i].k > 0 ? p->B : 0;
}

/* rows[i] = i (the items that dx_select_flagged compacts). */
typedef struct rolloutk_iota_args {
  int* rows;
} rolloutk_iota_args;
MBPO_HD static void rolloutk_iota_body(long i, const rolloutk_iota_args* p) { p->rows[i] = (int)i; }

/* Policy sample, elite pick and normalisation of one step; i over n B act (run p, row b, action j):
 *   A[p][b][j] = tanh(mu + exp(clip(log sigma)) eps), eps = rng_normal(key, c0, c_pol, b act + j)
 *   X[p, b][obs + j] = (A[p][b][j] - mean) / std;  j = 0 also: pick[p][b] = elites[rng_index(key,
 *   c0, c_pick, b, n_elites)] and X[p, b][0..obs) = (S[p][b] - mean) / std (run p's key, fit index,
 *   elites and normaliser). */
typedef struct rolloutk_act_args {
  const float* po;    /* policy output [n][B][2 act]: mu | raw log sigma */
  const float* S;     /* [n][B][obs] */
  float* A;           /* [n][B][act] */
  float* X;           /* chunked [n B][obs + act] normalised model input (rolloutk_xrow) */
  int* pick;          /* [n][B] */
  const float* norm;  /* [n][2][obs + act]: mean, std */
  const int* count;   /* [n] */
  const rolloutk_run* tab; /* [n] */
  uint32_t c_pol, c_pick;
  int od, ad, n, B, chunk;
} rolloutk_act_args;
MBPO_HD static void rolloutk_act_body(long i, const rolloutk_act_args* p) {
  const int ad = p->ad, od = p->od, in = od + ad;
  const long per = (long)p->B * ad, q = i / per, b = (i % per) / ad, rb = q * p->B + b;
  const int j = (int)(i % ad);
  if (b >= p->count[q]) return;
  const rolloutk_run* t = &p->tab[q];
  const float *o = p->po + rb * 2 * ad, *mean = p->norm + q * 2 * in, *sd = mean + in;
  float ls = o[ad + j];
  ls = ls < SAC_LOG_STD_MIN ? SAC_LOG_STD_MIN : (ls > SAC_LOG_STD_MAX ? SAC_LOG_STD_MAX : ls);
  float u = o[j];
  u += expf(ls) * rng_normal(t->key, t->c0, p->c_pol, (uint64_t)b * (uint64_t)ad + (uint64_t)j);
  float a = tanhf(u);
  p->A[rb * ad + j] = a;
  float* x = p->X + rolloutk_xrow(q, b, p->n, p->B, p->chunk) * in;
  x[od + j] = (a - mean[od + j]) / sd[od + j];
  if (j == 0) {
    p->pick[rb] = t->elites[rng_index(t->key, t->c0, p->c_pick, (uint64_t)b, (uint32_t)t->n_elites)];
    const float* s = p->S + rb * od;
    for (int k = 0; k < od; k++) x[k] = (s[k] - mean[k]) / sd[k];
  }
}

/* The model step of rows [r0, r0 + nc) of every run from the ensemble output of that chunk,
 * mo [n][E][nc][2 D]: the picked member's mean and soft-clamped log-variance (run p's bounds),
 * y = mu + eps exp(lv / 2) with eps = rng_normal(key, c0, c_noise, b D + d); rew[b] = y[0],
 * S2[b] = S[b] + y[1..], done[b] = term_done(S2[b]), keep[b] = !done and a next step remains,
 * bad[b] = non-finite entries of y. i over n nc; rows at or past count[p] only clear keep. */
typedef struct rolloutk_step_args {
  const float* mo;
  const int* pick;
  const float* S;
  float* S2;
  float* rew;
  float* done;
  uint8_t* keep;
  int* bad;
  const float* bounds; /* [n][2][D]: max, min log-variance */
  const int* count;
  const rolloutk_run* tab;
  uint32_t c_noise;
  long r0, nc;
  int step, od, D, E, B, term_kind;
} rolloutk_step_args;
MBPO_HD static void rolloutk_step_body(long i, const rolloutk_step_args* p) {
  const long q = i / p->nc, ii = i % p->nc, b = p->r0 + ii, rb = q * p->B + b;
  const int D = p->D, od = p->od;
  if (b >= p->count[q]) {
    p->keep[rb] = 0;
    return;
  }
  const rolloutk_run* t = &p->tab[q];
  const float* o = p->mo + ((q * p->E + p->pick[rb]) * p->nc + ii) * 2 * D;
  const float *max_lv = p->bounds + q * 2 * D, *min_lv = max_lv + D;
  const float* s = p->S + rb * od;
  float* s2 = p->S2 + rb * od;
  int bad = 0;
  for (int d = 0; d < D; d++) {
    float lv = model_soft_clamp(o[D + d], max_lv[d], min_lv[d]);
    float y = o[d] + rng_normal(t->key, t->c0, p->c_noise, (uint64_t)b * (uint64_t)D + (uint64_t)d) *
                         expf(0.5f * lv);
    bad += !isfinite(y);
    if (d == 0) p->rew[rb] = y;
    else s2[d - 1] = s[d - 1] + y;
  }
  int dn = term_done(p->term_kind, s2, od);
  p->done[rb] = (float)dn;
  p->keep[rb] = (uint8_t)(dn == 0 && p->step + 1 < t->k);
  p->bad[rb] = bad;
}

/* Chunk sums of run p's rows [0, count[p]): part[p][s][c] for s = reward, done, non-finite, kept
 * over rows [c chunk, (c + 1) chunk), in row order. i over n nch. */
typedef struct rolloutk_partial_args {
  const float* rew;
  const float* done;
  const int* bad;
  const uint8_t* keep;
  const int* count;
  double* part;
  long chunk;
  int nch, B;
} rolloutk_partial_args;
MBPO_HD static void rolloutk_partial_body(long i, const rolloutk_partial_args* p) {
  const long q = i / p->nch, ch = i % p->nch, base = q * p->B;
  long lo = ch * p->chunk, hi = lo + p->chunk, cnt = p->count[q];
  if (hi > cnt) hi = cnt;
  double r = 0, d = 0, e = 0, k = 0;
  for (long b = lo; b < hi; b++) {
    r += p->rew[base + b];
    d += p->done[base + b];
    e += p->bad[base + b];
    k += p->keep[base + b];
  }
  double* o = p->part + q * ROLLOUTK_NSUM * p->nch + ch;
  o[0] = r;
  o[p->nch] = d;
  o[2 * p->nch] = e;
  o[3 * p->nch] = k;
}

/* One thread per run: add the step's chunk sums (in chunk order) and its rows to the statistics
 * (a step with rows sets steps_run = step + 1); next[p] = the rows kept for the next step. */
typedef struct rolloutk_total_args {
  rolloutk_stats* st;
  const double* part;
  const int* count;
  int* next;
  int nch, step;
} rolloutk_total_args;
MBPO_HD static void rolloutk_total_body(long i, const rolloutk_total_args* p) {
  int cnt = p->count[i];
  p->next[i] = 0;
  if (cnt <= 0) return;
  const double* o = p->part + i * ROLLOUTK_NSUM * p->nch;
  double r = 0, d = 0, e = 0, k = 0;
  for (int c = 0; c < p->nch; c++) {
    r += o[c];
    d += o[p->nch + c];
    e += o[2 * p->nch + c];
    k += o[3 * p->nch + c];
  }
  rolloutk_stats* st = &p->st[i];
  st->rew_sum += r;
  st->done_sum += d;
  st->bad += (int64_t)e;
  st->rows_added += cnt;
  st->steps_run = p->step + 1;
  p->next[i] = (int)k;
}

/* One thread: after the compaction, count[p] = next[p] and off[p] = the kept rows of the runs
 * before p (where run p's rows start in the selection). */
typedef struct rolloutk_counts_args {
  int* count;
  int* off;
  const int* next;
  int n;
} rolloutk_counts_args;
MBPO_HD static void rolloutk_counts_body(long i, const rolloutk_counts_args* p) {
  (void)i;
  int o = 0;
  for (int q = 0; q < p->n; q++) {
    p->count[q] = p->next[q];
    p->off[q] = o;
    o += p->next[q];
  }
}

/* Compaction of the surviving rows' next states: S[p][j] = S2[sel[off[p] + j]] for j < count[p]
 * (sel: the kept rows' indices p B + b, in order). i over n B obs. */
typedef struct rolloutk_compact_args {
  float* S;
  const float* S2;
  const int* sel;
  const int* count;
  const int* off;
  int od, B;
} rolloutk_compact_args;
MBPO_HD static void rolloutk_compact_body(long i, const rolloutk_compact_args* p) {
  const long per = (long)p->B * p->od, q = i / per, j = (i % per) / p->od;
  if (j >= p->count[q]) return;
  p->S[i] = p->S2[(long)p->sel[p->off[q] + j] * p->od + i % p->od];
}

/* One thread per run: copy its model pool's device state into its statistics (one download at
 * the end). */
typedef struct rolloutk_finish_args {
  rolloutk_stats* st;
  const rolloutk_run* tab;
} rolloutk_finish_args;
MBPO_HD static void rolloutk_finish_body(long i, const rolloutk_finish_args* p) {
  const long* s = p->tab[i].pool_state;
  p->st[i].pool_size = s[0];
  p->st[i].pool_next = s[1];
}

extern const dx_op dxop_rolloutk_init, dxop_rolloutk_iota, dxop_rolloutk_act, dxop_rolloutk_step, dxop_rolloutk_partial,
    dxop_rolloutk_total, dxop_rolloutk_counts, dxop_rolloutk_compact, dxop_rolloutk_finish;

#ifdef __cplusplus
}
#endif
#endif
