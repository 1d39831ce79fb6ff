/* test_nn.c: ensemble MLPs (nn.h) against a double-precision reference.
 *
 * Gradient checks: the loss is L = sum(w * y) with fixed random weights w, so dL/dy = w. The float
 * analytic gradient from nn_backward is compared with central differences of the double-precision
 * reference forward (step 1e-6), per element:
 *     |g - g_fd| <= 1e-4 * (|g_fd| + max|g_fd|)
 * i.e. 1e-4 relative to the element, with an absolute floor of 1e-4 of the largest gradient (the
 * float32 accumulation error of near-cancelling sums). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "nn.h"
#include "rng.h"
#include "swish.h"
#include "test.h"

void openblas_set_num_threads(int); /* OpenBLAS */

static const rng_key K = {1234, RNG_TEST};

static void fill(float* p, size_t n, uint32_t c0, float scale) {
  for (size_t i = 0; i < n; i++) p[i] = scale * rng_normal(K, c0, 7, i);
}

/* ---- double-precision reference ------------------------------------------------------------ */

static double act_d(int act, double z) { return act == NN_RELU ? (z > 0 ? z : 0) : z / (1 + exp(-z)); }

/* y[E][B][out] from params P (double, nn layout) and x ([B][in] or [E][B][in]) */
static void ref_forward(const nn_mlp* net, const double* P, int B, const double* x, int shared,
                        double* y) {
  int maxd = 0;
  for (int l = 0; l <= net->nlayers; l++)
    if (net->dims[l] > maxd) maxd = net->dims[l];
  double* cur = malloc(sizeof(double) * maxd);
  double* nxt = malloc(sizeof(double) * maxd);
  for (int e = 0; e < net->E; e++)
    for (int b = 0; b < B; b++) {
      const double* xr = x + ((shared ? 0 : (size_t)e * B) + b) * net->dims[0];
      memcpy(cur, xr, sizeof(double) * net->dims[0]);
      for (int l = 0; l < net->nlayers; l++) {
        int din = net->dims[l], dout = net->dims[l + 1];
        const double* W = P + net->w_off[l] + (size_t)e * din * dout;
        const double* bb = P + net->b_off[l] + (size_t)e * dout;
        for (int j = 0; j < dout; j++) {
          double s = bb[j];
          for (int i = 0; i < din; i++) s += cur[i] * W[(size_t)i * dout + j];
          nxt[j] = l < net->nlayers - 1 ? act_d(net->act, s) : s;
        }
        memcpy(cur, nxt, sizeof(double) * dout);
      }
      memcpy(y + ((size_t)e * B + b) * net->dims[net->nlayers], cur,
             sizeof(double) * net->dims[net->nlayers]);
    }
  free(cur);
  free(nxt);
}

static double ref_loss(const nn_mlp* net, const double* P, int B, const double* x, int shared,
                       const double* w, double* ybuf) {
  ref_forward(net, P, B, x, shared, ybuf);
  size_t n = (size_t)net->E * B * net->dims[net->nlayers];
  double L = 0;
  for (size_t i = 0; i < n; i++) L += w[i] * ybuf[i];
  return L;
}

/* Compare analytic g[n] with central differences of ref_loss wrt v[n] (a double array the loss
 * reads: the params or the input). Returns the number of bad elements. */
static int fd_compare(const char* what, const float* g, double* v, size_t n, const nn_mlp* net,
                      double* P, int B, double* x, int shared, const double* w, double* ybuf) {
  const double h = 1e-6;
  double* fd = malloc(sizeof(double) * n);
  double gmax = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + h;
    double lp = ref_loss(net, P, B, x, shared, w, ybuf);
    v[i] = keep - h;
    double lm = ref_loss(net, P, B, x, shared, w, ybuf);
    v[i] = keep;
    fd[i] = (lp - lm) / (2 * h);
    if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
  }
  int bad = 0;
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double err = fabs(g[i] - fd[i]), tol = 1e-4 * (fabs(fd[i]) + gmax);
    if (err / (fabs(fd[i]) + gmax) > worst) worst = err / (fabs(fd[i]) + gmax);
    if (err > tol) {
      if (bad < 5) fprintf(stderr, "  %s[%zu]: analytic %.8g, fd %.8g\n", what, i, g[i], fd[i]);
      bad++;
    }
  }
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "  %s: %zu values, max |g|=%.3g, worst scaled error %.2e\n", what, n, gmax, worst);
  CHECK(gmax > 0, "%s: all gradients zero", what);
  free(fd);
  return bad;
}

