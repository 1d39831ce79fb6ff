/* test_env_planar.c: the planar MuJoCo tasks (Hopper, Walker2d, HalfCheetah) and InvertedPendulum
 * against docs/tasks.md: dims, compiled masses of the authored models, embedding and loading, reset
 * noise, determinism by seed, observation layout, reward formulas, health thresholds, velocity
 * clipping, truncation, action rescaling, agreement of the model-side termination rules
 * (termination.h) with the env, and batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "termination.h"
#include "test.h"

/* ---- the published figures (docs/tasks.md §3, §4, §5, §8: compiled with MuJoCo 2.2.2) ---- */

typedef struct spec {
  const char* name;
  const char* gym_id;
  int obs, act, nq, nv, nu, nbody, frame_skip, term;
  double timestep, dt;
  int integrator;     /* mjtIntegrator */
  double ctrl_lo, ctrl_hi;
  double qpos_noise;  /* uniform bound on qpos */
  double qvel_noise;  /* uniform bound on qvel (0 for normal noise) */
  const char* bodies[8];
  double mass[8];
  double total;
  double alive, ctrl_cost; /* reward = dx/dt + alive - ctrl_cost * |act|^2 (IP: constant 1) */
} spec;

static const spec SPECS[] = {
    {"hopper", "Hopper-v2", 11, 3, 6, 6, 3, 5, 4, TERM_HOPPER, 0.002, 0.008, mjINT_RK4, -1, 1,
     0.005, 0.005, {"torso", "thigh", "leg", "foot"},
     {3.665191, 4.057891, 2.781357, 5.315575}, 15.820013, 1.0, 1e-3},
    {"walker2d", "Walker2d-v2", 17, 6, 9, 9, 6, 8, 4, TERM_WALKER2D, 0.002, 0.008, mjINT_RK4, -1, 1,
     0.005, 0.005, {"torso", "thigh", "leg", "foot", "thigh_left", "leg_left", "foot_left"},
     {3.665191, 4.057891, 2.781357, 3.166725, 4.057891, 2.781357, 3.166725}, 23.677137, 1.0, 1e-3},
    {"halfcheetah", "HalfCheetah-v2", 17, 6, 9, 9, 6, 8, 5, TERM_HALFCHEETAH, 0.01, 0.05,
     mjINT_EULER, -1, 1, 0.1, 0.0, {"torso", "bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"},
     {6.250209, 1.543515, 1.587448, 1.095397, 1.438075, 1.200837, 0.884519}, 14.0, 0.0, 0.1},
    {"inverted_pendulum", "InvertedPendulum-v2", 4, 1, 2, 2, 1, 3, 2, TERM_INVERTED_PENDULUM, 0.02,
     0.04, mjINT_RK4, -3, 3, 0.01, 0.01, {"cart", "pole"}, {10.471976, 5.018592}, 15.490567, 1.0,
     0.0},
};
#define NSPECS ((int)(sizeof SPECS / sizeof SPECS[0]))

static const env_task* task_of(const spec* s) {
  const env_task* t = env_find(s->name);
  if (!t) {
    fprintf(stderr, "task %s is not registered\n", s->name);
    exit(1);
  }
  return t;
}

/* Uniform policy action in [-1, 1]^n, draw `step` of the RNG_TEST stream. */
static void random_action(uint32_t seed, uint32_t step, int n, float* a) {
  rng_key k = {seed, RNG_TEST};
  for (int i = 0; i < n; i++) a[i] = 2.0f * rng_uniform(k, 0, step, (uint64_t)i) - 1.0f;
}

/* The observation computed here from mjData, as docs/tasks.md writes it. */
static void expected_obs(const spec* s, const env* e, float* obs) {
  const double* q = e->d->qpos;
  const double* v = e->d->qvel;
  if (strcmp(s->name, "inverted_pendulum") == 0) {
    obs[0] = (float)q[0];
    obs[1] = (float)q[1];
    obs[2] = (float)v[0];
    obs[3] = (float)v[1];
    return;
  }
  int clip = strcmp(s->name, "halfcheetah") != 0;
  for (int i = 1; i < s->nq; i++) obs[i - 1] = (float)q[i];
  for (int i = 0; i < s->nv; i++) {
    double x = v[i];
    if (clip) x = x < -10 ? -10 : (x > 10 ? 10 : x);
    obs[s->nq - 1 + i] = (float)x;
  }
}

/* ---- registry, dims, models ---- */

static void test_registry_and_dims(void) {
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = env_find(s->name);
    CHECK(t != NULL, "%s not registered (tasks: %s)", s->name, env_task_list());
    if (!t) continue;
    CHECK(strcmp(t->gym_id, s->gym_id) == 0, "%s gym_id %s", s->name, t->gym_id);
    CHECK(t->obs_dim == s->obs && t->act_dim == s->act, "%s obs %d act %d", s->name, t->obs_dim,
          t->act_dim);
    CHECK(t->obs_dim <= ENV_MAX_OBS && t->act_dim <= ENV_MAX_ACT, "%s dims over the limits",
          s->name);
    CHECK(t->frame_skip == s->frame_skip, "%s frame_skip %d", s->name, t->frame_skip);
    CHECK(t->max_steps == 1000, "%s max_steps %d", s->name, t->max_steps);
    CHECK(t->term == s->term, "%s term %d != %d", s->name, t->term, s->term);
    CHECK(t->rne_post == 0, "%s needs no contact forces", s->name);
    CHECK(t->observe && t->pre_step && t->reward && t->healthy, "%s callbacks missing", s->name);
    CHECK(env_task_at(s->term) == t, "%s: registry order differs from enum term_kind", s->name);
  }
}

