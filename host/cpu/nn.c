/* nn.c: ensemble MLPs on the CPU (nn.h), the reference for kernels/nn.cu.
 *
 * Swish networks (the dynamics model) go through nn_fused.c: per-member tasks with the element work
 * fused into each GEMM's output. ReLU networks (SAC) stay here: products through OpenBLAS
 * (cblas_sgemm, one call per member and layer; OpenBLAS threads them), the elementwise work (bias,
 * activation, their gradients) in plain loops, OpenMP-parallel when large.
 * Parameter layout: for each layer l, weights [E][in][out] at w_off[l], then biases [E][out] at
 * b_off[l]; layers follow each other. */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nn_fused.h"

/* Elementwise loops longer than this run OpenMP-parallel: only very large ones (model rollouts),
 * since a parallel region costs more than a short memory-bound loop, badly so on a loaded machine. */
#define NN_OMP_MIN (1 << 20)

nn_mlp nn_mlp_make(int E, int nlayers, const int* dims, int act) {
  if (E < 1 || nlayers < 1 || nlayers > NN_MAX_LAYERS)
    mbpo_fatal("nn_mlp_make: bad shape (E %d, %d layers; at most %d)", E, nlayers, NN_MAX_LAYERS);
  if (act != NN_RELU && act != NN_SWISH) mbpo_fatal("nn_mlp_make: unknown activation %d", act);
  nn_mlp n;
  memset(&n, 0, sizeof n);
  n.E = E;
  n.nlayers = nlayers;
  n.act = act;
  size_t off = 0;
  for (int l = 0; l <= nlayers; l++) {
    if (dims[l] < 1) mbpo_fatal("nn_mlp_make: dims[%d] = %d", l, dims[l]);
    n.dims[l] = dims[l];
  }
  for (int l = 0; l < nlayers; l++) {
    n.w_off[l] = off;
    off += (size_t)E * (size_t)dims[l] * (size_t)dims[l + 1];
    n.b_off[l] = off;
    off += (size_t)E * (size_t)dims[l + 1];
  }
  n.nparams = off;
  return n;
}

float* nn_alloc(size_t n) {
  size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
  if (bytes == 0) bytes = 64;
  float* p = aligned_alloc(64, bytes);
  if (!p) mbpo_fatal("out of memory (%zu bytes)", bytes);
  memset(p, 0, bytes);
  return p;
}

void nn_zero(float* p, size_t n) { memset(p, 0, n * sizeof(float)); }

static int max_hidden(const nn_mlp* net) {
  int m = 1;
  for (int l = 1; l < net->nlayers; l++)
    if (net->dims[l] > m) m = net->dims[l];
  return m;
}

nn_cache* nn_cache_alloc(const nn_mlp* net, int Bmax) {
  if (Bmax < 1) mbpo_fatal("nn_cache_alloc: Bmax %d", Bmax);
  nn_cache* c = calloc(1, sizeof *c);
  if (!c) mbpo_fatal("out of memory");
  c->Bmax = Bmax;
  size_t EB = (size_t)net->E * (size_t)Bmax, L = (size_t)net->nlayers;
  /* one allocation: a[0], a[1..L-1], z[0..L-2], a[L], scratch (2 hidden-sized buffers) */
  size_t total = EB * (size_t)net->dims[0] + EB * (size_t)net->dims[L] + 2 * EB * (size_t)max_hidden(net);
  for (size_t l = 1; l < L; l++) total += 2 * EB * (size_t)net->dims[l];
  float* p = nn_alloc(total);
  c->a[0] = p;
  p += EB * (size_t)net->dims[0];
  for (size_t l = 1; l < L; l++) {
    c->a[l] = p;
    p += EB * (size_t)net->dims[l];
    c->z[l - 1] = p;
    p += EB * (size_t)net->dims[l];
  }
  c->a[L] = p;
  p += EB * (size_t)net->dims[L];
  c->scratch = p;
  return c;
}

