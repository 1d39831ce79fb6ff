/* pool.c: replay pools (pool.h). */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static float* alloc_rows(long rows, int width) {
  size_t n = (size_t)rows * (size_t)(width > 0 ? width : 1);
  float* p = (float*)malloc(n * sizeof(float));
  if (!p) mbpo_fatal("out of memory allocating a replay pool of %ld rows", rows);
  return p;
}

pool* pool_create(int obs_dim, int act_dim, long cap) {
  if (cap < 1) cap = 1;
  pool* p = (pool*)calloc(1, sizeof *p);
  if (!p) mbpo_fatal("out of memory");
  p->obs_dim = obs_dim;
  p->act_dim = act_dim;
  p->cap = cap;
  p->obs = alloc_rows(cap, obs_dim);
  p->act = alloc_rows(cap, act_dim);
  p->rew = alloc_rows(cap, 1);
  p->next_obs = alloc_rows(cap, obs_dim);
  p->done = alloc_rows(cap, 1);
  return p;
}

void pool_free(pool* p) {
  if (!p) return;
  free(p->obs);
  free(p->act);
  free(p->rew);
  free(p->next_obs);
  free(p->done);
  free(p);
}

void pool_add(pool* p, long n, const float* obs, const float* act, const float* rew,
              const float* next_obs, const float* done) {
  const size_t od = (size_t)p->obs_dim, ad = (size_t)p->act_dim;
  long first = 0;
  if (n > p->cap) {
    /* Only the newest cap rows survive. They go where n single-row adds would put them (as
     * softlearning's add_samples does), so the layout, and with it every draw of physical indices,
     * does not depend on how the rows were split into calls. */
    first = n - p->cap;
    p->next = (p->next + first % p->cap) % p->cap;
  }
  for (long i = first; i < n;) {
    /* copy a contiguous run up to the end of the ring */
    long run = n - i;
    if (run > p->cap - p->next) run = p->cap - p->next;
    size_t at = (size_t)p->next, src = (size_t)i;
    memcpy(p->obs + at * od, obs + src * od, (size_t)run * od * sizeof(float));
    memcpy(p->act + at * ad, act + src * ad, (size_t)run * ad * sizeof(float));
    memcpy(p->rew + at, rew + src, (size_t)run * sizeof(float));
    memcpy(p->next_obs + at * od, next_obs + src * od, (size_t)run * od * sizeof(float));
    memcpy(p->done + at, done + src, (size_t)run * sizeof(float));
    p->next = (p->next + run) % p->cap;
    p->size = p->size + run > p->cap ? p->cap : p->size + run;
    i += run;
  }
}

long pool_physical(const pool* p, long i) {
  long start = (p->next - p->size + p->cap) % p->cap;
  return (start + i) % p->cap;
}

void pool_resize(pool* p, long new_cap) {
  if (new_cap < 1) new_cap = 1;
  if (new_cap == p->cap) return;
  pool* q = pool_create(p->obs_dim, p->act_dim, new_cap);
  long keep = p->size < new_cap ? p->size : new_cap;
  const size_t od = (size_t)p->obs_dim, ad = (size_t)p->act_dim;
  for (long i = p->size - keep; i < p->size; i++) {
    size_t s = (size_t)pool_physical(p, i), d = (size_t)q->size;
    memcpy(q->obs + d * od, p->obs + s * od, od * sizeof(float));
    memcpy(q->act + d * ad, p->act + s * ad, ad * sizeof(float));
    q->rew[d] = p->rew[s];
    memcpy(q->next_obs + d * od, p->next_obs + s * od, od * sizeof(float));
    q->done[d] = p->done[s];
    q->size++;
  }
  q->next = q->size % q->cap;
  free(p->obs);
  free(p->act);
  free(p->rew);
  free(p->next_obs);
  free(p->done);
  *p = *q;
  free(q);
}

void pool_gather(const pool* p, const uint32_t* idx, long n, float* obs, float* act, float* rew,
                 float* next_obs, float* done) {
  const size_t od = (size_t)p->obs_dim, ad = (size_t)p->act_dim;
  for (long j = 0; j < n; j++) {
    size_t s = idx[j];
    if (obs) memcpy(obs + (size_t)j * od, p->obs + s * od, od * sizeof(float));
    if (act) memcpy(act + (size_t)j * ad, p->act + s * ad, ad * sizeof(float));
    if (rew) rew[j] = p->rew[s];
    if (next_obs) memcpy(next_obs + (size_t)j * od, p->next_obs + s * od, od * sizeof(float));
    if (done) done[j] = p->done[s];
  }
}

void pool_sample_indices(const pool* p, rng_key key, uint32_t c0, uint32_t c1, uint64_t first,
                         long n, uint32_t* idx) {
  if (p->size < 1 && n > 0) mbpo_fatal("sampling from an empty replay pool");
  for (long j = 0; j < n; j++) idx[j] = rng_index(key, c0, c1, first + (uint64_t)j, (uint32_t)p->size);
}
