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
/* OpenBLAS 0.3.21's limit for its small-matrix kernels, in multiply-adds (M N K), see row_split_ok */
#define NNF_SMALL_MNK 1e6
/* Dependence tokens for this many members split over tasks (more share tokens: still correct) */
#define NNF_MAX_SPLIT 64

/* Set by nnf_gemms_only (benchmarks): the passes skip everything but their GEMMs. */
static int gemms_only;

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

/* Members [0, ntask) run as one OpenMP task each, one single-threaded GEMM after another; the rest
 * (E mod threads: the seventh of 7 on 2 threads, a rollout's single member) are split over tasks
 * in the same parallel region (forward_split_tasks, backward_split_tasks), where 7 whole tasks
 * would leave a thread idle for a seventh of the step. Both ways make the same GEMM calls (or row
 * halves that keep OpenBLAS's kernel), so the same bits. With OpenBLAS's pthreads build every
 * member runs one at a time with OpenBLAS threading its GEMMs (gemm_task_safe). */
int nnf_task_members(int E, int threads) {
  return threads > 1 && E >= threads && gemm_task_safe() ? E - E % threads : 0;
}

/* Layers [l0, l1) of member e for its rows [r0, r1) (of n); inner: the element passes split over
 * the threads */
static void forward_layers(const nn_mlp* net, const float* P, int n, int r0, int r1, const float* x, size_t x_es,
                           float* const* z, float* const* a, float* y, size_t y_es, int keep, int e, int l0,
                           int l1, int inner) {
  const int L = net->nlayers, m = r1 - r0;
  for (int l = l0; l < l1; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    const float* in = (l == 0 ? x + (size_t)e * x_es : a[l] + (size_t)e * n * din) + (size_t)r0 * din;
    float* out = (l == L - 1 ? y + (size_t)e * y_es : a[l + 1] + (size_t)e * n * dout) + (size_t)r0 * dout;
    const float* W = P + net->w_off[l] + (size_t)e * din * dout;
    const float* b = P + net->b_off[l] + (size_t)e * dout;
    if (l < L - 1) {
      gemm_nn(m, dout, din, in, din, W, dout, 0.0f, out, dout);
      if (gemms_only) continue;
      float* g = keep ? z[l] + (size_t)e * n * dout + (size_t)r0 * dout : NULL;
#pragma omp parallel for if (inner) schedule(static)
      for (int q = 0; q < m; q += NNF_ROWS) {
        const int rows = m - q < NNF_ROWS ? m - q : NNF_ROWS;
        swish_bias_forward(out + (size_t)q * dout, b, rows, dout, g ? g + (size_t)q * dout : NULL);
      }
    } else { /* bias first, then a beta = 1 GEMM: the sums nn.c's ReLU path makes */
      for (int r = 0; r < m && !gemms_only; r++) memcpy(out + (size_t)r * dout, b, (size_t)dout * sizeof(float));
      gemm_nn(m, dout, din, in, din, W, dout, 1.0f, out, dout);
    }
  }
}

/* Whether layer l's product may be split into two row halves of n: each element is one dot product
 * over k in order whatever the rows, but OpenBLAS 0.3.21 sends products of at most 100^3
 * multiply-adds to its small-matrix kernels (SkylakeX / Cooperlake), whose sums can round
 * differently (measured: 128 x 24 x 200 differs from 256 x 24 x 200). Halves above that size run
 * the same kernel as the whole. */
static int row_split_ok(const nn_mlp* net, int l, int n) {
  return (double)(n / 2) * net->dims[l] * net->dims[l + 1] > NNF_SMALL_MNK;
}

/* The forward of a member that does not run as one task (E mod threads of them) as tasks of its
 * own: layers whose halves are large enough (row_split_ok) as two row-half tasks, the others whole;
 * a half waits only for its own half of the layer before (t[h]), a whole layer for both. Called
 * inside a master construct. */
static void forward_split_tasks(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                                float* const* z, float* const* a, float* y, size_t y_es, int keep, int e,
                                char* t) {
  const int h = n / 2;
  (void)t; /* GCC counts a use in depend clauses as none */
  for (int l = 0; l < net->nlayers; l++) {
    if (row_split_ok(net, l, n)) {
#pragma omp task depend(inout : t[0])
      forward_layers(net, P, n, 0, h, x, x_es, z, a, y, y_es, keep, e, l, l + 1, 0);
#pragma omp task depend(inout : t[1])
      forward_layers(net, P, n, h, n, x, x_es, z, a, y, y_es, keep, e, l, l + 1, 0);
    } else {
#pragma omp task depend(inout : t[0], t[1])
      forward_layers(net, P, n, 0, n, x, x_es, z, a, y, y_es, keep, e, l, l + 1, 0);
    }
  }
}

