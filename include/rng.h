/* rng.h: counter-based random numbers, a pure function of (key, counter).
 *
 * Every random number in the engine is philox4x32_10(key = (seed, stream), counter = (c0, c1, c2, c3)).
 * No generator state is carried between calls, so the CPU and CUDA backends draw the same numbers
 * for the same (seed, stream, phase, step, index), and a resumed run continues the same streams.
 *
 * Indexed draws: a "virtual stream" is fixed by (key, c0, c1); its n-th 32-bit word lives in block
 * n >> 2 (c2 = high 32 bits of the block, c3 = low 32 bits), lane n & 3. Uniform, integer and normal
 * draws at index n all read that word (normals read the lane pair holding n, Box-Muller), so any
 * thread can compute draw n without the others. */
#ifndef MBPO_RNG_H
#define MBPO_RNG_H

#include <math.h>
#include <stdint.h>

#include "hd.h"

#ifdef __CUDACC__
#include <curand_philox4x32_x.h>
#endif

/** Streams: the second key word. One per consumer so that draws never overlap. */
enum rng_stream {
  RNG_ENV_RESET = 1,    /* training env reset noise: c0 = env index, c1 = episode */
  RNG_EVAL_RESET = 2,   /* evaluation env reset noise: c0 = epoch, c1 = episode */
  RNG_EXPLORE = 3,      /* uniform exploration actions: c0 = 0, c1 = env step */
  RNG_ACT = 4,          /* policy noise when acting in the env: c0 = 0, c1 = env step */
  RNG_INIT = 5,         /* parameter initialisation: c0 = network id, c1 = layer */
  RNG_MODEL_SPLIT = 6,  /* holdout permutation: c0 = model fit index */
  RNG_MODEL_BOOT = 7,   /* bootstrap indices: c0 = model fit index, c1 = member */
  RNG_MODEL_SHUFFLE = 8,/* per-epoch shuffles: c0 = model fit index, c1 = epoch * E + member */
  RNG_ROLLOUT = 9,      /* rollout starts, policy noise, elite picks, model noise */
  RNG_SAC_BATCH = 10,   /* minibatch indices: c0 = update index (low), c1 = (high) */
  RNG_SAC_NOISE = 11,   /* reparameterisation noise: c0 = update index (low), c1 = (high) */
  RNG_ANALYZE = 12,     /* `mbpo analyze`'s env resets, actions and model samples: c0 = a kind in the
                           top 4 bits and its index below (analyze_ckpt.h), c1 = episode or step */
  RNG_VALUE_EXPANSION = 13, /* value expansion's policy noise, elite picks, model noise (vexp.h) */
  RNG_EVAL_MODEL = 14,  /* eval.model_return's elite picks and model noise: c0 = epoch (evaluate.h) */
  RNG_SUMMARY = 0x424F4F54, /* `mbpo summary`'s bootstrap, with the fixed seed word SUMMARY_RNG_SEED
                               (summary.h): c0 = resample, c1 = 0 */
  RNG_TEST = 100        /* tests and benchmarks */
};

/** Random key: the run's seed and a stream. */
typedef struct rng_key {
  uint32_t seed;
  uint32_t stream;
} rng_key;

/** Four 32-bit words. */
typedef struct rng_u4 {
  uint32_t x[4];
} rng_u4;

MBPO_HD static uint32_t rng_mulhilo_(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

/** Philox4x32-10 (Salmon et al. 2011, Random123): 10 rounds on counter c with key (k0, k1). */
MBPO_HD static rng_u4 rng_philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2,
                                 uint32_t c3) {
#if defined(__CUDA_ARCH__)
  /* on the device: cuRAND's Philox4x32-10 (the same function; tests/test_dx.c holds them equal) */
  uint4 o = curand_Philox4x32_10(make_uint4(c0, c1, c2, c3), make_uint2(k0, k1));
  rng_u4 out = {{o.x, o.y, o.z, o.w}};
  return out;
#else
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = rng_mulhilo_(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = rng_mulhilo_(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  rng_u4 out = {{c0, c1, c2, c3}};
  return out;
#endif
}

/** The block of four words holding index n of the virtual stream (key, c0, c1). */
MBPO_HD static rng_u4 rng_block(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  uint64_t b = n >> 2;
  return rng_philox(k.seed, k.stream, c0, c1, (uint32_t)(b >> 32), (uint32_t)b);
}

/** Word n of the virtual stream (key, c0, c1). */
MBPO_HD static uint32_t rng_u32(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  return rng_block(k, c0, c1, n).x[n & 3];
}

/** A word to a float uniform in the open interval (0, 1): 24 bits, centred in its cell. */
MBPO_HD static float rng_to_unit(uint32_t w) {
  return (float)(w >> 8) * (1.0f / 16777216.0f) + (0.5f / 16777216.0f);
}

/** Uniform float in (0, 1), draw n of the stream (key, c0, c1). */
MBPO_HD static float rng_uniform(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  return rng_to_unit(rng_u32(k, c0, c1, n));
}

/** Uniform double in [0, 1) with 53 bits, from words 2n and 2n + 1 of the stream (key, c0, c1). */
MBPO_HD static double rng_uniform64(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  rng_u4 b = rng_block(k, c0, c1, 2 * n);
  uint32_t hi = b.x[(2 * n) & 3], lo = b.x[(2 * n + 1) & 3];
  return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) * (1.0 / 9007199254740992.0);
}

/** Uniform integer in [0, m), draw n of the stream (key, c0, c1): the high word of w * m
 *  (bias below m / 2^32, negligible for pool sizes). */
MBPO_HD static uint32_t rng_index(rng_key k, uint32_t c0, uint32_t c1, uint64_t n, uint32_t m) {
  return (uint32_t)(((uint64_t)rng_u32(k, c0, c1, n) * (uint64_t)m) >> 32);
}

/** Standard normal, draw n of the stream (key, c0, c1): Box-Muller on the lane pair holding n
 *  (lanes 0,1 give cos, sin of the first pair; lanes 2,3 of the second). */
MBPO_HD static float rng_normal(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  rng_u4 b = rng_block(k, c0, c1, n);
  int lane = (int)(n & 3), p = lane & 2;
  float u1 = rng_to_unit(b.x[p]), u2 = rng_to_unit(b.x[p + 1]);
  float r = sqrtf(-2.0f * logf(u1));
  float a = 6.28318530717958647692f * u2;
  return (lane & 1) ? r * sinf(a) : r * cosf(a);
}

/** Standard normal in double precision from draw n (for environment reset noise). */
MBPO_HD static double rng_normal64(rng_key k, uint32_t c0, uint32_t c1, uint64_t n) {
  double u1 = 1.0 - rng_uniform64(k, c0, c1, 2 * n); /* (0, 1] */
  double u2 = rng_uniform64(k, c0, c1, 2 * n + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.28318530717958647692 * u2);
}

#endif
