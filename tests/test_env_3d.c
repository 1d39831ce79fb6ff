/* test_env_3d.c: AntTruncatedObs-v2 and HumanoidTruncatedObs-v2 (docs/tasks.md §6-§7): dims,
 * compiled masses of the authored models, embedded assets, determinism by seed, the truncated
 * observation, the reward formulas (with contact forces from mj_rnePostConstraint), termination at
 * the thresholds, agreement of the model-side rule (termination.h) with the env, actuator order
 * and action rescaling. */
#include <math.h>
#include <string.h>

#include "env.h"
#include "termination.h"
#include "test.h"

static const double MASS_TOL = 1e-4;

/* ---- helpers ---- */

static mjModel* load(const env_task* t) {
  char err[1200] = "";
  mjModel* m = env_load_model(t, NULL, err, sizeof err);
  if (!m) fprintf(stderr, "  cannot load %s: %s\n", t->name, err);
  return m;
}

/* Uniform random action in [-1, 1]^n for step s of episode ep. */
static void random_action(uint32_t seed, uint32_t ep, uint32_t s, int n, float* a) {
  rng_key k = {seed, RNG_TEST};
  for (int i = 0; i < n; i++) a[i] = 2.0f * rng_uniform(k, ep, s, (uint64_t)i) - 1.0f;
}

static double body_mass(const mjModel* m, const char* name) {
  int b = mj_name2id(m, mjOBJ_BODY, name);
  return b < 0 ? -1.0 : m->body_mass[b];
}

static int joint_dof(const mjModel* m, const char* name) {
  int j = mj_name2id(m, mjOBJ_JOINT, name);
  return j < 0 ? -1 : m->jnt_dofadr[j];
}

/* The observation must be exactly (float)qpos[2:] followed by (float)qvel. */
static int obs_is_truncated_state(const env* e, const float* obs) {
  float want[ENV_MAX_OBS];
  int k = 0;
  for (int i = 2; i < e->m->nq; i++) want[k++] = (float)e->d->qpos[i];
  for (int i = 0; i < e->m->nv; i++) want[k++] = (float)e->d->qvel[i];
  return k == e->task->obs_dim && memcmp(want, obs, sizeof(float) * (size_t)k) == 0;
}

/* Sum of the contact normal forces of the current contacts (mj_contactForce). */
static double contact_normal_force(const mjModel* m, const mjData* d) {
  double sum = 0, f[6];
  for (int i = 0; i < d->ncon; i++) {
    if (d->contact[i].efc_address < 0) continue;
    mj_contactForce(m, d, i, f);
    sum += fabs(f[0]);
  }
  return sum;
}

static double com_x(const mjModel* m, const mjData* d) {
  double mx = 0, ms = 0;
  for (int b = 0; b < m->nbody; b++) {
    mx += m->body_mass[b] * d->xipos[3 * b];
    ms += m->body_mass[b];
  }
  return mx / ms;
}

/* ---- dims and models ---- */