static void test_embedded_models_compile_to_published_masses(void) {
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    int size = 0;
    const char* text = env_asset_text(t->asset, &size);
    CHECK(text != NULL && size > 100, "%s: %s not embedded", s->name, t->asset);
    if (text) CHECK((int)strlen(text) == size, "%s: embedded size %d != strlen", s->name, size);
    char err[1200] = "";
    mjModel* m = env_load_model(t, NULL, err, sizeof err);
    CHECK(m != NULL, "%s: embedded model does not load: %s", s->name, err);
    if (!m) continue;
    CHECK(m->nq == s->nq && m->nv == s->nv && m->nu == s->nu && m->nbody == s->nbody,
          "%s: nq %d nv %d nu %d nbody %d", s->name, m->nq, m->nv, m->nu, m->nbody);
    CHECK(m->opt.timestep == s->timestep, "%s timestep %g", s->name, m->opt.timestep);
    CHECK(m->opt.integrator == s->integrator, "%s integrator %d", s->name, m->opt.integrator);
    CHECK_CLOSE(m->opt.timestep * t->frame_skip, s->dt, 1e-12);
    CHECK(m->body_mass[0] == 0, "%s world mass %g", s->name, m->body_mass[0]);
    int nb = 0;
    for (int b = 0; b < 8 && s->bodies[b]; b++, nb++) {
      int id = mj_name2id(m, mjOBJ_BODY, s->bodies[b]);
      CHECK(id > 0, "%s: no body %s", s->name, s->bodies[b]);
      if (id <= 0) continue;
      double rel = fabs(m->body_mass[id] - s->mass[b]) / s->mass[b];
      CHECK(rel < 1e-4, "%s body %s mass %.6f, published %.6f", s->name, s->bodies[b],
            m->body_mass[id], s->mass[b]);
    }
    CHECK(nb == s->nbody - 1, "%s: %d bodies listed", s->name, nb);
    CHECK(fabs(env_total_mass(m) - s->total) / s->total < 1e-4, "%s total mass %.6f", s->name,
          env_total_mass(m));
    for (int i = 0; i < m->nu; i++) {
      CHECK(m->actuator_ctrllimited[i], "%s actuator %d not ctrllimited", s->name, i);
      CHECK(m->actuator_ctrlrange[2 * i] == s->ctrl_lo && m->actuator_ctrlrange[2 * i + 1] == s->ctrl_hi,
            "%s actuator %d ctrlrange [%g, %g]", s->name, i, m->actuator_ctrlrange[2 * i],
            m->actuator_ctrlrange[2 * i + 1]);
    }
    /* Hopper/Walker2d: rootz ref 1.25, so qpos0[1] is the torso's world z */
    if (s->term == TERM_HOPPER || s->term == TERM_WALKER2D) {
      CHECK(m->qpos0[1] == 1.25, "%s qpos0[1] %g", s->name, m->qpos0[1]);
      mjData* d = mj_makeData(m);
      mj_forward(m, d);
      CHECK_CLOSE(d->xpos[3 * 1 + 2], d->qpos[1], 1e-12);
      mj_deleteData(d);
    }
    mj_deleteModel(m);
  }
}

/* Individual model parameters that the masses do not show (docs/tasks.md §3-§8). */
static void test_model_parameters(void) {
  char err[1200] = "";
  /* Hopper: geom condim 1 but floor condim 3; foot friction 2; joint armature/damping 1 */
  mjModel* m = env_load_model(env_find("hopper"), NULL, err, sizeof err);
  CHECK(m != NULL, "%s", err);
  if (m) {
    int floor = mj_name2id(m, mjOBJ_GEOM, "floor"), foot = mj_name2id(m, mjOBJ_GEOM, "foot_geom");
    CHECK(floor >= 0 && m->geom_condim[floor] == 3, "hopper floor condim");
    CHECK(foot >= 0 && m->geom_condim[foot] == 1 && m->geom_friction[3 * foot] == 2.0,
          "hopper foot condim/friction");
    CHECK(foot >= 0 && m->geom_margin[foot] == 0.001, "hopper margin");
    int tj = mj_name2id(m, mjOBJ_JOINT, "thigh_joint");
    CHECK(tj >= 0 && m->dof_armature[m->jnt_dofadr[tj]] == 1 && m->dof_damping[m->jnt_dofadr[tj]] == 1,
          "hopper joint armature/damping");
    CHECK(tj >= 0 && m->jnt_limited[tj] && fabs(m->jnt_range[2 * tj] + 150 * M_PI / 180) < 1e-12,
          "hopper thigh range");
    CHECK(m->actuator_gear[0] == 200, "hopper gear %g", m->actuator_gear[0]);
    mj_deleteModel(m);
  }
  /* Walker2d: feet friction 0.9 right, 1.9 left; body geoms conaffinity 0 */
  m = env_load_model(env_find("walker2d"), NULL, err, sizeof err);
  CHECK(m != NULL, "%s", err);
  if (m) {
    int fr = mj_name2id(m, mjOBJ_GEOM, "foot_geom"), fl = mj_name2id(m, mjOBJ_GEOM, "foot_left_geom");
    CHECK(fr >= 0 && m->geom_friction[3 * fr] == 0.9, "walker right foot friction");
    CHECK(fl >= 0 && m->geom_friction[3 * fl] == 1.9, "walker left foot friction");
    CHECK(fr >= 0 && m->geom_conaffinity[fr] == 0, "walker conaffinity");
    CHECK(m->actuator_gear[0] == 100, "walker gear %g", m->actuator_gear[0]);
    mj_deleteModel(m);
  }
  /* HalfCheetah: per-joint stiffness/damping, gears, radians */
  m = env_load_model(env_find("halfcheetah"), NULL, err, sizeof err);
  CHECK(m != NULL, "%s", err);
  if (m) {
    static const double stiff[6] = {240, 180, 120, 180, 120, 60}, damp[6] = {6, 4.5, 3, 4.5, 3, 1.5};
    static const double gear[6] = {120, 90, 60, 120, 60, 30};
    static const double lo[6] = {-0.52, -0.785, -0.4, -1, -1.2, -0.5},
                        hi[6] = {1.05, 0.785, 0.785, 0.7, 0.87, 0.5};
    for (int j = 0; j < 6; j++) {
      int jj = 3 + j;
      CHECK(m->jnt_stiffness[jj] == stiff[j] && m->dof_damping[jj] == damp[j] &&
                m->dof_armature[jj] == 0.1,
            "halfcheetah joint %d stiffness %g damping %g", j, m->jnt_stiffness[jj], m->dof_damping[jj]);
      CHECK(m->jnt_range[2 * jj] == lo[j] && m->jnt_range[2 * jj + 1] == hi[j],
            "halfcheetah joint %d range", j);
      CHECK(m->actuator_gear[6 * j] == gear[j], "halfcheetah gear %d", j);
    }
    for (int j = 0; j < 3; j++)
      CHECK(m->jnt_stiffness[j] == 0 && m->dof_damping[j] == 0 && !m->jnt_limited[j],
            "halfcheetah root joint %d", j);
    mj_deleteModel(m);
  }
}