/* Forward + backward of a random net against the reference: outputs, parameter and input grads. */
static void grad_check(int E, int nl, const int* dims, int act, int shared, int B) {
  nn_mlp net = nn_mlp_make(E, nl, dims, act);
  size_t nx = (size_t)(shared ? 1 : E) * B * dims[0], ny = (size_t)E * B * dims[nl];
  float* P = nn_alloc(net.nparams);
  float* G = nn_alloc(net.nparams);
  float *x = nn_alloc(nx), *y = nn_alloc(ny), *w = nn_alloc(ny), *dx = nn_alloc(nx);
  fill(P, net.nparams, 1, 0.5f);
  fill(x, nx, 2, 1.0f);
  fill(w, ny, 3, 1.0f);
  double *Pd = malloc(sizeof(double) * net.nparams), *xd = malloc(sizeof(double) * nx);
  double *wd = malloc(sizeof(double) * ny), *yd = malloc(sizeof(double) * ny);
  for (size_t i = 0; i < net.nparams; i++) Pd[i] = P[i];
  for (size_t i = 0; i < nx; i++) xd[i] = x[i];
  for (size_t i = 0; i < ny; i++) wd[i] = w[i];

  nn_cache* c = nn_cache_alloc(&net, B + 3);
  nn_forward(&net, P, B, x, shared, c, y);
  ref_forward(&net, Pd, B, xd, shared, yd);
  double ymax = 0, yerr = 0;
  for (size_t i = 0; i < ny; i++) {
    if (fabs(yd[i]) > ymax) ymax = fabs(yd[i]);
    if (fabs(y[i] - yd[i]) > yerr) yerr = fabs(y[i] - yd[i]);
  }
  CHECK(yerr <= 1e-5 * (ymax > 1 ? ymax : 1), "forward error %g (max |y| %g)", yerr, ymax);

  nn_backward(&net, P, c, w, G, dx);
  CHECK(fd_compare("params", G, Pd, net.nparams, &net, Pd, B, xd, shared, wd, yd) == 0,
        "parameter gradients (E %d, %d layers, act %d, shared %d)", E, nl, act, shared);
  CHECK(fd_compare("input", dx, xd, nx, &net, Pd, B, xd, shared, wd, yd) == 0,
        "input gradients (E %d, %d layers, act %d, shared %d)", E, nl, act, shared);

  /* gradients accumulate: a second backward doubles them; grads NULL and dx NULL are allowed */
  float* G1 = nn_alloc(net.nparams);
  memcpy(G1, G, sizeof(float) * net.nparams);
  nn_backward(&net, P, c, w, G, NULL);
  nn_backward(&net, P, c, w, NULL, dx);
  int ok = 1;
  for (size_t i = 0; i < net.nparams; i++)
    if (fabsf(G[i] - 2 * G1[i]) > 1e-6f * (1 + fabsf(G[i]))) ok = 0;
  CHECK(ok, "parameter gradients accumulate");
  free(G1);
  nn_cache_free(c);
  free(P), free(G), free(x), free(y), free(w), free(dx), free(Pd), free(xd), free(wd), free(yd);
}

static void test_layer_linear(void) {
  int d[] = {5, 4};
  grad_check(3, 1, d, NN_RELU, 1, 6);
  grad_check(3, 1, d, NN_RELU, 0, 6);
}

static void test_layer_relu(void) {
  int d[] = {5, 7, 1};
  grad_check(2, 2, d, NN_RELU, 1, 9);
  grad_check(2, 2, d, NN_RELU, 0, 9);
}

static void test_layer_swish(void) {
  int d[] = {5, 7, 1};
  grad_check(2, 2, d, NN_SWISH, 1, 9);
  grad_check(2, 2, d, NN_SWISH, 0, 9);
}

static void test_mlp3_shared(void) {
  int d[] = {6, 8, 7, 5};
  grad_check(3, 3, d, NN_RELU, 1, 10);
  grad_check(3, 3, d, NN_SWISH, 1, 10);
}

