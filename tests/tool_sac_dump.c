/* tool_sac_dump.c: one CPU SAC update written out as .npy files, for tests/test_torch_sac.py.
 *
 *   tool_sac_dump DIR
 *
 * The agent (Hopper dims: obs 11, act 3; hidden 256 x 2; batch 256) is first moved away from its
 * initial state so that every term of the update matters: 3 warm-up updates (Adam t = 3, nonzero
 * moments), then log alpha = -0.7, the target critics perturbed (+0.01 N(0,1)), and the policy's
 * first log sigma bias shifted so that the batch straddles the upper clip (2). Then the state
 * before, the batch, the two noise tensors, ONE sac_update, and the state after are written:
 *   hyper.npy        f64 [obs, act, hidden, layers, B, lr, gamma, tau, target_entropy,
 *                         reward_scale, adam_t_before, update_index]
 *   {pi,q,qt}.npy    flat parameters before (nn.h layout: per layer W [E][in][out] then b [E][out])
 *   log_alpha.npy    [1]
 *   adam_{pi,q,alpha}_{m,v}.npy   Adam moments before
 *   obs, act, rew, next_obs, done .npy   the batch
 *   eps_next.npy, eps.npy         [B][act] noise for a' at s' and for a~ at s (sac.h convention)
 *   *_after.npy      the same state after the update; grad_{pi,q,alpha}.npy its gradients
 *   stats.npy        f64 [q1_loss, q2_loss, pi_loss, alpha, alpha_loss, entropy, q_mean] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "npy.h"
#include "sac.h"

enum { OBS = 11, ACT = 3, B = 256 };
static const char* dir;

static void save(const char* name, const float* v, long n0, long n1) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  long shape[2] = {n0, n1};
  if (npy_save_f32(path, v, n1 ? 2 : 1, shape) != 0) {
    fprintf(stderr, "tool_sac_dump: cannot write %s\n", path);
    exit(1);
  }
}

static void save_state(const sac* s, const char* sfx) {
  char n[64];
#define SAVE(name, ptr, len)                      \
  snprintf(n, sizeof n, "%s%s", name, sfx);      \
  save(n, ptr, (long)(len), 0)
  SAVE("pi", s->pi_w, s->pi.nparams);
  SAVE("q", s->q_w, s->q.nparams);
  SAVE("qt", s->qt_w, s->q.nparams);
  SAVE("log_alpha", s->log_alpha, 1);
  SAVE("adam_pi_m", s->pi_adam->m, s->pi.nparams);
  SAVE("adam_pi_v", s->pi_adam->v, s->pi.nparams);
  SAVE("adam_q_m", s->q_adam->m, s->q.nparams);
  SAVE("adam_q_v", s->q_adam->v, s->q.nparams);
  SAVE("adam_alpha_m", s->alpha_adam->m, 1);
  SAVE("adam_alpha_v", s->alpha_adam->v, 1);
#undef SAVE
}

static void make_batch(float* obs, float* act, float* rew, float* next, float* done, uint32_t c0) {
  rng_key k = {2024, RNG_TEST};
  for (int i = 0; i < B * OBS; i++) obs[i] = rng_normal(k, c0, 0, (uint64_t)i);
  for (int i = 0; i < B * OBS; i++) next[i] = rng_normal(k, c0, 1, (uint64_t)i);
  for (int i = 0; i < B * ACT; i++) act[i] = 2.0f * rng_uniform(k, c0, 2, (uint64_t)i) - 1.0f;
  for (int i = 0; i < B; i++) rew[i] = 3.0f * rng_normal(k, c0, 3, (uint64_t)i);
  for (int i = 0; i < B; i++) done[i] = rng_uniform(k, c0, 4, (uint64_t)i) < 0.1f ? 1.0f : 0.0f;
}

static int cmp_float(const void* a, const void* b) {
  float x = *(const float*)a, y = *(const float*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tool_sac_dump DIR\n");
    return 2;
  }
  dir = argv[1];
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    perror(dir);
    return 1;
  }
  sac_params p = sac_params_default(ACT);
  p.target_entropy = -3.0f; /* not -act, so that the setting is visibly used */
  p.reward_scale = 1.25f;
  sac* s = sac_create(OBS, ACT, &p, (rng_key){2024, RNG_INIT});
  static float obs[B * OBS], act[B * ACT], rew[B], next[B * OBS], done[B];

  make_batch(obs, act, rew, next, done, 1);
  for (uint64_t k = 0; k < 3; k++) sac_update(s, obs, act, rew, next, done, B, k, NULL);

  s->log_alpha[0] = -0.7f;
  rng_key pk = {2024, RNG_TEST};
  for (size_t i = 0; i < s->q.nparams; i++) s->qt_w[i] += 0.01f * rng_normal(pk, 9, 0, i);
  make_batch(obs, act, rew, next, done, 2);
  static float out[B * 2 * ACT], v[B];
  nn_forward(&s->pi, s->pi_w, B, obs, 1, NULL, out);
  for (int b = 0; b < B; b++) v[b] = out[b * 2 * ACT + ACT];
  qsort(v, B, sizeof(float), cmp_float);
  s->pi_w[s->pi.b_off[s->pi.nlayers - 1] + ACT] += SAC_LOG_STD_MAX - v[B / 2];

  const uint64_t idx = (5ull << 32) + 17;
  double hyper[12] = {OBS, ACT, p.hidden, p.layers, B, p.lr, p.gamma, p.tau, p.target_entropy,
                      p.reward_scale, (double)s->pi_adam->t, (double)idx};
  char path[1024];
  snprintf(path, sizeof path, "%s/hyper.npy", dir);
  long n12 = 12, n7 = 7;
  npy_save(path, hyper, NPY_F64, 1, &n12);
  save_state(s, "");
  save("obs", obs, B, OBS);
  save("act", act, B, ACT);
  save("rew", rew, B, 0);
  save("next_obs", next, B, OBS);
  save("done", done, B, 0);
  static float eps_n[B * ACT], eps[B * ACT];
  for (int n = 0; n < B * ACT; n++) {
    eps_n[n] = rng_normal(s->noise_key, (uint32_t)idx, (uint32_t)(idx >> 32), (uint64_t)n);
    eps[n] = rng_normal(s->noise_key, (uint32_t)idx, (uint32_t)(idx >> 32), (uint64_t)(B * ACT + n));
  }
  save("eps_next", eps_n, B, ACT);
  save("eps", eps, B, ACT);

  sac_stats st;
  sac_update(s, obs, act, rew, next, done, B, idx, &st);
  save_state(s, "_after");
  save("grad_pi", s->pi_g, (long)s->pi.nparams, 0);
  save("grad_q", s->q_g, (long)s->q.nparams, 0);
  save("grad_alpha", s->log_alpha_g, 1, 0);
  double stats[7] = {st.q1_loss, st.q2_loss, st.pi_loss, st.alpha, st.alpha_loss, st.entropy, st.q_mean};
  snprintf(path, sizeof path, "%s/stats.npy", dir);
  npy_save(path, stats, NPY_F64, 1, &n7);
  sac_free(s);
  return 0;
}