/* ---- loading from a model directory, and errors ---- */

static int write_file(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  if (!f) return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

static void test_model_dir_and_errors(void) {
  char dir[] = "/tmp/mbpo_test_env_XXXXXX";
  if (!mkdtemp(dir)) SKIP("cannot create a temporary folder");
  const env_task* hop = env_find("hopper");
  char path[256], err[1200];
  snprintf(path, sizeof path, "%s/hopper.xml", dir);

  /* a copy of the embedded file loads from the folder, with the same masses */
  CHECK(write_file(path, env_asset_text("hopper.xml", NULL)), "write %s", path);
  err[0] = 0;
  mjModel* m = env_load_model(hop, dir, err, sizeof err);
  CHECK(m != NULL, "hopper from %s: %s", dir, err);
  if (m) {
    CHECK_CLOSE(env_total_mass(m), 15.820013, 1e-6);
    mj_deleteModel(m);
  }

  /* a broken file: NULL and a message naming the file */
  CHECK(write_file(path,
                   "<mujoco model=\"hopper\">\n  <worldbody>\n    <body name=\"torso\" pos=\"0 0 1.25/2\">\n"
                   "      <geom type=\"capsule\" size=\"0.05\" fromto=\"0 0 0 0 0 1\"/>\n"
                   "    </body>\n  </worldbody>\n</mujoco>\n"),
        "write %s", path);
  err[0] = 0;
  m = env_load_model(hop, dir, err, sizeof err);
  CHECK(m == NULL, "broken hopper.xml loaded");
  if (m) mj_deleteModel(m);
  CHECK(strstr(err, path) != NULL, "message does not name %s: '%s'", path, err);
  CHECK(strstr(err, "pos") != NULL, "message does not say what is wrong: '%s'", err);
  if (getenv("TEST_VERBOSE")) fprintf(stderr, "  broken model: %s\n", err);

  /* not XML at all */
  CHECK(write_file(path, "<mujoco><worldbody>"), "write %s", path);
  err[0] = 0;
  m = env_load_model(hop, dir, err, sizeof err);
  CHECK(m == NULL && strstr(err, "hopper.xml") != NULL, "truncated XML: '%s'", err);
  if (m) mj_deleteModel(m);

  /* a valid model with the wrong actuators */
  CHECK(write_file(path, env_asset_text("inverted_pendulum.xml", NULL)), "write %s", path);
  err[0] = 0;
  m = env_load_model(hop, dir, err, sizeof err);
  CHECK(m == NULL && strstr(err, "actuators") != NULL && strstr(err, "hopper") != NULL,
        "wrong actuator count: '%s'", err);
  if (m) mj_deleteModel(m);

  /* a missing file */
  unlink(path);
  err[0] = 0;
  m = env_load_model(hop, dir, err, sizeof err);
  CHECK(m == NULL && strstr(err, path) != NULL, "missing file: '%s'", err);
  if (m) mj_deleteModel(m);
  rmdir(dir);
}

/* ---- reset noise ---- */

static void test_reset_noise(void) {
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    rng_key key = {17, RNG_ENV_RESET};
    env* e = env_create(t, NULL, key, 0);
    const mjModel* m = e->m;
    float obs[ENV_MAX_OBS], ex[ENV_MAX_OBS];
    double maxq = 0, maxv = 0, sv = 0, sv2 = 0;
    long nv = 0;
    const int R = 200;
    for (int r = 0; r < R; r++) {
      env_reset(e, obs);
      CHECK(e->t == 0 && e->episode == (uint32_t)(r + 1), "%s counters", s->name);
      expected_obs(s, e, ex);
      CHECK(memcmp(obs, ex, sizeof(float) * (size_t)s->obs) == 0, "%s reset obs layout", s->name);
      for (int i = 0; i < m->nq; i++) {
        double dq = e->d->qpos[i] - m->qpos0[i];
        if (fabs(dq) > maxq) maxq = fabs(dq);
      }
      for (int i = 0; i < m->nv; i++) {
        double v = e->d->qvel[i];
        if (fabs(v) > maxv) maxv = fabs(v);
        sv += v;
        sv2 += v * v;
        nv++;
      }
      /* the first observation is qpos0[1:] + noise (within the bound) */
      if (s->term != TERM_INVERTED_PENDULUM)
        for (int i = 1; i < m->nq; i++)
          CHECK(fabs(obs[i - 1] - m->qpos0[i]) <= s->qpos_noise + 1e-6, "%s obs[%d] %g", s->name,
                i - 1, obs[i - 1]);
    }
    CHECK(maxq <= s->qpos_noise && maxq > 0.9 * s->qpos_noise, "%s max |qpos - qpos0| %g, bound %g",
          s->name, maxq, s->qpos_noise);
    if (s->qvel_noise > 0) {
      CHECK(maxv <= s->qvel_noise && maxv > 0.9 * s->qvel_noise, "%s max |qvel| %g, bound %g",
            s->name, maxv, s->qvel_noise);
    } else {
      /* HalfCheetah: qvel = 0.1 N(0, 1): mean 0, std 0.1, values beyond 0.1 and even 0.25 */
      double mean = sv / (double)nv, sd = sqrt(sv2 / (double)nv - mean * mean);
      CHECK(fabs(mean) < 0.01, "%s qvel noise mean %g", s->name, mean);
      CHECK(fabs(sd - 0.1) < 0.01, "%s qvel noise std %g", s->name, sd);
      CHECK(maxv > 0.25 && maxv < 0.6, "%s max |qvel| %g", s->name, maxv);
    }
    /* a pure function of (seed, stream, index, episode) */
    env* e2 = env_create(t, m, key, 0);
    env* e3 = env_create(t, m, key, 1);
    float o1[ENV_MAX_OBS], o2[ENV_MAX_OBS], o3[ENV_MAX_OBS];
    e->episode = 5;
    e2->episode = 5;
    e3->episode = 5;
    env_reset(e, o1);
    env_reset(e2, o2);
    env_reset(e3, o3);
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)s->obs) == 0, "%s same (key, index, episode)", s->name);
    CHECK(memcmp(o1, o3, sizeof(float) * (size_t)s->obs) != 0, "%s index does not change noise", s->name);
    env_reset(e2, o2);
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)s->obs) != 0, "%s episode does not change noise", s->name);
    env_destroy(e3);
    env_destroy(e2);
    env_destroy(e);
  }
}