static void test_mlp3_per_member(void) {
  int d[] = {6, 8, 7, 5};
  grad_check(3, 3, d, NN_RELU, 0, 10);
  grad_check(3, 3, d, NN_SWISH, 0, 10);
}

/* hidden layers of different widths, the first the widest: the fused swish backward keeps each
 * member's layer gradients at a fixed stride, so no member's later layer overwrites another's */
static void test_mlp4_widths(void) {
  int d[] = {6, 9, 5, 7, 4};
  grad_check(3, 4, d, NN_SWISH, 1, 10);
  grad_check(3, 4, d, NN_SWISH, 0, 10);
  grad_check(3, 4, d, NN_RELU, 1, 10);
}

static void test_swish(void) {
  double worst_f = 0, worst_g = 0;
  for (int i = -400; i <= 400; i++) {
    double x = i * 0.05, h = 1e-6;
    double f = x / (1 + exp(-x));
    double fd = ((x + h) / (1 + exp(-(x + h))) - (x - h) / (1 + exp(-(x - h)))) / (2 * h);
    double ef = fabs(nn_swish((float)x) - f) / (1 + fabs(f));
    double eg = fabs(nn_swish_grad((float)x) - fd) / (1 + fabs(fd));
    if (ef > worst_f) worst_f = ef;
    if (eg > worst_g) worst_g = eg;
  }
  CHECK(worst_f < 1e-6, "swish error %g", worst_f);
  CHECK(worst_g < 1e-6, "swish derivative error %g (vs central differences)", worst_g);
  CHECK(nn_swish(-100.0f) == -0.0f || nn_swish(-100.0f) == 0.0f, "swish(-100) = %g", nn_swish(-100.0f));
  CHECK(isfinite(nn_swish_grad(-100.0f)) && isfinite(nn_swish_grad(100.0f)), "swish' finite");
}

/* the vector path's expf equals expf bit for bit: a strided sweep over every float bit pattern
 * (all 2^32 were checked once, with the stride at 1), plus the edges of glibc's main path */
static void test_swish_expf_bits(void) {
  enum { N = 1 << 16 };
  float *x = nn_alloc(N), *e = nn_alloc(N);
  long bad = 0, n = 0;
  uint64_t u = 0;
  while (u < (1ull << 32)) {
    int k = 0;
    for (; k < N && u < (1ull << 32); k++, u += 65521) {
      uint32_t b = (uint32_t)u;
      memcpy(&x[k], &b, 4);
    }
    swish_expf(x, e, k);
    for (int i = 0; i < k; i++) {
      float r = expf(x[i]);
      bad += memcmp(&r, &e[i], 4) != 0 && !(isnan(r) && isnan(e[i]));
    }
    n += k;
  }
  const float edge[] = {88.0f, -88.0f, 88.72283f, 88.72284f, -103.27893f, -103.97208f, -104.0f, 0.0f, -0.0f,
                        1e-30f, -1e-30f, INFINITY, -INFINITY, NAN, 0x1.62e42ep6f, -0x1.9d1d9ep6f, 87.99999f};
  const int ne = sizeof edge / sizeof edge[0];
  swish_expf(edge, e, ne);
  for (int i = 0; i < ne; i++) {
    float r = expf(edge[i]);
    bad += memcmp(&r, &e[i], 4) != 0 && !(isnan(r) && isnan(e[i]));
  }
  CHECK(bad == 0, "%ld of %ld expf values differ (vector path %d)", bad, n + ne, swish_vectorized());
  free(x), free(e);
}

