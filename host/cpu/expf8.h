/* expf8.h: glibc's expf on 8 floats at a time with AVX-512, bit-equal to expf (private to the CPU
 * backend: swish.c and softclamp.c include it). Static inline functions with target attributes, so
 * callers must check swish_vectorized() (swish.h) before calling them. */
#ifndef MBPO_EXPF8_H
#define MBPO_EXPF8_H

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EXPF8_X86 1

/* glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, data e_exp2f_data.c, EXP2F_TABLE_BITS 5):
 * x N / ln2 = k + r, exp(x) = 2^(k/N) (C0 r^3 + C1 r^2 + C2 r + 1), in double; the FMA build
 * (__expf_fma) fuses kd = x InvLn2N + SHIFT, r = x InvLn2N - kd and the three polynomial steps. */
static const uint64_t EXPF_T[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
#define EXPF_INVLN2N 0x40471547652b82feull /* 0x1.71547652b82fep+0 * 32 */
#define EXPF_C0 0x3ebc6af84b912394ull      /* 0x1.c6af84b912394p-5 / 32^3 */
#define EXPF_C1 0x3f2ebfce50fac4f3ull      /* 0x1.ebfce50fac4f3p-3 / 32^2 */
#define EXPF_C2 0x3f962e42ff0c52d6ull      /* 0x1.62e42ff0c52d6p-1 / 32 */
#define EXPF_SHIFT 0x4338000000000000ull   /* 0x1.8p+52 */
#define EXPF_TOP_88 0x42a                  /* lanes with (bits >> 20 & 0x7ff) above: expf itself */

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

static inline AVX512 __m512d dconst(uint64_t bits) { return _mm512_castsi512_pd(_mm512_set1_epi64((long long)bits)); }

/* glibc's expf of 8 floats (not for special lanes), before the rounding to float */
static inline AVX512 __m256 expf8(__m256 x) {
  const __m512d xd = _mm512_cvtps_pd(x), inv = dconst(EXPF_INVLN2N), shift = dconst(EXPF_SHIFT);
  const __m512d kds = _mm512_fmadd_pd(inv, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kds);
  const __m512d kd = _mm512_sub_pd(kds, shift);
  const __m512d r = _mm512_fmsub_pd(inv, xd, kd);
  const __m512i idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
  const __m512d t0 = _mm512_loadu_pd((const double*)EXPF_T), t1 = _mm512_loadu_pd((const double*)EXPF_T + 8);
  const __m512d t2 = _mm512_loadu_pd((const double*)EXPF_T + 16), t3 = _mm512_loadu_pd((const double*)EXPF_T + 24);
  const __m512d lo = _mm512_permutex2var_pd(t0, idx, t1), hi = _mm512_permutex2var_pd(t2, idx, t3);
  const __mmask8 up = _mm512_test_epi64_mask(idx, _mm512_set1_epi64(16));
  const __m512i tb = _mm512_castpd_si512(_mm512_mask_blend_pd(up, lo, hi));
  const __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(tb, _mm512_slli_epi64(ki, 47)));
  const __m512d z = _mm512_fmadd_pd(r, dconst(EXPF_C0), dconst(EXPF_C1));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(r, dconst(EXPF_C2), _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

/* mask of the lanes glibc sends off its main path */
static inline AVX512 int special8(__m256 x) {
  const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
  return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(EXPF_TOP_88))));
}

/* y with the lanes set in mask replaced by f of x's lanes: the scalar libm call for the lanes a
 * vector version leaves to it (expf8_exact, softclamp.c's log1pf8_exact) */
static inline AVX512 __m256 lanes8_scalar(__m256 x, __m256 y, unsigned mask, float (*f)(float)) {
  if (!mask) return y;
  float xs[8], ys[8];
  _mm256_storeu_ps(xs, x);
  _mm256_storeu_ps(ys, y);
  for (int k = 0; k < 8; k++)
    if (mask >> k & 1) ys[k] = f(xs[k]);
  return _mm256_loadu_ps(ys);
}

/* expf of 8 floats, bit-equal to expf */
static inline AVX512 __m256 expf8_exact(__m256 x) { return lanes8_scalar(x, expf8(x), (unsigned)special8(x), expf); }

#endif
#endif
