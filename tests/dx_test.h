/* dx_test.h: shared helpers for the tests that run on every device kind (dx.h): the host
 * emulation (DX_HOST) always, the GPU (DX_CUDA) when backend_cuda_probe says one is usable, else
 * each GPU case is a visible skip. Header-only, like test.h (which it includes):
 *
 *   static void test_x(void) { NEED_KIND(); float* d = up(h, n); ... CHECK(e <= tol(1e-5, 1e-4)..); }
 *   GPU_TWIN(test_x)
 *   int main(void) { RUN_KINDS(test_x); dxt_destroy_all(); return test_done(); }
 *
 * (or set g_kind in a loop over DX_HOST, DX_CUDA and RUN each case).
 * Every helper works on the current kind's context, ctx(), made on first use. */
#ifndef MBPO_DX_TEST_H
#define MBPO_DX_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "dx.h"
#include "rng.h"
#include "test.h"

static int g_kind;        /* the kind the current case runs on: DX_HOST or DX_CUDA */
static dx_ctx* g_ctx[2];  /* one context per kind, made on first use */
static char g_why[256];   /* why the GPU is unusable, for the skip message */

/** The context of the current kind (made on first use). */
static inline dx_ctx* ctx(void) {
  if (!g_ctx[g_kind]) g_ctx[g_kind] = dx_create(g_kind);
  return g_ctx[g_kind];
}

/** Destroy the contexts of both kinds (at the end of main). */
static inline void dxt_destroy_all(void) {
  for (int k = 0; k < 2; k++) dx_destroy(g_ctx[k]);
}

/** The tolerance for the current kind: `host` on the host emulation, `gpu` on the GPU. */
static inline double tol(double host, double gpu) { return g_kind == DX_CUDA ? gpu : host; }

/** Start of every case: on DX_CUDA without a usable GPU, SKIP the case with the reason. */
#define NEED_KIND()                                                    \
  do {                                                                 \
    if (g_kind == DX_CUDA && !backend_cuda_probe(g_why, sizeof g_why)) \
      SKIP("no usable GPU: %s", g_why);                                \
  } while (0)

/** Run case fn on the host emulation, then its twin fn##_gpu_ (made by GPU_TWIN) on the GPU, so
 *  that the two show under different names. */
#define RUN_KINDS(fn)  \
  do {                 \
    g_kind = DX_HOST;  \
    RUN(fn);           \
    g_kind = DX_CUDA;  \
    RUN(fn##_gpu_);    \
  } while (0)
#define GPU_TWIN(fn) static void fn##_gpu_(void) { fn(); }

/** Relative error max |a - b| / max(max |b|, 1e-30) over n floats; a NaN in `a` counts as an
 *  infinite error (NaNs in `b` are ignored). On the GPU every measured error is printed with its
 *  case (and with TEST_VERBOSE on the host), so that a first GPU run sets the bounds from data. */
static inline double rel_err(const float* a, const float* b, size_t n) {
  double m = 0, d = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabs(b[i]) > m) m = fabs(b[i]);
    double e = a[i] != a[i] ? INFINITY : fabs((double)a[i] - b[i]);
    if (e > d) d = e;
  }
  const double r = d / (m > 1e-30 ? m : 1e-30);
  if (g_kind == DX_CUDA || getenv("TEST_VERBOSE"))
    printf("    measured (%s) %s: rel err %.3g over %zu values\n", g_kind == DX_CUDA ? "cuda" : "host", tst_case_name, r, n);
  return r;
}

/** p[i] = scale * rng_normal(k, c0, c1, i) for i < n. */
static inline void fill_normal(float* p, size_t n, rng_key k, uint32_t c0, uint32_t c1, float scale) {
  for (size_t i = 0; i < n; i++) p[i] = scale * rng_normal(k, c0, c1, i);
}

/** n floats copied to new device memory (dx_allocf + dx_upload; no sync). */
static inline float* up(const float* h, size_t n) {
  float* d = dx_allocf(ctx(), n);
  dx_upload(ctx(), d, h, n * sizeof(float));
  return d;
}

/** `bytes` bytes copied to new device memory (dx_alloc + dx_upload), synced. */
static inline void* up_bytes(const void* h, size_t bytes) {
  void* d = dx_alloc(ctx(), bytes);
  dx_upload(ctx(), d, h, bytes);
  dx_sync(ctx());
  return d;
}

/** `bytes` bytes of device memory copied into h, synced. */
static inline void down_into(void* h, const void* d, size_t bytes) {
  dx_download(ctx(), h, d, bytes);
  dx_sync(ctx());
}

/** `bytes` bytes of device memory copied into a new malloc'd buffer (free it), synced. */
static inline void* down_bytes(const void* d, size_t bytes) {
  void* h = malloc(bytes + 1);
  down_into(h, d, bytes);
  return h;
}

/** n device floats copied into a new malloc'd buffer (free it), synced. */
static inline float* down(const float* d, size_t n) { return down_bytes(d, n * sizeof(float)); }

#endif