/* bias + swish (and swish') over rows equals nn_swish / nn_swish_grad bit for bit, tails included */
static void test_swish_bias_bits(void) {
  const int rows = 5, n = 203;
  float *o = nn_alloc(rows * n), *g = nn_alloc(rows * n), *o2 = nn_alloc(rows * n), *b = nn_alloc(n);
  fill(o, rows * n, 21, 8.0f);
  fill(b, n, 22, 1.0f);
  o[3] = 95.0f, o[4] = -95.0f, o[5] = INFINITY, o[6] = -INFINITY, o[7] = NAN, o[8] = -88.5f;
  memcpy(o2, o, sizeof(float) * rows * n);
  swish_bias_forward(o, b, rows, n, g);
  swish_bias_forward(o2, b, rows, n, NULL);
  long bad = 0;
  float* in = nn_alloc(rows * n);
  fill(in, rows * n, 21, 8.0f);
  in[3] = 95.0f, in[4] = -95.0f, in[5] = INFINITY, in[6] = -INFINITY, in[7] = NAN, in[8] = -88.5f;
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < n; j++) {
      const int i = r * n + j;
      const float v = in[i] + b[j], f = nn_swish(v), d = nn_swish_grad(v);
      bad += (memcmp(&f, &o[i], 4) != 0 && !(isnan(f) && isnan(o[i]))) ||
             (memcmp(&d, &g[i], 4) != 0 && !(isnan(d) && isnan(g[i]))) ||
             (memcmp(&f, &o2[i], 4) != 0 && !(isnan(f) && isnan(o2[i])));
    }
  CHECK(bad == 0, "%ld of %d units differ from nn_swish / nn_swish_grad", bad, rows * n);
  free(o), free(g), free(o2), free(b), free(in);
}

/* The unfused passes (nn.c before the fused path): bias copied, a beta = 1 GEMM, then swish; the
 * backward with swish' from the pre-activation, bias gradients summed row by row. */
static void unfused_forward(const nn_mlp* net, const float* P, int B, const float* x, int shared,
                            float** z, float** a, float* y) {
  const int L = net->nlayers, E = net->E;
  for (int l = 0; l < L; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    for (int e = 0; e < E; e++) {
      const float* in = l == 0 ? x + (shared ? 0 : (size_t)e * B * din) : a[l] + (size_t)e * B * din;
      float* out = (l == L - 1 ? y : z[l]) + (size_t)e * B * dout;
      for (int r = 0; r < B; r++) memcpy(out + (size_t)r * dout, P + net->b_off[l] + (size_t)e * dout, dout * 4);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, dout, din, 1.0f, in, din,
                  P + net->w_off[l] + (size_t)e * din * dout, dout, 1.0f, out, dout);
    }
    if (l < L - 1)
      for (size_t i = 0; i < (size_t)E * B * dout; i++) a[l + 1][i] = nn_swish(z[l][i]);
  }
}

static void unfused_backward(const nn_mlp* net, const float* P, int B, const float* x, int shared,
                             float** z, float** a, const float* dy, float* G, float* dx, float* t1, float* t2) {
  const int L = net->nlayers, E = net->E;
  const float* dz = dy;
  float* buf[2] = {t1, t2};
  for (int l = L - 1; l >= 0; l--) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    for (int e = 0; e < E; e++) {
      const float* in = l > 0 ? a[l] + (size_t)e * B * din : x + (shared ? 0 : (size_t)e * B * din);
      const float* d = dz + (size_t)e * B * dout;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, din, dout, B, 1.0f, in, din, d, dout, 1.0f,
                  G + net->w_off[l] + (size_t)e * din * dout, dout);
      float* gb = G + net->b_off[l] + (size_t)e * dout;
      for (int r = 0; r < B; r++)
        for (int j = 0; j < dout; j++) gb[j] += d[(size_t)r * dout + j];
    }
    float* out = l > 0 ? buf[l & 1] : dx;
    for (int e = 0; e < E; e++) {
      float* o = l == 0 && shared ? out : out + (size_t)e * B * din;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, din, dout, 1.0f, dz + (size_t)e * B * dout, dout,
                  P + net->w_off[l] + (size_t)e * din * dout, dout, l == 0 && shared && e > 0 ? 1.0f : 0.0f, o, din);
    }
    if (l > 0)
      for (size_t i = 0; i < (size_t)E * B * din; i++) out[i] *= nn_swish_grad(z[l - 1][i]);
    dz = out;
  }
}

/* E members of the model's shape (14 -> 4 x 200 -> 24) on B rows (each of Bs, at most Bmax) give the
 * unfused passes' outputs, parameter gradients and input gradients bit for bit. */
