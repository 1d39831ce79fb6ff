/* test_pool_dev.c: device replay pools (pool_dev.h) against the host pool (pool.h), on every
 * available kind: the host emulation always, the GPU when one is usable (else each GPU case is a
 * visible skip). Everything here is data movement and integer draws, so every comparison is exact:
 *   poold_add_host (wrap-around, n > cap) and poold_download       vs pool_add
 *   poold_resize (shrink, grow, of a wrapped ring), poold_upload    vs pool_resize, pool state
 *   poold_append_dev (device count, wrap, count > cap)              vs pool_add
 *   poold_sample_gather captured once with nnd_ctr_add and replayed while the pool grows between
 *   replays (poold_add_host), the counter crossing a 32-bit boundary  vs pool_sample_indices +
 *   pool_gather with the counter and size of each replay. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dx.h"
#include "nn_dev.h"
#include "pool.h"
#include "pool_dev.h"
#include "rng.h"
#include "dx_test.h"
#include "test.h"

enum { OD = 3, AD = 2 };
static const rng_key K = {41, RNG_TEST};

/* n distinct rows in pinned staging buffers, numbered from `base` (every float tells its row). */
typedef struct rows {
  long n;
  float *obs, *act, *rew, *next, *done;
} rows;

static rows make_rows(long n, int base) {
  rows r = {n, NULL, NULL, NULL, NULL, NULL};
  r.obs = dx_alloc_pinned(ctx(), (size_t)n * OD * sizeof(float) + 4);
  r.act = dx_alloc_pinned(ctx(), (size_t)n * AD * sizeof(float) + 4);
  r.rew = dx_alloc_pinned(ctx(), (size_t)n * sizeof(float) + 4);
  r.next = dx_alloc_pinned(ctx(), (size_t)n * OD * sizeof(float) + 4);
  r.done = dx_alloc_pinned(ctx(), (size_t)n * sizeof(float) + 4);
  for (long i = 0; i < n; i++) {
    float v = (float)(base + i);
    for (int j = 0; j < OD; j++) r.obs[i * OD + j] = v + 0.01f * j, r.next[i * OD + j] = -v - 0.01f * j;
    for (int j = 0; j < AD; j++) r.act[i * AD + j] = 0.5f * v + 0.1f * j;
    r.rew[i] = 2.0f * v;
    r.done[i] = (float)((base + i) % 3 == 0);
  }
  return r;
}

static void free_rows(rows* r) {
  dx_free_pinned(ctx(), r->obs);
  dx_free_pinned(ctx(), r->act);
  dx_free_pinned(ctx(), r->rew);
  dx_free_pinned(ctx(), r->next);
  dx_free_pinned(ctx(), r->done);
}

/* Equal state: size, next and the stored rows at the same physical places (exact). */
static int same_pool(const pool* a, const pool* b, const char* what) {
  if (a->cap != b->cap || a->size != b->size || a->next != b->next) {
    CHECK(0, "%s: cap/size/next %ld/%ld/%ld, expected %ld/%ld/%ld", what, a->cap, a->size, a->next,
          b->cap, b->size, b->next);
    return 0;
  }
  long bad = 0;
  for (long i = 0; i < b->size; i++) {
    long s = pool_physical(b, i);
    bad += memcmp(a->obs + s * OD, b->obs + s * OD, OD * sizeof(float)) != 0 ||
           memcmp(a->act + s * AD, b->act + s * AD, AD * sizeof(float)) != 0 || a->rew[s] != b->rew[s] ||
           memcmp(a->next_obs + s * OD, b->next_obs + s * OD, OD * sizeof(float)) != 0 ||
           a->done[s] != b->done[s];
  }
  CHECK(bad == 0, "%s: %ld of %ld stored rows differ", what, bad, b->size);
  return bad == 0;
}

