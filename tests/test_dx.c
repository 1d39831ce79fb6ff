/* test_dx.c: the device execution layer (dx.h) and the device MLP (nn_dev.h), on every available
 * kind: the host emulation always, the GPU when one is usable (else each GPU case is a visible
 * skip). Every op is held against the CPU reference (nn.h, rng.h, plain loops):
 *   GEMM (all four transpose cases, shared and strided batches)   1e-5 of max |C| (host), 1e-4 (GPU)
 *   two-level GEMM (dx_gemm2: inner 1, outer 1, collapsing strides, a shared input with
 *     inner <= outer and > outer, one operand alone not collapsing; all four transpose cases,
 *     beta != 0; padded ld) vs a naive loop                        as GEMM
 *   MLP over P = 3 runs of an E = 2 ensemble (nnd_cache_alloc_runs) vs the same net with P = 1 on
 *     each run's slice: outputs, parameter and input gradients   bit for bit (host), 1e-4 (GPU);
 *     and its forward through a forward-only cache (nnd_cache_alloc_fwd)   bit for bit
 *   MLP forward / backward vs nn_forward / nn_backward (ReLU, swish, shared and per-member input)
 *                                                                  1e-5 host, 1e-4 GPU
 *   Adam (3 steps, and one step captured and replayed 3 times), Polyak   1e-6 host, 1e-5 GPU
 *   Philox words on the device (cuRAND) vs the host                exact; normals 1e-5 absolute
 *   stable sort and compaction                                     exact
 *   deferred host execution (MBPO_DX_DEFER=1; host only): ops wait for dx_sync, a pinned download
 *     reads NaN before it, a pageable upload copies its source when enqueued, a pinned one when it
 *     runs, graph launches wait too, and a pageable copy inside a capture is fatal as on the GPU */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "dx.h"
#include "nn_dev.h"
#include "nn_k.h"
#include "nn.h"
#include "rng.h"
#include "dx_test.h"
#include "test.h"

static const rng_key K = {99, RNG_TEST};

/* ---- GEMM ---- */

static void ref_gemm(int ta, int tb, int M, int N, int K_, float alpha, const float* A, int lda,
                     const float* B, int ldb, float beta, float* C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K_; k++) {
        float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += (double)a * b;
      }
      C[(size_t)i * ldc + j] = (float)(alpha * s + beta * C[(size_t)i * ldc + j]);
    }
}

static void test_gemm(void) {
  NEED_KIND();
  const int M = 37, N = 29, K_ = 53, batch = 3;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int shareA = 0; shareA < 2; shareA++) {
        int lda = ta ? M : K_, ldb = tb ? K_ : N;
        size_t nA = (size_t)M * K_, nB = (size_t)K_ * N, nC = (size_t)M * N;
        float *A = malloc(nA * batch * 4), *B = malloc(nB * batch * 4), *C = malloc(nC * batch * 4);
        fill_normal(A, nA * batch, K, 1, 3, 1);
        fill_normal(B, nB * batch, K, 2, 3, 1);
        fill_normal(C, nC * batch, K, 3, 3, 1);
        float *dA = up(A, nA * batch), *dB = up(B, nB * batch), *dC = up(C, nC * batch);
        dx_gemm(ctx(), ta, tb, M, N, K_, 0.5f, dA, lda, shareA ? 0 : (long)nA, dB, ldb, (long)nB, 0.25f,
                dC, N, (long)nC, batch);
        float* got = down(dC, nC * batch);
        for (int b = 0; b < batch; b++)
          ref_gemm(ta, tb, M, N, K_, 0.5f, A + (shareA ? 0 : b * nA), lda, B + b * nB, ldb, 0.25f,
                   C + b * nC, N);
        double e = rel_err(got, C, nC * batch);
        CHECK(e < tol(1e-5, 1e-4), "ta %d tb %d shareA %d: rel err %.3g", ta, tb, shareA, e);
        dx_free(ctx(), dA);
        dx_free(ctx(), dB);
        dx_free(ctx(), dC);
        free(A);
        free(B);
        free(C);
        free(got);
      }
}

/* ---- MLP ---- */

/* lanes: four layers, the backward's weight GEMMs on lane 2 (nnd_cache.dw_lane), forward and
 * backward captured and launched once; the graph's critical path must be shorter than its ops. */