static void test_dims(void) {
  const env_task* a = env_find("ant");
  const env_task* h = env_find("humanoid");
  CHECK(a && h, "ant and humanoid are registered");
  if (!a || !h) return;
  CHECK(strcmp(a->gym_id, "AntTruncatedObs-v2") == 0, "%s", a->gym_id);
  CHECK(strcmp(h->gym_id, "HumanoidTruncatedObs-v2") == 0, "%s", h->gym_id);
  CHECK(a->obs_dim == 27 && a->act_dim == 8 && a->frame_skip == 5 && a->max_steps == 1000, "ant");
  CHECK(h->obs_dim == 45 && h->act_dim == 17 && h->frame_skip == 5 && h->max_steps == 1000, "hum");
  CHECK(a->rne_post == 1 && h->rne_post == 1, "contact forces need mj_rnePostConstraint");
  CHECK(a->term == TERM_ANT && h->term == TERM_HUMANOID, "termination kinds");
  CHECK(a->qpos_noise == 0.1 && a->qvel_noise_kind == ENV_NOISE_NORMAL && a->qvel_noise == 0.1,
        "ant reset noise");
  CHECK(h->qpos_noise == 0.01 && h->qvel_noise_kind == ENV_NOISE_UNIFORM && h->qvel_noise == 0.01,
        "humanoid reset noise");

  mjModel* m = load(a);
  CHECK(m != NULL, "ant model loads");
  if (m) {
    CHECK(m->nq == 15 && m->nv == 14 && m->nu == 8 && m->nbody == 14 && m->ngeom == 14,
          "ant nq %d nv %d nu %d nbody %d ngeom %d", m->nq, m->nv, m->nu, m->nbody, m->ngeom);
    CHECK(a->obs_dim == m->nq - 2 + m->nv, "ant obs = qpos[2:] + qvel");
    CHECK(m->opt.integrator == mjINT_RK4 && m->opt.timestep == 0.01, "ant RK4 0.01");
    CHECK(m->opt.solver == mjSOL_NEWTON && m->opt.iterations == 100, "ant solver default");
    for (int i = 0; i < m->nu; i++)
      CHECK(m->actuator_ctrlrange[2 * i] == -1 && m->actuator_ctrlrange[2 * i + 1] == 1 &&
                m->actuator_gear[6 * i] == 150 && m->actuator_ctrllimited[i],
            "ant actuator %d", i);
    double q0[15] = {0, 0, 0.75, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 15; i++) CHECK(m->qpos0[i] == q0[i], "ant qpos0[%d] = %g", i, m->qpos0[i]);
    mj_deleteModel(m);
  }
  m = load(h);
  CHECK(m != NULL, "humanoid model loads");
  if (m) {
    CHECK(m->nq == 24 && m->nv == 23 && m->nu == 17 && m->nbody == 14 && m->ngeom == 18 &&
              m->ntendon == 2,
          "humanoid nq %d nv %d nu %d nbody %d ngeom %d ntendon %d", m->nq, m->nv, m->nu,
          m->nbody, m->ngeom, m->ntendon);
    CHECK(h->obs_dim == m->nq - 2 + m->nv, "humanoid obs = qpos[2:] + qvel");
    CHECK(m->opt.integrator == mjINT_RK4 && m->opt.timestep == 0.003, "humanoid RK4 0.003");
    CHECK(m->opt.solver == mjSOL_PGS && m->opt.iterations == 50, "humanoid PGS 50");
    for (int i = 0; i < m->nu; i++)
      CHECK(m->actuator_ctrlrange[2 * i] == -0.4 && m->actuator_ctrlrange[2 * i + 1] == 0.4 &&
                m->actuator_ctrllimited[i],
            "humanoid actuator %d", i);
    CHECK(m->qpos0[2] == 1.4 && m->qpos0[3] == 1, "humanoid qpos0");
    /* left_hip_y range [-110, 20] degrees: the project's recorded choice (Gymnasium) */
    int j = mj_name2id(m, mjOBJ_JOINT, "left_hip_y");
    CHECK(j >= 0 && fabs(m->jnt_range[2 * j] - (-110.0 * mjPI / 180)) < 1e-12 &&
              fabs(m->jnt_range[2 * j + 1] - 20.0 * mjPI / 180) < 1e-12,
          "left_hip_y range");
    mj_deleteModel(m);
  }
}

static void test_embedded_assets(void) {
  const char* names[2] = {"ant.xml", "humanoid.xml"};
  for (int i = 0; i < 2; i++) {
    int size = 0;
    const char* text = env_asset_text(names[i], &size);
    CHECK(text != NULL && size > 1000, "%s embedded (%d bytes)", names[i], size);
    if (text) CHECK((int)strlen(text) == size, "%s NUL-terminated at its size", names[i]);
  }
  /* the embedded copy and the file in envs/assets compile to the same model */
  const env_task* t = env_find("ant");
  char err[1200] = "";
  mjModel* a = env_load_model(t, NULL, err, sizeof err);
  mjModel* b = env_load_model(t, "envs/assets", err, sizeof err);
  if (!b) {
    if (a) mj_deleteModel(a);
    SKIP("envs/assets not readable from here: %s", err);
  }
  CHECK(a && a->nbody == b->nbody && env_total_mass(a) == env_total_mass(b), "same model");
  if (a) mj_deleteModel(a);
  mj_deleteModel(b);
}