/* Download p and compare it (and its mirror) with ref. */
static void check_dev(pool_dev* p, const pool* ref, const char* what) {
  pool* h = pool_create(OD, AD, 1);
  poold_download(ctx(), p, h);
  same_pool(h, ref, what);
  CHECK(p->size == ref->size && p->next == ref->next, "%s: mirror %ld/%ld, expected %ld/%ld", what,
        p->size, p->next, ref->size, ref->next);
  pool_free(h);
}

static void test_add_download(void) {
  NEED_KIND();
  const long cap = 50;
  const long adds[] = {7, 30, 20, 60, 1, 49, 0, 113, 3};
  pool* ref = pool_create(OD, AD, cap);
  pool_dev* p = poold_create(ctx(), OD, AD, cap);
  int base = 1;
  char what[64];
  for (size_t a = 0; a < sizeof adds / sizeof adds[0]; a++) {
    rows r = make_rows(adds[a], base);
    base += (int)adds[a];
    poold_add_host(ctx(), p, r.n, r.obs, r.act, r.rew, r.next, r.done);
    pool_add(ref, r.n, r.obs, r.act, r.rew, r.next, r.done);
    dx_sync(ctx());
    snprintf(what, sizeof what, "after add %zu (%ld rows)", a, adds[a]);
    check_dev(p, ref, what);
    free_rows(&r);
  }
  poold_free(ctx(), p);
  pool_free(ref);
}

static void test_resize_upload(void) {
  NEED_KIND();
  const long caps[] = {20, 35, 35, 8, 64, 1, 5};
  pool* ref = pool_create(OD, AD, 30);
  pool_dev* p = poold_create(ctx(), OD, AD, 30);
  int base = 100;
  char what[64];
  for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
    rows r = make_rows(17 + (long)c * 5, base); /* wraps the ring before each resize */
    base += (int)r.n;
    poold_add_host(ctx(), p, r.n, r.obs, r.act, r.rew, r.next, r.done);
    pool_add(ref, r.n, r.obs, r.act, r.rew, r.next, r.done);
    dx_sync(ctx());
    free_rows(&r);
    poold_resize(ctx(), p, caps[c]);
    pool_resize(ref, caps[c]);
    snprintf(what, sizeof what, "resize %zu to %ld", c, caps[c]);
    check_dev(p, ref, what);
  }
  /* upload a wrapped host pool of another capacity, then keep adding to both */
  pool* h = pool_create(OD, AD, 40);
  rows r = make_rows(97, 5000);
  pool_add(h, r.n, r.obs, r.act, r.rew, r.next, r.done);
  poold_upload(ctx(), p, h);
  CHECK(p->cap == 40 && p->size == h->size && p->next == h->next, "upload: cap %ld size %ld next %ld",
        p->cap, p->size, p->next);
  check_dev(p, h, "upload");
  rows r2 = make_rows(23, 9000);
  pool_add(h, r2.n, r2.obs, r2.act, r2.rew, r2.next, r2.done);
  poold_add_host(ctx(), p, r2.n, r2.obs, r2.act, r2.rew, r2.next, r2.done);
  dx_sync(ctx());
  check_dev(p, h, "add after upload");
  /* download into a host pool of another capacity: resized to the device's */
  pool* h2 = pool_create(OD, AD, 7);
  poold_download(ctx(), p, h2);
  same_pool(h2, h, "download into another capacity");
  free_rows(&r);
  free_rows(&r2);
  pool_free(h);
  pool_free(h2);
  poold_free(ctx(), p);
  pool_free(ref);
}

