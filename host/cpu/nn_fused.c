/* nn_fused.c: the swish ensemble's forward and backward, element work fused into per-member GEMM
 * tasks (nn_fused.h). */
#include "nn_fused.h"

#include <math.h>
#include <string.h>

#include "gemm.h"
#include "log.h"
#include "swish.h"

/* Below this many flops a pass runs on the calling thread: a parallel region costs more. */
#define NNF_PAR_FLOPS 4e6

/* Flops of one row through every layer. */
static double row_flops(const nn_mlp* net) {
  double f = 0.0;
  for (int l = 0; l < net->nlayers; l++) f += 2.0 * net->dims[l] * net->dims[l + 1];
  return f;
}

void nnf_forward(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                 float* const* z, float* const* a, float* y, size_t y_es, int keep) {
  const int L = net->nlayers, E = net->E;
  const int par = (double)E * n * row_flops(net) > NNF_PAR_FLOPS;
#pragma omp parallel for if (par) schedule(dynamic, 1)
  for (int e = 0; e < E; e++) { /* whole members: a row split changes OpenBLAS's kernel and bits */
    for (int l = 0; l < L; l++) {
      const int din = net->dims[l], dout = net->dims[l + 1];
      const float* in = l == 0 ? x + (size_t)e * x_es : a[l] + (size_t)e * n * din;
      float* out = l == L - 1 ? y + (size_t)e * y_es : a[l + 1] + (size_t)e * n * dout;
      const float* W = P + net->w_off[l] + (size_t)e * din * dout;
      const float* b = P + net->b_off[l] + (size_t)e * dout;
      if (l < L - 1) {
        gemm_nn(n, dout, din, in, din, W, dout, 0.0f, out, dout);
        swish_bias_forward(out, b, n, dout, keep ? z[l] + (size_t)e * n * dout : NULL);
      } else {
        /* bias first, then a beta = 1 GEMM: the sums nn.c's ReLU path makes */
        for (int r = 0; r < n; r++) memcpy(out + (size_t)r * dout, b, (size_t)dout * sizeof(float));
        gemm_nn(n, dout, din, in, din, W, dout, 1.0f, out, dout);
      }
    }
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
  const int shared = c->shared_input;
  const int par = (double)E * B * 2.0 * row_flops(net) > NNF_PAR_FLOPS;
#pragma omp parallel for if (par) schedule(dynamic, 1)
  for (int e = 0; e < E; e++) {
    const float* dz = dy + (size_t)e * B * net->dims[L]; /* gradient wrt layer l's output */
    for (int l = L - 1; l >= 0; l--) {
      const int din = net->dims[l], dout = net->dims[l + 1];
      if (grads) {
        const float* in = l > 0 ? c->a[l] + (size_t)e * B * din : c->x + (shared ? 0 : (size_t)e * B * din);
        gemm_tn(din, dout, B, in, din, dz, dout, 1.0f, grads + net->w_off[l] + (size_t)e * din * dout, dout);
        if (l == L - 1) { /* the output layer's bias gradient; hidden ones are summed below */
          float* gb = grads + net->b_off[l] + (size_t)e * dout;
          for (int r = 0; r < B; r++)
            for (int j = 0; j < dout; j++) gb[j] += dz[(size_t)r * dout + j];
        }
      }
      if (l == 0) {
        if (dx && !shared)
          gemm_nt(B, din, dout, dz, dout, P + net->w_off[0] + (size_t)e * din * dout, dout, 0.0f,
                  dx + (size_t)e * B * din, din);
        break;
      }
      float* out = buf[l & 1] + (size_t)e * B * din;
      gemm_nt(B, din, dout, dz, dout, P + net->w_off[l] + (size_t)e * din * dout, dout, 0.0f, out, din);
      /* through swish: times the kept derivative, and the previous layer's bias gradient (rows in
       * order) in the same pass */
      const float* g = c->z[l - 1] + (size_t)e * B * din;
      float* gb = grads ? grads + net->b_off[l - 1] + (size_t)e * din : NULL;
      for (int r = 0; r < B; r++) {
        float* orow = out + (size_t)r * din;
        const float* grow = g + (size_t)r * din;
        if (gb)
          for (int j = 0; j < din; j++) {
            orow[j] *= grow[j];
            gb[j] += orow[j];
          }
        else
          for (int j = 0; j < din; j++) orow[j] *= grow[j];
      }
      dz = out;
    }
  }
  if (dx && shared) { /* the members' input gradients summed in member order, as nn.c does */
    const int din = net->dims[0], dout = net->dims[1];
    for (int e = 0; e < E; e++) {
      const float* dz0 = (L > 1 ? buf[1] : dy) + (size_t)e * B * dout;
      gemm_nt(B, din, dout, dz0, dout, P + net->w_off[0] + (size_t)e * din * dout, dout,
              e == 0 ? 0.0f : 1.0f, dx, din);
    }
  }
}