void nn_cache_free(nn_cache* c) {
  if (!c) return;
  free(c->a[0]); /* the one allocation */
  free(c);
}

float nn_swish(float x) { return x / (1.0f + expf(-x)); }

float nn_swish_grad(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s * (1.0f + x * (1.0f - s));
}

/* a = act(z) over n floats */
static void act_forward(int act, const float* z, float* a, size_t n) {
  if (act == NN_RELU) {
#pragma omp parallel for if (n > NN_OMP_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = z[i] > 0.0f ? z[i] : 0.0f;
  } else {
#pragma omp parallel for if (n > NN_OMP_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = nn_swish(z[i]);
  }
}

/* d *= act'(z) over n floats (ReLU: derivative 0 at z = 0) */
static void act_backward(int act, const float* z, float* d, size_t n) {
  if (act == NN_RELU) {
#pragma omp parallel for if (n > NN_OMP_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) d[i] = z[i] > 0.0f ? d[i] : 0.0f;
  } else {
#pragma omp parallel for if (n > NN_OMP_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) d[i] *= nn_swish_grad(z[i]);
  }
}

/* The forward of n rows. Member e reads its input at x + e * x_es (rows of dims[0]; x_es = 0 for a
 * shared input) and writes its output at y + e * y_es (rows of dims[L]). Hidden pre-activations go
 * to z[l] and activations to a[l + 1], member e at offset e * n * dims. */
static void forward_rows(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                         float* const* z, float* const* a, float* y, size_t y_es, int keep) {
  const int L = net->nlayers, E = net->E;
  if (net->act == NN_SWISH) { /* the dynamics model: fused, per-member tasks (nn_fused.h) */
    nnf_forward(net, P, n, x, x_es, z, a, y, y_es, keep);
    return;
  }
  for (int l = 0; l < L; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    for (int e = 0; e < E; e++) {
      const float* in = l == 0 ? x + (size_t)e * x_es : a[l] + (size_t)e * n * din;
      float* out = l == L - 1 ? y + (size_t)e * y_es : z[l] + (size_t)e * n * dout;
      const float* W = P + net->w_off[l] + (size_t)e * din * dout;
      const float* b = P + net->b_off[l] + (size_t)e * dout;
      for (int r = 0; r < n; r++) memcpy(out + (size_t)r * dout, b, (size_t)dout * sizeof(float));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dout, din, 1.0f, in, din, W, dout,
                  1.0f, out, dout);
    }
    if (l < L - 1) act_forward(net->act, z[l], a[l + 1], (size_t)E * n * dout);
  }
}

void nn_forward_chunked(const nn_mlp* net, const float* params, int B, const float* x,
                        int shared_input, nn_cache* c, float* y) {
  const int E = net->E, din = net->dims[0], dout = net->dims[net->nlayers];
  for (int r0 = 0; r0 < B; r0 += c->Bmax) {
    int n = B - r0 < c->Bmax ? B - r0 : c->Bmax;
    const float* xc = x + (size_t)r0 * din;
    size_t x_es = shared_input ? 0 : (size_t)B * din;
    if (n == B) { /* one chunk: write y directly */
      forward_rows(net, params, n, xc, x_es, c->z, c->a, y, (size_t)B * dout, 0);
      continue;
    }
    forward_rows(net, params, n, xc, x_es, c->z, c->a, c->a[net->nlayers], (size_t)n * dout, 0);
    for (int e = 0; e < E; e++)
      memcpy(y + ((size_t)e * B + r0) * dout, c->a[net->nlayers] + (size_t)e * n * dout,
             (size_t)n * dout * sizeof(float));
  }
  c->B = 0; /* nothing kept for a backward */
  c->x = NULL;
}

