/* test_pool.c: replay pools (pool.h): FIFO ring semantics (size, capacity, wrap-around, the oldest
 * rows overwritten, more rows than capacity in one call), pool_resize (growing keeps every row
 * oldest first, shrinking keeps the newest), pool_physical, pool_gather, and pool_sample_indices
 * (the documented draw, uniform over [0, size) by chi-square, deterministic by key and counters).
 *
 * Every row written carries its id: obs = [id, id + 0.25, id + 0.5], act = [-id, 2 id],
 * rew = id, next_obs = obs + 1000, done = id mod 3 == 0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rng.h"
#include "test.h"

enum { O = 3, A = 2 };

/* n consecutive rows with ids id0, id0 + 1, ... */
typedef struct rows {
  long n;
  float *obs, *act, *rew, *next, *done;
} rows;

static rows make_rows(long id0, long n) {
  rows r;
  r.n = n;
  r.obs = (float*)malloc(sizeof(float) * (size_t)(n ? n : 1) * O);
  r.act = (float*)malloc(sizeof(float) * (size_t)(n ? n : 1) * A);
  r.rew = (float*)malloc(sizeof(float) * (size_t)(n ? n : 1));
  r.next = (float*)malloc(sizeof(float) * (size_t)(n ? n : 1) * O);
  r.done = (float*)malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (long i = 0; i < n; i++) {
    float id = (float)(id0 + i);
    for (int d = 0; d < O; d++) {
      r.obs[i * O + d] = id + 0.25f * (float)d;
      r.next[i * O + d] = id + 0.25f * (float)d + 1000.0f;
    }
    r.act[i * A] = -id;
    r.act[i * A + 1] = 2.0f * id;
    r.rew[i] = id;
    r.done[i] = ((id0 + i) % 3 == 0) ? 1.0f : 0.0f;
  }
  return r;
}

static void free_rows(rows* r) {
  free(r->obs);
  free(r->act);
  free(r->rew);
  free(r->next);
  free(r->done);
}

static void add_ids(pool* p, long id0, long n) {
  rows r = make_rows(id0, n);
  pool_add(p, n, r.obs, r.act, r.rew, r.next, r.done);
  free_rows(&r);
}

/* 1 when the row at physical index s holds exactly the row with this id (all five arrays). */
static int row_is(const pool* p, long s, long id) {
  rows r = make_rows(id, 1);
  int ok = memcmp(p->obs + s * O, r.obs, sizeof(float) * O) == 0 &&
           memcmp(p->act + s * A, r.act, sizeof(float) * A) == 0 && p->rew[s] == r.rew[0] &&
           memcmp(p->next_obs + s * O, r.next, sizeof(float) * O) == 0 && p->done[s] == r.done[0];
  free_rows(&r);
  return ok;
}

/* CHECK that the pool holds the ids first_id .. first_id + n - 1, oldest first. */
#define CHECK_CONTENTS(p, first_id, n)                                                           \
  do {                                                                                           \
    CHECK((p)->size == (n), "size %ld, expected %ld", (p)->size, (long)(n));                     \
    long bad_ = -1;                                                                              \
    for (long i_ = 0; i_ < (p)->size && bad_ < 0; i_++)                                          \
      if (!row_is((p), pool_physical((p), i_), (first_id) + i_)) bad_ = i_;                      \
    CHECK(bad_ < 0, "row %ld (physical %ld) is id %g, expected %ld", bad_,                       \
          bad_ < 0 ? 0L : pool_physical((p), bad_), bad_ < 0 ? 0.0 : (double)(p)->rew[pool_physical((p), bad_)], \
          (long)(first_id) + bad_);                                                              \
  } while (0)

static void test_create(void) {
  pool* p = pool_create(O, A, 10);
  CHECK(p->obs_dim == O && p->act_dim == A, "dims %d %d", p->obs_dim, p->act_dim);
  CHECK(p->cap == 10 && p->size == 0 && p->next == 0, "cap %ld size %ld next %ld", p->cap, p->size, p->next);
  add_ids(p, 0, 0); /* adding nothing changes nothing */
  CHECK(p->size == 0 && p->next == 0, "size %ld next %ld after adding 0 rows", p->size, p->next);
  pool_free(p);
  pool_free(NULL);
  p = pool_create(O, A, 0); /* a capacity below 1 is one row */
  CHECK(p->cap == 1, "cap %ld", p->cap);
  add_ids(p, 0, 3);
  CHECK_CONTENTS(p, 2, 1);
  pool_free(p);
}

