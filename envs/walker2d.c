/* walker2d.c: Walker2d-v2 as MBPO used it (docs/tasks.md §4). */
#include <math.h>

#include "env.h"
#include "termination.h"

static double clip10(double v) { return v < -10.0 ? -10.0 : (v > 10.0 ? 10.0 : v); }

/* obs = qpos[1:9] (torso z, torso pitch, right thigh/leg/foot, left thigh/leg/foot)
 *       + clip(qvel[0:9], -10, 10) */
static void walker2d_observe(const env* e, float* obs) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  for (int i = 0; i < 8; i++) obs[i] = (float)q[1 + i];
  for (int i = 0; i < 9; i++) obs[8 + i] = (float)clip10(v[i]);
}

/* pre[0] = torso x before the frame loop */
static void walker2d_pre(const env* e, double* pre) { pre[0] = e->d->qpos[0]; }

/* forward velocity (finite difference of qpos[0]) + 1 (every step, v2) - 1e-3 * |act|^2 */
static double walker2d_reward(const env* e, const double* pre, const double* act) {
  double dt = e->m->opt.timestep * e->task->frame_skip;
  double ctrl = 0;
  for (int i = 0; i < 6; i++) ctrl += act[i] * act[i];
  return (e->d->qpos[0] - pre[0]) / dt + 1.0 - 1e-3 * ctrl;
}

/* healthy <=> 0.8 < torso z < 2 and -1 < torso pitch < 1. No finiteness or state-range check
 * (as in every gym version); NaN fails the comparisons and so terminates. */
static int walker2d_healthy(const env* e) {
  const double* q = e->d->qpos;
  return q[1] > 0.8 && q[1] < 2.0 && q[2] > -1.0 && q[2] < 1.0;
}

const env_task env_task_walker2d = {
    .name = "walker2d",
    .gym_id = "Walker2d-v2",
    .asset = "walker2d.xml",
    .obs_dim = 17,
    .act_dim = 6,
    .frame_skip = 4,
    .max_steps = 1000,
    .rne_post = 0,
    .term = TERM_WALKER2D,
    .qpos_noise = 0.005,
    .qvel_noise_kind = ENV_NOISE_UNIFORM,
    .qvel_noise = 0.005,
    .observe = walker2d_observe,
    .pre_step = walker2d_pre,
    .reward = walker2d_reward,
    .healthy = walker2d_healthy,
};