static void test_masses(void) {
  mjModel* m = load(env_find("ant"));
  CHECK(m != NULL, "ant loads");
  if (m) {
    CHECK_CLOSE(body_mass(m, "torso"), 0.327249, MASS_TOL);
    const char* roots[4] = {"front_left_leg", "front_right_leg", "back_leg", "right_back_leg"};
    for (int i = 0; i < 4; i++) {
      char aux[8];
      snprintf(aux, sizeof aux, "aux_%d", i + 1);
      CHECK_CLOSE(body_mass(m, roots[i]), 0.039158, MASS_TOL);
      CHECK_CLOSE(body_mass(m, aux), 0.039158, MASS_TOL);
      int ai = mj_name2id(m, mjOBJ_BODY, aux), ankle = -1;
      for (int b = 0; b < m->nbody; b++)
        if (m->body_parentid[b] == ai) ankle = b;
      CHECK(ankle > 0 && m->body_parentid[ai] == mj_name2id(m, mjOBJ_BODY, roots[i]),
            "leg %d tree", i + 1);
      if (ankle > 0) CHECK_CLOSE(m->body_mass[ankle] / 0.067592, 1.0, MASS_TOL);
    }
    CHECK_CLOSE(env_total_mass(m) / 0.910880, 1.0, MASS_TOL);
    mj_deleteModel(m);
  }
  m = load(env_find("humanoid"));
  CHECK(m != NULL, "humanoid loads");
  if (m) {
    struct {
      const char* name;
      double mass;
    } want[] = {{"torso", 8.907462},          {"lwaist", 2.261947},         {"pelvis", 6.616194},
                {"right_thigh", 4.751751},    {"right_shin", 2.755696},     {"right_foot", 1.767146},
                {"left_thigh", 4.751751},     {"left_shin", 2.755696},      {"left_foot", 1.767146},
                {"right_upper_arm", 1.661080}, {"right_lower_arm", 1.229540},
                {"left_upper_arm", 1.661080},  {"left_lower_arm", 1.229540}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
      double got = body_mass(m, want[i].name);
      CHECK(fabs(got / want[i].mass - 1.0) <= MASS_TOL, "%s: %.6f, published %.6f", want[i].name,
            got, want[i].mass);
    }
    CHECK(fabs(env_total_mass(m) / 42.116030 - 1.0) <= MASS_TOL, "total %.6f", env_total_mass(m));
    mj_deleteModel(m);
  }
}

/* ---- trajectories ---- */

/* Run n steps with random actions (resetting on termination or truncation); write every obs and
 * reward into the buffers. Returns the number of steps stored. */
static int rollout(const env_task* t, const mjModel* m, uint32_t seed, int n, float* obs,
                   double* rew) {
  env* e = env_create(t, m, (rng_key){seed, RNG_ENV_RESET}, 0);
  float a[ENV_MAX_ACT];
  int od = t->obs_dim, ep = 0, k = 0;
  env_reset(e, obs);
  for (int s = 0; s < n; s++) {
    int term, trunc;
    random_action(seed, (uint32_t)ep, (uint32_t)s, t->act_dim, a);
    env_step(e, a, obs + (size_t)(s + 1) * od, &rew[s], &term, &trunc);
    k++;
    if (term || trunc) {
      ep++;
      env_reset(e, obs + (size_t)(s + 1) * od); /* overwrite: the next stored row is a reset */
    }
  }
  env_destroy(e);
  return k;
}

static void check_determinism(const char* name, int n) {
  const env_task* t = env_find(name);
  mjModel* m = load(t);
  CHECK(m != NULL, "%s loads", name);
  if (!m) return;
  size_t no = (size_t)(n + 1) * t->obs_dim;
  float* o1 = calloc(no, sizeof(float));
  float* o2 = calloc(no, sizeof(float));
  float* o3 = calloc(no, sizeof(float));
  double* r1 = calloc((size_t)n, sizeof(double));
  double* r2 = calloc((size_t)n, sizeof(double));
  double* r3 = calloc((size_t)n, sizeof(double));
  rollout(t, m, 7, n, o1, r1);
  rollout(t, m, 7, n, o2, r2);
  rollout(t, m, 8, n, o3, r3);
  CHECK(memcmp(o1, o2, no * sizeof(float)) == 0, "%s: same seed, same observations", name);
  CHECK(memcmp(r1, r2, (size_t)n * sizeof(double)) == 0, "%s: same seed, same rewards", name);
  CHECK(memcmp(o1, o3, (size_t)t->obs_dim * sizeof(float)) != 0, "%s: seeds differ at reset",
        name);
  CHECK(memcmp(r1, r3, (size_t)n * sizeof(double)) != 0, "%s: seeds differ in rewards", name);
  int finite = 1;
  for (size_t i = 0; i < no; i++) finite &= isfinite(o1[i]) != 0;
  CHECK(finite, "%s: finite observations", name);
  free(o1), free(o2), free(o3), free(r1), free(r2), free(r3);
  mj_deleteModel(m);
}

static void test_determinism_ant(void) { check_determinism("ant", 300); }
static void test_determinism_humanoid(void) { check_determinism("humanoid", 150); }

/* Reset noise: Ant qpos += U(+-0.1) on all 15 entries (then mj_forward normalises the quaternion),
 * qvel += 0.1 N(0, 1); Humanoid qpos, qvel += U(+-0.01). Fresh draws per episode. */