static void mlp_case_lanes(int E, int act, int shared, int B, int lanes) {
  int d3[4] = {9, 33, 17, 5}, d4[5] = {9, 33, 17, 21, 5};
  const int* dims = lanes ? d4 : d3;
  const int nl = lanes ? 4 : 3;
  nn_mlp net = nn_mlp_make(E, nl, dims, act);
  float* P = nn_alloc(net.nparams);
  fill_normal(P, net.nparams, K, 10, 3, 0.3f);
  size_t nx = (size_t)(shared ? 1 : E) * B * dims[0], ny = (size_t)E * B * dims[nl];
  float *x = nn_alloc(nx), *dy = nn_alloc(ny), *y = nn_alloc(ny);
  fill_normal(x, nx, K, 11, 3, 1);
  fill_normal(dy, ny, K, 12, 3, 1);
  float *g = nn_alloc(net.nparams), *dxr = nn_alloc(nx);
  fill_normal(g, net.nparams, K, 13, 3, 0.1f); /* gradients accumulate into what is there */
  float* g0 = nn_alloc(net.nparams);
  memcpy(g0, g, net.nparams * 4);
  nn_cache* hc = nn_cache_alloc(&net, B);
  nn_forward(&net, P, B, x, shared, hc, y);
  nn_backward(&net, P, hc, dy, g, dxr);

  dx_ctx* c = ctx();
  float *dP = up(P, net.nparams), *dX = up(x, nx), *dDY = up(dy, ny), *dG = up(g0, net.nparams);
  float *dY = dx_allocf(c, ny), *dDX = dx_allocf(c, nx);
  nnd_cache* dc = nnd_cache_alloc(c, &net, B + 3);
  dx_graph* gr = NULL;
  if (lanes) {
    dc->dw_lane = 2;
    dx_capture_begin(c);
  }
  nnd_forward(c, &net, dP, B, dX, shared, dc, dY);
  nnd_backward(c, &net, dP, dc, dDY, dG, dDX);
  if (lanes) {
    gr = dx_capture_end(c);
    CHECK(dx_graph_critical_path(gr) < dx_graph_ops(gr), "E %d shared %d: critical path %ld of %ld ops", E, shared,
          dx_graph_critical_path(gr), dx_graph_ops(gr));
    dx_reorder(c, 1); /* host: the input-gradient chain first, as far as the waits let it */
    dx_graph_launch(c, gr);
    dx_reorder(c, 0);
    dx_graph_free(c, gr);
  }
  float *gy = down(dY, ny), *gg = down(dG, net.nparams), *gdx = down(dDX, nx);
  double ey = rel_err(gy, y, ny), eg = rel_err(gg, g, net.nparams), ex = rel_err(gdx, dxr, nx);
  CHECK(ey < tol(1e-5, 1e-4), "E %d act %d shared %d: forward rel err %.3g", E, act, shared, ey);
  CHECK(eg < tol(1e-5, 1e-4), "E %d act %d shared %d: param grad rel err %.3g", E, act, shared, eg);
  CHECK(ex < tol(1e-5, 1e-4), "E %d act %d shared %d: input grad rel err %.3g", E, act, shared, ex);
  nnd_cache_free(c, dc);
  dx_free(c, dP);
  dx_free(c, dX);
  dx_free(c, dDY);
  dx_free(c, dG);
  dx_free(c, dY);
  dx_free(c, dDX);
  nn_cache_free(hc);
  free(P);
  free(x);
  free(dy);
  free(y);
  free(g);
  free(g0);
  free(dxr);
  free(gy);
  free(gg);
  free(gdx);
}

static void mlp_case(int E, int act, int shared, int B) { mlp_case_lanes(E, act, shared, B, 0); }

static void test_mlp(void) {
  NEED_KIND();
  for (int E = 1; E <= 3; E += 2)
    for (int act = 0; act < 2; act++)
      for (int shared = 0; shared < 2; shared++) mlp_case(E, act, shared, 41);
}

/* ---- two-level GEMM (dx_gemm2) ---- */

/* One dx_gemm2 case on random data: A, B, C laid out with the given strides (sizes cover the
 * furthest matrix), C starting random (beta != 0 reads it), compared with ref_gemm at every
 * (o, i). The (o, i) matrices of C must not overlap; padding between them must stay untouched, so
 * the whole C buffer is compared. Row strides are padded (ld > the row length). */
static void gemm2_case(const char* what, int ta, int tb, int outer, int inner, long soA, long siA, long soB,
                       long siB, long soC, long siC) {
  const int M = 13, N = 7, K_ = 19;
  const int lda = (ta ? M : K_) + 2, ldb = (tb ? K_ : N) + 1, ldc = N + 3;
  const size_t nA = (size_t)(ta ? K_ : M) * lda, nB = (size_t)(tb ? N : K_) * ldb, nC = (size_t)M * ldc;
  const size_t sA = (size_t)((outer - 1) * soA + (inner - 1) * siA) + nA;
  const size_t sB = (size_t)((outer - 1) * soB + (inner - 1) * siB) + nB;
  const size_t sC = (size_t)((outer - 1) * soC + (inner - 1) * siC) + nC;
  float *A = malloc(sA * 4), *B = malloc(sB * 4), *C = malloc(sC * 4);
  fill_normal(A, sA, K, 70, (uint32_t)(ta * 2 + tb), 1);
  fill_normal(B, sB, K, 71, (uint32_t)(ta * 2 + tb), 1);
  fill_normal(C, sC, K, 72, (uint32_t)(ta * 2 + tb), 1);
  float *dA = up(A, sA), *dB = up(B, sB), *dC = up(C, sC);
  dx_gemm2(ctx(), ta, tb, M, N, K_, 0.5f, dA, lda, soA, siA, dB, ldb, soB, siB, 0.25f, dC, ldc, soC, siC,
           outer, inner);
  float* got = down(dC, sC);
  for (int o = 0; o < outer; o++)
    for (int i = 0; i < inner; i++)
      ref_gemm(ta, tb, M, N, K_, 0.5f, A + o * soA + i * siA, lda, B + o * soB + i * siB, ldb, 0.25f,
               C + o * soC + i * siC, ldc);
  double e = rel_err(got, C, sC);
  CHECK(e < tol(1e-5, 1e-4), "%s (outer %d inner %d) ta %d tb %d: rel err %.3g", what, outer, inner, ta, tb, e);
  dx_free(ctx(), dA);
  dx_free(ctx(), dB);
  dx_free(ctx(), dC);
  free(A);
  free(B);
  free(C);
  free(got);
}

