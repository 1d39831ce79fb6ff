/* tool_npz_write.c: write a known .npz archive with the engine's writer, for tests/test_npz.py.
 *
 *   tool_npz_write OUT.npz [--level N] [--zip64] [--many N]
 *
 * The arrays (tests/test_npz.py rebuilds the same values with NumPy and compares exactly):
 *   f32_2d        float32 (3, 4)     i * 0.5 - 1.25
 *   i32_1d        int32 (7,)         i * i - 10, then INT32_MIN and INT32_MAX as the last two
 *   u8_3d         uint8 (2, 3, 5)    (i * 37) mod 256
 *   f64_scalar    float64 ()         3.141592653589793
 *   i64_empty     int64 (0, 3)
 *   f32_empty     float32 (0,)
 *   f32_8d        float32 (1,2,1,2,1,2,1,2)   i
 *   i64_edge      int64 (4,)         2^62, -2^63, -1, 2^63 - 1
 *   nested/name.with.dots  float64 (2, 2)  1e300, -0.0, +inf, nan
 *   pool_obs      float32 (1000, 11) (i mod 1000) * 0.25 - 100
 * --level N   deflate level for every entry (0 = stored)
 * --zip64     every size, offset and the count in ZIP64 form (the test hook's limits set to 0)
 * --many N    instead: N entries e00000, e00001, ... each int32 (2,) = {k, -k} */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npz.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: tool_npz_write OUT.npz [--level N] [--zip64] [--many N]\n");
    return 2;
  }
  int level = NPZ_DEFAULT_LEVEL;
  long many = -1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--level") && i + 1 < argc) level = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--zip64")) npz_test_hooks(-1, 0, 0);
    else if (!strcmp(argv[i], "--many") && i + 1 < argc) many = atol(argv[++i]);
    else {
      fprintf(stderr, "tool_npz_write: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  npz_writer* w = npz_begin();
  if (!w || npz_set_level(w, level) != 0) {
    fprintf(stderr, "tool_npz_write: bad level %d\n", level);
    npz_abort(w);
    return 2;
  }
  if (many >= 0) {
    for (long k = 0; k < many; k++) {
      char name[32];
      int v[2] = {(int)k, (int)-k};
      long sh = 2;
      snprintf(name, sizeof name, "e%05ld", k);
      npz_add_i32(w, name, v, 1, &sh);
    }
  } else {
    float f32[12];
    for (int i = 0; i < 12; i++) f32[i] = (float)i * 0.5f - 1.25f;
    int i32[7];
    for (int i = 0; i < 5; i++) i32[i] = i * i - 10;
    i32[5] = INT32_MIN;
    i32[6] = INT32_MAX;
    unsigned char u8[30];
    for (int i = 0; i < 30; i++) u8[i] = (unsigned char)((i * 37) % 256);
    float f8d[16];
    for (int i = 0; i < 16; i++) f8d[i] = (float)i;
    long long i64[4] = {1LL << 62, INT64_MIN, -1, INT64_MAX};
    double dd[4] = {1e300, -0.0, INFINITY, NAN};
    float* pool = malloc(11000 * sizeof *pool);
    if (!pool) return 2;
    for (int i = 0; i < 11000; i++) pool[i] = (float)(i % 1000) * 0.25f - 100.0f;
    long s2[2] = {3, 4}, s1[1] = {7}, s3[3] = {2, 3, 5}, s0e[2] = {0, 3}, s1e[1] = {0},
         s8[8] = {1, 2, 1, 2, 1, 2, 1, 2}, s4[1] = {4}, s22[2] = {2, 2}, sp[2] = {1000, 11};
    npz_add_f32(w, "f32_2d", f32, 2, s2);
    npz_add_i32(w, "i32_1d", i32, 1, s1);
    npz_add_u8(w, "u8_3d", u8, 3, s3);
    npz_add_scalar(w, "f64_scalar", 3.141592653589793);
    npz_add_i64(w, "i64_empty", NULL, 2, s0e);
    npz_add_f32(w, "f32_empty", NULL, 1, s1e);
    npz_add_f32(w, "f32_8d", f8d, 8, s8);
    npz_add_i64(w, "i64_edge", i64, 1, s4);
    npz_add_f64(w, "nested/name.with.dots", dd, 2, s22);
    npz_add_ref(w, "pool_obs", pool, NPY_F32, 2, sp);
    char err[512];
    int rc = npz_finish(w, argv[1], err, sizeof err);
    free(pool);
    if (rc != 0) {
      fprintf(stderr, "tool_npz_write: %s\n", err);
      return 1;
    }
    return 0;
  }
  char err[512];
  if (npz_finish(w, argv[1], err, sizeof err) != 0) {
    fprintf(stderr, "tool_npz_write: %s\n", err);
    return 1;
  }
  return 0;
}
