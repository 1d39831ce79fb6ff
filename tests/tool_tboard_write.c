/* tool_tboard_write.c: write a known TensorBoard event file into the folder argv[1] and print its path
 * (for tests/test_tboard.py, which knows the same contents). Steps rise through the file, as a
 * training run's do (TensorBoard's reader drops points when a step goes back):
 *
 *   step -5:       neg/step = -1
 *   step s=0..99:  loss/model = 1/(s+1), eval/return = s*s - 50.5, alpha = 0.1*s   (one Event)
 *   step 100:      single = 3.25                                   (tboard_scalar)
 *   step 101:      special/inf = inf, special/ninf = -inf, special/nan = nan,
 *                  special/big = 1e300 (stored as inf), special/tiny = 1e-50 (stored as 0)
 *   step 102:      long/xxx...x (200 x) = 42, unicode/\u00e9 = 2
 *
 * wall_time = 1700000000.25 + step; values are stored as float32. Exit status 0 on success. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tboard.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  char err[512];
  tboard* tb = tboard_open(argv[1], err, sizeof err);
  if (!tb) {
    fprintf(stderr, "tool_tboard_write: %s\n", err);
    return 1;
  }
  const double t0 = 1700000000.25;
  int ok = 1;
  const char* neg[1] = {"neg/step"};
  double negv[1] = {-1};
  ok &= tboard_scalars(tb, -5, t0 - 5, 1, neg, negv) == 0;
  const char* tags[3] = {"loss/model", "eval/return", "alpha"};
  for (int s = 0; s < 100; s++) {
    double v[3] = {1.0 / (s + 1), (double)s * s - 50.5, 0.1 * s};
    ok &= tboard_scalars(tb, s, t0 + s, 3, tags, v) == 0;
  }
  ok &= tboard_scalar(tb, "single", 100, t0 + 100, 3.25f) == 0;
  const char* sp[5] = {"special/inf", "special/ninf", "special/nan", "special/big", "special/tiny"};
  double spv[5] = {INFINITY, -INFINITY, NAN, 1e300, 1e-50};
  ok &= tboard_scalars(tb, 101, t0 + 101, 5, sp, spv) == 0;
  char longtag[206] = "long/";
  memset(longtag + 5, 'x', 200);
  longtag[205] = '\0';
  const char* lt[2] = {longtag, "unicode/\xc3\xa9"};
  double ltv[2] = {42, 2};
  ok &= tboard_scalars(tb, 102, t0 + 102, 2, lt, ltv) == 0;
  if (!ok) fprintf(stderr, "tool_tboard_write: %s\n", tboard_error(tb));
  printf("%s\n", tboard_path(tb));
  if (tboard_close(tb, err, sizeof err) != 0) {
    fprintf(stderr, "tool_tboard_write: %s\n", err);
    return 1;
  }
  return ok ? 0 : 1;
}
