/* model_return.c: a policy's return inside its learned model (model_return.h). */
#include "model_return.h"

#include <math.h>
#include <string.h>

#include "env.h"
#include "termination.h"

long model_return_rollouts(const sac* agent, dyn_model* m, rollout_ctx* r, rng_key key, uint32_t c_pick,
                           uint32_t c_noise, uint64_t n0, const float* s0, int T, int M, double* ret, int* len) {
  const int od = r->obs_dim, D = r->D;
  int ne;
  const int* el = model_elites(m, &ne);
  long bad = 0;
  /* row b of the batch is rollout r->idx[b]; finished rollouts leave the batch (stable) */
  int B = M;
  for (int b = 0; b < M; b++) {
    memcpy(r->S + (size_t)b * od, s0, (size_t)od * sizeof(float));
    r->idx[b] = (uint32_t)b;
    ret[b] = 0.0;
    len[b] = 0;
  }
  for (int t = 0; t < T && B > 0; t++) {
    sac_act(agent, r->S, B, 1, key, 0, 0, r->A);
    for (int b = 0; b < B; b++) r->pick[b] = el[rng_index(key, c_pick, (uint32_t)t, n0 + r->idx[b], (uint32_t)ne)];
    model_normalize(m, B, r->S, r->A, r->X);
    rollout_predict_picked(r, m, B);
    int keep = 0;
    for (int b = 0; b < B; b++) {
      const uint32_t id = r->idx[b];
      float y[ENV_MAX_OBS + 1];
      int finite = 1;
      for (int d = 0; d < D; d++) {
        const size_t at = (size_t)b * D + d;
        y[d] = r->mean[at] + rng_normal(key, c_noise, (uint32_t)t, (n0 + id) * D + d) * expf(0.5f * r->lv[at]);
        finite &= isfinite(y[d]) != 0;
      }
      float* s2 = r->S2 + (size_t)b * od;
      for (int d = 0; d < od; d++) s2[d] = r->S[(size_t)b * od + d] + y[1 + d];
      if (!finite) {
        bad++;
        continue; /* the rollout ends before this step: nothing of it is counted */
      }
      ret[id] += y[0];
      len[id] = t + 1;
      if (term_done(r->term_kind, s2, od)) continue;
      memcpy(r->S + (size_t)keep * od, s2, (size_t)od * sizeof(float));
      r->idx[keep++] = id;
    }
    B = keep;
  }
  return bad;
}
