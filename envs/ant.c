/* ant.c: MBPO's AntTruncatedObs-v2 (docs/tasks.md §6): Ant-v2 dynamics, reward (contact cost
 * included), termination and reset, with the observation truncated to qpos[2:] + qvel (27). */
#include <math.h>

#include "env.h"
#include "termination.h"

/* The torso body (its xpos x is the free-joint position; docs/tasks.md §2.1: get_body_com is
 * xpos). */
static int ant_torso(const mjModel* m) { return mj_name2id(m, mjOBJ_BODY, "torso"); }

/* obs = qpos[2:15] (torso z, quaternion, 8 hinge angles) + qvel[0:14] */
static void ant_observe(const env* e, float* obs) {
  const mjModel* m = e->m;
  const mjData* d = e->d;
  int k = 0;
  for (int i = 2; i < m->nq; i++) obs[k++] = (float)d->qpos[i];
  for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
}

/* Torso xpos x before the frame loop, read as it is (no mj_forward: docs/tasks.md §2.3). */
static void ant_pre(const env* e, double* pre) { pre[0] = e->d->xpos[3 * ant_torso(e->m)]; }

/* forward - 0.5 sum a^2 - 0.5e-3 sum clip(cfrc_ext, -1, 1)^2 + 1 (paid on every step) */
static double ant_reward(const env* e, const double* pre, const double* act) {
  const mjModel* m = e->m;
  const mjData* d = e->d;
  double dt = m->opt.timestep * e->task->frame_skip;
  double forward = (d->xpos[3 * ant_torso(m)] - pre[0]) / dt;
  double ctrl = 0;
  for (int i = 0; i < e->task->act_dim; i++) ctrl += act[i] * act[i];
  double contact = 0;
  for (int i = 0; i < 6 * m->nbody; i++) {
    double f = d->cfrc_ext[i];
    f = f < -1.0 ? -1.0 : (f > 1.0 ? 1.0 : f);
    contact += f * f;
  }
  return forward - 0.5 * ctrl - 0.5e-3 * contact + 1.0;
}

/* healthy <=> state vector all finite and 0.2 <= torso z <= 1.0 (closed) */
static int ant_healthy(const env* e) {
  const mjModel* m = e->m;
  const mjData* d = e->d;
  for (int i = 0; i < m->nq; i++)
    if (!isfinite(d->qpos[i])) return 0;
  for (int i = 0; i < m->nv; i++)
    if (!isfinite(d->qvel[i])) return 0;
  return d->qpos[2] >= 0.2 && d->qpos[2] <= 1.0;
}

const env_task env_task_ant = {
    .name = "ant",
    .gym_id = "AntTruncatedObs-v2",
    .asset = "ant.xml",
    .obs_dim = 27,
    .act_dim = 8,
    .frame_skip = 5,
    .max_steps = 1000,
    .rne_post = 1,
    .term = TERM_ANT,
    .qpos_noise = 0.1,
    .qvel_noise_kind = ENV_NOISE_NORMAL,
    .qvel_noise = 0.1,
    .observe = ant_observe,
    .pre_step = ant_pre,
    .reward = ant_reward,
    .healthy = ant_healthy,
};