static void test_gemm2(void) {
  NEED_KIND();
  const int M = 13, N = 7, K_ = 19;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      /* matrix sizes with the padded row strides of gemm2_case */
      const long nA = (long)(ta ? K_ : M) * ((ta ? M : K_) + 2), nB = (long)(tb ? N : K_) * ((tb ? K_ : N) + 1),
                 nC = (long)M * (N + 3);
      /* inner == 1: the member strides (small, so that using them by mistake reads other data
       * inside the buffers) must be ignored */
      gemm2_case("inner 1", ta, tb, 4, 1, nA + 5, 3, nB + 2, 5, nC + 1, 7);
      gemm2_case("inner 1, shared A", ta, tb, 3, 1, 0, 3, nB, 5, nC, 7);
      /* outer == 1: the run strides must be ignored */
      gemm2_case("outer 1", ta, tb, 1, 4, 3, nA + 1, 5, nB + 4, 7, nC + 2);
      gemm2_case("outer 1, shared A", ta, tb, 1, 3, 3, 0, 5, nB, 7, nC);
      /* collapsing: so == inner * si for all three */
      gemm2_case("collapsing", ta, tb, 3, 2, 2 * (nA + 1), nA + 1, 2 * nB, nB, 2 * (nC + 2), nC + 2);
      /* a shared input over the members (siA = 0), weights at a padded run stride (nparams), C
       * [outer][inner]: inner <= outer and inner > outer */
      gemm2_case("shared input, inner <= outer", ta, tb, 3, 2, nA, 0, 2 * nB + 11, nB, 2 * nC, nC);
      gemm2_case("shared input, inner == outer", ta, tb, 2, 2, nA, 0, 2 * nB + 11, nB, 2 * nC, nC);
      gemm2_case("shared input, inner > outer", ta, tb, 2, 3, nA, 0, 3 * nB + 11, nB, 3 * nC, nC);
      /* nothing collapses: C stored [inner][outer], B shared over the runs */
      gemm2_case("C transposed, inner <= outer", ta, tb, 3, 2, 2 * nA, nA, 0, nB, nC, 3 * nC);
      gemm2_case("C transposed, inner > outer", ta, tb, 2, 3, 3 * nA + 1, nA, 0, nB, nC, 2 * nC);
      /* one operand alone not collapsing (C [inner][outer]; B [inner][outer]) */
      gemm2_case("C alone not collapsing", ta, tb, 3, 2, 2 * nA, nA, 2 * nB, nB, nC, 3 * nC);
      gemm2_case("B alone not collapsing", ta, tb, 2, 3, 3 * nA, nA, nB, 2 * nB, 3 * nC, nC);
    }
}

/* ---- MLP over a population of runs ---- */

/* Forward and backward of an E = 2 ensemble over P = 3 runs (each run its own parameters, input,
 * output gradient and initial gradient buffer) vs the same net with P = 1 on each run's slice. */
static void mlp_runs_case(int act, int shared, int B) {
  enum { E = 2, R = 3 };
  dx_ctx* c = ctx();
  int dims[4] = {9, 33, 17, 5};
  nn_mlp net = nn_mlp_make(E, 3, dims, act);
  const size_t np = net.nparams;
  const size_t nx = (size_t)(shared ? 1 : E) * B * dims[0], ny = (size_t)E * B * dims[3];
  float *P = nn_alloc(R * np), *x = nn_alloc(R * nx), *dy = nn_alloc(R * ny), *g = nn_alloc(R * np);
  for (int q = 0; q < R; q++) {
    fill_normal(P + q * np, np, K, 80, (uint32_t)q, 0.3f);
    fill_normal(x + q * nx, nx, K, 81, (uint32_t)q, 1);
    fill_normal(dy + q * ny, ny, K, 82, (uint32_t)q, 1);
    fill_normal(g + q * np, np, K, 83, (uint32_t)q, 0.1f); /* gradients accumulate */
  }
  /* the population */
  float *dP = up(P, R * np), *dX = up(x, R * nx), *dDY = up(dy, R * ny), *dG = up(g, R * np);
  float *dY = dx_allocf(c, R * ny), *dDX = dx_allocf(c, R * nx);
  nnd_cache* pc = nnd_cache_alloc_runs(c, &net, R, B + 3);
  nnd_forward(c, &net, dP, B, dX, shared, pc, dY);
  nnd_backward(c, &net, dP, pc, dDY, dG, dDX);
  float *py = down(dY, R * ny), *pg = down(dG, R * np), *pdx = down(dDX, R * nx);
  /* a forward-only cache gives the same outputs, bit for bit */
  nnd_cache* fc = nnd_cache_alloc_fwd(c, &net, R, B + 3);
  float* dYf = dx_allocf(c, R * ny);
  nnd_forward(c, &net, dP, B, dX, shared, fc, dYf);
  float* pyf = down(dYf, R * ny);
  CHECK(!memcmp(pyf, py, R * ny * 4), "forward-only cache: outputs differ from the full cache's");
  free(pyf);
  dx_free(c, dYf);
  nnd_cache_free(c, fc);
  /* each run alone */
  nnd_cache* sc = nnd_cache_alloc(c, &net, B);
  float *sP = dx_allocf(c, np), *sX = dx_allocf(c, nx), *sDY = dx_allocf(c, ny), *sG = dx_allocf(c, np);
  float *sY = dx_allocf(c, ny), *sDX = dx_allocf(c, nx);
  float *ry = nn_alloc(ny), *rg = nn_alloc(np), *rdx = nn_alloc(nx);
  for (int q = 0; q < R; q++) {
    dx_upload(c, sP, P + q * np, np * 4);
    dx_upload(c, sX, x + q * nx, nx * 4);
    dx_upload(c, sDY, dy + q * ny, ny * 4);
    dx_upload(c, sG, g + q * np, np * 4);
    nnd_forward(c, &net, sP, B, sX, shared, sc, sY);
    nnd_backward(c, &net, sP, sc, sDY, sG, sDX);
    down_into(ry, sY, ny * 4);
    down_into(rg, sG, np * 4);
    down_into(rdx, sDX, nx * 4);
    const float* gs[3] = {py + q * ny, pg + q * np, pdx + q * nx};
    const float* rs[3] = {ry, rg, rdx};
    const size_t ns[3] = {ny, np, nx};
    const char* names[3] = {"output", "param grad", "input grad"};
    for (int k = 0; k < 3; k++) {
      if (g_kind == DX_HOST) {
        CHECK(memcmp(gs[k], rs[k], ns[k] * 4) == 0, "act %d shared %d run %d: %s differs from P = 1 (rel err %.3g)",
              act, shared, q, names[k], rel_err(gs[k], rs[k], ns[k]));
      } else {
        double e = rel_err(gs[k], rs[k], ns[k]);
        CHECK(e <= 1e-4, "act %d shared %d run %d: %s rel err %.3g vs P = 1", act, shared, q, names[k], e);
      }
    }
  }
  nnd_cache_free(c, pc);
  nnd_cache_free(c, sc);
  float* dev[] = {dP, dX, dDY, dG, dY, dDX, sP, sX, sDY, sG, sY, sDX};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) dx_free(c, dev[i]);
  float* host[] = {P, x, dy, g, py, pg, pdx, ry, rg, rdx};
  for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_mlp_runs(void) {
  NEED_KIND();
  for (int act = 0; act < 2; act++)
    for (int shared = 1; shared >= 0; shared--) mlp_runs_case(act, shared, 29);
}