static void test_append_dev(void) {
  NEED_KIND();
  const long cap = 40, nmax = 64;
  const int counts[] = {10, 25, 0, 64, 39, 41, 1};
  pool* ref = pool_create(OD, AD, cap);
  pool_dev* p = poold_create(ctx(), OD, AD, cap);
  int* dcount = dx_alloc(ctx(), sizeof(int));
  float *dobs = dx_allocf(ctx(), nmax * OD), *dact = dx_allocf(ctx(), nmax * AD);
  float *drew = dx_allocf(ctx(), nmax), *dnext = dx_allocf(ctx(), nmax * OD), *ddone = dx_allocf(ctx(), nmax);
  int base = 1;
  char what[64];
  for (size_t a = 0; a < sizeof counts / sizeof counts[0]; a++) {
    rows r = make_rows(nmax, base); /* nmax rows on the device, the first counts[a] appended */
    base += counts[a];
    dx_upload(ctx(), dobs, r.obs, nmax * OD * sizeof(float));
    dx_upload(ctx(), dact, r.act, nmax * AD * sizeof(float));
    dx_upload(ctx(), drew, r.rew, nmax * sizeof(float));
    dx_upload(ctx(), dnext, r.next, nmax * OD * sizeof(float));
    dx_upload(ctx(), ddone, r.done, nmax * sizeof(float));
    dx_upload(ctx(), dcount, &counts[a], sizeof(int));
    poold_append_dev(ctx(), p, dcount, nmax, dobs, dact, drew, dnext, ddone);
    pool_add(ref, counts[a], r.obs, r.act, r.rew, r.next, r.done);
    dx_sync(ctx());
    poold_sync_state(ctx(), p);
    snprintf(what, sizeof what, "device append %zu (%d rows)", a, counts[a]);
    check_dev(p, ref, what);
    free_rows(&r);
  }
  dx_free(ctx(), dcount);
  dx_free(ctx(), dobs);
  dx_free(ctx(), dact);
  dx_free(ctx(), drew);
  dx_free(ctx(), dnext);
  dx_free(ctx(), ddone);
  poold_free(ctx(), p);
  pool_free(ref);
}

/* The SAC minibatch program: 12 rows of the real pool at first 0, 244 of the model pool at first
 * 12, then the counter += 1; captured once, replayed while both pools grow. */
