/* test_rng.c: Philox4x32-10 known answers (Random123 kat_vectors) and the derived draws. */
#include "rng.h"
#include "test.h"

static void test_philox_kat(void) {
  /* Random123 kat_vectors, philox4x32 10 rounds: ctr, key -> out */
  static const uint32_t v[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1}};
  for (int i = 0; i < 3; i++) {
    rng_u4 r = rng_philox(v[i][4], v[i][5], v[i][0], v[i][1], v[i][2], v[i][3]);
    for (int j = 0; j < 4; j++)
      CHECK(r.x[j] == v[i][6 + j], "vector %d word %d: %08x != %08x", i, j, r.x[j], v[i][6 + j]);
  }
}

static void test_uniform_moments(void) {
  rng_key k = {7, RNG_TEST};
  double s = 0, s2 = 0, mn = 1, mx = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double u = rng_uniform(k, 1, 2, (uint64_t)i);
    s += u;
    s2 += u * u;
    if (u < mn) mn = u;
    if (u > mx) mx = u;
  }
  double m = s / n, var = s2 / n - m * m;
  CHECK(fabs(m - 0.5) < 0.005, "mean %g", m);
  CHECK(fabs(var - 1.0 / 12) < 0.002, "var %g", var);
  CHECK(mn > 0 && mx < 1, "range (%g, %g)", mn, mx);
}

static void test_normal_moments(void) {
  rng_key k = {11, RNG_TEST};
  double s = 0, s2 = 0, s4 = 0;
  const int n = 400000;
  for (int i = 0; i < n; i++) {
    double z = rng_normal(k, 3, 0, (uint64_t)i);
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
  }
  double m = s / n, var = s2 / n - m * m, kurt = s4 / n;
  CHECK(fabs(m) < 0.01, "mean %g", m);
  CHECK(fabs(var - 1) < 0.01, "var %g", var);
  CHECK(fabs(kurt - 3) < 0.06, "4th moment %g", kurt);
  double z64 = 0, z64s = 0;
  for (int i = 0; i < n; i++) {
    double z = rng_normal64(k, 4, 0, (uint64_t)i);
    z64 += z;
    z64s += z * z;
  }
  CHECK(fabs(z64 / n) < 0.01 && fabs(z64s / n - 1) < 0.01, "normal64 mean %g var %g", z64 / n,
        z64s / n);
}

static void test_index_uniform(void) {
  rng_key k = {3, RNG_TEST};
  enum { M = 7, N = 70000 };
  int c[M] = {0};
  for (int i = 0; i < N; i++) {
    uint32_t j = rng_index(k, 0, 0, (uint64_t)i, M);
    CHECK(j < M, "index %u", j);
    if (j < M) c[j]++;
  }
  double chi2 = 0;
  for (int j = 0; j < M; j++) chi2 += (c[j] - N / (double)M) * (c[j] - N / (double)M) / (N / (double)M);
  CHECK(chi2 < 22.5, "chi2 %g (6 dof, p < 0.001)", chi2); /* 22.46 = 0.999 quantile */
}

static void test_pure_function(void) {
  rng_key a = {5, RNG_TEST}, b = {6, RNG_TEST}, c = {5, RNG_TEST + 1};
  /* no hidden state: the same draws in reverse order, after other streams' draws, are the same */
  enum { N = 1000 };
  uint32_t fwd[N];
  for (int i = 0; i < N; i++) fwd[i] = rng_u32(a, 1, 2, (uint64_t)i);
  int same = 1;
  for (int i = N - 1; i >= 0; i--) {
    (void)rng_u32(b, (uint32_t)i, 7, (uint64_t)i * 3);
    (void)rng_uniform(c, 0, 0, (uint64_t)i);
    same &= rng_u32(a, 1, 2, (uint64_t)i) == fwd[i];
  }
  CHECK(same, "a draw depends on the draws made before it");
  CHECK(rng_u32(a, 1, 2, 99) != rng_u32(b, 1, 2, 99), "seed ignored");
  CHECK(rng_u32(a, 1, 2, 99) != rng_u32(c, 1, 2, 99), "stream ignored");
  CHECK(rng_u32(a, 1, 2, 99) != rng_u32(a, 1, 3, 99), "counter ignored");
  CHECK(rng_u32(a, 1, 2, (1ull << 34) + 1) != rng_u32(a, 1, 2, 1), "high index bits ignored");
}

int main(void) {
  RUN(test_philox_kat);
  RUN(test_uniform_moments);
  RUN(test_normal_moments);
  RUN(test_index_uniform);
  RUN(test_pure_function);
  return test_done();
}