/* ---- Adam, Polyak, capture ---- */

static void test_adam_capture(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  const size_t n = 1000;
  float *p = nn_alloc(n), *g = nn_alloc(n);
  fill_normal(p, n, K, 20, 3, 1);
  fill_normal(g, n, K, 21, 3, 1);
  float *dp = up(p, n), *dg = up(g, n), *dp2 = up(p, n);
  nn_adam* ha = nn_adam_alloc(n, 1e-2f);
  nnd_adam* da = nnd_adam_alloc(c, n, 1e-2f);
  nnd_adam* da2 = nnd_adam_alloc(c, n, 1e-2f);
  for (int i = 0; i < 3; i++) {
    nn_adam_step(ha, p, g);
    nnd_adam_step(c, da, dp, dg);
  }
  /* one step captured, replayed three times: t and lr_t must advance on the device */
  dx_capture_begin(c);
  nnd_adam_step(c, da2, dp2, dg);
  dx_graph* gr = dx_capture_end(c);
  for (int i = 0; i < 3; i++) dx_graph_launch(c, gr);
  float *got = down(dp, n), *got2 = down(dp2, n);
  CHECK(rel_err(got, p, n) < tol(1e-6, 1e-5), "adam rel err %.3g", rel_err(got, p, n));
  CHECK(rel_err(got2, p, n) < tol(1e-6, 1e-5), "captured adam rel err %.3g", rel_err(got2, p, n));
  nn_adam back = *ha;
  back.m = nn_alloc(n);
  back.v = nn_alloc(n);
  nnd_adam_download(c, da2, &back);
  CHECK(back.t == 3, "device step count %ld after 3 replays", back.t);
  CHECK(rel_err(back.m, ha->m, n) < tol(1e-6, 1e-5), "m rel err %.3g", rel_err(back.m, ha->m, n));
  /* Polyak */
  float* t = nn_alloc(n);
  fill_normal(t, n, K, 22, 3, 1);
  float* dt = up(t, n);
  nn_polyak(t, p, n, 5e-3f);
  nnd_polyak(c, dt, dp, n, 5e-3f);
  float* gt = down(dt, n);
  CHECK(rel_err(gt, t, n) < tol(1e-6, 1e-5), "polyak rel err %.3g", rel_err(gt, t, n));
  dx_graph_free(c, gr);
  nnd_adam_free(c, da);
  nnd_adam_free(c, da2);
  nn_adam_free(ha);
  free(back.m);
  free(back.v);
  dx_free(c, dp);
  dx_free(c, dg);
  dx_free(c, dp2);
  dx_free(c, dt);
  free(p);
  free(g);
  free(t);
  free(got);
  free(got2);
  free(gt);
}

/* A captured counter increment replays with the counter read from memory. */
static void test_ctr_capture(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  uint64_t* d = dx_alloc(c, 8);
  uint64_t h = 41;
  dx_upload(c, d, &h, 8);
  dx_sync(c);
  dx_capture_begin(c);
  nnd_ctr_add(c, d, 2);
  dx_graph* g = dx_capture_end(c);
  for (int i = 0; i < 5; i++) dx_graph_launch(c, g);
  dx_download(c, &h, d, 8);
  dx_sync(c);
  CHECK(h == 51, "counter %llu, expected 51", (unsigned long long)h);
  dx_graph_free(c, g);
  dx_free(c, d);
}