static void test_sample_gather_graph(void) {
  NEED_KIND();
  const int NR = 12, NM = 244, N = NR + NM, REPLAYS = 5;
  const long cap_real = 300, cap_model = 1000;
  pool *rref = pool_create(OD, AD, cap_real), *mref = pool_create(OD, AD, cap_model);
  pool_dev *real = poold_create(ctx(), OD, AD, cap_real), *model = poold_create(ctx(), OD, AD, cap_model);
  const uint64_t ctr0 = 0xFFFFFFFEull; /* crosses into the high word on the third replay */
  uint64_t* ctr = dx_alloc(ctx(), sizeof(uint64_t));
  dx_upload(ctx(), ctr, &ctr0, sizeof ctr0);
  float *obs = dx_allocf(ctx(), (size_t)N * OD), *act = dx_allocf(ctx(), (size_t)N * AD);
  float *rew = dx_allocf(ctx(), N), *next = dx_allocf(ctx(), (size_t)N * OD), *done = dx_allocf(ctx(), N);
  int base = 1;
  rows r0 = make_rows(5, base), m0 = make_rows(400, 100000);
  poold_add_host(ctx(), real, r0.n, r0.obs, r0.act, r0.rew, r0.next, r0.done);
  pool_add(rref, r0.n, r0.obs, r0.act, r0.rew, r0.next, r0.done);
  poold_add_host(ctx(), model, m0.n, m0.obs, m0.act, m0.rew, m0.next, m0.done);
  pool_add(mref, m0.n, m0.obs, m0.act, m0.rew, m0.next, m0.done);
  base += 5;
  dx_sync(ctx());

  dx_capture_begin(ctx());
  poold_sample_gather(ctx(), real, K, ctr, 0, NR, obs, act, rew, next, done);
  poold_sample_gather(ctx(), model, K, ctr, NR, NM, obs + NR * OD, act + NR * AD, rew + NR,
                      next + NR * OD, done + NR);
  nnd_ctr_add(ctx(), ctr, 1);
  dx_graph* g = dx_capture_end(ctx());

  float *gobs = malloc(sizeof(float) * N * OD), *gact = malloc(sizeof(float) * N * AD);
  float *grew = malloc(sizeof(float) * N), *gnext = malloc(sizeof(float) * N * OD), *gdone = malloc(sizeof(float) * N);
  float *wobs = malloc(sizeof(float) * N * OD), *wact = malloc(sizeof(float) * N * AD);
  float *wrew = malloc(sizeof(float) * N), *wnext = malloc(sizeof(float) * N * OD), *wdone = malloc(sizeof(float) * N);
  uint32_t idx[256];
  for (int rep = 0; rep < REPLAYS; rep++) {
    dx_graph_launch(ctx(), g);
    dx_download(ctx(), gobs, obs, sizeof(float) * N * OD);
    dx_download(ctx(), gact, act, sizeof(float) * N * AD);
    dx_download(ctx(), grew, rew, sizeof(float) * N);
    dx_download(ctx(), gnext, next, sizeof(float) * N * OD);
    dx_download(ctx(), gdone, done, sizeof(float) * N);
    dx_sync(ctx());
    uint64_t v = ctr0 + (uint64_t)rep;
    uint32_t c0 = (uint32_t)v, c1 = (uint32_t)(v >> 32);
    pool_sample_indices(rref, K, c0, c1, 0, NR, idx);
    pool_gather(rref, idx, NR, wobs, wact, wrew, wnext, wdone);
    pool_sample_indices(mref, K, c0, c1, NR, NM, idx);
    pool_gather(mref, idx, NM, wobs + NR * OD, wact + NR * AD, wrew + NR, wnext + NR * OD, wdone + NR);
    int same = !memcmp(gobs, wobs, sizeof(float) * N * OD) && !memcmp(gact, wact, sizeof(float) * N * AD) &&
               !memcmp(grew, wrew, sizeof(float) * N) && !memcmp(gnext, wnext, sizeof(float) * N * OD) &&
               !memcmp(gdone, wdone, sizeof(float) * N);
    CHECK(same, "replay %d (real size %ld, model size %ld): minibatch differs from the host draws", rep,
          rref->size, mref->size);
    /* the pools grow (and the real one wraps) between replays */
    rows ra = make_rows(37 + 60 * rep, base), ma = make_rows(150, 200000 + 150 * rep);
    base += (int)ra.n;
    poold_add_host(ctx(), real, ra.n, ra.obs, ra.act, ra.rew, ra.next, ra.done);
    pool_add(rref, ra.n, ra.obs, ra.act, ra.rew, ra.next, ra.done);
    poold_add_host(ctx(), model, ma.n, ma.obs, ma.act, ma.rew, ma.next, ma.done);
    pool_add(mref, ma.n, ma.obs, ma.act, ma.rew, ma.next, ma.done);
    dx_sync(ctx());
    free_rows(&ra);
    free_rows(&ma);
  }
  uint64_t ctr_end = 0;
  dx_download(ctx(), &ctr_end, ctr, sizeof ctr_end);
  dx_sync(ctx());
  CHECK(ctr_end == ctr0 + REPLAYS, "counter %llu after %d replays", (unsigned long long)ctr_end, REPLAYS);
  CHECK(rref->size == cap_real && rref->next != 0, "the real pool did not wrap (size %ld next %ld)",
        rref->size, rref->next);
  dx_graph_free(ctx(), g);
  free(gobs), free(gact), free(grew), free(gnext), free(gdone);
  free(wobs), free(wact), free(wrew), free(wnext), free(wdone);
  dx_free(ctx(), obs), dx_free(ctx(), act), dx_free(ctx(), rew), dx_free(ctx(), next), dx_free(ctx(), done);
  dx_free(ctx(), ctr);
  free_rows(&r0);
  free_rows(&m0);
  poold_free(ctx(), real);
  poold_free(ctx(), model);
  pool_free(rref);
  pool_free(mref);
}

GPU_TWIN(test_add_download)
GPU_TWIN(test_resize_upload)
GPU_TWIN(test_append_dev)
GPU_TWIN(test_sample_gather_graph)

int main(void) {
  RUN_KINDS(test_add_download);
  RUN_KINDS(test_resize_upload);
  RUN_KINDS(test_append_dev);
  RUN_KINDS(test_sample_gather_graph);
  dxt_destroy_all();
  return test_done();
}