static void fused_bits_case(int E, int Bmax, const int* Bs, int nB) {
  int d[] = {14, 200, 200, 200, 200, 24};
  const int L = 5;
  nn_mlp net = nn_mlp_make(E, L, d, NN_SWISH);
  float* P = nn_alloc(net.nparams);
  fill(P, net.nparams, 30, 0.08f);
  float *x = nn_alloc((size_t)E * Bmax * 14), *dy = nn_alloc((size_t)E * Bmax * 24);
  fill(x, (size_t)E * Bmax * 14, 31, 1.5f);
  fill(dy, (size_t)E * Bmax * 24, 32, 1.0f);
  float *y1 = nn_alloc((size_t)E * Bmax * 24), *y2 = nn_alloc((size_t)E * Bmax * 24);
  float *G1 = nn_alloc(net.nparams), *G2 = nn_alloc(net.nparams);
  float *dx1 = nn_alloc((size_t)E * Bmax * 14), *dx2 = nn_alloc((size_t)E * Bmax * 14);
  float *z[4], *a[5], *t1 = nn_alloc((size_t)E * Bmax * 200), *t2 = nn_alloc((size_t)E * Bmax * 200);
  for (int l = 0; l < 4; l++) z[l] = nn_alloc((size_t)E * Bmax * 200), a[l + 1] = nn_alloc((size_t)E * Bmax * 200);
  nn_cache* c = nn_cache_alloc(&net, Bmax);
  for (int k = 0; k < nB; k++)
    for (int shared = 0; shared <= 1; shared++) {
      const int B = Bs[k];
      const size_t ny = (size_t)E * B * 24, nx = (size_t)(shared ? 1 : E) * B * 14;
      nn_zero(G1, net.nparams), nn_zero(G2, net.nparams);
      nn_forward(&net, P, B, x, shared, c, y1);
      nn_backward(&net, P, c, dy, G1, dx1);
      unfused_forward(&net, P, B, x, shared, z, a, y2);
      unfused_backward(&net, P, B, x, shared, z, a, dy, G2, dx2, t1, t2);
      CHECK(!memcmp(y1, y2, ny * 4), "E %d B %d shared %d: outputs differ", E, B, shared);
      CHECK(!memcmp(G1, G2, net.nparams * 4), "E %d B %d shared %d: parameter gradients differ", E, B, shared);
      CHECK(!memcmp(dx1, dx2, nx * 4), "E %d B %d shared %d: input gradients differ", E, B, shared);
      nn_forward_chunked(&net, P, B, x, shared, c, y1);
      CHECK(!memcmp(y1, y2, ny * 4), "E %d B %d shared %d: forward without backward differs", E, B, shared);
    }
  nn_cache_free(c);
  for (int l = 0; l < 4; l++) free(z[l]), free(a[l + 1]);
  free(P), free(x), free(dy), free(y1), free(y2), free(G1), free(G2), free(dx1), free(dx2), free(t1), free(t2);
}

/* The model's shape (7 members, 256 and 200 rows): on 2 threads six member tasks and a seventh
 * split over tasks (row halves of the hidden layers, the backward's two chains) */
static void test_fused_bits(void) {
  const int Bs[] = {256, 200};
  fused_bits_case(7, 256, Bs, 2);
}

/* 1 and 3 members on 400 and 1000 rows, on every thread (at least 2: every member (1) or the third
 * (3) split over tasks, the first and output layers whole at 400 rows, where their halves would take
 * OpenBLAS's small-matrix kernels, and split at 1000) and on one (whole members): the same bits. */
static void test_fused_split_bits(void) {
  int d[] = {14, 200, 200, 200, 200, 24};
  const int Bmax = 1000, T = omp_get_max_threads();
  for (int E = 1; E <= 3; E += 2) {
    nn_mlp net = nn_mlp_make(E, 5, d, NN_SWISH);
    float *P = nn_alloc(net.nparams), *x = nn_alloc((size_t)E * Bmax * 14), *dy = nn_alloc((size_t)E * Bmax * 24);
    fill(P, net.nparams, 33, 0.08f);
    fill(x, (size_t)E * Bmax * 14, 34, 1.5f);
    fill(dy, (size_t)E * Bmax * 24, 35, 1.0f);
    float *y[2], *G[2], *dx[2];
    nn_cache* c = nn_cache_alloc(&net, Bmax);
    for (int B = 400; B <= Bmax; B += 600)
      for (int shared = 0; shared <= 1; shared++) {
        for (int k = 0; k < 2; k++) { /* k = 0: every thread; 1: one */
          omp_set_num_threads(k ? 1 : T);
          openblas_set_num_threads(k ? 1 : T);
          y[k] = nn_alloc((size_t)E * B * 24), G[k] = nn_alloc(net.nparams), dx[k] = nn_alloc((size_t)E * B * 14);
          nn_forward(&net, P, B, x, shared, c, y[k]);
          nn_backward(&net, P, c, dy, G[k], dx[k]);
        }
        omp_set_num_threads(T);
        openblas_set_num_threads(T);
        const size_t ny = (size_t)E * B * 24, nx = (size_t)(shared ? 1 : E) * B * 14;
        CHECK(!memcmp(y[0], y[1], ny * 4), "E %d B %d shared %d: outputs differ", E, B, shared);
        CHECK(!memcmp(G[0], G[1], net.nparams * 4), "E %d B %d shared %d: parameter gradients differ", E, B, shared);
        CHECK(!memcmp(dx[0], dx[1], nx * 4), "E %d B %d shared %d: input gradients differ", E, B, shared);
        for (int k = 0; k < 2; k++) free(y[k]), free(G[k]), free(dx[k]);
      }
    nn_cache_free(c);
    free(P), free(x), free(dy);
  }
}