/* ---- small ops ---- */

static void test_small_ops(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  const int E = 3, R = 70, D = 6;
  size_t n = (size_t)E * R * D;
  float* x = nn_alloc(n);
  fill_normal(x, n, K, 30, 3, 1);
  float* dxv = up(x, n);
  float* dout = dx_allocf(c, (size_t)E * D);
  nnd_fill(c, dout, 1.0f, (size_t)E * D);
  nnd_colsum(c, dxv, E, R, D, 0.5f, 1, dout);
  float* got = down(dout, (size_t)E * D);
  float ref[18];
  for (int e = 0; e < E; e++)
    for (int j = 0; j < D; j++) {
      float s = 0;
      for (int r = 0; r < R; r++) s += x[((size_t)e * R + r) * D + j];
      ref[e * D + j] = 1.0f + 0.5f * s;
    }
  CHECK(rel_err(got, ref, (size_t)E * D) < 1e-6, "colsum rel err %.3g", rel_err(got, ref, (size_t)E * D));
  /* concat [R][2] and [R][3] -> [R][5] */
  float* cat = dx_allocf(c, (size_t)R * 5);
  nnd_concat(c, dxv, 2, dxv + 2 * R, 3, R, cat);
  float* gc = down(cat, (size_t)R * 5);
  int ok = 1;
  for (int r = 0; r < R; r++)
    for (int k = 0; k < 5; k++)
      if (gc[r * 5 + k] != (k < 2 ? x[r * 2 + k] : x[2 * R + r * 3 + k - 2])) ok = 0;
  CHECK(ok, "concat differs");
  dx_free(c, dxv);
  dx_free(c, dout);
  dx_free(c, cat);
  free(x);
  free(got);
  free(gc);
}

static void test_rng(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  const long n = 4099;
  const uint64_t first = (1ull << 33) + 5; /* crosses into a high block counter word */
  uint32_t* du = dx_alloc(c, n * 4);
  float* dz = dx_allocf(c, n);
  nnd_rng(c, (rng_key){7, RNG_SAC_NOISE}, 0xdeadbeefu, 3, first, n, du, dz);
  uint32_t* u = malloc(n * 4);
  dx_download(c, u, du, n * 4);
  float* z = down(dz, n);
  long bad = 0;
  double zerr = 0;
  for (long i = 0; i < n; i++) {
    if (u[i] != rng_u32((rng_key){7, RNG_SAC_NOISE}, 0xdeadbeefu, 3, first + i)) bad++;
    double e = fabs(z[i] - rng_normal((rng_key){7, RNG_SAC_NOISE}, 0xdeadbeefu, 3, first + i));
    if (e > zerr) zerr = e;
  }
  CHECK(bad == 0, "%ld of %ld Philox words differ", bad, n);
  CHECK(zerr < 1e-5, "normal draws differ by %.3g", zerr);
  dx_free(c, du);
  dx_free(c, dz);
  free(u);
  free(z);
}

static int cmp_key_pos(const void* a, const void* b) {
  const uint64_t* x = a;
  const uint64_t* y = b;
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  return x[1] < y[1] ? -1 : x[1] > y[1];
}

static void test_sort_select(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  const long n = 5003;
  uint64_t* k = malloc(n * 8);
  int* v = malloc(n * 4);
  uint64_t* kp = malloc(2 * n * 8);
  for (long i = 0; i < n; i++) {
    uint32_t w = rng_u32(K, 40, 0, (uint64_t)i);
    k[i] = i % 7 == 0 ? 12345 : ((uint64_t)w << 32) | (w & 0xff); /* many equal keys */
    v[i] = (int)(i * 3 + 1);
    kp[2 * i] = k[i];
    kp[2 * i + 1] = (uint64_t)i;
  }
  qsort(kp, (size_t)n, 16, cmp_key_pos);
  dx_reserve_sort(c, n);
  dx_reserve_select(c, n);
  uint64_t *dk = dx_alloc(c, n * 8), *dko = dx_alloc(c, n * 8);
  int *dv = dx_alloc(c, n * 4), *dvo = dx_alloc(c, n * 4);
  dx_upload(c, dk, k, n * 8);
  dx_upload(c, dv, v, n * 4);
  dx_sort_pairs(c, dk, dko, dv, dvo, n);
  uint64_t* ko = malloc(n * 8);
  int* vo = malloc(n * 4);
  dx_download(c, ko, dko, n * 8);
  dx_download(c, vo, dvo, n * 4);
  dx_sync(c);
  long bad = 0;
  for (long i = 0; i < n; i++)
    if (ko[i] != kp[2 * i] || vo[i] != v[kp[2 * i + 1]]) bad++;
  CHECK(bad == 0, "%ld of %ld sorted pairs differ (stability)", bad, n);
  /* compaction */
  uint8_t* f = malloc(n);
  for (long i = 0; i < n; i++) f[i] = (uint8_t)(rng_u32(K, 41, 0, (uint64_t)i) & 1);
  uint8_t* df = dx_alloc(c, n);
  int *dout = dx_alloc(c, n * 4), *dcount = dx_alloc(c, 4);
  dx_upload(c, df, f, n);
  dx_select_flagged(c, dv, df, dout, dcount, n);
  int count = -1;
  dx_download(c, vo, dout, n * 4);
  dx_download(c, &count, dcount, 4);
  dx_sync(c);
  int m = 0;
  bad = 0;
  for (long i = 0; i < n; i++)
    if (f[i]) {
      if (m < count && vo[m] != v[i]) bad++;
      m++;
    }
  CHECK(count == m && bad == 0, "compaction: count %d (expected %d), %ld differ", count, m, bad);
  dx_free(c, dk);
  dx_free(c, dko);
  dx_free(c, dv);
  dx_free(c, dvo);
  dx_free(c, df);
  dx_free(c, dout);
  dx_free(c, dcount);
  free(k);
  free(v);
  free(kp);
  free(ko);
  free(vo);
  free(f);
}


