/* softclamp.c: the soft log-variance bounds and the NLL terms of a row, 8 lanes at a time with the
 * scalar code's bits (softclamp.h). */
#include "softclamp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "expf8.h"
#include "model.h"
#include "swish.h"

/* ---- the scalar twins: model.h's model_softplus / model_soft_clamp and model_loss's terms ----- */

/* sigmoid(x) = softplus'(x), without overflow */
static inline float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

void softclamp_row_scalar(const float* z, const float* hi, const float* lo, int n, float* lv) {
  for (int d = 0; d < n; d++) lv[d] = model_soft_clamp(z[d], hi[d], lo[d]);
}

void nll_row_scalar(const float* mu, const float* z, const float* t, const float* hi, const float* lo, int n,
                    float s, float* sq, float* lv, float* gmu, float* gz, float* ghi, float* glo) {
  for (int d = 0; d < n; d++) {
    const float a = hi[d] - z[d];       /* lv1 = max_lv - model_softplus(a) */
    const float lv1 = hi[d] - model_softplus(a);
    const float c = lv1 - lo[d];        /* lv = min_lv + model_softplus(c) */
    const float l = lo[d] + model_softplus(c);
    const float inv = expf(-l);
    const float diff = mu[d] - t[d];
    sq[d] = diff * diff * inv;
    lv[d] = l;
    if (gmu) {
      const float glv = s * (1.0f - sq[d]); /* dL/dlv */
      const float sc = sigmoid(c), sa = sigmoid(a);
      gmu[d] = s * 2.0f * diff * inv;       /* dL/dμ */
      gz[d] = glv * sc * sa;                /* dL/dz: dlv/dlv1 = σ(c), dlv1/dz = σ(a) */
      ghi[d] = glv * sc * (1.0f - sa);      /* dL/dmax_lv through lv1 */
      glo[d] = glv * (1.0f - sc);           /* dL/dmin_lv */
    }
  }
}

#ifdef EXPF8_X86
#define VL __attribute__((target("avx512f,avx512vl,avx2,fma")))

static inline VL __m256 fbits(uint32_t b) { return _mm256_castsi256_ps(_mm256_set1_epi32((int)b)); }

/* glibc 2.36's log1pf (sysdeps/ieee754/flt-32/s_log1pf.c) for 8 lanes in [2^-29, 1], with its
 * constants, branches as blends and float operations in its order; *sp gets the lanes that leave
 * that path (outside [2^-29, 1], or |f| < 2^-20 after the reduction), which the caller recomputes
 * with log1pf itself. Lanes below 0.41422 take k = 0, f = x; the others 1 + x = 2^k (1 + f). */
static inline VL __m256 log1pf8(__m256 x, __mmask8* sp) {
  const __m256i hx = _mm256_castps_si256(x);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __mmask8 in = _mm256_cmpgt_epi32_mask(hx, _mm256_set1_epi32(0x30ffffff)) &
                      _mm256_cmplt_epi32_mask(hx, _mm256_set1_epi32(0x3f800001));
  const __mmask8 kp = _mm256_cmpgt_epi32_mask(hx, _mm256_set1_epi32(0x3ed413d6));
  /* the k path: u = 1 + x, k from its exponent, c the rounding correction over u */
  const __m256 u = _mm256_add_ps(one, x);
  const __m256i hu = _mm256_castps_si256(u);
  const __m256i k0 = _mm256_sub_epi32(_mm256_srli_epi32(hu, 23), _mm256_set1_epi32(127));
  const __mmask8 kpos = _mm256_cmpgt_epi32_mask(k0, _mm256_setzero_si256());
  __m256 c = _mm256_mask_blend_ps(kpos, _mm256_sub_ps(x, _mm256_sub_ps(u, one)), _mm256_sub_ps(one, _mm256_sub_ps(u, x)));
  c = _mm256_div_ps(c, u);
  const __m256i hm = _mm256_and_si256(hu, _mm256_set1_epi32(0x007fffff));
  const __mmask8 big = _mm256_cmpgt_epi32_mask(hm, _mm256_set1_epi32(0x3504f6));
  const __m256i k1 = _mm256_mask_add_epi32(k0, big, k0, _mm256_set1_epi32(1));
  const __m256i un = _mm256_or_si256(hm, _mm256_mask_blend_epi32(big, _mm256_set1_epi32(0x3f800000), _mm256_set1_epi32(0x3f000000)));
  const __m256i hu2 = _mm256_mask_blend_epi32(big, hm, _mm256_srli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(0x00800000), hm), 2));
  const __m256 fk = _mm256_sub_ps(_mm256_castsi256_ps(un), one);
  const __m256 f = _mm256_mask_blend_ps(kp, x, fk);
  const __m256i k = _mm256_maskz_mov_epi32(kp, k1);
  *sp = (__mmask8)(~in | (kp & _mm256_cmpeq_epi32_mask(hu2, _mm256_setzero_si256())));
  /* the common tail */
  const __m256 hfsq = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), f), f);
  const __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
  const __m256 z = _mm256_mul_ps(s, s);
  __m256 R = _mm256_add_ps(fbits(0x3e1cd04f), _mm256_mul_ps(z, fbits(0x3e178897))); /* Lp6 + z Lp7 */
  R = _mm256_add_ps(fbits(0x3e3a3325), _mm256_mul_ps(z, R));                           /* Lp5 */
  R = _mm256_add_ps(fbits(0x3e638e29), _mm256_mul_ps(z, R));                           /* Lp4 */
  R = _mm256_add_ps(fbits(0x3e924925), _mm256_mul_ps(z, R));                           /* Lp3 */
  R = _mm256_add_ps(fbits(0x3ecccccd), _mm256_mul_ps(z, R));                           /* Lp2 */
  R = _mm256_add_ps(fbits(0x3f2aaaab), _mm256_mul_ps(z, R));                           /* Lp1 */
  R = _mm256_mul_ps(z, R);
  const __m256 shr = _mm256_mul_ps(s, _mm256_add_ps(hfsq, R));
  const __m256 r0 = _mm256_sub_ps(f, _mm256_sub_ps(hfsq, shr)); /* k == 0 */
  const __m256 kf = _mm256_cvtepi32_ps(k);
  const __m256 klo = _mm256_add_ps(_mm256_mul_ps(kf, fbits(0x3717f7d1)), c); /* k ln2_lo + c */
  const __m256 r1 = _mm256_sub_ps(_mm256_mul_ps(kf, fbits(0x3f317180)),
                                  _mm256_sub_ps(_mm256_sub_ps(hfsq, _mm256_add_ps(shr, klo)), f));
  return _mm256_mask_blend_ps(_mm256_cmpeq_epi32_mask(k, _mm256_setzero_si256()), r1, r0);
}

