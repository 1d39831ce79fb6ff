/* vexp.c: the H-step model value expansion target on the CPU backend (vexp.h). */
#include "vexp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "log.h"
#include "termination.h"

vexp* vexp_create(const dyn_model* m, int Bmax, int H, int term_kind) {
  vexp* v = (vexp*)calloc(1, sizeof *v);
  if (!v) mbpo_fatal("out of memory");
  v->H = H;
  v->Bmax = Bmax;
  v->obs_dim = m->obs_dim;
  v->act_dim = m->act_dim;
  v->r = rollout_create(m, Bmax, term_kind);
  size_t B = (size_t)Bmax;
  v->S = (float*)malloc(B * (size_t)m->obs_dim * sizeof(float));
  v->A = (float*)malloc(B * (size_t)m->act_dim * sizeof(float));
  v->logp = (float*)malloc(B * sizeof(float));
  v->cont = (float*)malloc(B * sizeof(float));
  if (!v->S || !v->A || !v->logp || !v->cont) mbpo_fatal("out of memory");
  return v;
}

void vexp_free(vexp* v) {
  if (!v) return;
  rollout_free(v->r);
  free(v->S);
  free(v->A);
  free(v->logp);
  free(v->cont);
  free(v);
}

int vexp_expand(vexp* v, const dyn_model* m, const sac* agent, int B, float gamma, float rs, rng_key key,
                uint64_t u, float* rew, float* next_obs, float* done) {
  if (v->H <= 0) return 0;
  if (B > v->Bmax) mbpo_fatal("vexp_expand: %d rows, workspaces for %d", B, v->Bmax);
  if (u >> 32) mbpo_fatal("value expansion: update index %llu needs more than 32 bits", (unsigned long long)u);
  const int od = v->obs_dim, D = v->r->D;
  const uint32_t c0 = (uint32_t)u;
  const float alpha = expf(agent->log_alpha[0]);
  int ne, bad = 0;
  const int* el = model_elites(m, &ne);
  rollout_ctx* r = v->r;
  memcpy(v->S, next_obs, (size_t)B * od * sizeof(float));
  for (int b = 0; b < B; b++) v->cont[b] = 1.0f - done[b];
  float g = 1.0f; /* gamma^h */
  for (int h = 1; h <= v->H; h++) {
    g *= gamma;
    uint32_t c_pol = 4u * (uint32_t)(h - 1), c_pick = c_pol + 1, c_noise = c_pol + 2;
    sac_sample(agent, v->S, B, key, c0, c_pol, v->A, v->logp);
    for (int b = 0; b < B; b++) r->pick[b] = el[rng_index(key, c0, c_pick, (uint64_t)b, (uint32_t)ne)];
    model_normalize(m, B, v->S, v->A, r->X);
    rollout_predict_picked(r, m, B);
    for (int b = 0; b < B; b++) {
      if (v->cont[b] == 0.0f) continue; /* ended: its state stays, its terms are zero */
      const float* mu = r->mean + (size_t)b * D;
      const float* lv = r->lv + (size_t)b * D;
      float y[ENV_MAX_OBS + 1];
      for (int d = 0; d < D; d++) {
        y[d] = mu[d] + rng_normal(key, c0, c_noise, (uint64_t)b * D + d) * expf(0.5f * lv[d]);
        bad += !isfinite(y[d]);
      }
      rew[b] += g * v->cont[b] * (y[0] - alpha * v->logp[b] / rs);
      float* s = v->S + (size_t)b * od;
      for (int d = 0; d < od; d++) s[d] += y[1 + d];
      v->cont[b] *= 1.0f - (float)term_done(r->term_kind, s, od);
    }
  }
  /* gamma (1 - d') = gamma^{H+1} C_{H+1}; g = gamma^H */
  for (int b = 0; b < B; b++) done[b] = 1.0f - g * v->cont[b];
  memcpy(next_obs, v->S, (size_t)B * od * sizeof(float));
  return bad ? -1 : 0;
}