/* ---- deferred host execution (the GPU's stream semantics on the host, dx.c) ---- */

static void test_deferred(void) {
  const char* was = getenv("MBPO_DX_DEFER");
  setenv("MBPO_DX_DEFER", "1", 1);
  dx_ctx* c = dx_create(DX_HOST);
  if (was) setenv("MBPO_DX_DEFER", was, 1);
  else unsetenv("MBPO_DX_DEFER");
  float* d = dx_allocf(c, 4);
  float* pin = dx_alloc_pinned(c, 4 * sizeof(float));
  float h[4] = {1, 2, 3, 4}, got[4];
  dx_upload(c, d, h, sizeof h); /* pageable: copied now */
  h[0] = 99;
  dx_download(c, pin, d, sizeof h);
  CHECK(pin[0] != pin[0] && pin[3] != pin[3], "a pinned download before dx_sync reads %g, not NaN", pin[0]);
  dx_sync(c);
  CHECK(pin[0] == 1 && pin[3] == 4, "after dx_sync: %g %g (expected 1 4)", pin[0], pin[3]);
  /* a pinned source is read when the copy runs: a change before the sync reaches the device */
  pin[0] = 5;
  dx_upload(c, d, pin, sizeof h);
  pin[0] = 7;
  dx_download(c, got, d, sizeof got); /* pageable: waits */
  CHECK(got[0] == 7, "a pinned upload ran with %g (expected the value at the sync, 7)", got[0]);
  /* an op and a graph launch wait in the queue */
  dx_capture_begin(c);
  dx_zero(c, d, 2 * sizeof(float));
  dx_graph* g = dx_capture_end(c);
  dx_upload(c, d, h, sizeof h);
  dx_graph_launch(c, g);
  dx_download(c, got, d, sizeof got);
  CHECK(got[0] == 0 && got[1] == 0 && got[2] == 3, "upload then launch: %g %g %g (expected 0 0 3)", got[0], got[1],
        got[2]);
  dx_graph_free(c, g);
  /* a pageable copy inside a capture is fatal, on the host as on the GPU */
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stderr)) _exit(3);
    dx_capture_begin(c);
    dx_upload(c, d, h, sizeof h);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a pageable upload inside a capture: status %d (expected exit 1)", st);
  dx_free_pinned(c, pin);
  dx_free(c, d);
  dx_destroy(c);
}


/* ---- fault reports (MBPO_DX_SYNC=1, MBPO_DX_FAIL; dx.h) ---- */

/* The child of test_fault_report (this program run again with --fault-child KIND): a graph of
 * two nnk_fill ops and a GEMM with an nnk_fill epilogue (dx_gemm2_ep) captured and launched in the
 * phase "model fit, epoch 12", then a sync. With MBPO_DX_FAIL=nnk_fill:2 the second op leaves a
 * fault, with MBPO_DX_FAIL=gemm_ep (or nnk_fill:3) the fused one; the report must name it. */
static int fault_child(const char* kind) {
  dx_ctx* c = dx_create(strcmp(kind, "cuda") == 0 ? DX_CUDA : DX_HOST);
  float* d = dx_allocf(c, 1000);
  dx_phase(c, "model fit, epoch %d", 12);
  dx_capture_begin(c);
  nnk_fill_args a = {d, 1.0f};
  DX_RUN(c, nnk_fill, a, 1000);
  nnk_fill_args b = {d, 2.0f};
  DX_RUN(c, nnk_fill, b, 777);
  nnk_fill_args e = {d + 200, 3.0f}; /* a GEMM with its epilogue op: one op of the graph */
  dx_gemm2_ep(c, 0, 0, 8, 5, 3, d, 3, 0, 0, d + 100, 5, 0, 0, d + 200, 5, 0, 0, 1, 1, NULL, &dxop_nnk_fill, &e, sizeof e, 40);
  dx_graph* g = dx_capture_end(c);
  dx_graph_launch(c, g);
  dx_sync(c);
  printf("no fault reported\n");
  dx_graph_free(c, g);
  dx_free(c, d);
  dx_destroy(c);
  return 0;
}

static char g_self[4096];