/* ---- determinism ---- */

#define TRAJ 200

/* Run TRAJ random-action steps (resetting when an episode ends); return a checksum-free copy. */
static void trajectory(const env_task* t, uint32_t seed, float* obs, double* rew, int* flags) {
  rng_key key = {seed, RNG_ENV_RESET};
  env* e = env_create(t, NULL, key, 0);
  float o[ENV_MAX_OBS], a[ENV_MAX_ACT];
  env_reset(e, o);
  for (int i = 0; i < TRAJ; i++) {
    int term, trunc;
    random_action(seed, (uint32_t)i, t->act_dim, a);
    env_step(e, a, obs + (size_t)i * t->obs_dim, &rew[i], &term, &trunc);
    flags[i] = term | (trunc << 1);
    if (term || trunc) env_reset(e, o);
  }
  env_destroy(e);
}

static void test_determinism_by_seed(void) {
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    size_t no = (size_t)TRAJ * (size_t)t->obs_dim;
    float *o1 = malloc(no * sizeof(float)), *o2 = malloc(no * sizeof(float)),
          *o3 = malloc(no * sizeof(float));
    double r1[TRAJ], r2[TRAJ], r3[TRAJ];
    int f1[TRAJ], f2[TRAJ], f3[TRAJ];
    trajectory(t, 3, o1, r1, f1);
    trajectory(t, 3, o2, r2, f2);
    trajectory(t, 4, o3, r3, f3);
    CHECK(memcmp(o1, o2, no * sizeof(float)) == 0, "%s: same seed, different observations", s->name);
    CHECK(memcmp(r1, r2, sizeof r1) == 0, "%s: same seed, different rewards", s->name);
    CHECK(memcmp(f1, f2, sizeof f1) == 0, "%s: same seed, different done flags", s->name);
    CHECK(memcmp(o1, o3, no * sizeof(float)) != 0, "%s: different seeds, same observations", s->name);
    if (s->term != TERM_INVERTED_PENDULUM) /* its reward is always 1 */
      CHECK(memcmp(r1, r3, sizeof r1) != 0, "%s: different seeds, same rewards", s->name);
    int finite = 1;
    for (size_t i = 0; i < no; i++) finite &= isfinite(o1[i]);
    CHECK(finite, "%s: non-finite observation", s->name);
    free(o1);
    free(o2);
    free(o3);
  }
}

/* ---- observation, reward, action rescaling ---- */