void nnf_forward(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                 float* const* z, float* const* a, float* y, size_t y_es, int keep) {
  const int E = net->E, L = net->nlayers, T = pass_threads((double)E * n * row_flops(net));
  if (T > 1 && gemm_task_safe()) { /* one parallel region for the whole pass (each costs a wake-up) */
    const int nt = nnf_task_members(E, T);
    char t[NNF_MAX_SPLIT][2]; /* task dependence tokens of the split members */
/* master, not single: libgomp 12 leaks the dependence table of a worker thread's implicit task
 * that created depend tasks (LeakSanitizer, now and then); the region's end waits for the tasks */
#pragma omp parallel
#pragma omp master
    {
      for (int e = nt; e < E; e++) /* first: their chains are the longest */
        forward_split_tasks(net, P, n, x, x_es, z, a, y, y_es, keep, e, t[(e - nt) % NNF_MAX_SPLIT]);
      for (int e = 0; e < nt; e++) {
#pragma omp task
        forward_layers(net, P, n, 0, n, x, x_es, z, a, y, y_es, keep, e, 0, L, 0);
      }
    }
    return;
  }
  for (int e = 0; e < E; e++) forward_layers(net, P, n, 0, n, x, x_es, z, a, y, y_es, keep, e, 0, L, T > 1);
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

/* What member e's backward steps share. Its gradients wrt the hidden layers' outputs alternate
 * between buf[0] and buf[1] at e * stride (stride: Bmax rows of the widest layer, so members that
 * run side by side never share a float whatever the layers' widths). */
typedef struct bwd_ctx {
  const nn_mlp* net;
  const float *P, *dy;
  nn_cache* c;
  float *grads, *dx, *buf[2];
  size_t stride;
  const float* wd; /* per layer, or NULL: weight decay added to the weight gradients */
} bwd_ctx;

/* the gradient wrt layer l's output, member e */
static float* dz_of(const bwd_ctx* k, int l, int e) {
  const int L = k->net->nlayers;
  return l == L - 1 ? (float*)k->dy + (size_t)e * k->c->B * k->net->dims[L] : k->buf[(l + 1) & 1] + (size_t)e * k->stride;
}

/* Layer l's weight gradient of member e (and the output layer's bias gradient); inner: the element
 * pass split by columns over the threads (each column's rows still summed in order). */
static void weight_step(const bwd_ctx* k, int l, int e, int inner) {
  const nn_mlp* net = k->net;
  const int B = k->c->B, din = net->dims[l], dout = net->dims[l + 1];
  const float* dz = dz_of(k, l, e);
  const float* in = l > 0 ? k->c->a[l] + (size_t)e * B * din : k->c->x + (k->c->shared_input ? 0 : (size_t)e * B * din);
  float* gW = k->grads + net->w_off[l] + (size_t)e * din * dout;
  gemm_tn(din, dout, B, in, din, dz, dout, 1.0f, gW, dout);
  if (k->wd) { /* while gW is in cache: what a separate pass over all the weights would add */
    const float wd = k->wd[l];
    const float* W = k->P + net->w_off[l] + (size_t)e * din * dout;
    for (size_t i = 0; i < (size_t)din * dout; i++) gW[i] += wd * W[i];
  }
  if (l == net->nlayers - 1 && !gemms_only) { /* the output layer's bias gradient; hidden ones: input_step */
    float* gb = k->grads + net->b_off[l] + (size_t)e * dout;
    const int w = inner ? NNF_COLS : dout; /* one task: all columns in one sweep over the rows */
#pragma omp parallel for if (inner) schedule(static)
    for (int j0 = 0; j0 < dout; j0 += w) colsum(gb, dz, B, dout, j0, j0 + w < dout ? j0 + w : dout);
  }
}

/* The gradient wrt layer l's input, member e: through swish into buf[l & 1] with the previous
 * layer's bias gradient in the same pass; at l = 0 into dx (unshared input only) */
static void input_step(const bwd_ctx* k, int l, int e, int inner) {
  const nn_mlp* net = k->net;
  const int B = k->c->B, din = net->dims[l], dout = net->dims[l + 1];
  const float* dz = dz_of(k, l, e);
  const float* W = k->P + net->w_off[l] + (size_t)e * din * dout;
  if (l == 0) {
    if (k->dx && !k->c->shared_input) gemm_nt(B, din, dout, dz, dout, W, dout, 0.0f, k->dx + (size_t)e * B * din, din);
    return;
  }
  float* out = k->buf[l & 1] + (size_t)e * k->stride;
  gemm_nt(B, din, dout, dz, dout, W, dout, 0.0f, out, din);
  if (gemms_only) return;
  const float* g = k->c->z[l - 1] + (size_t)e * B * din;
  float* gb = k->grads ? k->grads + net->b_off[l - 1] + (size_t)e * din : NULL;
  const int w = inner ? NNF_COLS : din;
#pragma omp parallel for if (inner) schedule(static)
  for (int j0 = 0; j0 < din; j0 += w) swish_back(out, g, gb, B, din, j0, j0 + w < din ? j0 + w : din);
}

/* the backward of member e, layer by layer */
static void backward_member(const bwd_ctx* k, int e, int inner) {
  for (int l = k->net->nlayers - 1; l >= 0; l--) {
    if (k->grads) weight_step(k, l, e, inner);
    input_step(k, l, e, inner);
  }
}

/* The backward of a member that does not run as one task, as two chains of tasks that run side by
 * side: the input gradients layer after layer, and each layer's weight gradient as soon as the
 * gradient wrt its output is there. Every call and pass is the one backward_member makes, so the
 * bits are the same. t[i]: the dependence token of buffer i (a write waits for the reads of the
 * layer two above, which used the same buffer); dyt: the output gradient's, never written. */
static void backward_split_tasks(const bwd_ctx* k, int e, char* t, char* dyt) {
  for (int l = k->net->nlayers - 1; l >= 0; l--) {
    char* src = l == k->net->nlayers - 1 ? dyt : &t[(l + 1) & 1];
    (void)src;
    if (k->grads) {
#pragma omp task depend(in : src[0])
      weight_step(k, l, e, 0);
    }
    if (l > 0 || (k->dx && !k->c->shared_input)) {
#pragma omp task depend(in : src[0]) depend(out : t[l & 1])
      input_step(k, l, e, 0);
    }
  }
}

void nnf_backward(const nn_mlp* net, const float* P, nn_cache* c, const float* dy, float* grads,
                  float* dx) {
  nnf_backward_decay(net, P, c, dy, grads, dx, NULL);
}

void nnf_backward_decay(const nn_mlp* net, const float* P, nn_cache* c, const float* dy, float* grads,
                        float* dx, const float* wd) {
  const int L = net->nlayers, E = net->E, B = c->B;
  if (!grads && !dx) return;
  size_t half = 0;
  for (int l = 1; l < L; l++)
    if ((size_t)E * c->Bmax * net->dims[l] > half) half = (size_t)E * c->Bmax * net->dims[l];
  bwd_ctx k = {net, P, dy, c, grads, dx, {c->scratch, c->scratch + half}, half / (size_t)E, grads ? wd : NULL};
  const int T = pass_threads((double)E * B * 2.0 * row_flops(net));
  if (T > 1 && gemm_task_safe()) { /* one parallel region (each costs a wake-up) */
    const int nt = nnf_task_members(E, T);
    char t[NNF_MAX_SPLIT][2], dyt = 0;
#pragma omp parallel
#pragma omp master /* not single: see nnf_forward */
    {
      for (int e = nt; e < E; e++) backward_split_tasks(&k, e, t[(e - nt) % NNF_MAX_SPLIT], &dyt);
      for (int e = 0; e < nt; e++) {
#pragma omp task
        backward_member(&k, e, 0);
      }
    }
  } else
    for (int e = 0; e < E; e++) backward_member(&k, e, T > 1);
  float* const* buf = k.buf;
  const size_t stride = k.stride;
  if (dx && c->shared_input) { /* the members' input gradients summed in member order, as nn.c does */
    const int din = net->dims[0], dout = net->dims[1];
    for (int e = 0; e < E; e++) {
      const float* dz0 = L > 1 ? buf[1] + (size_t)e * stride : dy + (size_t)e * B * dout;
      gemm_nt(B, din, dout, dz0, dout, P + net->w_off[0] + (size_t)e * din * dout, dout,
              e == 0 ? 0.0f : 1.0f, dx, din);
    }
  }
}

void nnf_gemms_only(const nn_mlp* net, const float* P, int n, const float* x, nn_cache* c, float* y,
                    const float* dy, float* grads) {
  gemms_only = 1;
  if (grads) {
    c->B = n, c->shared_input = 0, c->x = x;
    nnf_forward(net, P, n, x, (size_t)n * net->dims[0], c->z, c->a, y, (size_t)n * net->dims[net->nlayers], 1);
    nnf_backward(net, P, c, dy, grads, NULL);
  } else /* a shared input, as in prediction */
    nnf_forward(net, P, n, x, 0, c->z, c->a, y, (size_t)n * net->dims[net->nlayers], 0);
  gemms_only = 0;
}
