/* swish.c: bias + swish with glibc's expf evaluated 8 lanes at a time (swish.h). */
#include "swish.h"

#include <math.h>
#include <stdint.h>

#include "expf8.h"
#ifdef EXPF8_X86
#define SWISH_X86 1
#endif

/* the scalar loop: the expressions of nn_swish / nn_swish_grad */
static void forward_scalar(float* o, const float* b, int n, float* g) {
  for (int j = 0; j < n; j++) {
    const float v = o[j] + b[j];
    const float t = 1.0f + expf(-v);
    o[j] = v / t;
    if (g) {
      const float s = 1.0f / t;
      g[j] = s * (1.0f + v * (1.0f - s));
    }
  }
}

#ifdef SWISH_X86
static AVX512 void forward_avx512(float* o, const float* b, int n, float* g) {
  const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_add_ps(_mm256_loadu_ps(o + j), _mm256_loadu_ps(b + j));
    const __m256 t = _mm256_add_ps(one, expf8_exact(_mm256_xor_ps(v, neg)));
    _mm256_storeu_ps(o + j, _mm256_div_ps(v, t));
    if (g) {
      const __m256 s = _mm256_div_ps(one, t);
      _mm256_storeu_ps(g + j, _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(v, _mm256_sub_ps(one, s)))));
    }
  }
  if (j < n) forward_scalar(o + j, b + j, n - j, g ? g + j : NULL);
}

static AVX512 void expf_avx512(const float* x, float* e, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(e + i, expf8_exact(_mm256_loadu_ps(x + i)));
  for (; i < n; i++) e[i] = expf(x[i]);
}
#endif

int swish_vectorized(void) {
#ifdef SWISH_X86
  static int v = -1;
  if (v < 0) v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return v;
#else
  return 0;
#endif
}

void swish_bias_forward(float* o, const float* b, int rows, int n, float* g) {
  const int vec = swish_vectorized();
  for (int r = 0; r < rows; r++) {
    float* orow = o + (size_t)r * n;
    float* grow = g ? g + (size_t)r * n : NULL;
#ifdef SWISH_X86
    if (vec) {
      forward_avx512(orow, b, n, grow);
      continue;
    }
#endif
    (void)vec;
    forward_scalar(orow, b, n, grow);
  }
}

void swish_expf(const float* x, float* e, long n) {
#ifdef SWISH_X86
  if (swish_vectorized()) {
    expf_avx512(x, e, n);
    return;
  }
#endif
  for (long i = 0; i < n; i++) e[i] = expf(x[i]);
}
