/* test_termination.c: the model rollouts' termination rules (include/termination.h) on raw
 * predicted vectors, including the values an environment never produces.
 *
 * A model's prediction is not clipped: Hopper's rule has a branch, every |s'[j]| < 100 for j >= 1,
 * that the environment cannot reach (its velocities are clipped to [-10, 10], docs/tasks.md), so
 * only a raw vector tests it. The official code checks s'[1:] < 100 (one-sided); this project uses
 * the two-sided bound (the comment in termination.h): a large negative prediction ends a rollout.
 * Each rule is tested at its bounds (open or closed as docs/tasks.md gives them), with NaN and
 * infinity, through term_done's dispatch, which the CPU and the device rollouts both call
 * (test_env_planar checks that each task names its own rule; test_rollout that a rollout's done
 * flags are term_done of its predictions). */
#include <math.h>
#include <string.h>

#include "termination.h"
#include "test.h"

enum { N = 45 }; /* the largest observation (Humanoid's truncated one) */

/* A healthy vector of n values for kind (zeros with the height in range). */
static void healthy(int kind, float* s, int n) {
  memset(s, 0, sizeof(float) * N);
  (void)n;
  if (kind == TERM_HOPPER) s[0] = 1.25f;
  if (kind == TERM_WALKER2D) s[0] = 1.25f;
  if (kind == TERM_ANT) s[0] = 0.55f;
  if (kind == TERM_HUMANOID) s[0] = 1.4f;
}

/* term_done(kind) (the rollouts' entry point) of a healthy vector of n values with s[j] = v. */
static int done_with(int kind, int n, int j, float v) {
  float s[N];
  healthy(kind, s, n);
  s[j] = v;
  return term_done(kind, s, n);
}

static void test_hopper_raw_vectors(void) {
  const int n = 11, k = TERM_HOPPER;
  CHECK(done_with(k, n, 5, 0.0f) == 0, "a healthy Hopper state is done");
  /* the branch the env cannot reach: any |s'[j]| >= 100 for j >= 1, both signs */
  for (int j = 2; j < n; j++) {
    CHECK(done_with(k, n, j, 150.0f) == 1, "s'[%d] = 150 is not done", j);
    CHECK(done_with(k, n, j, -150.0f) == 1, "s'[%d] = -150 is not done (the official rule's one-sided bug)", j);
    CHECK(done_with(k, n, j, 99.9f) == 0 && done_with(k, n, j, -99.9f) == 0, "s'[%d] = +-99.9 is done", j);
    CHECK(done_with(k, n, j, 100.0f) == 1 && done_with(k, n, j, -100.0f) == 1, "s'[%d] = +-100 (open bound)", j);
  }
  /* height > 0.7 (open), |pitch| < 0.2 (open) */
  CHECK(done_with(k, n, 0, 0.7f) == 1 && done_with(k, n, 0, 0.7001f) == 0, "height bound 0.7");
  CHECK(done_with(k, n, 0, 150.0f) == 0, "a height of 150 is done: s'[0] has no upper bound");
  CHECK(done_with(k, n, 1, 0.2f) == 1 && done_with(k, n, 1, -0.2f) == 1 && done_with(k, n, 1, 0.1999f) == 0 &&
            done_with(k, n, 1, -0.1999f) == 0,
        "pitch bound 0.2");
  CHECK(done_with(k, n, 4, NAN) == 1 && done_with(k, n, 4, INFINITY) == 1 && done_with(k, n, 0, NAN) == 1,
        "NaN/Inf is not done");
  /* the last component counts: n is honoured */
  CHECK(done_with(k, n, n - 1, 1000.0f) == 1 && done_with(k, n - 1, n - 1, 1000.0f) == 0, "obs_dim ignored");
}

static void test_walker_raw_vectors(void) {
  const int n = 17, k = TERM_WALKER2D;
  CHECK(done_with(k, n, 5, 1e6f) == 0, "Walker2d has no velocity bound, yet s[5] = 1e6 is done");
  CHECK(done_with(k, n, 0, 0.8f) == 1 && done_with(k, n, 0, 0.8001f) == 0 && done_with(k, n, 0, 2.0f) == 1 &&
            done_with(k, n, 0, 1.999f) == 0,
        "height bounds (0.8, 2)");
  CHECK(done_with(k, n, 1, 1.0f) == 1 && done_with(k, n, 1, -1.0f) == 1 && done_with(k, n, 1, 0.999f) == 0,
        "angle bounds (-1, 1)");
  CHECK(done_with(k, n, 0, NAN) == 1 && done_with(k, n, 1, NAN) == 1, "NaN height or angle is not done");
}

static void test_other_tasks_raw_vectors(void) {
  CHECK(done_with(TERM_HALFCHEETAH, 17, 0, NAN) == 0 && done_with(TERM_HALFCHEETAH, 17, 3, 1e30f) == 0,
        "HalfCheetah terminated");
  CHECK(done_with(TERM_ANT, 27, 0, 0.2f) == 0 && done_with(TERM_ANT, 27, 0, 1.0f) == 0 &&
            done_with(TERM_ANT, 27, 0, 0.1999f) == 1 && done_with(TERM_ANT, 27, 0, 1.0001f) == 1,
        "Ant height bounds [0.2, 1] (closed)");
  CHECK(done_with(TERM_ANT, 27, 26, NAN) == 1 && done_with(TERM_ANT, 27, 26, 1e30f) == 0, "Ant finiteness");
  CHECK(done_with(TERM_HUMANOID, 45, 0, 1.0f) == 0 && done_with(TERM_HUMANOID, 45, 0, 2.0f) == 0 &&
            done_with(TERM_HUMANOID, 45, 0, 0.999f) == 1 && done_with(TERM_HUMANOID, 45, 0, 2.001f) == 1,
        "Humanoid height bounds [1, 2]");
  CHECK(done_with(TERM_HUMANOID, 45, 0, NAN) == 0 && done_with(TERM_HUMANOID, 45, 7, INFINITY) == 0,
        "Humanoid: NaN is not done (no finiteness check, as official)");
  CHECK(done_with(TERM_INVERTED_PENDULUM, 4, 1, 0.2f) == 0 && done_with(TERM_INVERTED_PENDULUM, 4, 1, -0.2f) == 0 &&
            done_with(TERM_INVERTED_PENDULUM, 4, 1, 0.2001f) == 1 && done_with(TERM_INVERTED_PENDULUM, 4, 1, -0.2001f) == 1,
        "InvertedPendulum angle bound |s[1]| <= 0.2 (closed)");
  CHECK(done_with(TERM_INVERTED_PENDULUM, 4, 3, NAN) == 1 && done_with(TERM_INVERTED_PENDULUM, 4, 0, 1e6f) == 0,
        "InvertedPendulum finiteness, no position bound");
  CHECK(term_done(TERM_NKINDS, (float[N]){0}, 4) == 0, "an unknown kind terminates");
}

int main(void) {
  RUN(test_hopper_raw_vectors);
  RUN(test_walker_raw_vectors);
  RUN(test_other_tasks_raw_vectors);
  return test_done();
}