static void test_add_and_wrap(void) {
  pool* p = pool_create(O, A, 10);
  add_ids(p, 0, 4);
  CHECK(p->size == 4 && p->next == 4, "size %ld next %ld", p->size, p->next);
  for (long i = 0; i < 4; i++) CHECK(pool_physical(p, i) == i, "physical(%ld) = %ld", i, pool_physical(p, i));
  CHECK_CONTENTS(p, 0, 4);
  add_ids(p, 4, 6); /* exactly full */
  CHECK(p->size == 10 && p->next == 0, "full: size %ld next %ld", p->size, p->next);
  CHECK_CONTENTS(p, 0, 10);
  add_ids(p, 10, 3); /* overwrites ids 0, 1, 2 (the oldest) */
  CHECK(p->size == 10 && p->next == 3, "wrapped: size %ld next %ld", p->size, p->next);
  CHECK(pool_physical(p, 0) == 3 && pool_physical(p, 6) == 9 && pool_physical(p, 7) == 0 &&
            pool_physical(p, 9) == 2,
        "physical after wrap: %ld %ld %ld %ld", pool_physical(p, 0), pool_physical(p, 6),
        pool_physical(p, 7), pool_physical(p, 9));
  CHECK(row_is(p, 0, 10) && row_is(p, 2, 12) && row_is(p, 3, 3), "ring slots after wrap");
  CHECK_CONTENTS(p, 3, 10);
  add_ids(p, 13, 9); /* a run that crosses the end of the ring */
  CHECK(p->next == 2, "next %ld", p->next);
  CHECK_CONTENTS(p, 12, 10);
  pool_free(p);
}

static void test_add_more_than_capacity(void) {
  /* into an empty pool: only the newest cap rows survive, oldest first */
  pool* p = pool_create(O, A, 10);
  add_ids(p, 100, 25);
  CHECK_CONTENTS(p, 115, 10);
  /* into a partly filled pool, at an offset */
  pool* q = pool_create(O, A, 10);
  add_ids(q, 0, 7);
  add_ids(q, 7, 33);
  CHECK_CONTENTS(q, 30, 10);
  /* exactly cap rows at once at an offset in the ring */
  add_ids(q, 40, 10);
  CHECK_CONTENTS(q, 40, 10);
  /* the ring's layout does not depend on how the rows were split into calls: 33 rows at once
   * after 7 land where 33 single adds put them */
  pool* r = pool_create(O, A, 10);
  add_ids(r, 0, 7);
  for (long i = 7; i < 40; i++) add_ids(r, i, 1);
  pool* q2 = pool_create(O, A, 10);
  add_ids(q2, 0, 7);
  add_ids(q2, 7, 33);
  CHECK(q2->next == r->next && q2->size == r->size, "next %ld vs %ld", q2->next, r->next);
  CHECK(memcmp(q2->obs, r->obs, sizeof(float) * 10 * O) == 0 && memcmp(q2->act, r->act, sizeof(float) * 10 * A) == 0 &&
            memcmp(q2->rew, r->rew, sizeof(float) * 10) == 0 && memcmp(q2->next_obs, r->next_obs, sizeof(float) * 10 * O) == 0 &&
            memcmp(q2->done, r->done, sizeof(float) * 10) == 0,
        "33 rows in one call are laid out differently from 33 single adds");
  pool_free(r);
  pool_free(q2);
  pool_free(p);
  pool_free(q);
}

/* Many adds of assorted sizes against the plain rule "the last min(total, cap) ids". */
static void test_add_random_sizes(void) {
  const rng_key k = {5, RNG_TEST};
  const long caps[] = {1, 2, 7, 64};
  for (int c = 0; c < 4; c++) {
    pool* p = pool_create(O, A, caps[c]);
    long total = 0;
    int ok = 1;
    for (int it = 0; it < 300 && ok; it++) {
      long n = (long)rng_index(k, (uint32_t)c, 0, (uint64_t)it, (uint32_t)(2 * caps[c] + 3));
      add_ids(p, total, n);
      total += n;
      long want = total < caps[c] ? total : caps[c];
      if (p->size != want || p->next != total % caps[c]) ok = 0;
      for (long i = 0; i < p->size && ok; i++)
        if (!row_is(p, pool_physical(p, i), total - want + i)) ok = 0;
    }
    CHECK(ok, "cap %ld: contents differ from the last min(total, cap) rows after %ld rows", caps[c], total);
    pool_free(p);
  }
}

