/* nn_fused.c: the swish ensemble's forward and backward, element work fused into per-member GEMM
 * tasks (nn_fused.h). */
#include "nn_fused.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm.h"
#include "swish.h"

/* Below this many flops a pass runs on the calling thread: a parallel region costs more. */
#define NNF_PAR_FLOPS 4e6
/* Rows (forward) and columns (backward) per share of a member's element pass run by all threads. */
#define NNF_ROWS 16
#define NNF_COLS 32

/* Flops of one row through every layer. */
static double row_flops(const nn_mlp* net) {
  double f = 0.0;
  for (int l = 0; l < net->nlayers; l++) f += 2.0 * net->dims[l] * net->dims[l + 1];
  return f;
}

/* Threads for a pass of `flops`: 1 when small or already inside a parallel region. */
static int pass_threads(double flops) {
#ifdef _OPENMP
  if (flops > NNF_PAR_FLOPS && !omp_in_parallel()) return omp_get_max_threads();
#endif
  (void)flops;
  return 1;
}

/* Members [0, ntask) run as OpenMP tasks, one single-threaded GEMM after another; the rest one at a
 * time with every thread in each GEMM (OpenBLAS threads it) and in each element pass. With E = 7 on
 * 2 threads that is 6 + 1, balanced where 7 tasks would leave a thread idle for a seventh of the
 * step; a single member (rollouts) gets every thread as before. OpenBLAS's sums do not depend on
 * its thread count, so both ways give the same bits. With OpenBLAS's pthreads build every member
 * goes the second way (gemm_task_safe). */
static int task_members(int E, int threads) {
  return threads > 1 && E >= threads && gemm_task_safe() ? E - E % threads : 0;
}

/* the forward of member e; inner: its element passes split over the threads */
static void forward_member(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                           float* const* z, float* const* a, float* y, size_t y_es, int keep, int e,
                           int inner) {
  const int L = net->nlayers;
  for (int l = 0; l < L; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    const float* in = l == 0 ? x + (size_t)e * x_es : a[l] + (size_t)e * n * din;
    float* out = l == L - 1 ? y + (size_t)e * y_es : a[l + 1] + (size_t)e * n * dout;
    const float* W = P + net->w_off[l] + (size_t)e * din * dout;
    const float* b = P + net->b_off[l] + (size_t)e * dout;
    if (l < L - 1) {
      /* whole members per call: a row split can change OpenBLAS's kernel (small-matrix) and bits */
      gemm_nn(n, dout, din, in, din, W, dout, 0.0f, out, dout);
      float* g = keep ? z[l] + (size_t)e * n * dout : NULL;
#pragma omp parallel for if (inner) schedule(static)
      for (int r0 = 0; r0 < n; r0 += NNF_ROWS) {
        const int rows = n - r0 < NNF_ROWS ? n - r0 : NNF_ROWS;
        swish_bias_forward(out + (size_t)r0 * dout, b, rows, dout, g ? g + (size_t)r0 * dout : NULL);
      }
    } else { /* bias first, then a beta = 1 GEMM: the sums nn.c's ReLU path makes */
      for (int r = 0; r < n; r++) memcpy(out + (size_t)r * dout, b, (size_t)dout * sizeof(float));
      gemm_nn(n, dout, din, in, din, W, dout, 1.0f, out, dout);
    }
  }
}

void nnf_forward(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                 float* const* z, float* const* a, float* y, size_t y_es, int keep) {
  const int E = net->E, T = pass_threads((double)E * n * row_flops(net)), nt = task_members(E, T);
#pragma omp parallel for if (nt > 0) schedule(dynamic, 1)
  for (int e = 0; e < nt; e++) forward_member(net, P, n, x, x_es, z, a, y, y_es, keep, e, 0);
  for (int e = nt; e < E; e++) forward_member(net, P, n, x, x_es, z, a, y, y_es, keep, e, T > 1);
}

/* gb[j] += Σ_r d[r][j] over B rows in row order, columns [j0, j1) */
static void colsum(float* gb, const float* d, int B, int n, int j0, int j1) {
  for (int r = 0; r < B; r++)
    for (int j = j0; j < j1; j++) gb[j] += d[(size_t)r * n + j];
}