/* log1pf of the lanes in `valid`, bit-equal to log1pf */
static inline VL __m256 log1pf8_exact(__m256 x, __mmask8 valid) {
  __mmask8 sp;
  const __m256 y = log1pf8(x, &sp);
  return lanes8_scalar(x, y, (unsigned)(sp & valid), log1pf);
}

/* model_softplus of 8 lanes; *e gets expf(-|x|), which sigmoid(x) uses as well (expf(±0) = 1) */
static inline VL __m256 softplus8(__m256 x, __mmask8 valid, __m256* e) {
  const __mmask8 pos = _mm256_cmp_ps_mask(x, _mm256_setzero_ps(), _CMP_GT_OQ);
  const __m256 t = _mm256_mask_blend_ps(pos, x, _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)));
  *e = expf8_exact(t);
  const __m256 l = log1pf8_exact(*e, valid);
  return _mm256_mask_blend_ps(pos, l, _mm256_add_ps(x, l));
}

/* sigmoid(x) from e = expf(-|x|) */
static inline VL __m256 sigmoid8(__m256 x, __m256 e) {
  const __m256 one = _mm256_set1_ps(1.0f), t = _mm256_add_ps(one, e);
  const __mmask8 ge = _mm256_cmp_ps_mask(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_mask_blend_ps(ge, _mm256_div_ps(e, t), _mm256_div_ps(one, t));
}

static inline __mmask8 tail(int left) { return left >= 8 ? 0xff : (__mmask8)((1u << left) - 1); }

static VL void softclamp_avx512(const float* z, const float* hi, const float* lo, int n, float* lv) {
  for (int d = 0; d < n; d += 8) {
    const __mmask8 m = tail(n - d);
    const __m256 h = _mm256_maskz_loadu_ps(m, hi + d), l = _mm256_maskz_loadu_ps(m, lo + d);
    __m256 e;
    const __m256 lv1 = _mm256_sub_ps(h, softplus8(_mm256_sub_ps(h, _mm256_maskz_loadu_ps(m, z + d)), m, &e));
    _mm256_mask_storeu_ps(lv + d, m, _mm256_add_ps(l, softplus8(_mm256_sub_ps(lv1, l), m, &e)));
  }
}

/* Rows of n <= SC_MAXN values (z at stride zs, lv at stride ls), 8 rows a block: one softplus chain
 * is some 250 cycles of latency, so the block's 8 n values are run stage by stage (each stage's
 * vectors independent of each other), not row by row. */
#define SC_MAXN 64
static VL void softclamp_rows_avx512(const float* z, long zs, const float* hi, const float* lo, int n, long rows,
                                     float* lv, long ls) {
  float he[8 * SC_MAXN], le[8 * SC_MAXN], buf[8 * SC_MAXN];
  const int nv = n; /* 8 rows of n values: n vectors of 8 */
  for (int k = 0; k < 8 * n; k++) he[k] = hi[k % n], le[k] = lo[k % n];
  long r = 0;
  for (; r + 8 <= rows; r += 8) {
    for (int i = 0; i < 8; i++) memcpy(buf + i * n, z + (r + i) * zs, sizeof(float) * (size_t)n);
    for (int v = 0; v < nv; v++) { /* lv1 = hi - softplus(hi - z) */
      const __m256 h = _mm256_loadu_ps(he + 8 * v);
      __m256 e;
      _mm256_storeu_ps(buf + 8 * v, _mm256_sub_ps(h, softplus8(_mm256_sub_ps(h, _mm256_loadu_ps(buf + 8 * v)), 0xff, &e)));
    }
    for (int v = 0; v < nv; v++) { /* lv = lo + softplus(lv1 - lo) */
      const __m256 l = _mm256_loadu_ps(le + 8 * v);
      __m256 e;
      _mm256_storeu_ps(buf + 8 * v, _mm256_add_ps(l, softplus8(_mm256_sub_ps(_mm256_loadu_ps(buf + 8 * v), l), 0xff, &e)));
    }
    for (int i = 0; i < 8; i++) memcpy(lv + (r + i) * ls, buf + i * n, sizeof(float) * (size_t)n);
  }
  for (; r < rows; r++) softclamp_avx512(z + r * zs, hi, lo, n, lv + r * ls);
}

static VL void nll_avx512(const float* mu, const float* z, const float* t, const float* hi, const float* lo,
                          int n, float s, float* sq, float* lv, float* gmu, float* gz, float* ghi, float* glo) {
  const __m256 one = _mm256_set1_ps(1.0f), vs = _mm256_set1_ps(s), s2 = _mm256_set1_ps(s * 2.0f);
  for (int d = 0; d < n; d += 8) {
    const __mmask8 m = tail(n - d);
    const __m256 h = _mm256_maskz_loadu_ps(m, hi + d), lw = _mm256_maskz_loadu_ps(m, lo + d);
    const __m256 a = _mm256_sub_ps(h, _mm256_maskz_loadu_ps(m, z + d));
    __m256 ea, ec;
    const __m256 lv1 = _mm256_sub_ps(h, softplus8(a, m, &ea));
    const __m256 c = _mm256_sub_ps(lv1, lw);
    const __m256 l = _mm256_add_ps(lw, softplus8(c, m, &ec));
    const __m256 inv = expf8_exact(_mm256_xor_ps(l, _mm256_set1_ps(-0.0f)));
    const __m256 diff = _mm256_sub_ps(_mm256_maskz_loadu_ps(m, mu + d), _mm256_maskz_loadu_ps(m, t + d));
    const __m256 q = _mm256_mul_ps(_mm256_mul_ps(diff, diff), inv);
    _mm256_mask_storeu_ps(sq + d, m, q);
    _mm256_mask_storeu_ps(lv + d, m, l);
    if (gmu) {
      const __m256 glv = _mm256_mul_ps(vs, _mm256_sub_ps(one, q));
      const __m256 sc = sigmoid8(c, ec), sa = sigmoid8(a, ea), gsc = _mm256_mul_ps(glv, sc);
      _mm256_mask_storeu_ps(gmu + d, m, _mm256_mul_ps(_mm256_mul_ps(s2, diff), inv));
      _mm256_mask_storeu_ps(gz + d, m, _mm256_mul_ps(gsc, sa));
      _mm256_mask_storeu_ps(ghi + d, m, _mm256_mul_ps(gsc, _mm256_sub_ps(one, sa)));
      _mm256_mask_storeu_ps(glo + d, m, _mm256_mul_ps(glv, _mm256_sub_ps(one, sc)));
    }
  }
}

static VL void log1pf_avx512(const float* x, float* y, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, log1pf8_exact(_mm256_loadu_ps(x + i), 0xff));
  for (; i < n; i++) y[i] = log1pf(x[i]);
}