static void test_reset(void) {
  const char* names[2] = {"ant", "humanoid"};
  for (int w = 0; w < 2; w++) {
    const env_task* t = env_find(names[w]);
    mjModel* m = load(t);
    if (!m) {
      CHECK(0, "%s loads", names[w]);
      continue;
    }
    env* e = env_create(t, m, (rng_key){3, RNG_ENV_RESET}, 5);
    float o1[ENV_MAX_OBS], o2[ENV_MAX_OBS];
    env_reset(e, o1);
    CHECK(obs_is_truncated_state(e, o1), "%s reset obs", names[w]);
    const double* q = e->d->qpos;
    double qn = sqrt(q[3] * q[3] + q[4] * q[4] + q[5] * q[5] + q[6] * q[6]);
    CHECK(fabs(qn - 1.0) < 1e-12, "%s: unit quaternion after reset (%.15g)", names[w], qn);
    double s = t->qpos_noise, vmax = 0, vsum2 = 0;
    for (int i = 0; i < m->nq; i++)
      if (i < 3 || i > 6)
        CHECK(fabs(q[i] - m->qpos0[i]) <= s, "%s qpos[%d] - qpos0 = %g", names[w], i,
              q[i] - m->qpos0[i]);
    CHECK(q[3] != 1.0 && q[4] != 0.0, "%s: quaternion got noise", names[w]);
    for (int i = 0; i < m->nv; i++) {
      vmax = fmax(vmax, fabs(e->d->qvel[i]));
      vsum2 += e->d->qvel[i] * e->d->qvel[i];
    }
    if (t->qvel_noise_kind == ENV_NOISE_UNIFORM)
      CHECK(vmax <= t->qvel_noise && vmax > 0, "%s qvel noise max %g", names[w], vmax);
    else
      CHECK(vmax > 0.1 * t->qvel_noise && vmax < 6 * t->qvel_noise && vsum2 > 0,
            "%s qvel noise max %g", names[w], vmax);
    env_reset(e, o2);
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)t->obs_dim) != 0, "%s: episodes differ",
          names[w]);
    CHECK(e->episode == 2 && e->t == 0, "%s: counters", names[w]);
    env_destroy(e);
    mj_deleteModel(m);
  }
}

/* Truncated obs and reward recomputed from the arrays read before and after each env_step.
 * Also proves that cfrc_ext is filled (mj_rnePostConstraint) while in contact. */