/* chunked and cache-less forwards equal one forward over all rows */
static void test_forward_chunked(void) {
  int d[] = {4, 9, 9, 3};
  for (int shared = 0; shared <= 1; shared++) {
    nn_mlp net = nn_mlp_make(3, 3, d, NN_SWISH);
    const int B = 50;
    size_t nx = (size_t)(shared ? 1 : 3) * B * 4, ny = (size_t)3 * B * 3;
    float *P = nn_alloc(net.nparams), *x = nn_alloc(nx);
    float *y1 = nn_alloc(ny), *y2 = nn_alloc(ny), *y3 = nn_alloc(ny);
    fill(P, net.nparams, 4, 0.5f);
    fill(x, nx, 5, 1.0f);
    nn_cache *big = nn_cache_alloc(&net, B), *small = nn_cache_alloc(&net, 7);
    nn_forward(&net, P, B, x, shared, big, y1);
    nn_forward_chunked(&net, P, B, x, shared, small, y2);
    nn_forward(&net, P, B, x, shared, NULL, y3);
    double e2 = 0, e3 = 0;
    for (size_t i = 0; i < ny; i++) {
      e2 = fmax(e2, fabs(y1[i] - y2[i]));
      e3 = fmax(e3, fabs(y1[i] - y3[i]));
    }
    CHECK(e2 < 1e-5 && e3 < 1e-5, "shared %d: chunked differs by %g, cache-less by %g", shared, e2, e3);
    nn_cache_free(big), nn_cache_free(small);
    free(P), free(x), free(y1), free(y2), free(y3);
  }
}

static void test_layout(void) {
  int d[] = {3, 4, 2};
  nn_mlp net = nn_mlp_make(5, 2, d, NN_RELU);
  CHECK(net.w_off[0] == 0 && net.b_off[0] == 60 && net.w_off[1] == 80 && net.b_off[1] == 120,
        "offsets %zu %zu %zu %zu", net.w_off[0], net.b_off[0], net.w_off[1], net.b_off[1]);
  CHECK(net.nparams == 130, "nparams %zu", net.nparams);
  float* p = nn_alloc(13);
  CHECK(((uintptr_t)p & 63) == 0, "aligned");
  int z = 1;
  for (int i = 0; i < 13; i++) z &= p[i] == 0.0f;
  CHECK(z, "zeroed");
  free(p);
}

/* ---- Adam, Polyak ------------------------------------------------------------------------- */

static void test_adam_one_step(void) {
  /* one step from zero moments: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001) / 0.1 */
  float p[3] = {1.0f, -2.0f, 0.5f};
  const float g[3] = {0.3f, -4.0f, 1e-8f};
  nn_adam* a = nn_adam_alloc(3, 0.01f);
  nn_adam_step(a, p, g);
  const double lr_t = 0.01 * sqrt(0.001) / 0.1;
  const double p0[3] = {1.0, -2.0, 0.5};
  for (int i = 0; i < 3; i++) {
    double m = 0.1 * g[i], v = 0.001 * (double)g[i] * g[i];
    double want = p0[i] - lr_t * m / (sqrt(v) + 1e-8);
    CHECK_CLOSE(p[i], want, 1e-6);
  }
  /* TF1 form: with g = 1e-8 the step is lr * 0.0307, not PyTorch's lr / 2 */
  CHECK(fabs((0.5 - p[2]) / 0.01 - 0.0307) < 0.001, "tiny-gradient step %g lr (TF1 form 0.0307)",
        (0.5 - p[2]) / 0.01);
  CHECK(a->t == 1, "t %ld", a->t);
  nn_adam_free(a);
}

