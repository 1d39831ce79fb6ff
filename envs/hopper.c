/* hopper.c: Hopper-v2 as MBPO used it (docs/tasks.md §3). */
#include <math.h>

#include "env.h"
#include "termination.h"

static double clip10(double v) { return v < -10.0 ? -10.0 : (v > 10.0 ? 10.0 : v); }

/* obs = qpos[1:6] (torso z, torso pitch, thigh, leg, foot) + clip(qvel[0:6], -10, 10) */
static void hopper_observe(const env* e, float* obs) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  for (int i = 0; i < 5; i++) obs[i] = (float)q[1 + i];
  for (int i = 0; i < 6; i++) obs[5 + i] = (float)clip10(v[i]);
}

/* pre[0] = torso x before the frame loop */
static void hopper_pre(const env* e, double* pre) { pre[0] = e->d->qpos[0]; }

/* forward velocity (finite difference of qpos[0]) + 1 (paid on every step, the terminating one
 * included, v2) - 1e-3 * |act|^2 */
static double hopper_reward(const env* e, const double* pre, const double* act) {
  double dt = e->m->opt.timestep * e->task->frame_skip;
  double ctrl = 0;
  for (int i = 0; i < 3; i++) ctrl += act[i] * act[i];
  return (e->d->qpos[0] - pre[0]) / dt + 1.0 - 1e-3 * ctrl;
}

/* healthy <=> state_vector = (qpos, qvel) all finite, |state_vector[2:]| < 100 (velocities
 * unclipped), torso z > 0.7 and |torso pitch| < 0.2 */
static int hopper_healthy(const env* e) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  int nq = e->m->nq, nv = e->m->nv;
  for (int i = 0; i < nq; i++)
    if (!isfinite(q[i])) return 0;
  for (int i = 0; i < nv; i++)
    if (!isfinite(v[i])) return 0;
  for (int i = 2; i < nq; i++)
    if (!(fabs(q[i]) < 100.0)) return 0;
  for (int i = 0; i < nv; i++)
    if (!(fabs(v[i]) < 100.0)) return 0;
  return q[1] > 0.7 && fabs(q[2]) < 0.2;
}

const env_task env_task_hopper = {
    .name = "hopper",
    .gym_id = "Hopper-v2",
    .asset = "hopper.xml",
    .obs_dim = 11,
    .act_dim = 3,
    .frame_skip = 4,
    .max_steps = 1000,
    .rne_post = 0,
    .term = TERM_HOPPER,
    .qpos_noise = 0.005,
    .qvel_noise_kind = ENV_NOISE_UNIFORM,
    .qvel_noise = 0.005,
    .observe = hopper_observe,
    .pre_step = hopper_pre,
    .reward = hopper_reward,
    .healthy = hopper_healthy,
};
