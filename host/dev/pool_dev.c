/* pool_dev.c: replay pools on a dx context (pool_dev.h), over the element ops of kernels/pool_k.h
 * and plain copies. The ring arithmetic follows host/pool.c line by line. */
#include "pool_dev.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pool_k.h"

DX_OP(poolk_gather, poolk_gather_args)
DX_OP(poolk_gather_runs, poolk_gather_runs_args)
DX_OP(poolk_set_state, poolk_set_state_args)
DX_OP(poolk_append, poolk_append_args)
DX_OP(poolk_advance, poolk_advance_args)

/* Widths of the five arrays of a row. */
static void widths(const pool_dev* p, size_t w[5]) {
  w[0] = w[3] = (size_t)p->obs_dim;
  w[1] = (size_t)p->act_dim;
  w[2] = w[4] = 1;
}

static float** arrays(pool_dev* p, float* a[5]) {
  a[0] = p->obs, a[1] = p->act, a[2] = p->rew, a[3] = p->next_obs, a[4] = p->done;
  return a;
}

static void alloc_arrays(dx_ctx* c, pool_dev* p, long cap) {
  size_t w[5];
  widths(p, w);
  p->cap = cap;
  p->obs = dx_allocf(c, (size_t)cap * (w[0] ? w[0] : 1));
  p->act = dx_allocf(c, (size_t)cap * (w[1] ? w[1] : 1));
  p->rew = dx_allocf(c, (size_t)cap);
  p->next_obs = dx_allocf(c, (size_t)cap * (w[3] ? w[3] : 1));
  p->done = dx_allocf(c, (size_t)cap);
}

static void free_arrays(dx_ctx* c, pool_dev* p) {
  dx_free(c, p->obs);
  dx_free(c, p->act);
  dx_free(c, p->rew);
  dx_free(c, p->next_obs);
  dx_free(c, p->done);
  p->obs = p->act = p->rew = p->next_obs = p->done = NULL;
}

/* Set the device state and the mirror. */
static void set_state(dx_ctx* c, pool_dev* p, long size, long next) {
  poolk_set_state_args a = {p->state, size, next};
  DX_RUN(c, poolk_set_state, a, 1);
  p->size = size;
  p->next = next;
}

pool_dev* poold_create(dx_ctx* c, int obs_dim, int act_dim, long cap) {
  if (obs_dim < 1 || act_dim < 1) mbpo_fatal("poold_create: obs %d, act %d", obs_dim, act_dim);
  if (cap < 1) cap = 1;
  pool_dev* p = calloc(1, sizeof *p);
  if (!p) mbpo_fatal("out of memory");
  p->obs_dim = obs_dim;
  p->act_dim = act_dim;
  alloc_arrays(c, p, cap);
  p->state = (long*)dx_alloc(c, 2 * sizeof(long)); /* zeroed: empty, next 0 */
  return p;
}

void poold_free(dx_ctx* c, pool_dev* p) {
  if (!p) return;
  free_arrays(c, p);
  dx_free(c, p->state);
  free(p);
}

void poold_add_host(dx_ctx* c, pool_dev* p, long n, const float* obs, const float* act,
                    const float* rew, const float* next_obs, const float* done) {
  if (n <= 0) return;
  if (dx_capturing(c)) mbpo_fatal("poold_add_host inside a capture");
  const long cap = p->cap;
  long first = 0, next = p->next, size = p->size;
  if (n > cap) {
    first = n - cap;
    next = (next + first % cap) % cap;
  }
  size_t w[5];
  widths(p, w);
  float* dst[5];
  arrays(p, dst);
  const float* src[5] = {obs, act, rew, next_obs, done};
  for (long i = first; i < n;) {
    long run = n - i;
    if (run > cap - next) run = cap - next;
    for (int a = 0; a < 5; a++)
      dx_upload(c, dst[a] + (size_t)next * w[a], src[a] + (size_t)i * w[a], (size_t)run * w[a] * sizeof(float));
    next = (next + run) % cap;
    size = size + run > cap ? cap : size + run;
    i += run;
  }
  set_state(c, p, size, next);
}