static void test_adam_several_steps(void) {
  enum { N = 17, T = 25 };
  float p[N], g[N];
  double pd[N], m[N] = {0}, v[N] = {0};
  for (int i = 0; i < N; i++) pd[i] = p[i] = 0.01f * rng_normal(K, 30, 0, (uint64_t)i);
  nn_adam* a = nn_adam_alloc(N, 3e-4f);
  /* the reference uses the float32 values of the constants, as the code does */
  const double b1 = 0.9f, b2 = 0.999f, lr = 3e-4f;
  for (int t = 1; t <= T; t++) {
    for (int i = 0; i < N; i++) g[i] = rng_normal(K, 31, (uint32_t)t, (uint64_t)i) * (i % 3 ? 1.0f : 1e-3f);
    nn_adam_step(a, p, g);
    double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
    for (int i = 0; i < N; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
      pd[i] -= lr_t * m[i] / (sqrt(v[i]) + 1e-8);
    }
  }
  /* compare the displacement p - p0 (p0 ~ 0.01, so the float rounding of p is ~1e-9 per step):
   * |d - d_ref| <= 1e-4 (|d_ref| + max |d_ref|) */
  double dmax = 0, worst = 0;
  for (int i = 0; i < N; i++) dmax = fmax(dmax, fabs(pd[i] - (double)(0.01f * rng_normal(K, 30, 0, (uint64_t)i))));
  for (int i = 0; i < N; i++) {
    double p0 = 0.01f * rng_normal(K, 30, 0, (uint64_t)i);
    double dd = pd[i] - p0, df = p[i] - p0;
    worst = fmax(worst, fabs(df - dd) / (fabs(dd) + dmax));
  }
  CHECK(worst < 1e-4, "displacement after %d steps: worst scaled error %g", T, worst);
  for (int i = 0; i < N; i++) {
    CHECK_CLOSE(a->m[i], m[i], 1e-5);
    CHECK(fabs(a->v[i] - v[i]) <= 1e-5 * v[i] + 1e-12, "v[%d] %g vs %g", i, a->v[i], v[i]);
  }
  nn_adam_free(a);
}

static void test_polyak(void) {
  float t[4] = {1, 2, 3, 4};
  const float s[4] = {5, -6, 7, 0};
  nn_polyak(t, s, 4, 0.25f);
  const float want[4] = {2.0f, 0.0f, 4.0f, 3.0f};
  for (int i = 0; i < 4; i++) CHECK(t[i] == want[i], "t[%d] %g != %g", i, t[i], want[i]);
  nn_polyak(t, s, 4, 1.0f);
  for (int i = 0; i < 4; i++) CHECK(t[i] == s[i], "tau 1 copies");
  float u[3] = {1, 2, 3};
  nn_polyak(u, s, 3, 0.0f);
  CHECK(u[0] == 1 && u[1] == 2 && u[2] == 3, "tau 0 keeps");
}

/* ---- initialisation ------------------------------------------------------------------------ */