static void test_ant_obs_reward(void) {
  const env_task* t = env_find("ant");
  mjModel* m = load(t);
  CHECK(m != NULL, "ant loads");
  if (!m) return;
  env* e = env_create(t, m, (rng_key){11, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
  env_reset(e, obs);
  int torso = mj_name2id(m, mjOBJ_BODY, "torso");
  CHECK(torso == 1, "torso is body 1");
  int contact_steps = 0, nonzero_cfrc = 0, checked = 0, moved = 0;
  double max_err = 0;
  for (int s = 0; s < 200; s++) {
    random_action(11, 0, (uint32_t)s, t->act_dim, a);
    double x0 = e->d->xpos[3 * torso];
    double r;
    int term, trunc;
    env_step(e, a, obs, &r, &term, &trunc);
    CHECK(obs_is_truncated_state(e, obs), "step %d obs", s);
    double x1 = e->d->xpos[3 * torso];
    double ctrl = 0, contact = 0, csum = 0;
    for (int i = 0; i < 8; i++) ctrl += (double)a[i] * (double)a[i];
    for (int i = 0; i < 6 * m->nbody; i++) {
      double f = fmin(1.0, fmax(-1.0, e->d->cfrc_ext[i]));
      contact += f * f;
      csum += fabs(e->d->cfrc_ext[i]);
    }
    double want = (x1 - x0) / 0.05 - 0.5 * ctrl - 0.5e-3 * contact + 1.0;
    max_err = fmax(max_err, fabs(r - want));
    checked++;
    moved += x1 != x0;
    if (contact_normal_force(m, e->d) > 0) { /* pressed against the floor */
      contact_steps++;
      nonzero_cfrc += csum > 0 && contact > 0;
    }
    for (int i = 0; i < 6; i++) CHECK(e->d->cfrc_ext[i] == 0, "world row of cfrc_ext is zero");
    if (term || trunc) env_reset(e, obs);
  }
  CHECK(max_err < 1e-12, "ant reward vs formula: max error %.3g over %d steps", max_err, checked);
  CHECK(moved > 100, "torso xpos moves (%d steps)", moved);
  CHECK(contact_steps > 50, "ant in contact (%d steps)", contact_steps);
  CHECK(nonzero_cfrc == contact_steps, "cfrc_ext non-zero in %d of %d contact steps", nonzero_cfrc,
        contact_steps);

  /* Timing (docs/tasks.md §2.3): with RK4 the torso xpos read after the frame loop is not recomputed by
   * the env (no extra mj_forward): a forward pass here changes it, so the env used the raw array. */
  mjData* d2 = mj_makeData(m);
  mj_copyData(d2, m, e->d);
  mj_forward(m, d2);
  CHECK(d2->xpos[3 * torso] != e->d->xpos[3 * torso], "xpos lags qpos after mj_step");
  /* and MuJoCo's mj_step alone leaves cfrc_ext zero: the env must have called the post pass */
  mj_resetData(m, d2);
  mj_forward(m, d2);
  for (int k = 0; k < 100; k++) mj_step(m, d2);
  double z = 0, fn = contact_normal_force(m, d2);
  for (int i = 0; i < 6 * m->nbody; i++) z += fabs(d2->cfrc_ext[i]);
  CHECK(fn > 0 && z == 0, "bare mj_step: contact force %g, sum |cfrc_ext| %g", fn, z);
  mj_deleteData(d2);
  env_destroy(e);
  mj_deleteModel(m);
}

static void test_humanoid_obs_reward(void) {
  const env_task* t = env_find("humanoid");
  mjModel* m = load(t);
  CHECK(m != NULL, "humanoid loads");
  if (!m) return;
  env* e = env_create(t, m, (rng_key){12, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
  env_reset(e, obs);
  int contact_steps = 0, nonzero_cfrc = 0, moved = 0, capped = 0;
  double max_err = 0;
  for (int s = 0; s < 120; s++) {
    random_action(12, 0, (uint32_t)s, t->act_dim, a);
    double c0 = com_x(m, e->d), r;
    int term, trunc;
    env_step(e, a, obs, &r, &term, &trunc);
    CHECK(obs_is_truncated_state(e, obs), "step %d obs", s);
    double c1 = com_x(m, e->d);
    double ctrl = 0, ctrl_d = 0, impact = 0;
    for (int i = 0; i < 17; i++) {
      double u = 0.4 * (double)a[i]; /* the rescaled action, control range +-0.4 */
      ctrl += u * u;
      ctrl_d += e->d->ctrl[i] * e->d->ctrl[i];
    }
    CHECK(fabs(ctrl - ctrl_d) < 1e-14, "data.ctrl holds 0.4 a");
    for (int i = 0; i < 6 * m->nbody; i++) impact += e->d->cfrc_ext[i] * e->d->cfrc_ext[i];
    impact *= 0.5e-6;
    capped += impact > 10;
    impact = fmin(impact, 10.0);
    double want = 0.25 * (c1 - c0) / 0.003 - 0.1 * ctrl_d - impact + 5.0;
    max_err = fmax(max_err, fabs(r - want) / fmax(1.0, fabs(want)));
    moved += c1 != c0;
    if (contact_normal_force(m, e->d) > 0) {
      contact_steps++;
      nonzero_cfrc += impact > 0;
    }
    if (term || trunc) env_reset(e, obs);
  }
  CHECK(max_err < 1e-12, "humanoid reward vs formula: max rel error %.3g", max_err);
  CHECK(moved > 60, "com moves (%d steps)", moved);
  CHECK(contact_steps > 30, "humanoid in contact (%d steps)", contact_steps);
  CHECK(nonzero_cfrc == contact_steps, "cfrc_ext non-zero in %d of %d contact steps",
        nonzero_cfrc, contact_steps);
  /* the cap: start with the body pushed into the floor, so that the contact forces are huge */
  double qpos[24], qvel[23] = {0};
  memcpy(qpos, m->qpos0, sizeof qpos);
  qpos[2] = 0.8;
  env_set_state(e, qpos, qvel);
  double c0 = com_x(m, e->d), r, impact = 0;
  int term, trunc;
  memset(a, 0, sizeof a);
  env_step(e, a, obs, &r, &term, &trunc);
  for (int i = 0; i < 6 * m->nbody; i++) impact += e->d->cfrc_ext[i] * e->d->cfrc_ext[i];
  capped += impact * 0.5e-6 > 10;
  CHECK(impact * 0.5e-6 > 10, "pushed into the floor: 0.5e-6 sum cfrc_ext^2 = %g", impact * 0.5e-6);
  CHECK_CLOSE(r, 0.25 * (com_x(m, e->d) - c0) / 0.003 - 10.0 + 5.0, 1e-12);
  if (getenv("TEST_VERBOSE")) fprintf(stderr, "  impact capped at 10 in %d steps\n", capped);
  env_destroy(e);
  mj_deleteModel(m);
}

/* ---- termination ---- */

/* healthy() on the state qpos0 with qpos[2] = z, set with env_set_state; NaN entries (qpos index
 * nan_qpos, qvel index nan_qvel, or z itself) are written into mjData after the forward pass, as a
 * diverging mj_step leaves them. Also returns the observation's term_done in *tdone. */
static int healthy_at(env* e, double z, int nan_qpos, int nan_qvel, int* tdone) {
  double qpos[64], qvel[64];
  const mjModel* m = e->m;
  memcpy(qpos, m->qpos0, sizeof(double) * (size_t)m->nq);
  memset(qvel, 0, sizeof(double) * (size_t)m->nv);
  qpos[2] = isnan(z) ? m->qpos0[2] : z;
  env_set_state(e, qpos, qvel);
  if (isnan(z)) e->d->qpos[2] = z;
  if (nan_qpos) e->d->qpos[nan_qpos] = NAN;
  if (nan_qvel) e->d->qvel[nan_qvel] = NAN;
  float obs[ENV_MAX_OBS];
  e->task->observe(e, obs);
  if (tdone) *tdone = term_done(e->task->term, obs, e->task->obs_dim);
  return e->task->healthy(e);
}

static void test_ant_thresholds(void) {
  const env_task* t = env_find("ant");
  mjModel* m = load(t);
  CHECK(m != NULL, "ant loads");
  if (!m) return;
  env* e = env_create(t, m, (rng_key){1, RNG_ENV_RESET}, 0);
  int td;
  /* closed interval [0.2, 1.0] */
  CHECK(healthy_at(e, 0.75, 0, 0, &td) == 1 && td == 0, "z 0.75");
  CHECK(healthy_at(e, 0.2, 0, 0, &td) == 1 && td == 0, "z = 0.2 is healthy (closed)");
  CHECK(healthy_at(e, 1.0, 0, 0, &td) == 1 && td == 0, "z = 1.0 is healthy (closed)");
  CHECK(healthy_at(e, nextafter(0.2, 0), 0, 0, NULL) == 0, "z just below 0.2");
  CHECK(healthy_at(e, nextafter(1.0, 2), 0, 0, NULL) == 0, "z just above 1.0");
  CHECK(healthy_at(e, 0.2 - 1e-6, 0, 0, &td) == 0 && td == 1, "z 0.2 - 1e-6");
  CHECK(healthy_at(e, 1.0 + 1e-6, 0, 0, &td) == 0 && td == 1, "z 1.0 + 1e-6");
  CHECK(healthy_at(e, 0.2 + 1e-6, 0, 0, &td) == 1 && td == 0, "z 0.2 + 1e-6");
  CHECK(healthy_at(e, 1.0 - 1e-6, 0, 0, &td) == 1 && td == 0, "z 1.0 - 1e-6");
  /* any non-finite entry of the state vector: unhealthy (z itself is fine) */
  CHECK(healthy_at(e, 0.75, 0, 9, &td) == 0 && td == 1, "NaN in qvel");
  CHECK(healthy_at(e, 0.75, 10, 0, &td) == 0 && td == 1, "NaN in a hinge angle");
  CHECK(healthy_at(e, NAN, 0, 0, &td) == 0 && td == 1, "NaN z");
  /* qpos[0], qpos[1] are not in the observation, but the env checks them */
  CHECK(healthy_at(e, 0.75, 1, 0, &td) == 0 && td == 0, "NaN y: env unhealthy, not observable");
  env_destroy(e);
  mj_deleteModel(m);
}

static void test_humanoid_thresholds(void) {
  const env_task* t = env_find("humanoid");
  mjModel* m = load(t);
  CHECK(m != NULL, "humanoid loads");
  if (!m) return;
  env* e = env_create(t, m, (rng_key){1, RNG_ENV_RESET}, 0);
  int td;
  /* gym 0.12: done = z < 1.0 or z > 2.0 */
  CHECK(healthy_at(e, 1.4, 0, 0, &td) == 1 && td == 0, "z 1.4");
  CHECK(healthy_at(e, 1.0, 0, 0, &td) == 1 && td == 0, "z = 1.0 is not done (z < 1.0 is)");
  CHECK(healthy_at(e, 2.0, 0, 0, &td) == 1 && td == 0, "z = 2.0 is not done (z > 2.0 is)");
  CHECK(healthy_at(e, nextafter(1.0, 0), 0, 0, NULL) == 0, "z just below 1.0");
  CHECK(healthy_at(e, nextafter(2.0, 3), 0, 0, NULL) == 0, "z just above 2.0");
  CHECK(healthy_at(e, 1.0 - 1e-6, 0, 0, &td) == 0 && td == 1, "z 1 - 1e-6");
  CHECK(healthy_at(e, 2.0 + 1e-6, 0, 0, &td) == 0 && td == 1, "z 2 + 1e-6");
  CHECK(healthy_at(e, 0.5, 0, 0, &td) == 0 && td == 1, "z 0.5");
  /* no finiteness check: NaN compares false, so not done, in the env and in the model rule */
  CHECK(healthy_at(e, NAN, 0, 0, &td) == 1 && td == 0, "NaN z is not done");
  CHECK(healthy_at(e, 1.4, 0, 7, &td) == 1 && td == 0, "NaN in qvel is not done");
  env_destroy(e);
  mj_deleteModel(m);
}

/* The model-side rule on the observation agrees with the env's termination on real trajectories:
 * random actions, plus (Ant) episodes started with an upward throw so that the torso leaves
 * [0.2, 1.0]. Humanoid falls within a few dozen steps under random actions. */
static void check_term_agreement(const char* name, int episodes, int max_len, double throw_v) {
  const env_task* t = env_find(name);
  mjModel* m = load(t);
  CHECK(m != NULL, "%s loads", name);
  if (!m) return;
  env* e = env_create(t, m, (rng_key){21, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
  int steps = 0, terms = 0, agree = 0, truncs = 0;
  for (int ep = 0; ep < episodes; ep++) {
    env_reset(e, obs);
    if (throw_v > 0 && ep % 2 == 1) { /* throw the torso up (Ant: ends above z = 1) */
      double qv[64];
      memcpy(qv, e->d->qvel, sizeof(double) * (size_t)m->nv);
      qv[2] += throw_v * (0.5 + 0.5 * ep / (double)episodes);
      env_set_state(e, e->d->qpos, qv);
    }
    for (int s = 0; s < max_len; s++) {
      int term, trunc;
      double r;
      random_action(21, (uint32_t)ep, (uint32_t)s, t->act_dim, a);
      env_step(e, a, obs, &r, &term, &trunc);
      steps++;
      int td = term_done(t->term, obs, t->obs_dim);
      agree += td == term;
      if (td != term)
        fprintf(stderr, "  %s ep %d step %d: env %d, rule %d, z %.9g\n", name, ep, s, term, td,
                e->d->qpos[2]);
      truncs += trunc;
      if (term) {
        terms++;
        break;
      }
      if (trunc) break;
    }
  }
  CHECK(agree == steps, "%s: rule agrees on %d of %d steps", name, agree, steps);
  CHECK(terms >= episodes / 2, "%s: %d terminations in %d episodes", name, terms, episodes);
  CHECK(e->unstable == 0, "%s: no instability", name);
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "  %s: %d steps, %d terminations, %d truncations\n", name, steps, terms, truncs);
  env_destroy(e);
  mj_deleteModel(m);
}

static void test_term_agreement_ant(void) { check_term_agreement("ant", 8, 300, 6.0); }
static void test_term_agreement_humanoid(void) { check_term_agreement("humanoid", 8, 200, 0); }

/* An Ant episode of random actions that does not terminate reports truncation at step 1000
 * (many random episodes end early: the light Ant jumps above z = 1). */
static void test_ant_truncation(void) {
  const env_task* t = env_find("ant");
  mjModel* m = load(t);
  CHECK(m != NULL, "ant loads");
  if (!m) return;
  env* e = env_create(t, m, (rng_key){5, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
  int s = 0, term = 1, trunc = 0, ep;
  for (ep = 0; ep < 30 && term; ep++) {
    env_reset(e, obs);
    s = term = trunc = 0;
    while (!term && !trunc) {
      double r;
      random_action(5, (uint32_t)ep, (uint32_t)s, t->act_dim, a);
      env_step(e, a, obs, &r, &term, &trunc);
      s++;
    }
  }
  CHECK(!term && trunc == 1 && s == 1000 && e->t == 1000, "episode %d: truncated at step %d", ep,
        s);
  env_destroy(e);
  mj_deleteModel(m);
}

/* ---- actuators ---- */

static void test_ant_actuator_order(void) {
  const env_task* t = env_find("ant");
  mjModel* m = load(t);
  CHECK(m != NULL, "ant loads");
  if (!m) return;
  const char* order[8] = {"hip_4", "ankle_4", "hip_1", "ankle_1",
                          "hip_2", "ankle_2", "hip_3", "ankle_3"};
  const char* qorder[8] = {"hip_1", "ankle_1", "hip_2", "ankle_2",
                           "hip_3", "ankle_3", "hip_4", "ankle_4"};
  for (int i = 0; i < 8; i++) {
    CHECK(m->actuator_trntype[i] == mjTRN_JOINT &&
              m->actuator_trnid[2 * i] == mj_name2id(m, mjOBJ_JOINT, order[i]),
          "actuator %d drives %s", i, order[i]);
    CHECK(m->jnt_qposadr[mj_name2id(m, mjOBJ_JOINT, qorder[i])] == 7 + i, "qpos[%d] is %s", 7 + i,
          qorder[i]);
  }
  /* a unit action on index 0 lands on hip_4's dof only, as gear * 1 */
  env* e = env_create(t, m, (rng_key){2, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT] = {0};
  env_reset(e, obs);
  for (int i = 0; i < 8; i++) {
    memset(a, 0, sizeof a);
    a[i] = 1.0f;
    double r;
    int term, trunc;
    env_step(e, a, obs, &r, &term, &trunc);
    int dof = joint_dof(m, order[i]);
    for (int v = 0; v < m->nv; v++)
      CHECK(e->d->qfrc_actuator[v] == (v == dof ? 150.0 : 0.0), "action %d: qfrc_actuator[%d] = %g",
            i, v, e->d->qfrc_actuator[v]);
  }
  env_destroy(e);
  mj_deleteModel(m);
}

static void test_humanoid_control_range(void) {
  const env_task* t = env_find("humanoid");
  mjModel* m = load(t);
  CHECK(m != NULL, "humanoid loads");
  if (!m) return;
  const char* order[17] = {"abdomen_y",       "abdomen_z",       "abdomen_x",      "right_hip_x",
                           "right_hip_z",     "right_hip_y",     "right_knee",     "left_hip_x",
                           "left_hip_z",      "left_hip_y",      "left_knee",      "right_shoulder1",
                           "right_shoulder2", "right_elbow",     "left_shoulder1", "left_shoulder2",
                           "left_elbow"};
  const double gear[17] = {100, 100, 100, 100, 100, 300, 200, 100, 100, 300, 200, 25, 25, 25, 25, 25, 25};
  for (int i = 0; i < 17; i++)
    CHECK(m->actuator_trnid[2 * i] == mj_name2id(m, mjOBJ_JOINT, order[i]) &&
              m->actuator_gear[6 * i] == gear[i],
          "actuator %d drives %s with gear %g", i, order[i], gear[i]);
  env* e = env_create(t, m, (rng_key){2, RNG_ENV_RESET}, 0);
  float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
  double u[ENV_MAX_ACT];
  for (int i = 0; i < 17; i++) a[i] = (i % 4 == 0) ? 1.0f : (i % 4 == 1) ? -1.0f : (i % 4 == 2) ? 0.5f : 3.0f;
  env_rescale_action(e, a, u);
  for (int i = 0; i < 17; i++) {
    double want = (i % 4 == 0) ? 0.4 : (i % 4 == 1) ? -0.4 : (i % 4 == 2) ? 0.2 : 0.4;
    CHECK(fabs(u[i] - want) < 1e-15, "action %g -> ctrl %.17g, want %g", a[i], u[i], want);
  }
  /* action 1 on index 0 -> ctrl 0.4 -> abdomen_y gets 100 * 0.4, nothing else */
  env_reset(e, obs);
  memset(a, 0, sizeof a);
  a[0] = 1.0f;
  double r;
  int term, trunc;
  env_step(e, a, obs, &r, &term, &trunc);
  CHECK(e->d->ctrl[0] == 0.4, "ctrl[0] = %.17g", e->d->ctrl[0]);
  int dof = joint_dof(m, "abdomen_y");
  for (int v = 0; v < m->nv; v++)
    CHECK(fabs(e->d->qfrc_actuator[v] - (v == dof ? 40.0 : 0.0)) < 1e-12,
          "qfrc_actuator[%d] = %g", v, e->d->qfrc_actuator[v]);
  env_destroy(e);
  mj_deleteModel(m);
}

int main(void) {
  RUN(test_dims);
  RUN(test_embedded_assets);
  RUN(test_masses);
  RUN(test_reset);
  RUN(test_determinism_ant);
  RUN(test_determinism_humanoid);
  RUN(test_ant_obs_reward);
  RUN(test_humanoid_obs_reward);
  RUN(test_ant_thresholds);
  RUN(test_humanoid_thresholds);
  RUN(test_term_agreement_ant);
  RUN(test_term_agreement_humanoid);
  RUN(test_ant_truncation);
  RUN(test_ant_actuator_order);
  RUN(test_humanoid_control_range);
  return test_done();
}