static void gather(dx_ctx* c, const pool_dev* p, rng_key key, const uint64_t* ctr, uint32_t c0,
                   uint32_t c1, uint64_t first, int n, float* obs, float* act, float* rew,
                   float* next_obs, float* done) {
  if (n <= 0) return;
  poolk_gather_args a;
  a.src = (poolk_rows){{p->obs, p->act, p->rew, p->next_obs, p->done}};
  a.dst = (poolk_rows){{obs, act, rew, next_obs, done}};
  a.state = p->state;
  a.ctr = ctr;
  a.key = key;
  a.c0 = c0;
  a.c1 = c1;
  a.first = first;
  a.od = p->obs_dim;
  a.ad = p->act_dim;
  a.W = 2 * p->obs_dim + p->act_dim + 2;
  DX_RUN(c, poolk_gather, a, (long)n * a.W);
}

void poold_sample_gather(dx_ctx* c, const pool_dev* p, rng_key key, const uint64_t* ctr,
                         uint64_t first, int n, float* obs, float* act, float* rew,
                         float* next_obs, float* done) {
  if (!ctr) mbpo_fatal("poold_sample_gather: no counter");
  gather(c, p, key, ctr, 0, 0, first, n, obs, act, rew, next_obs, done);
}

void poold_sample_gather_c(dx_ctx* c, const pool_dev* p, rng_key key, uint32_t c0, uint32_t c1,
                           uint64_t first, int n, float* obs, float* act, float* rew,
                           float* next_obs, float* done) {
  gather(c, p, key, NULL, c0, c1, first, n, obs, act, rew, next_obs, done);
}

void poold_sample_gather_runs(dx_ctx* c, const struct poolk_batch_src* srcs, int P, const uint64_t* ctr,
                              long ctr_stride, int B, int obs_dim, int act_dim, float* obs, float* act,
                              float* rew, float* next_obs, float* done) {
  const int W = 2 * obs_dim + act_dim + 2;
  poolk_gather_runs_args a = {srcs, {{obs, act, rew, next_obs, done}}, ctr, ctr_stride, B, obs_dim, act_dim, W};
  DX_RUN(c, poolk_gather_runs, a, (long)P * B * W);
}

void poold_sync_state(dx_ctx* c, pool_dev* p) {
  long st[2];
  dx_download(c, st, p->state, sizeof st);
  dx_sync(c);
  p->size = st[0];
  p->next = st[1];
}

/* Copy the stored rows (size rows ending before next) of a ring of capacity cap between host and
 * device at the same physical places: at most two contiguous runs per array. */
static void copy_stored(dx_ctx* c, float* const dev[5], float* const host[5], const size_t w[5],
                        long cap, long size, long next, int to_device) {
  long start = (next - size + cap) % cap;
  long run1 = size < cap - start ? size : cap - start, run2 = size - run1;
  for (int a = 0; a < 5; a++) {
    size_t o1 = (size_t)start * w[a], b1 = (size_t)run1 * w[a] * sizeof(float);
    size_t b2 = (size_t)run2 * w[a] * sizeof(float);
    if (to_device) {
      dx_upload(c, dev[a] + o1, host[a] + o1, b1);
      dx_upload(c, dev[a], host[a], b2);
    } else {
      dx_download(c, host[a] + o1, dev[a] + o1, b1);
      dx_download(c, host[a], dev[a], b2);
    }
  }
}

void poold_upload(dx_ctx* c, pool_dev* p, const pool* host) {
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "replay pool upload (%ld rows)", host->size);
  if (host->obs_dim != p->obs_dim || host->act_dim != p->act_dim)
    mbpo_fatal("poold_upload: a pool of obs %d act %d into one of obs %d act %d", host->obs_dim,
               host->act_dim, p->obs_dim, p->act_dim);
  if (host->cap != p->cap) {
    dx_sync(c);
    free_arrays(c, p);
    alloc_arrays(c, p, host->cap);
  }
  size_t w[5];
  widths(p, w);
  float* dev[5];
  arrays(p, dev);
  float* const h[5] = {host->obs, host->act, host->rew, host->next_obs, host->done};
  copy_stored(c, dev, h, w, p->cap, host->size, host->next, 1);
  set_state(c, p, host->size, host->next);
  dx_sync(c);
  dx_phase(c, "%s", outer);
}