void nn_forward(const nn_mlp* net, const float* params, int B, const float* x, int shared_input,
                nn_cache* c, float* y) {
  if (!c) {
    nn_cache* t = nn_cache_alloc(net, B < NN_CHUNK ? B : NN_CHUNK);
    nn_forward_chunked(net, params, B, x, shared_input, t, y);
    nn_cache_free(t);
    return;
  }
  if (B > c->Bmax) mbpo_fatal("nn_forward: %d rows exceed the cache's %d", B, c->Bmax);
  c->B = B;
  c->shared_input = shared_input;
  c->x = x;
  forward_rows(net, params, B, x, shared_input ? 0 : (size_t)B * net->dims[0], c->z, c->a, y,
               (size_t)B * net->dims[net->nlayers], 1);
}

void nn_backward(const nn_mlp* net, const float* params, nn_cache* c, const float* dy,
                 float* grads, float* dx) {
  const int L = net->nlayers, E = net->E, B = c->B;
  if (!c->x) mbpo_fatal("nn_backward without a cached forward");
  if (net->act == NN_SWISH) {
    nnf_backward(net, params, c, dy, grads, dx);
    return;
  }
  const size_t half = (size_t)E * c->Bmax * max_hidden(net);
  float* buf[2] = {c->scratch, c->scratch + half};
  const float* dz = dy; /* gradient wrt the output of layer l (pre-activation for hidden layers) */
  for (int l = L - 1; l >= 0; l--) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    if (grads) {
      for (int e = 0; e < E; e++) {
        const float* in = l > 0 ? c->a[l] + (size_t)e * B * din
                                : c->x + (c->shared_input ? 0 : (size_t)e * B * din);
        const float* dze = dz + (size_t)e * B * dout;
        float* gW = grads + net->w_off[l] + (size_t)e * din * dout;
        float* gb = grads + net->b_off[l] + (size_t)e * dout;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, din, dout, B, 1.0f, in, din, dze, dout,
                    1.0f, gW, dout);
        for (int r = 0; r < B; r++)
          for (int j = 0; j < dout; j++) gb[j] += dze[(size_t)r * dout + j];
      }
    }
    if (l == 0 && !dx) break;
    float* out = l > 0 ? buf[l & 1] : dx;
    for (int e = 0; e < E; e++) {
      const float* W = params + net->w_off[l] + (size_t)e * din * dout;
      const float* dze = dz + (size_t)e * B * dout;
      float beta = 0.0f;
      float* o = out + (size_t)e * B * din;
      if (l == 0 && c->shared_input) { /* shared input: sum the members' input gradients */
        o = out;
        beta = e == 0 ? 0.0f : 1.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, din, dout, 1.0f, dze, dout, W, dout,
                  beta, o, din);
    }
    if (l > 0) act_backward(net->act, c->z[l - 1], out, (size_t)E * B * din);
    dz = out;
  }
}

void nn_init_truncnormal(const nn_mlp* net, float* params, rng_key key, uint32_t net_id) {
  for (int l = 0; l < net->nlayers; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    const size_t size = (size_t)net->E * din * dout;
    const float sd = 1.0f / (2.0f * sqrtf((float)din));
    float* W = params + net->w_off[l];
#pragma omp parallel for if (size > NN_OMP_MIN) schedule(static)
    for (size_t i = 0; i < size; i++) {
      float v = 0.0f; /* after 64 rejections (probability 0.0455^64) the weight is 0 */
      for (uint64_t k = 0; k < 64; k++) {
        float z = rng_normal(key, net_id, (uint32_t)l, i + k * size);
        if (fabsf(z) <= 2.0f) {
          v = z * sd;
          break;
        }
      }
      W[i] = v;
    }
    nn_zero(params + net->b_off[l], (size_t)net->E * dout);
  }
}

void nn_init_glorot(const nn_mlp* net, float* params, rng_key key, uint32_t net_id) {
  for (int l = 0; l < net->nlayers; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    const size_t size = (size_t)net->E * din * dout;
    const float lim = sqrtf(6.0f / (float)(din + dout));
    float* W = params + net->w_off[l];
    for (size_t i = 0; i < size; i++)
      W[i] = (2.0f * rng_uniform(key, net_id, (uint32_t)l, i) - 1.0f) * lim;
    nn_zero(params + net->b_off[l], (size_t)net->E * dout);
  }
}