/* d *= g and, with gb, gb[j] += d[r][j] over rows in order, columns [j0, j1) */
static void swish_back(float* d, const float* g, float* gb, int B, int n, int j0, int j1) {
  for (int r = 0; r < B; r++) {
    float* drow = d + (size_t)r * n;
    const float* grow = g + (size_t)r * n;
    if (gb)
      for (int j = j0; j < j1; j++) {
        drow[j] *= grow[j];
        gb[j] += drow[j];
      }
    else
      for (int j = j0; j < j1; j++) drow[j] *= grow[j];
  }
}

/* the backward of member e; inner: its element passes split by columns over the threads (each
 * column's rows still summed in order). Member e's gradients of the hidden layers alternate
 * between buf[0] and buf[1] at e * stride (stride: Bmax rows of the widest layer, so members that
 * run side by side never share a float whatever the layers' widths). */
static void backward_member(const nn_mlp* net, const float* P, nn_cache* c, const float* dy,
                            float* grads, float* dx, float* const* buf, size_t stride, int e, int inner) {
  const int L = net->nlayers, B = c->B, shared = c->shared_input;
  const float* dz = dy + (size_t)e * B * net->dims[L]; /* gradient wrt layer l's output */
  for (int l = L - 1; l >= 0; l--) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    if (grads) {
      const float* in = l > 0 ? c->a[l] + (size_t)e * B * din : c->x + (shared ? 0 : (size_t)e * B * din);
      gemm_tn(din, dout, B, in, din, dz, dout, 1.0f, grads + net->w_off[l] + (size_t)e * din * dout, dout);
      if (l == L - 1) { /* the output layer's bias gradient; hidden ones are summed below */
        float* gb = grads + net->b_off[l] + (size_t)e * dout;
        const int w = inner ? NNF_COLS : dout; /* one task: all columns in one sweep over the rows */
#pragma omp parallel for if (inner) schedule(static)
        for (int j0 = 0; j0 < dout; j0 += w) colsum(gb, dz, B, dout, j0, j0 + w < dout ? j0 + w : dout);
      }
    }
    if (l == 0) {
      if (dx && !shared)
        gemm_nt(B, din, dout, dz, dout, P + net->w_off[0] + (size_t)e * din * dout, dout, 0.0f,
                dx + (size_t)e * B * din, din);
      break;
    }
    float* out = buf[l & 1] + (size_t)e * stride;
    gemm_nt(B, din, dout, dz, dout, P + net->w_off[l] + (size_t)e * din * dout, dout, 0.0f, out, din);
    /* through swish: times the kept derivative, and the previous layer's bias gradient in the same pass */
    const float* g = c->z[l - 1] + (size_t)e * B * din;
    float* gb = grads ? grads + net->b_off[l - 1] + (size_t)e * din : NULL;
    const int w = inner ? NNF_COLS : din;
#pragma omp parallel for if (inner) schedule(static)
    for (int j0 = 0; j0 < din; j0 += w) swish_back(out, g, gb, B, din, j0, j0 + w < din ? j0 + w : din);
    dz = out;
  }
}

void nnf_backward(const nn_mlp* net, const float* P, nn_cache* c, const float* dy, float* grads,
                  float* dx) {
  const int L = net->nlayers, E = net->E, B = c->B;
  if (!grads && !dx) return;
  size_t half = 0;
  for (int l = 1; l < L; l++)
    if ((size_t)E * c->Bmax * net->dims[l] > half) half = (size_t)E * c->Bmax * net->dims[l];
  float* buf[2] = {c->scratch, c->scratch + half};
  const size_t stride = half / (size_t)E;
  const int T = pass_threads((double)E * B * 2.0 * row_flops(net)), nt = task_members(E, T);
#pragma omp parallel for if (nt > 0) schedule(dynamic, 1)
  for (int e = 0; e < nt; e++) backward_member(net, P, c, dy, grads, dx, buf, stride, e, 0);
  for (int e = nt; e < E; e++) backward_member(net, P, c, dy, grads, dx, buf, stride, e, T > 1);
  if (dx && c->shared_input) { /* the members' input gradients summed in member order, as nn.c does */
    const int din = net->dims[0], dout = net->dims[1];
    for (int e = 0; e < E; e++) {
      const float* dz0 = L > 1 ? buf[1] + (size_t)e * stride : dy + (size_t)e * B * dout;
      gemm_nt(B, din, dout, dz0, dout, P + net->w_off[0] + (size_t)e * din * dout, dout,
              e == 0 ? 0.0f : 1.0f, dx, din);
    }
  }
}