static void test_observation_and_reward_formula(void) {
  static const float known[4][6] = {{0.5f, -0.75f, 0.25f, 1.0f, -1.0f, 0.125f},
                                    {1.5f, -2.0f, 0.0f, 0.3f, -0.6f, 0.9f},
                                    {-0.2f, 0.4f, -0.8f, 0.6f, 0.1f, -0.35f},
                                    {0, 0, 0, 0, 0, 0}};
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    rng_key key = {5, RNG_ENV_RESET};
    env* e = env_create(t, NULL, key, 0);
    float obs[ENV_MAX_OBS], ex[ENV_MAX_OBS];
    env_reset(e, obs);
    int steps = 0;
    for (int rep = 0; rep < 3; rep++)
      for (int j = 0; j < 4; j++) {
        const float* a = known[j];
        double x0 = e->d->qpos[0];
        double r;
        int term, trunc;
        env_step(e, a, obs, &r, &term, &trunc);
        steps++;
        double x1 = e->d->qpos[0];
        double ctrl = 0;
        for (int i = 0; i < s->act; i++) {
          double act = s->ctrl_lo + ((double)a[i] + 1.0) * (s->ctrl_hi - s->ctrl_lo) / 2.0;
          act = act < s->ctrl_lo ? s->ctrl_lo : (act > s->ctrl_hi ? s->ctrl_hi : act);
          CHECK(e->d->ctrl[i] == act, "%s ctrl[%d] = %g, expected %g", s->name, i, e->d->ctrl[i], act);
          ctrl += act * act;
        }
        double want = s->term == TERM_INVERTED_PENDULUM
                          ? 1.0
                          : (x1 - x0) / s->dt + s->alive - s->ctrl_cost * ctrl;
        CHECK(fabs(r - want) <= 1e-9 * fmax(1.0, fabs(want)), "%s step %d reward %.12g, formula %.12g",
              s->name, steps, r, want);
        expected_obs(s, e, ex);
        CHECK(memcmp(obs, ex, sizeof(float) * (size_t)s->obs) == 0, "%s step %d obs layout", s->name,
              steps);
        if (term) env_reset(e, obs);
      }
    /* the forward term is a finite difference of qpos[0] over dt, never qvel */
    if (s->term != TERM_INVERTED_PENDULUM) {
      double qpos[16] = {0}, qvel[16] = {0};
      for (int i = 0; i < s->nq; i++) qpos[i] = e->m->qpos0[i];
      qvel[0] = 1.0; /* moving forward at 1 m/s */
      env_set_state(e, qpos, qvel);
      double r;
      int term, trunc;
      float zero[ENV_MAX_ACT] = {0};
      env_step(e, zero, obs, &r, &term, &trunc);
      CHECK(fabs(r - (e->d->qpos[0] / s->dt + s->alive)) < 1e-9, "%s moving reward %g", s->name, r);
      CHECK(r - s->alive > 0.5, "%s: forward motion not rewarded (%g)", s->name, r);
    }
    env_destroy(e);
  }
}

static void test_action_rescaling_and_clipping(void) {
  /* InvertedPendulum: [-3, 3]; a = 1 -> 3, a = 2 -> clipped 3, a = -2 -> -3, a = 0.5 -> 1.5 */
  const env_task* ip = env_find("inverted_pendulum");
  rng_key key = {1, RNG_ENV_RESET};
  env* e = env_create(ip, NULL, key, 0);
  static const float a[5] = {1.0f, 2.0f, -2.0f, 0.5f, 0.0f};
  static const double want[5] = {3.0, 3.0, -3.0, 1.5, 0.0};
  for (int i = 0; i < 5; i++) {
    float obs[4];
    double r, out;
    int term, trunc;
    env_reset(e, obs);
    env_rescale_action(e, &a[i], &out);
    CHECK(out == want[i], "rescale(%g) = %g, expected %g", a[i], out, want[i]);
    env_step(e, &a[i], obs, &r, &term, &trunc);
    CHECK(e->d->ctrl[0] == want[i], "a = %g: ctrl %g, expected %g", a[i], e->d->ctrl[0], want[i]);
  }
  env_destroy(e);
  /* [-1, 1] tasks: the identity inside, clipped outside */
  for (int k = 0; k < 3; k++) {
    const env_task* t = task_of(&SPECS[k]);
    e = env_create(t, NULL, key, 0);
    float obs[ENV_MAX_OBS], act[ENV_MAX_ACT];
    double out[ENV_MAX_ACT], r;
    int term, trunc;
    for (int i = 0; i < t->act_dim; i++) act[i] = (i % 3 == 0) ? 1.5f : (i % 3 == 1 ? -7.0f : -0.25f);
    env_reset(e, obs);
    env_rescale_action(e, act, out);
    env_step(e, act, obs, &r, &term, &trunc);
    for (int i = 0; i < t->act_dim; i++) {
      double w = (i % 3 == 0) ? 1.0 : (i % 3 == 1 ? -1.0 : -0.25);
      CHECK(out[i] == w && e->d->ctrl[i] == w, "%s act[%d] = %g: ctrl %g, expected %g", t->name, i,
            act[i], e->d->ctrl[i], w);
    }
    env_destroy(e);
  }
}

/* ---- health and termination ---- */

/* healthy() on the state (qpos0 with the given overrides), set through env_set_state. */
static int healthy_at(env* e, int iq, double vq, int iv, double vv) {
  double qpos[16], qvel[16] = {0};
  for (int i = 0; i < e->m->nq; i++) qpos[i] = e->m->qpos0[i];
  if (iq >= 0) qpos[iq] = vq;
  if (iv >= 0) qvel[iv] = vv;
  env_set_state(e, qpos, qvel);
  return e->task->healthy(e);
}

/* The model-side rule on the observation of the current state. */
static int term_rule_now(const env* e) {
  float obs[ENV_MAX_OBS];
  e->task->observe(e, obs);
  return term_done(e->task->term, obs, e->task->obs_dim);
}