nn_adam* nn_adam_alloc(size_t n, float lr) {
  nn_adam* a = calloc(1, sizeof *a);
  if (!a) mbpo_fatal("out of memory");
  a->n = n;
  a->lr = lr;
  a->b1 = 0.9f;
  a->b2 = 0.999f;
  a->eps = 1e-8f;
  a->t = 0;
  a->m = nn_alloc(n);
  a->v = nn_alloc(n);
  return a;
}

void nn_adam_free(nn_adam* a) {
  if (!a) return;
  free(a->m);
  free(a->v);
  free(a);
}

/* One Adam update of elements [i0, i1): the scalar expressions, in this order (no FMA: the build is
 * ISO C, so no contraction), which the vector path below repeats operation for operation. */
static void adam_scalar(float* m, float* v, float* p, const float* g, size_t i0, size_t i1, float b1,
                        float b2, float lr_t, float eps) {
  for (size_t i = i0; i < i1; i++) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 16 lanes of adam_scalar: IEEE add, mul, div and sqrt are correctly rounded in every lane, so the
 * bits are the scalar loop's (GCC leaves that loop scalar: sqrtf may set errno). */
__attribute__((target("avx512f"))) static void adam_avx512(float* m, float* v, float* p, const float* g,
                                                            size_t i0, size_t i1, float b1, float b2,
                                                            float lr_t, float eps) {
  const __m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2), c1 = _mm512_set1_ps(1.0f - b1),
               c2 = _mm512_set1_ps(1.0f - b2), lr = _mm512_set1_ps(lr_t), ve = _mm512_set1_ps(eps);
  size_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512 gi = _mm512_loadu_ps(g + i);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), ve));
    _mm512_storeu_ps(p + i, _mm512_sub_ps(_mm512_loadu_ps(p + i), step));
  }
  adam_scalar(m, v, p, g, i, i1, b1, b2, lr_t, eps);
}
#define NN_ADAM_VEC 1
#endif

/* Adam updates at least this long run OpenMP-parallel (the model's 0.9 M parameters; SAC's are
 * far fewer): elementwise, so the bits do not depend on the split. */
#define NN_ADAM_PAR (1 << 18)

void nn_adam_step(nn_adam* a, float* params, const float* g) {
  a->t++;
  /* TF1 AdamOptimizer: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), in double then rounded once */
  const double bc1 = 1.0 - pow((double)a->b1, (double)a->t);
  const double bc2 = 1.0 - pow((double)a->b2, (double)a->t);
  const float lr_t = (float)((double)a->lr * sqrt(bc2) / bc1);
  const float b1 = a->b1, b2 = a->b2, eps = a->eps;
  float *m = a->m, *v = a->v;
  const size_t n = a->n, blk = 16384;
  int vec = 0;
#ifdef NN_ADAM_VEC
  vec = __builtin_cpu_supports("avx512f");
#endif
  const long nb = (long)((n + blk - 1) / blk);
#pragma omp parallel for if (n >= NN_ADAM_PAR) schedule(static)
  for (long k = 0; k < nb; k++) {
    const size_t i0 = (size_t)k * blk, i1 = i0 + blk < n ? i0 + blk : n;
#ifdef NN_ADAM_VEC
    if (vec) {
      adam_avx512(m, v, params, g, i0, i1, b1, b2, lr_t, eps);
      continue;
    }
#endif
    (void)vec;
    adam_scalar(m, v, params, g, i0, i1, b1, b2, lr_t, eps);
  }
}

void nn_polyak(float* target, const float* src, size_t n, float tau) {
  const float keep = 1.0f - tau;
#pragma omp parallel for if (n > NN_OMP_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) target[i] = tau * src[i] + keep * target[i];
}