/* Run the child with env; its output (stdout and stderr) in out; returns its exit status. */
static int run_child(const char* env, const char* kind, char* out, size_t n) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "env %s '%s' --fault-child %s 2>&1", env, g_self, kind);
  FILE* f = popen(cmd, "r");
  if (!f) return -1;
  size_t m = fread(out, 1, n - 1, f);
  out[m] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fault_report(const char* kind) {
  char out[4096];
  /* the debug mode: the op, its sizes, its place in the graph and the phase */
  int rc = run_child("MBPO_DX_SYNC=1 MBPO_DX_FAIL=nnk_fill:2", kind, out, sizeof out);
  printf("  MBPO_DX_SYNC=1 (%s): %s", kind, out);
  CHECK(rc == 1, "exit %d (expected 1): %s", rc, out);
  CHECK(strstr(out, "model fit, epoch 12: op nnk_fill (777 indices), op 2 of 3 of the graph captured in \"model fit, "
                    "epoch 12\": injected fault") != NULL,
        "the report does not name the op, its sizes, its place and the phase: %s", out);
  /* a fused GEMM names itself, its shape and its epilogue op, by either name */
  static const char* const ep_env[2] = {"MBPO_DX_SYNC=1 MBPO_DX_FAIL=gemm_ep", "MBPO_DX_SYNC=1 MBPO_DX_FAIL=nnk_fill:3"};
  for (int k = 0; k < 2; k++) {
    rc = run_child(ep_env[k], kind, out, sizeof out);
    printf("  %s (%s): %s", ep_env[k], kind, out);
    CHECK(rc == 1, "exit %d (expected 1): %s", rc, out);
    CHECK(strstr(out, "model fit, epoch 12: gemm_ep 8x5x3, 1 x 1 matrices, then op nnk_fill, op 3 of 3 of the graph "
                      "captured in \"model fit, epoch 12\": injected fault") != NULL,
          "the report does not name the fused GEMM, its op, its place and the phase: %s", out);
  }
  /* without it the fault shows at dx_sync: the phase and the graph, and how to find the op */
  rc = run_child("MBPO_DX_FAIL=nnk_fill:2", kind, out, sizeof out);
  printf("  default (%s): %s", kind, out);
  CHECK(rc == 1, "exit %d (expected 1): %s", rc, out);
  CHECK(strstr(out, "model fit, epoch 12: dx_sync after a launch of the graph captured in \"model fit, epoch 12\": "
                    "injected fault") != NULL && strstr(out, "MBPO_DX_SYNC=1 names the op") != NULL,
        "the report at dx_sync does not name the phase and the graph: %s", out);
  /* no fault: the same program runs through in both modes */
  rc = run_child("MBPO_DX_SYNC=1", kind, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "no fault reported"), "without a fault: exit %d: %s", rc, out);
}

static void test_fault_report(void) {
  NEED_KIND();
  fault_report(g_kind == DX_CUDA ? "cuda" : "host");
}

/* What a child of test_capture_rules made, kept reachable (volatile: the stores stay) while it
 * exits by mbpo_fatal, so that LeakSanitizer does not report it. */
static dx_ctx* volatile g_child_ctx;
static dx_ctx* volatile g_child_ctx2;
static dx_graph* volatile g_child_graph;

/* Set-up work inside a capture is fatal on both kinds (it would synchronize, or break the graph),
 * and so are CUB item counts past INT_MAX and the launch of a graph whose sort workspace a later
 * dx_reserve_sort has moved (it would sort in freed memory). */
static void test_capture_rules(void) {
  NEED_KIND();
  static const char* const what[] = {"dx_free", "dx_alloc_pinned", "dx_free_pinned", "dx_reserve_sort > INT_MAX",
                                     "dx_graph_free", "a sort graph after its workspace moved"};
  for (int k = 0; k < 6; k++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      if (!freopen("/dev/null", "w", stderr)) _exit(3);
      dx_ctx* c = g_child_ctx = ctx();
      float* d = dx_allocf(c, 4);
      void* pin = dx_alloc_pinned(c, 16);
      dx_capture_begin(c);
      dx_graph* g = NULL;
      if (k == 4) { /* a graph freed while another is being captured */
        g_child_graph = dx_capture_end(c);
        dx_capture_begin(c);
        dx_zero(c, d, 4);
        g = dx_capture_end(c);
        dx_capture_begin(c);
      }
      switch (k) {
        case 0: dx_free(c, d); break;
        case 1: dx_alloc_pinned(c, 16); break;
        case 2: dx_free_pinned(c, pin); break;
        case 3: g_child_graph = dx_capture_end(c); dx_reserve_sort(c, 3000000000L); break;
        case 4: dx_graph_free(c, g); break;
        default: {
          dx_graph_free(c, dx_capture_end(c));
          dx_free(c, d);
          c = g_child_ctx2 = dx_create(g_kind); /* a fresh context: nothing reserved yet */
          uint64_t* keys = dx_alloc(c, 2 * 64 * sizeof(uint64_t));
          int* vals = dx_alloc(c, 2 * 64 * sizeof(int));
          dx_reserve_sort(c, 16);
          dx_capture_begin(c);
          dx_sort_pairs(c, keys, keys + 64, vals, vals + 64, 16);
          g_child_graph = dx_capture_end(c);
          dx_reserve_sort(c, 64);
          dx_graph_launch(c, g_child_graph);
          break;
        }
      }
      _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s inside a capture: status %d (expected exit 1)", what[k], st);
  }
}

/* Lanes (dx.h): a fork and a join give the expected op count and critical path and the right
 * values; the capture rules of lanes are fatal on both kinds; the MLP backward with its weight
 * GEMMs on a side lane gives the reference's gradients (four layers: the reused buffer's wait). */
