/* halfcheetah.c: HalfCheetah-v2 as MBPO used it (docs/tasks.md §5). */
#include "env.h"
#include "termination.h"

/* obs = qpos[1:9] (rootz, rooty, bthigh, bshin, bfoot, fthigh, fshin, ffoot) + qvel[0:9]
 * (not clipped) */
static void halfcheetah_observe(const env* e, float* obs) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  for (int i = 0; i < 8; i++) obs[i] = (float)q[1 + i];
  for (int i = 0; i < 9; i++) obs[8 + i] = (float)v[i];
}

/* pre[0] = torso x before the frame loop */
static void halfcheetah_pre(const env* e, double* pre) { pre[0] = e->d->qpos[0]; }

/* forward velocity (finite difference of qpos[0]) - 0.1 * |act|^2; no alive bonus */
static double halfcheetah_reward(const env* e, const double* pre, const double* act) {
  double dt = e->m->opt.timestep * e->task->frame_skip;
  double ctrl = 0;
  for (int i = 0; i < 6; i++) ctrl += act[i] * act[i];
  return (e->d->qpos[0] - pre[0]) / dt - 0.1 * ctrl;
}

/* HalfCheetah never terminates (env_step still ends an episode on a MuJoCo instability). */
static int halfcheetah_healthy(const env* e) {
  (void)e;
  return 1;
}

const env_task env_task_halfcheetah = {
    .name = "halfcheetah",
    .gym_id = "HalfCheetah-v2",
    .asset = "halfcheetah.xml",
    .obs_dim = 17,
    .act_dim = 6,
    .frame_skip = 5,
    .max_steps = 1000,
    .rne_post = 0,
    .term = TERM_HALFCHEETAH,
    .qpos_noise = 0.1,
    .qvel_noise_kind = ENV_NOISE_NORMAL,
    .qvel_noise = 0.1,
    .observe = halfcheetah_observe,
    .pre_step = halfcheetah_pre,
    .reward = halfcheetah_reward,
    .healthy = halfcheetah_healthy,
};