static void test_resize_grow(void) {
  /* a wrapped, full pool grows: every row kept, oldest first, then filling continues */
  pool* p = pool_create(O, A, 10);
  add_ids(p, 0, 17); /* ids 7..16, next = 7 */
  pool_resize(p, 15);
  CHECK(p->cap == 15, "cap %ld", p->cap);
  CHECK_CONTENTS(p, 7, 10);
  CHECK(p->next == 10, "next %ld", p->next);
  for (long i = 0; i < 10; i++) CHECK(row_is(p, i, 7 + i), "row %ld not at physical %ld after resize", 7 + i, i);
  add_ids(p, 17, 5);
  CHECK_CONTENTS(p, 7, 15);
  add_ids(p, 22, 4); /* wraps in the new capacity */
  CHECK_CONTENTS(p, 11, 15);
  CHECK(p->obs_dim == O && p->act_dim == A, "dims after resize %d %d", p->obs_dim, p->act_dim);
  /* a partly filled pool grows */
  pool* q = pool_create(O, A, 8);
  add_ids(q, 0, 5);
  pool_resize(q, 100);
  CHECK(q->cap == 100, "cap %ld", q->cap);
  CHECK_CONTENTS(q, 0, 5);
  add_ids(q, 5, 95);
  CHECK_CONTENTS(q, 0, 100);
  /* the same capacity changes nothing */
  float* before = q->obs;
  pool_resize(q, 100);
  CHECK(q->obs == before && q->cap == 100, "resize to the same capacity reallocated");
  CHECK_CONTENTS(q, 0, 100);
  pool_free(p);
  pool_free(q);
}

static void test_resize_shrink(void) {
  /* a wrapped, full pool shrinks: the newest rows are kept, oldest first */
  pool* p = pool_create(O, A, 10);
  add_ids(p, 0, 23); /* ids 13..22, next = 3 */
  pool_resize(p, 4);
  CHECK(p->cap == 4, "cap %ld", p->cap);
  CHECK_CONTENTS(p, 19, 4);
  add_ids(p, 23, 1);
  CHECK_CONTENTS(p, 20, 4);
  /* shrinking above the size keeps everything */
  pool* q = pool_create(O, A, 50);
  add_ids(q, 0, 6);
  pool_resize(q, 8);
  CHECK(q->cap == 8, "cap %ld", q->cap);
  CHECK_CONTENTS(q, 0, 6);
  add_ids(q, 6, 5);
  CHECK_CONTENTS(q, 3, 8);
  pool* r = pool_create(O, A, 20);
  add_ids(r, 0, 27); /* ids 7..26, wrapped */
  pool_resize(r, 7);
  CHECK_CONTENTS(r, 20, 7);
  pool_resize(r, 30); /* and back up */
  CHECK_CONTENTS(r, 20, 7);
  pool_free(p);
  pool_free(q);
  pool_free(r);
}

static void test_gather(void) {
  pool* p = pool_create(O, A, 10);
  add_ids(p, 0, 14); /* ids 4..13, physical s holds id s + 10 for s < 4, else s */
  uint32_t idx[6] = {0, 3, 4, 9, 3, 7};
  float obs[6 * O], act[6 * A], rew[6], next[6 * O], done[6];
  pool_gather(p, idx, 6, obs, act, rew, next, done);
  int ok = 1;
  for (int j = 0; j < 6; j++) {
    long id = idx[j] < 4 ? idx[j] + 10 : idx[j];
    rows r = make_rows(id, 1);
    ok &= memcmp(obs + j * O, r.obs, sizeof(float) * O) == 0;
    ok &= memcmp(act + j * A, r.act, sizeof(float) * A) == 0;
    ok &= rew[j] == r.rew[0] && done[j] == r.done[0];
    ok &= memcmp(next + j * O, r.next, sizeof(float) * O) == 0;
    free_rows(&r);
  }
  CHECK(ok, "gathered rows differ from the rows at those physical indices");
  /* any output may be NULL; the others are still filled */
  float rew2[6] = {0}, next2[6 * O];
  memset(next2, 0, sizeof next2);
  pool_gather(p, idx, 6, NULL, NULL, rew2, next2, NULL);
  CHECK(memcmp(rew2, rew, sizeof rew) == 0 && memcmp(next2, next, sizeof next) == 0,
        "gather with NULL outputs");
  pool_gather(p, idx, 0, obs, act, rew, next, done); /* n = 0 writes nothing */
  pool_free(p);
}

/* Chi-square statistic of counts over m cells, each expected n / m. */
static double chi2(const long* cnt, long m, long n) {
  double e = (double)n / (double)m, s = 0;
  for (long i = 0; i < m; i++) s += ((double)cnt[i] - e) * ((double)cnt[i] - e) / e;
  return s;
}