static void test_healthy_thresholds(void) {
  const double eps = 1e-9, feps = 1e-6; /* feps: still apart after rounding the obs to float */
  rng_key key = {2, RNG_ENV_RESET};
  /* Hopper: z > 0.7, |pitch| < 0.2, |qpos[2:]| < 100, |qvel| < 100, all finite */
  env* e = env_create(env_find("hopper"), NULL, key, 0);
  CHECK(healthy_at(e, -1, 0, -1, 0), "hopper qpos0 unhealthy");
  CHECK(healthy_at(e, 1, 0.7 + eps, -1, 0), "hopper z just above 0.7");
  CHECK(!healthy_at(e, 1, 0.7, -1, 0), "hopper z = 0.7 (strict)");
  CHECK(!healthy_at(e, 1, 0.7 - eps, -1, 0), "hopper z just below 0.7");
  CHECK(healthy_at(e, 1, 150.0, -1, 0), "hopper: rootz is not in the |s[2:]| < 100 check");
  CHECK(healthy_at(e, 0, 1e6, -1, 0), "hopper: rootx is not in the |s[2:]| < 100 check");
  CHECK(healthy_at(e, 2, 0.2 - eps, -1, 0) && healthy_at(e, 2, -0.2 + eps, -1, 0), "hopper pitch inside");
  CHECK(!healthy_at(e, 2, 0.2, -1, 0) && !healthy_at(e, 2, -0.2, -1, 0), "hopper pitch = +-0.2");
  CHECK(!healthy_at(e, 2, 0.2 + eps, -1, 0) && !healthy_at(e, 2, -0.2 - eps, -1, 0), "hopper pitch outside");
  for (int j = 3; j < 6; j++) {
    CHECK(healthy_at(e, j, 100 - eps, -1, 0) && healthy_at(e, j, -100 + eps, -1, 0), "hopper qpos[%d] inside", j);
    CHECK(!healthy_at(e, j, 100, -1, 0) && !healthy_at(e, j, -100, -1, 0), "hopper qpos[%d] = +-100", j);
  }
  for (int j = 0; j < 6; j++) {
    CHECK(healthy_at(e, -1, 0, j, 100 - eps) && healthy_at(e, -1, 0, j, -100 + eps), "hopper qvel[%d] inside", j);
    CHECK(!healthy_at(e, -1, 0, j, 100) && !healthy_at(e, -1, 0, j, -100), "hopper qvel[%d] = +-100", j);
  }
  /* non-finite values anywhere in the state vector, qpos[0] included (written directly) */
  healthy_at(e, -1, 0, -1, 0);
  e->d->qvel[4] = NAN;
  CHECK(!e->task->healthy(e), "hopper NaN qvel");
  healthy_at(e, -1, 0, -1, 0);
  e->d->qpos[0] = INFINITY;
  CHECK(!e->task->healthy(e), "hopper inf rootx");
  healthy_at(e, -1, 0, -1, 0);
  e->d->qpos[1] = NAN;
  CHECK(!e->task->healthy(e), "hopper NaN z");
  /* the model rule agrees on the observations a little inside/outside each bound */
  CHECK(term_rule_now(e), "hopper rule on NaN z");
  healthy_at(e, 1, 0.7 + feps, -1, 0);
  CHECK(!term_rule_now(e), "hopper rule z inside");
  healthy_at(e, 1, 0.7 - feps, -1, 0);
  CHECK(term_rule_now(e), "hopper rule z outside");
  healthy_at(e, 2, -0.2 + feps, -1, 0);
  CHECK(!term_rule_now(e), "hopper rule pitch inside");
  healthy_at(e, 2, -0.2 - feps, -1, 0);
  CHECK(term_rule_now(e), "hopper rule pitch outside");
  healthy_at(e, 5, -100.5, -1, 0);
  CHECK(term_rule_now(e), "hopper rule foot angle -100.5 (the intended two-sided bound)");
  env_destroy(e);

  /* Walker2d: 0.8 < z < 2, -1 < pitch < 1; nothing else */
  e = env_create(env_find("walker2d"), NULL, key, 0);
  CHECK(healthy_at(e, -1, 0, -1, 0), "walker qpos0 unhealthy");
  CHECK(healthy_at(e, 1, 0.8 + eps, -1, 0) && healthy_at(e, 1, 2.0 - eps, -1, 0), "walker z inside");
  CHECK(!healthy_at(e, 1, 0.8, -1, 0) && !healthy_at(e, 1, 2.0, -1, 0), "walker z at the bounds");
  CHECK(!healthy_at(e, 1, 0.8 - eps, -1, 0) && !healthy_at(e, 1, 2.0 + eps, -1, 0), "walker z outside");
  CHECK(healthy_at(e, 2, 1.0 - eps, -1, 0) && healthy_at(e, 2, -1.0 + eps, -1, 0), "walker pitch inside");
  CHECK(!healthy_at(e, 2, 1.0, -1, 0) && !healthy_at(e, 2, -1.0, -1, 0), "walker pitch = +-1");
  CHECK(!healthy_at(e, 2, 1.0 + eps, -1, 0) && !healthy_at(e, 2, -1.0 - eps, -1, 0), "walker pitch outside");
  CHECK(healthy_at(e, -1, 0, 3, 1e6) && healthy_at(e, 5, 500, -1, 0), "walker has no state-range check");
  healthy_at(e, -1, 0, -1, 0);
  e->d->qpos[1] = NAN;
  CHECK(!e->task->healthy(e), "walker NaN z terminates");
  CHECK(term_rule_now(e), "walker rule on NaN z");
  healthy_at(e, -1, 0, -1, 0);
  e->d->qvel[3] = NAN; /* no finiteness check */
  CHECK(e->task->healthy(e), "walker NaN velocity (gym has no finiteness check)");
  healthy_at(e, 1, 0.8 + feps, -1, 0);
  CHECK(!term_rule_now(e), "walker rule z inside");
  healthy_at(e, 1, 2.0 + feps, -1, 0);
  CHECK(term_rule_now(e), "walker rule z outside");
  healthy_at(e, 2, 1.0 - feps, -1, 0);
  CHECK(!term_rule_now(e), "walker rule pitch inside");
  healthy_at(e, 2, -1.0 - feps, -1, 0);
  CHECK(term_rule_now(e), "walker rule pitch outside");
  env_destroy(e);

  /* HalfCheetah: never unhealthy */
  e = env_create(env_find("halfcheetah"), NULL, key, 0);
  CHECK(healthy_at(e, 1, -5.0, -1, 0) && healthy_at(e, 2, 3.0, 5, 1e3) && healthy_at(e, -1, 0, 0, 1e4),
        "halfcheetah unhealthy");
  CHECK(!term_rule_now(e), "halfcheetah rule");
  env_destroy(e);

  /* InvertedPendulum: |angle| <= 0.2 (closed), all finite */
  e = env_create(env_find("inverted_pendulum"), NULL, key, 0);
  CHECK(healthy_at(e, 1, 0.2, -1, 0) && healthy_at(e, 1, -0.2, -1, 0), "ip angle = +-0.2 (closed)");
  CHECK(!healthy_at(e, 1, 0.2 + eps, -1, 0) && !healthy_at(e, 1, -0.2 - eps, -1, 0), "ip angle outside");
  healthy_at(e, -1, 0, -1, 0);
  e->d->qvel[0] = NAN;
  CHECK(!e->task->healthy(e), "ip NaN velocity");
  CHECK(term_rule_now(e), "ip rule NaN");
  healthy_at(e, 1, 0.2 - feps, -1, 0);
  CHECK(!term_rule_now(e), "ip rule inside");
  healthy_at(e, 1, -0.2 - feps, -1, 0);
  CHECK(term_rule_now(e), "ip rule outside");
  env_destroy(e);
}

