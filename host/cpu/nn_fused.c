/* nn_fused.c: the swish ensemble's forward and backward, element work fused into per-member GEMM
 * tasks (nn_fused.h). */
#include "nn_fused.h"

#include <math.h>
#include <string.h>

#include "gemm.h"
#include "log.h"

/* Below this many flops a pass runs on the calling thread: a parallel region costs more. */
#define NNF_PAR_FLOPS 4e6

/* Flops of one row through every layer. */
static double row_flops(const nn_mlp* net) {
  double f = 0.0;
  for (int l = 0; l < net->nlayers; l++) f += 2.0 * net->dims[l] * net->dims[l + 1];
  return f;
}

/* v = o + b; o = swish(v) = v / (1 + e^-v); with g, g = swish'(v) = s (1 + v (1 - s)), s = 1 / (1 + e^-v):
 * the expressions of nn_swish and nn_swish_grad, so the same bits, from one expf. */
static void bias_swish(float* o, const float* b, int rows, int n, float* g) {
  for (int r = 0; r < rows; r++) {
    float* orow = o + (size_t)r * n;
    if (g) {
      float* grow = g + (size_t)r * n;
      for (int j = 0; j < n; j++) {
        const float v = orow[j] + b[j];
        const float t = 1.0f + expf(-v);
        const float s = 1.0f / t;
        orow[j] = v / t;
        grow[j] = s * (1.0f + v * (1.0f - s));
      }
    } else {
      for (int j = 0; j < n; j++) {
        const float v = orow[j] + b[j];
        orow[j] = v / (1.0f + expf(-v));
      }
    }
  }
}

void nnf_forward(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                 float* const* z, float* const* a, float* y, size_t y_es, int keep) {
  const int L = net->nlayers, E = net->E;
  const int rb = n, nblk = 1;
  const int par = (double)E * n * row_flops(net) > NNF_PAR_FLOPS;
#pragma omp parallel for if (par) schedule(dynamic, 1)
  for (int t = 0; t < E * nblk; t++) {
    const int e = t / nblk, r0 = (t % nblk) * rb, rows = n - r0 < rb ? n - r0 : rb;
    for (int l = 0; l < L; l++) {
      const int din = net->dims[l], dout = net->dims[l + 1];
      const float* in = l == 0 ? x + (size_t)e * x_es + (size_t)r0 * din
                               : a[l] + ((size_t)e * n + r0) * din;
      float* out = l == L - 1 ? y + (size_t)e * y_es + (size_t)r0 * dout
                              : a[l + 1] + ((size_t)e * n + r0) * dout;
      const float* W = P + net->w_off[l] + (size_t)e * din * dout;
      const float* b = P + net->b_off[l] + (size_t)e * dout;
      if (l < L - 1) {
        gemm_nn(rows, dout, din, in, din, W, dout, 0.0f, out, dout);
        bias_swish(out, b, rows, dout, keep ? z[l] + ((size_t)e * n + r0) * dout : NULL);
      } else {
        for (int r = 0; r < rows; r++) memcpy(out + (size_t)r * dout, b, (size_t)dout * sizeof(float));
        gemm_nn(rows, dout, din, in, din, W, dout, 1.0f, out, dout);
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