static void test_sample_indices(void) {
  const rng_key k = {42, RNG_SAC_BATCH};
  /* a partly filled pool: indices in [0, size), never beyond */
  pool* p = pool_create(O, A, 100);
  add_ids(p, 0, 37);
  const long n = 370000;
  uint32_t* idx = (uint32_t*)malloc(sizeof(uint32_t) * (size_t)n);
  pool_sample_indices(p, k, 3, 0, 0, n, idx);
  long cnt[100] = {0}, out = 0, conv = 0;
  for (long j = 0; j < n; j++) {
    if (idx[j] >= 37) out++;
    else cnt[idx[j]]++;
    if (idx[j] != rng_index(k, 3, 0, (uint64_t)j, 37)) conv++;
  }
  CHECK(out == 0, "%ld indices outside [0, 37)", out);
  CHECK(conv == 0, "%ld indices differ from rng_index(key, c0, c1, first + j, size)", conv);
  /* 36 degrees of freedom: P(chi2 > 67.99) = 0.001 */
  double x = chi2(cnt, 37, n);
  CHECK(x < 67.99, "chi-square %.2f over 37 rows (36 dof, 0.1%% level 67.99)", x);
  /* a full, wrapped pool: uniform over all cap physical rows */
  add_ids(p, 37, 250);
  CHECK(p->size == 100, "size %ld", p->size);
  pool_sample_indices(p, k, 4, 1, 0, n, idx);
  long cnt2[100] = {0};
  out = 0;
  for (long j = 0; j < n; j++) {
    if (idx[j] >= 100) out++;
    else cnt2[idx[j]]++;
  }
  CHECK(out == 0, "%ld indices outside [0, 100)", out);
  /* 99 dof: P(chi2 > 148.23) = 0.001 */
  x = chi2(cnt2, 100, n);
  CHECK(x < 148.23, "chi-square %.2f over 100 rows (99 dof, 0.1%% level 148.23)", x);
  /* the mean of the gathered ids is the mean of the stored ids (187 + 286) / 2 */
  double mean = 0;
  float* rew = (float*)malloc(sizeof(float) * (size_t)n);
  pool_gather(p, idx, n, NULL, NULL, rew, NULL, NULL);
  for (long j = 0; j < n; j++) mean += rew[j];
  mean /= (double)n;
  /* the std of one draw is about 28.9: 5 standard errors is 0.24 */
  CHECK(fabs(mean - 236.5) < 0.24, "mean sampled id %.3f, expected 236.5", mean);
  free(rew);
  free(idx);
  pool_free(p);
}

static void test_sample_determinism(void) {
  pool* p = pool_create(O, A, 1000);
  add_ids(p, 0, 777);
  const rng_key k = {9, RNG_SAC_BATCH};
  enum { N = 512 };
  uint32_t a[N], b[N], c[N], d[N], e[N], f[N];
  pool_sample_indices(p, k, 1, 2, 0, N, a);
  pool_sample_indices(p, k, 1, 2, 0, N, b);
  CHECK(memcmp(a, b, sizeof a) == 0, "same key and counters gave different indices");
  /* first offsets the draw: draws first .. first + n - 1 of the same stream */
  pool_sample_indices(p, k, 1, 2, 100, N - 100, c);
  CHECK(memcmp(c, a + 100, sizeof(uint32_t) * (N - 100)) == 0, "first = 100 is not the tail of first = 0");
  /* each of key seed, key stream, c0 and c1 changes the draw */
  pool_sample_indices(p, (rng_key){10, RNG_SAC_BATCH}, 1, 2, 0, N, d);
  pool_sample_indices(p, (rng_key){9, RNG_ROLLOUT}, 1, 2, 0, N, e);
  pool_sample_indices(p, k, 2, 2, 0, N, f);
  int sd = 0, se = 0, sf = 0, sg = 0;
  for (int j = 0; j < N; j++) sd += a[j] == d[j], se += a[j] == e[j], sf += a[j] == f[j];
  pool_sample_indices(p, k, 1, 3, 0, N, f);
  for (int j = 0; j < N; j++) sg += a[j] == f[j];
  /* independent draws agree on about N / 777 < 1 indices */
  CHECK(sd < 8 && se < 8 && sf < 8 && sg < 8, "indices shared with other seed %d, stream %d, c0 %d, c1 %d", sd,
        se, sf, sg);
  pool_free(p);
}

int main(void) {
  RUN(test_create);
  RUN(test_add_and_wrap);
  RUN(test_add_more_than_capacity);
  RUN(test_add_random_sizes);
  RUN(test_resize_grow);
  RUN(test_resize_shrink);
  RUN(test_gather);
  RUN(test_sample_indices);
  RUN(test_sample_determinism);
  return test_done();
}