static void test_step_reports_termination(void) {
  /* a state that stays unhealthy over one step: terminated = 1 and truncated = 0, even at the
   * step limit; the reward still includes the alive bonus (v2) */
  static const struct { const char* name; int iq; double v; } bad[] = {
      {"hopper", 2, 0.6}, {"hopper", 1, 0.5}, {"walker2d", 2, 1.5}, {"walker2d", 1, 2.5},
      {"inverted_pendulum", 1, 0.5}};
  rng_key key = {9, RNG_ENV_RESET};
  for (int k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
    env* e = env_create(env_find(bad[k].name), NULL, key, 0);
    float obs[ENV_MAX_OBS], zero[ENV_MAX_ACT] = {0};
    double r;
    int term, trunc;
    env_reset(e, obs);
    healthy_at(e, bad[k].iq, bad[k].v, -1, 0);
    e->t = e->task->max_steps - 1;
    env_step(e, zero, obs, &r, &term, &trunc);
    CHECK(!e->task->healthy(e), "%s: state became healthy", bad[k].name);
    CHECK(term == 1 && trunc == 0, "%s qpos[%d] = %g: terminated %d truncated %d", bad[k].name,
          bad[k].iq, bad[k].v, term, trunc);
    CHECK(term_done(e->task->term, obs, e->task->obs_dim), "%s: model rule disagrees", bad[k].name);
    /* qpos[0] started at 0 (qpos0) and the action is zero: reward = x / dt + alive bonus */
    double dt = e->m->opt.timestep * e->task->frame_skip;
    double want = e->task->term == TERM_INVERTED_PENDULUM ? 1.0 : e->d->qpos[0] / dt + 1.0;
    CHECK(fabs(r - want) < 1e-9, "%s: reward %g on the terminating step, expected %g", bad[k].name, r,
          want);
    env_destroy(e);
  }
}

static void test_velocity_clipping(void) {
  rng_key key = {4, RNG_ENV_RESET};
  for (int k = 0; k < 3; k++) {
    const spec* s = &SPECS[k];
    env* e = env_create(task_of(s), NULL, key, 0);
    float obs[ENV_MAX_OBS];
    double qpos[16], qvel[16];
    for (int i = 0; i < s->nq; i++) qpos[i] = e->m->qpos0[i];
    for (int i = 0; i < s->nv; i++) qvel[i] = (i % 2 ? -1 : 1) * (50.0 + i);
    env_set_state(e, qpos, qvel);
    e->task->observe(e, obs);
    int clip = s->term != TERM_HALFCHEETAH;
    for (int i = 0; i < s->nv; i++) {
      float want = clip ? (i % 2 ? -10.0f : 10.0f) : (float)qvel[i];
      CHECK(obs[s->nq - 1 + i] == want, "%s obs of qvel[%d] = %g, expected %g", s->name, i,
            obs[s->nq - 1 + i], want);
    }
    if (s->term == TERM_HOPPER) {
      /* health uses the unclipped velocities: 50 is healthy, 150 is not, while the observation
       * shows 10 both times (so the model rule cannot see it: the one legitimate disagreement) */
      CHECK(e->task->healthy(e), "hopper |qvel| = 50..55 should be healthy");
      CHECK(!term_rule_now(e), "hopper rule on |qvel| 50");
      qvel[3] = 150.0;
      env_set_state(e, qpos, qvel);
      e->task->observe(e, obs);
      CHECK(obs[5 + 3] == 10.0f, "hopper clipped obs %g", obs[8]);
      CHECK(!e->task->healthy(e), "hopper |qvel| = 150 should be unhealthy");
      CHECK(!term_rule_now(e), "hopper rule sees clipped 10, not done");
    }
    if (s->term == TERM_WALKER2D) CHECK(e->task->healthy(e), "walker velocities do not matter");
    env_destroy(e);
  }
}

static void test_truncation_at_max_steps(void) {
  rng_key key = {6, RNG_ENV_RESET};
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    env* e = env_create(task_of(s), NULL, key, 0);
    float obs[ENV_MAX_OBS], zero[ENV_MAX_ACT] = {0};
    double r;
    int term, trunc;
    env_reset(e, obs);
    e->t = e->task->max_steps - 2;
    env_step(e, zero, obs, &r, &term, &trunc);
    CHECK(term == 0 && trunc == 0 && e->t == e->task->max_steps - 1, "%s: t %d term %d trunc %d",
          s->name, e->t, term, trunc);
    env_step(e, zero, obs, &r, &term, &trunc);
    CHECK(term == 0 && trunc == 1 && e->t == e->task->max_steps, "%s at the limit: term %d trunc %d",
          s->name, term, trunc);
    env_reset(e, obs);
    CHECK(e->t == 0, "%s reset t", s->name);
    env_destroy(e);
  }
}

