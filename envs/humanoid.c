/* humanoid.c: MBPO's HumanoidTruncatedObs-v2 (docs/tasks.md §7): gym 0.12 Humanoid-v2 dynamics,
 * reward (impact cost included), termination and reset, with the observation truncated to
 * qpos[2:] + qvel (45). */
#include "env.h"
#include "termination.h"

/* x of the whole-body centre of mass: sum_b m_b xipos_b,x / sum_b m_b (world mass 0), read from
 * xipos as it is (no mj_forward: docs/tasks.md §2.3). */
static double humanoid_com_x(const mjModel* m, const mjData* d) {
  double mx = 0, ms = 0;
  for (int b = 0; b < m->nbody; b++) {
    mx += m->body_mass[b] * d->xipos[3 * b];
    ms += m->body_mass[b];
  }
  return mx / ms;
}

/* obs = qpos[2:24] (torso z, quaternion, 17 hinge angles) + qvel[0:23] */
static void humanoid_observe(const env* e, float* obs) {
  const mjModel* m = e->m;
  const mjData* d = e->d;
  int k = 0;
  for (int i = 2; i < m->nq; i++) obs[k++] = (float)d->qpos[i];
  for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
}

static void humanoid_pre(const env* e, double* pre) { pre[0] = humanoid_com_x(e->m, e->d); }

/* 0.25 (com_x after - before) / timestep - 0.1 sum ctrl^2 - min(0.5e-6 sum cfrc_ext^2, 10) + 5
 * (gym 0.12; the control cost reads data.ctrl, which holds the rescaled, clipped action) */
static double humanoid_reward(const env* e, const double* pre, const double* act) {
  (void)act;
  const mjModel* m = e->m;
  const mjData* d = e->d;
  double lin_vel = 0.25 * (humanoid_com_x(m, d) - pre[0]) / m->opt.timestep;
  double quad_ctrl = 0;
  for (int i = 0; i < m->nu; i++) quad_ctrl += d->ctrl[i] * d->ctrl[i];
  double impact = 0;
  for (int i = 0; i < 6 * m->nbody; i++) impact += d->cfrc_ext[i] * d->cfrc_ext[i];
  impact *= 0.5e-6;
  if (impact > 10.0) impact = 10.0;
  return lin_vel - 0.1 * quad_ctrl - impact + 5.0;
}

/* gym 0.12: done = (z < 1.0) or (z > 2.0). No finiteness check: NaN compares false, so a NaN
 * height is not done (the same as term_humanoid). */
static int humanoid_healthy(const env* e) {
  double z = e->d->qpos[2];
  return !(z < 1.0 || z > 2.0);
}

const env_task env_task_humanoid = {
    .name = "humanoid",
    .gym_id = "HumanoidTruncatedObs-v2",
    .asset = "humanoid.xml",
    .obs_dim = 45,
    .act_dim = 17,
    .frame_skip = 5,
    .max_steps = 1000,
    .rne_post = 1,
    .term = TERM_HUMANOID,
    .qpos_noise = 0.01,
    .qvel_noise_kind = ENV_NOISE_UNIFORM,
    .qvel_noise = 0.01,
    .observe = humanoid_observe,
    .pre_step = humanoid_pre,
    .reward = humanoid_reward,
    .healthy = humanoid_healthy,
};
