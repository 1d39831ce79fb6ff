/* inverted_pendulum.c: InvertedPendulum-v2 (docs/tasks.md §8). */
#include <math.h>

#include "env.h"
#include "termination.h"

/* obs = qpos (cart x, pole angle) + qvel */
static void ip_observe(const env* e, float* obs) {
  for (int i = 0; i < 2; i++) obs[i] = (float)e->d->qpos[i];
  for (int i = 0; i < 2; i++) obs[2 + i] = (float)e->d->qvel[i];
}

static void ip_pre(const env* e, double* pre) {
  (void)e;
  (void)pre;
}

/* 1 on every step, the terminating one included (v2). */
static double ip_reward(const env* e, const double* pre, const double* act) {
  (void)e;
  (void)pre;
  (void)act;
  return 1.0;
}

/* healthy <=> all finite and |pole angle| <= 0.2 (closed) */
static int ip_healthy(const env* e) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  if (!isfinite(q[0]) || !isfinite(q[1]) || !isfinite(v[0]) || !isfinite(v[1])) return 0;
  return fabs(q[1]) <= 0.2;
}

const env_task env_task_inverted_pendulum = {
    .name = "inverted_pendulum",
    .gym_id = "InvertedPendulum-v2",
    .asset = "inverted_pendulum.xml",
    .obs_dim = 4,
    .act_dim = 1,
    .frame_skip = 2,
    .max_steps = 1000,
    .rne_post = 0,
    .term = TERM_INVERTED_PENDULUM,
    .qpos_noise = 0.01,
    .qvel_noise_kind = ENV_NOISE_UNIFORM,
    .qvel_noise = 0.01,
    .observe = ip_observe,
    .pre_step = ip_pre,
    .reward = ip_reward,
    .healthy = ip_healthy,
};