void poold_download(dx_ctx* c, const pool_dev* p, pool* host) {
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "replay pool download");
  if (host->obs_dim != p->obs_dim || host->act_dim != p->act_dim)
    mbpo_fatal("poold_download: a pool of obs %d act %d into one of obs %d act %d", p->obs_dim,
               p->act_dim, host->obs_dim, host->act_dim);
  long st[2];
  dx_download(c, st, p->state, sizeof st);
  dx_sync(c);
  if (host->cap != p->cap) pool_resize(host, p->cap);
  size_t w[5];
  widths(p, w);
  float* const dev[5] = {p->obs, p->act, p->rew, p->next_obs, p->done};
  float* const h[5] = {host->obs, host->act, host->rew, host->next_obs, host->done};
  copy_stored(c, dev, h, w, p->cap, st[0], st[1], 0);
  dx_sync(c);
  host->size = st[0];
  host->next = st[1];
  dx_phase(c, "%s", outer);
}

void poold_resize(dx_ctx* c, pool_dev* p, long new_cap) {
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "replay pool resize (%ld -> %ld rows)", p->cap, new_cap);
  if (new_cap < 1) new_cap = 1;
  if (new_cap == p->cap) {
    dx_phase(c, "%s", outer);
    return;
  }
  if (dx_capturing(c)) mbpo_fatal("poold_resize inside a capture");
  poold_sync_state(c, p);
  const long cap = p->cap, keep = p->size < new_cap ? p->size : new_cap;
  pool_dev q = *p;
  alloc_arrays(c, &q, new_cap);
  /* the newest keep rows, oldest first: from physical (start + size - keep) % cap on, two runs */
  long start = (p->next - p->size + cap) % cap, from = (start + p->size - keep) % cap;
  long run1 = keep < cap - from ? keep : cap - from, run2 = keep - run1;
  size_t w[5];
  widths(p, w);
  float *src[5], *dst[5];
  arrays(p, src);
  arrays(&q, dst);
  for (int a = 0; a < 5; a++) {
    dx_copy(c, dst[a], src[a] + (size_t)from * w[a], (size_t)run1 * w[a] * sizeof(float));
    dx_copy(c, dst[a] + (size_t)run1 * w[a], src[a], (size_t)run2 * w[a] * sizeof(float));
  }
  dx_sync(c);
  free_arrays(c, p);
  p->obs = q.obs, p->act = q.act, p->rew = q.rew, p->next_obs = q.next_obs, p->done = q.done;
  p->cap = new_cap;
  set_state(c, p, keep, keep % new_cap);
  dx_phase(c, "%s", outer);
}

void poold_append_dev(dx_ctx* c, pool_dev* p, const int* count, long nmax, const float* obs,
                      const float* act, const float* rew, const float* next_obs, const float* done) {
  if (nmax <= 0) return;
  poolk_append_args a;
  a.dst = (poolk_rows){{p->obs, p->act, p->rew, p->next_obs, p->done}};
  /* the ops only read src; poolk_rows holds plain float pointers */
  a.src = (poolk_rows){{(float*)obs, (float*)act, (float*)rew, (float*)next_obs, (float*)done}};
  a.state = p->state;
  a.count = count;
  a.cap = p->cap;
  a.od = p->obs_dim;
  a.ad = p->act_dim;
  a.W = 2 * p->obs_dim + p->act_dim + 2;
  DX_RUN(c, poolk_append, a, nmax * a.W);
  poolk_advance_args v = {p->state, count, p->cap};
  DX_RUN(c, poolk_advance, v, 1);
}