/* The model-side rule (termination.h) on real random-action trajectories agrees with the env's
 * own `terminated`, except where the env sees something the observation cannot show: Hopper
 * |qvel| >= 100 (the obs clips velocities to +-10) and MuJoCo instabilities (counted). The rule
 * also reads the float observation, so a state within float rounding (~1e-7) of a bound may be
 * judged differently; random trajectories practically never land there. */
static void test_term_rule_agrees_with_env(void) {
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    rng_key key = {11, RNG_ENV_RESET};
    env* e = env_create(t, NULL, key, 0);
    float obs[ENV_MAX_OBS], a[ENV_MAX_ACT];
    env_reset(e, obs);
    const int N = 3000;
    int nterm = 0, nagree = 0, nexempt = 0, episodes = 1;
    for (int i = 0; i < N; i++) {
      double r;
      int term, trunc;
      random_action(77 + (uint32_t)k, (uint32_t)i, t->act_dim, a);
      long unstable0 = e->unstable;
      env_step(e, a, obs, &r, &term, &trunc);
      int rule = term_done(t->term, obs, t->obs_dim);
      double vmax = 0;
      for (int j = 0; j < e->m->nv; j++) vmax = fmax(vmax, fabs(e->d->qvel[j]));
      int exempt = e->unstable != unstable0 || (s->term == TERM_HOPPER && vmax >= 100);
      if (exempt) nexempt++;
      else {
        CHECK(rule == term, "%s step %d: env terminated %d, model rule %d (max |qvel| %g)", s->name, i,
              term, rule, vmax);
        nagree += rule == term;
      }
      nterm += term;
      if (term || trunc) {
        env_reset(e, obs);
        episodes++;
      }
    }
    if (s->term == TERM_HALFCHEETAH)
      CHECK(nterm == 0, "halfcheetah terminated %d times", nterm);
    else
      CHECK(nterm > 10, "%s: only %d terminations in %d random steps", s->name, nterm, N);
    CHECK(nexempt < N / 100, "%s: %d exempt steps", s->name, nexempt);
    if (getenv("TEST_VERBOSE"))
      fprintf(stderr, "  %s: %d steps, %d episodes, %d terminations, %d agree, %d exempt\n", s->name,
              N, episodes, nterm, nagree, nexempt);
    env_destroy(e);
  }
}

/* ---- batches ---- */

static void test_batch_equals_single_envs(void) {
  enum { P = 3, STEPS = 60 };
  for (int k = 0; k < NSPECS; k++) {
    const spec* s = &SPECS[k];
    const env_task* t = task_of(s);
    rng_key key = {21, RNG_ENV_RESET};
    env_batch* b = env_batch_create(t, P, NULL, key);
    env* single[P];
    for (int i = 0; i < P; i++) single[i] = env_create(t, NULL, key, (uint32_t)i);
    float ob[P * ENV_MAX_OBS], os[P * ENV_MAX_OBS], act[P * ENV_MAX_ACT];
    double rb[P], rs[P];
    int tb[P], ub[P], ts[P], us[P];
    int od = t->obs_dim, ad = t->act_dim, same = 1;
    env_batch_reset(b, ob);
    for (int i = 0; i < P; i++) env_reset(single[i], os + i * od);
    same &= memcmp(ob, os, sizeof(float) * (size_t)(P * od)) == 0;
    for (int st = 0; st < STEPS; st++) {
      for (int i = 0; i < P; i++) random_action(1000 + (uint32_t)i, (uint32_t)st, ad, act + i * ad);
      env_batch_step(b, act, ob, rb, tb, ub);
      for (int i = 0; i < P; i++)
        env_step(single[i], act + i * ad, os + i * od, &rs[i], &ts[i], &us[i]);
      same &= memcmp(ob, os, sizeof(float) * (size_t)(P * od)) == 0;
      same &= memcmp(rb, rs, sizeof rb) == 0 && memcmp(tb, ts, sizeof tb) == 0 &&
              memcmp(ub, us, sizeof ub) == 0;
      for (int i = 0; i < P; i++)
        if (tb[i] || ub[i]) {
          env_reset(b->envs[i], ob + i * od);
          env_reset(single[i], os + i * od);
        }
    }
    CHECK(same, "%s: batch of %d differs from separately stepped envs", s->name, P);
    CHECK(memcmp(ob, ob + od, sizeof(float) * (size_t)od) != 0, "%s: batch envs 0 and 1 identical",
          s->name);
    for (int i = 0; i < P; i++) env_destroy(single[i]);
    env_batch_destroy(b);
  }
}

int main(void) {
  RUN(test_registry_and_dims);
  RUN(test_embedded_models_compile_to_published_masses);
  RUN(test_model_parameters);
  RUN(test_model_dir_and_errors);
  RUN(test_reset_noise);
  RUN(test_determinism_by_seed);
  RUN(test_observation_and_reward_formula);
  RUN(test_action_rescaling_and_clipping);
  RUN(test_healthy_thresholds);
  RUN(test_step_reports_termination);
  RUN(test_velocity_clipping);
  RUN(test_truncation_at_max_steps);
  RUN(test_term_rule_agrees_with_env);
  RUN(test_batch_equals_single_envs);
  return test_done();
}
