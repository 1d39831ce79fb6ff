/* pool_k.h: element ops of the device replay pools (pool_dev.h), one body each for the host
 * emulation and the GPU (kernels/dx_op.h).
 *
 * A row of a pool has W = 2 obs + act + 2 columns in the order obs, act, rew, next_obs, done; the
 * ops run one index per (row, column) so that a few hundred rows still fill the GPU, and every
 * index writes only its own float. Sizes and write positions are read from the pool's device state
 * [size, next] (never from arguments), so the ops stay right when replayed from a captured graph
 * after the pool has grown. */
#ifndef MBPO_POOL_K_H
#define MBPO_POOL_K_H

#include <stdint.h>

#include "dx_op.h"
#include "hd.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Column c of a W-column row: which array (0 obs, 1 act, 2 rew, 3 next_obs, 4 done) and the offset
 *  inside that array's row. */
MBPO_HD static int poolk_column(int c, int od, int ad, int* k) {
  if (c < od) { *k = c; return 0; }
  c -= od;
  if (c < ad) { *k = c; return 1; }
  c -= ad;
  if (c == 0) { *k = 0; return 2; }
  c -= 1;
  if (c < od) { *k = c; return 3; }
  *k = 0;
  return 4;
}

/* The five arrays of a pool or of a batch of rows, and their widths. */
typedef struct poolk_rows {
  float* a[5]; /* obs, act, rew, next_obs, done */
} poolk_rows;

/* Sample-and-gather: row j of the output = pool row rng_index(key, c0, c1, first + j, size) with
 * size = state[0] and (c0, c1) from *ctr (low, high word) when ctr is not NULL, else the scalars.
 * i over n * W. Outputs may be NULL (that column is skipped). */
typedef struct poolk_gather_args {
  poolk_rows src;          /* pool arrays (device) */
  poolk_rows dst;          /* output arrays [n][width] (device; entries may be NULL) */
  const long* state;     /* [size, next] */
  const uint64_t* ctr;   /* device counter, or NULL: use c0, c1 */
  rng_key key;
  uint32_t c0, c1;
  uint64_t first;
  int od, ad, W;
} poolk_gather_args;
MBPO_HD static void poolk_gather_body(long i, const poolk_gather_args* p) {
  long j = i / p->W;
  int c = (int)(i % p->W), k;
  int which = poolk_column(c, p->od, p->ad, &k);
  float* out = p->dst.a[which];
  if (!out) return;
  uint32_t c0 = p->c0, c1 = p->c1;
  if (p->ctr) {
    uint64_t v = *p->ctr;
    c0 = (uint32_t)v;
    c1 = (uint32_t)(v >> 32);
  }
  uint32_t s = rng_index(p->key, c0, c1, p->first + (uint64_t)j, (uint32_t)p->state[0]);
  int w = which == 0 || which == 3 ? p->od : which == 1 ? p->ad : 1;
  out[j * w + k] = p->src.a[which][(long)s * w + k];
}

/* Where run q of a population draws its SAC minibatch from: rows j < nreal from its real pool,
 * the rest from its model pool, row j being draw j of (key, update counter) as sac_phase's two
 * pool_sample_indices calls number them (the model rows continue at first = nreal). A device
 * array [P] of these is re-uploaded when a model pool is reallocated, so captured graphs stay
 * valid. */
typedef struct poolk_batch_src {
  poolk_rows real, model;
  const long* real_state;
  const long* model_state;
  rng_key key;
  int nreal, pad;
} poolk_batch_src;

/* The minibatches of P runs at once, i over P * B * W: dst [P][B][width]. */
typedef struct poolk_gather_runs_args {
  const poolk_batch_src* src; /* device [P] */
  poolk_rows dst;
  const uint64_t* ctr;      /* run q's counter at ctr[q * ctr_stride] */
  long ctr_stride;
  int B, od, ad, W;
} poolk_gather_runs_args;
MBPO_HD static void poolk_gather_runs_body(long i, const poolk_gather_runs_args* p) {
  long row = i / p->W, q = row / p->B, j = row % p->B;
  int c = (int)(i % p->W), k;
  int which = poolk_column(c, p->od, p->ad, &k);
  float* out = p->dst.a[which];
  if (!out) return;
  const poolk_batch_src* s = &p->src[q];
  int real = j < s->nreal;
  uint64_t v = p->ctr[q * p->ctr_stride];
  uint32_t size = (uint32_t)(real ? s->real_state : s->model_state)[0];
  uint32_t r = rng_index(s->key, (uint32_t)v, (uint32_t)(v >> 32), (uint64_t)j, size);
  int w = which == 0 || which == 3 ? p->od : which == 1 ? p->ad : 1;
  const float* from = (real ? s->real : s->model).a[which];
  out[row * w + k] = from[(long)r * w + k];
}

/* One thread: state = [size, next]. */
typedef struct poolk_set_state_args {
  long* state;
  long size, next;
} poolk_set_state_args;
MBPO_HD static void poolk_set_state_body(long i, const poolk_set_state_args* p) {
  (void)i;
  p->state[0] = p->size;
  p->state[1] = p->next;
}

/* Device-side ring append of cnt = *count rows of src (rows [0, cnt) of [nmax][width] arrays) at
 * the device-side next, as pool_add: when cnt > cap only the newest cap rows are written, each where
 * single-row adds would put it, so no two indices write the same place. i over nmax * W. */
typedef struct poolk_append_args {
  poolk_rows dst;          /* pool arrays */
  poolk_rows src;
  const long* state;     /* read: next */
  const int* count;
  long cap;
  int od, ad, W;
} poolk_append_args;
MBPO_HD static void poolk_append_body(long i, const poolk_append_args* p) {
  long b = i / p->W, cnt = *p->count;
  if (b >= cnt || (cnt > p->cap && b < cnt - p->cap)) return;
  int c = (int)(i % p->W), k;
  int which = poolk_column(c, p->od, p->ad, &k);
  int w = which == 0 || which == 3 ? p->od : which == 1 ? p->ad : 1;
  long at = (p->state[1] + b) % p->cap;
  p->dst.a[which][at * w + k] = p->src.a[which][b * w + k];
}

/* One thread, after poolk_append: next = (next + cnt) % cap, size = min(size + cnt, cap). */
typedef struct poolk_advance_args {
  long* state;
  const int* count;
  long cap;
} poolk_advance_args;
MBPO_HD static void poolk_advance_body(long i, const poolk_advance_args* p) {
  (void)i;
  long cnt = *p->count, size = p->state[0] + cnt;
  p->state[1] = (p->state[1] + cnt) % p->cap;
  p->state[0] = size > p->cap ? p->cap : size;
}

extern const dx_op dxop_poolk_gather, dxop_poolk_gather_runs, dxop_poolk_set_state, dxop_poolk_append, dxop_poolk_advance;

#ifdef __cplusplus
}
#endif
#endif
