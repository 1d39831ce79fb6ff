/* termination.h: the termination rules that model rollouts apply to predicted next observations
 * (mbpo/static/ in the official code), one inline function per task, usable from C and CUDA.
 * Each takes the predicted next observation s (obs_dim floats) and returns 1 when done.
 * Observation indices follow docs/tasks.md §3-§8: Hopper/Walker2d s[0] torso height, s[1] torso
 * pitch; Ant/Humanoid (truncated obs) s[0] torso z; InvertedPendulum s[1] pole angle. The rules
 * are tabulated in docs/algorithm.md §9. */
#ifndef MBPO_TERMINATION_H
#define MBPO_TERMINATION_H

#include <math.h>

#include "hd.h"

/** Task ids of the termination rules; the same order as the env registry. */
enum term_kind {
  TERM_HOPPER = 0,
  TERM_WALKER2D,
  TERM_HALFCHEETAH,
  TERM_ANT,
  TERM_HUMANOID,
  TERM_INVERTED_PENDULUM,
  TERM_NKINDS
};

MBPO_HD static int term_all_finite(const float* s, int n) {
  for (int i = 0; i < n; i++)
    if (!isfinite(s[i])) return 0;
  return 1;
}

/** Hopper, the intended rule |s'[1:]| < 100 (the official code checks only s'[1:] < 100, a bug;
 *  this project deliberately uses the two-sided bound that the env itself applies). */
MBPO_HD static int term_hopper(const float* s, int n) {
  int ok = term_all_finite(s, n) && s[0] > 0.7f && fabsf(s[1]) < 0.2f;
  for (int j = 1; ok && j < n; j++) ok = fabsf(s[j]) < 100.0f;
  return !ok;
}

/** Walker2d: healthy while 0.8 < s[0] < 2 and -1 < s[1] < 1 (NaN fails, so NaN is done). */
MBPO_HD static int term_walker2d(const float* s, int n) {
  (void)n;
  return !(s[0] > 0.8f && s[0] < 2.0f && s[1] > -1.0f && s[1] < 1.0f);
}

/** HalfCheetah never terminates. */
MBPO_HD static int term_halfcheetah(const float* s, int n) {
  (void)s;
  (void)n;
  return 0;
}

/** AntTruncatedObs: healthy while all finite and 0.2 <= s[0] <= 1 (closed). */
MBPO_HD static int term_ant(const float* s, int n) {
  return !(term_all_finite(s, n) && s[0] >= 0.2f && s[0] <= 1.0f);
}

/** HumanoidTruncatedObs: done when s[0] < 1 or s[0] > 2 (no finiteness check: NaN is not done). */
MBPO_HD static int term_humanoid(const float* s, int n) {
  (void)n;
  return (s[0] < 1.0f) || (s[0] > 2.0f);
}

/** InvertedPendulum: healthy while all finite and |s[1]| <= 0.2 (closed). */
MBPO_HD static int term_inverted_pendulum(const float* s, int n) {
  return !(term_all_finite(s, n) && fabsf(s[1]) <= 0.2f);
}

/** Dispatch on the task's termination kind. */
MBPO_HD static int term_done(int kind, const float* s, int n) {
  switch (kind) {
    case TERM_HOPPER: return term_hopper(s, n);
    case TERM_WALKER2D: return term_walker2d(s, n);
    case TERM_HALFCHEETAH: return term_halfcheetah(s, n);
    case TERM_ANT: return term_ant(s, n);
    case TERM_HUMANOID: return term_humanoid(s, n);
    case TERM_INVERTED_PENDULUM: return term_inverted_pendulum(s, n);
    default: return 0;
  }
}

#endif