static void test_lanes(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  float* d = dx_allocf(c, 64);
  const long caps = dx_captures_total();
  dx_capture_begin(c);
  nnk_fill_args f0 = {d, 1.0f}, f1 = {d + 16, 2.0f}, f2 = {d + 16, 3.0f}, f3 = {d + 32, 4.0f}, f4 = {d + 48, 5.0f};
  DX_RUN(c, nnk_fill, f0, 16); /* depth 1 */
  dx_wait(c, 1, 0);
  dx_lane(c, 1);
  DX_RUN(c, nnk_fill, f1, 16); /* 2 */
  DX_RUN(c, nnk_fill, f2, 16); /* 3 */
  dx_lane(c, 0);
  DX_RUN(c, nnk_fill, f3, 16); /* 2 */
  dx_wait(c, 0, 1);
  DX_RUN(c, nnk_fill, f4, 16); /* 4 */
  dx_graph* g = dx_capture_end(c);
  CHECK(dx_graph_ops(g) == 5 && dx_graph_critical_path(g) == 4, "fork and join: %ld ops, critical path %ld (5, 4)",
        dx_graph_ops(g), dx_graph_critical_path(g));
  CHECK(dx_captures_total() == caps + 1, "captures counted %ld, expected %ld", dx_captures_total(), caps + 1);
  dx_graph_launch(c, g);
  float h[64];
  down_into(h, d, sizeof h);
  int ok = 1;
  for (int i = 0; i < 64; i++) ok &= h[i] == (i < 16 ? 1.0f : i < 32 ? 3.0f : i < 48 ? 4.0f : 5.0f);
  CHECK(ok, "fork and join: wrong values");
  dx_graph_free(c, g);
  dx_free(c, d);
  static const char* const what[] = {"a capture ending with lane 1 not joined", "an op on lane 1 before it waits on the capture",
                                     "dx_sync with lane 1 not joined", "dx_graph_launch on lane 1"};
  for (int k = 0; k < 4; k++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      if (!freopen("/dev/null", "w", stderr)) _exit(3);
      dx_ctx* cc = g_child_ctx = ctx();
      float* x = dx_allocf(cc, 4);
      nnk_fill_args a = {x, 1.0f};
      if (k < 2) dx_capture_begin(cc);
      if (k != 1) dx_wait(cc, 1, 0);
      dx_lane(cc, 1);
      DX_RUN(cc, nnk_fill, a, 4);
      if (k == 3) {
        dx_lane(cc, 0);
        dx_wait(cc, 0, 1);
        dx_capture_begin(cc);
        g_child_graph = dx_capture_end(cc);
        dx_lane(cc, 1);
        dx_graph_launch(cc, g_child_graph);
      }
      dx_lane(cc, 0);
      if (k < 2) g_child_graph = dx_capture_end(cc);
      else dx_sync(cc);
      _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: status %d (expected exit 1)", what[k], st);
  }
  for (int E = 1; E <= 2; E++)
    for (int shared = 0; shared < 2; shared++) mlp_case_lanes(E, 1, shared, 23, 1);
}

/* Graphs count dx-level ops, the same on both kinds; the CUDA node count is reported only. */
static void test_graph_counts(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  float* d = dx_allocf(c, 64);
  dx_capture_begin(c);
  dx_zero(c, d, 64);
  /* a non-collapsing two-level GEMM: one op (the host runs it as 2 calls, CUDA as 2 nodes) */
  dx_gemm2(c, 0, 0, 2, 2, 2, 1, d, 2, 9, 0, d + 16, 2, 8, 4, 0, d + 32, 2, 9, 4, 2, 2);
  nnk_fill_args a = {d, 1.0f};
  DX_RUN(c, nnk_fill, a, 8);
  dx_graph* g = dx_capture_end(c);
  printf("  graph of 3 dx ops (%s): %ld ops, %ld nodes\n", g_kind == DX_CUDA ? "cuda" : "host", dx_graph_ops(g),
         dx_graph_nodes(g));
  CHECK(dx_graph_ops(g) == 3, "%ld dx ops (expected 3)", dx_graph_ops(g));
  dx_graph_free(c, g);
  dx_free(c, d);
}

GPU_TWIN(test_gemm)
GPU_TWIN(test_gemm2)
GPU_TWIN(test_mlp)
GPU_TWIN(test_mlp_runs)
GPU_TWIN(test_adam_capture)
GPU_TWIN(test_ctr_capture)
GPU_TWIN(test_small_ops)
GPU_TWIN(test_rng)
GPU_TWIN(test_sort_select)
GPU_TWIN(test_fault_report)
GPU_TWIN(test_capture_rules)
GPU_TWIN(test_graph_counts)
GPU_TWIN(test_lanes)

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--fault-child") == 0) return fault_child(argv[2]);
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  g_self[n > 0 ? n : 0] = 0;
  RUN_KINDS(test_gemm);
  RUN_KINDS(test_gemm2);
  RUN_KINDS(test_mlp);
  RUN_KINDS(test_mlp_runs);
  RUN_KINDS(test_adam_capture);
  RUN_KINDS(test_ctr_capture);
  RUN_KINDS(test_small_ops);
  RUN_KINDS(test_rng);
  RUN_KINDS(test_sort_select);
  RUN(test_deferred);
  RUN_KINDS(test_fault_report);
  RUN_KINDS(test_capture_rules);
  RUN_KINDS(test_graph_counts);
  RUN_KINDS(test_lanes);
  dxt_destroy_all();
  return test_done();
}