static void test_init_truncnormal(void) {
  int d[] = {400, 300, 5};
  nn_mlp net = nn_mlp_make(2, 2, d, NN_SWISH);
  float* P = nn_alloc(net.nparams);
  for (size_t i = 0; i < net.nparams; i++) P[i] = 9;
  rng_key key = {42, RNG_INIT};
  nn_init_truncnormal(&net, P, key, 3);
  const double sd = 1.0 / (2.0 * sqrt(400.0));
  size_t n = (size_t)2 * 400 * 300;
  double s = 0, s2 = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double w = P[net.w_off[0] + i];
    s += w, s2 += w * w, mx = fmax(mx, fabs(w));
  }
  double mean = s / n, std = sqrt(s2 / n - mean * mean);
  /* a normal truncated at +-2 sd has std 0.879626 sd */
  CHECK(fabs(std / sd - 0.879626) < 0.005, "std %g sd (want 0.8796)", std / sd);
  CHECK(fabs(mean) < 0.01 * sd, "mean %g", mean);
  CHECK(mx <= 2 * sd * (1 + 1e-6), "max |w| %g > 2 sd %g", mx, 2 * sd);
  CHECK(mx > 1.99 * sd, "max |w| %g: the tails reach 2 sd", mx);
  int zb = 1;
  for (int l = 0; l < 2; l++)
    for (int j = 0; j < 2 * d[l + 1]; j++) zb &= P[net.b_off[l] + j] == 0.0f;
  CHECK(zb, "biases zero");
  /* the draw convention: element i of layer l, attempt k, reads rng_normal(key, id, l, i + k size) */
  size_t size1 = (size_t)2 * 300 * 5;
  const float sd1 = 1.0f / (2.0f * sqrtf(300.0f));
  int conv = 1;
  for (size_t i = 0; i < size1; i++) {
    float z = 0;
    for (uint64_t k = 0; k < 64; k++) {
      z = rng_normal(key, 3, 1, i + k * size1);
      if (fabsf(z) <= 2.0f) break;
    }
    conv &= P[net.w_off[1] + i] == z * sd1;
  }
  CHECK(conv, "draw convention (c0 = net_id, c1 = layer, index = element + attempt * size)");
  /* determinism by key */
  float* Q = nn_alloc(net.nparams);
  nn_init_truncnormal(&net, Q, key, 3);
  CHECK(memcmp(P, Q, sizeof(float) * net.nparams) == 0, "same key, same weights");
  nn_init_truncnormal(&net, Q, key, 4);
  CHECK(memcmp(P, Q, sizeof(float) * 1000) != 0, "another net_id, other weights");
  rng_key k2 = {43, RNG_INIT};
  nn_init_truncnormal(&net, Q, k2, 3);
  CHECK(memcmp(P, Q, sizeof(float) * 1000) != 0, "another seed, other weights");
  free(P), free(Q);
}

static void test_init_glorot(void) {
  int d[] = {256, 256, 6};
  nn_mlp net = nn_mlp_make(2, 2, d, NN_RELU);
  float* P = nn_alloc(net.nparams);
  rng_key key = {7, RNG_INIT};
  nn_init_glorot(&net, P, key, 1);
  for (int l = 0; l < 2; l++) {
    double lim = sqrt(6.0 / (d[l] + d[l + 1]));
    size_t n = (size_t)2 * d[l] * d[l + 1];
    double s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
      double w = P[net.w_off[l] + i];
      s += w, s2 += w * w, mx = fmax(mx, fabs(w));
    }
    double std = sqrt(s2 / n - (s / n) * (s / n));
    CHECK(mx <= lim, "layer %d: max %g > limit %g", l, mx, lim);
    CHECK(mx > 0.99 * lim, "layer %d: max %g, limit %g", l, mx, lim);
    CHECK(fabs(std / (lim / sqrt(3.0)) - 1) < (l == 0 ? 0.01 : 0.05), "layer %d: std %g, want %g", l,
          std, lim / sqrt(3.0));
    CHECK(P[net.w_off[l] + 5] == (2.0f * rng_uniform(key, 1, (uint32_t)l, 5) - 1.0f) * (float)lim,
          "draw convention");
  }
  float* Q = nn_alloc(net.nparams);
  nn_init_glorot(&net, Q, key, 1);
  CHECK(memcmp(P, Q, sizeof(float) * net.nparams) == 0, "same key, same weights");
  rng_key k2 = {8, RNG_INIT};
  nn_init_glorot(&net, Q, k2, 1);
  CHECK(memcmp(P, Q, sizeof(float) * 1000) != 0, "another seed, other weights");
  free(P), free(Q);
}

int main(void) {
  RUN(test_layout);
  RUN(test_layer_linear);
  RUN(test_layer_relu);
  RUN(test_layer_swish);
  RUN(test_mlp3_shared);
  RUN(test_mlp3_per_member);
  RUN(test_mlp4_widths);
  RUN(test_swish);
  RUN(test_swish_expf_bits);
  RUN(test_swish_bias_bits);
  RUN(test_fused_bits);
  RUN(test_fused_split_bits);
  RUN(test_forward_chunked);
  RUN(test_adam_one_step);
  RUN(test_adam_several_steps);
  RUN(test_polyak);
  RUN(test_init_truncnormal);
  RUN(test_init_glorot);
  return test_done();
}