/* the masked 8-lane loads and stores need AVX-512VL besides swish's set */
static int vec(void) {
  static int v = -1;
  if (v < 0) v = swish_vectorized() && __builtin_cpu_supports("avx512vl");
  return v;
}
#endif

void softclamp_row(const float* z, const float* hi, const float* lo, int n, float* lv) {
#ifdef EXPF8_X86
  if (vec()) {
    softclamp_avx512(z, hi, lo, n, lv);
    return;
  }
#endif
  softclamp_row_scalar(z, hi, lo, n, lv);
}

void softclamp_rows(const float* z, long zs, const float* hi, const float* lo, int n, long rows, float* lv,
                    long ls) {
#ifdef EXPF8_X86
  if (vec() && n <= SC_MAXN) {
    softclamp_rows_avx512(z, zs, hi, lo, n, rows, lv, ls);
    return;
  }
#endif
  for (long r = 0; r < rows; r++) softclamp_row(z + r * zs, hi, lo, n, lv + r * ls);
}

void nll_row(const float* mu, const float* z, const float* t, const float* hi, const float* lo, int n,
             float s, float* sq, float* lv, float* gmu, float* gz, float* ghi, float* glo) {
#ifdef EXPF8_X86
  if (vec()) {
    nll_avx512(mu, z, t, hi, lo, n, s, sq, lv, gmu, gz, ghi, glo);
    return;
  }
#endif
  nll_row_scalar(mu, z, t, hi, lo, n, s, sq, lv, gmu, gz, ghi, glo);
}

void softclamp_log1pf(const float* x, float* y, long n) {
#ifdef EXPF8_X86
  if (vec()) {
    log1pf_avx512(x, y, n);
    return;
  }
#endif
  for (long i = 0; i < n; i++) y[i] = log1pf(x[i]);
}
