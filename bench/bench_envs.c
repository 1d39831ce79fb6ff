/* bench_envs.c: environment throughput on one thread, and the env layer's overhead over a bare
 * mj_step loop on the same model.
 *
 *   bench_envs [out.json] [seconds]     (defaults: bench/results/envs.json, 0.4)
 *
 * For each registered task: uniform random actions in [-1, 1] (drawn beforehand), env_step, and
 * env_reset on termination or truncation. The bare loop replays the same control sequence (the
 * rescaled actions) with frame_skip mj_step calls per step and resets to the same initial states at
 * the same steps (mj_resetData, copy qpos/qvel, mj_forward), so both loops simulate the same
 * trajectory; the final states are compared bit for bit. Each loop runs `seconds` per round, for
 * ROUNDS alternating rounds; the best round of each is reported.
 * overhead % = (t_env / t_bare - 1) * 100 (target <= 5 %). Tasks without a model or without
 * callbacks are reported and skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "bench_util.h"

#define ROUNDS 5

typedef struct result {
  const char* name;
  const char* gym_id;
  char error[300]; /* non-empty: skipped */
  long steps;      /* env steps per round */
  long episodes;   /* episodes started per round */
  double t_env, t_bare;
  double mean_ncon;
  int identical; /* bare loop ended in the same state as the env */
} result;


/* ---- machine and build info ---- */




/* Create the parent folders of path. */


/* ---- one task ---- */

typedef struct plan {
  long n;            /* steps */
  float* act;        /* [n][act_dim] policy actions */
  double* ctrl;      /* [n][nu] rescaled controls */
  unsigned char* rs; /* rs[s]: a reset follows step s */
  long nep;          /* episodes (initial states recorded) */
  double* q0;        /* [nep][nq] initial qpos of each episode */
  double* v0;        /* [nep][nv] */
} plan;

/* Size a plan for n steps and draw its actions: uniform in [-1, 1], a pure function of the step. */
static void plan_size(plan* p, long n, const env_task* t, const mjModel* m) {
  int ad = t->act_dim;
  rng_key k = {1, RNG_TEST};
  p->n = n;
  p->act = realloc(p->act, sizeof(float) * (size_t)(n * ad));
  p->rs = realloc(p->rs, (size_t)n);
  p->q0 = realloc(p->q0, sizeof(double) * (size_t)((n + 1) * m->nq));
  p->v0 = realloc(p->v0, sizeof(double) * (size_t)((n + 1) * m->nv));
  p->ctrl = realloc(p->ctrl, sizeof(double) * (size_t)(n * m->nu));
  if (!p->act || !p->rs || !p->q0 || !p->v0 || !p->ctrl) {
    fprintf(stderr, "bench_envs: out of memory\n");
    exit(1);
  }
  for (long s = 0; s < n; s++)
    for (int i = 0; i < ad; i++)
      p->act[s * ad + i] = 2.0f * rng_uniform(k, (uint32_t)(s >> 32), (uint32_t)s, (uint64_t)i) - 1.0f;
  memset(p->rs, 0, (size_t)n);
}

/* The state env_reset writes before its mj_forward, for episode ep (env.h: qpos0 + U(+-qpos_noise),
 * 0 + U(+-qvel_noise) or qvel_noise N(0, 1), drawn from (key, index, episode)). The bare loop
 * resets to it and runs mj_forward too: copying the state after the env's mj_forward instead
 * would normalise the free-joint quaternion a second time (a last-bit change). The
 * same_trajectory flag checks that this mirrors env_reset exactly. */
static void reset_state(const env* e, uint32_t ep, double* q, double* v) {
  const env_task* t = e->task;
  const mjModel* m = e->m;
  for (int i = 0; i < m->nq; i++)
    q[i] = m->qpos0[i] + t->qpos_noise * (2.0 * rng_uniform64(e->key, e->index, ep, (uint64_t)i) - 1.0);
  for (int i = 0; i < m->nv; i++) {
    uint64_t n = (uint64_t)(m->nq + i);
    v[i] = (t->qvel_noise_kind == ENV_NOISE_NORMAL)
               ? t->qvel_noise * rng_normal64(e->key, e->index, ep, n)
               : t->qvel_noise * (2.0 * rng_uniform64(e->key, e->index, ep, n) - 1.0);
  }
}

/* The env loop: n steps, resetting on termination/truncation. When p->q0 is being recorded
 * (record), stores the initial state of every episode and the reset points. Returns seconds. */
static double run_env(const env_task* t, const mjModel* m, plan* p, int record, long* ncon_sum,
                      double* qend) {
  env* e = env_create(t, m, (rng_key){1, RNG_TEST}, 0);
  float obs[ENV_MAX_OBS];
  double r;
  int term, trunc;
  long ep = 0, nc = 0;
  env_reset(e, obs);
  if (record) reset_state(e, 0, p->q0, p->v0);
  ep = 1;
  int ad = t->act_dim;
  double t0 = now_s();
  for (long s = 0; s < p->n; s++) {
    env_step(e, p->act + s * ad, obs, &r, &term, &trunc);
    if (record) nc += e->d->ncon;
    if (term || trunc) {
      env_reset(e, obs);
      if (record) {
        p->rs[s] = 1;
        reset_state(e, (uint32_t)ep, p->q0 + ep * m->nq, p->v0 + ep * m->nv);
      }
      ep++;
    }
  }
  double dt = now_s() - t0;
  if (record) {
    p->nep = ep;
    if (ncon_sum) *ncon_sum = nc;
  }
  if (qend) {
    memcpy(qend, e->d->qpos, sizeof(double) * (size_t)m->nq);
    memcpy(qend + m->nq, e->d->qvel, sizeof(double) * (size_t)m->nv);
  }
  env_destroy(e);
  return dt;
}

/* The bare loop: the same controls, frame_skip mj_step per step, the same resets. */
static double run_bare(const env_task* t, const mjModel* m, const plan* p, double* qend) {
  mjData* d = mj_makeData(m);
  int nu = m->nu, nq = m->nq, nv = m->nv, fs = t->frame_skip;
  long ep = 0;
  mj_resetData(m, d);
  memcpy(d->qpos, p->q0, sizeof(double) * (size_t)nq);
  memcpy(d->qvel, p->v0, sizeof(double) * (size_t)nv);
  mj_forward(m, d);
  ep = 1;
  double t0 = now_s();
  for (long s = 0; s < p->n; s++) {
    const double* c = p->ctrl + s * nu;
    for (int i = 0; i < nu; i++) d->ctrl[i] = c[i];
    for (int k = 0; k < fs; k++) mj_step(m, d);
    if (p->rs[s]) {
      mj_resetData(m, d);
      memcpy(d->qpos, p->q0 + ep * nq, sizeof(double) * (size_t)nq);
      memcpy(d->qvel, p->v0 + ep * nv, sizeof(double) * (size_t)nv);
      mj_forward(m, d);
      ep++;
    }
  }
  double dt = now_s() - t0;
  if (qend) {
    memcpy(qend, d->qpos, sizeof(double) * (size_t)nq);
    memcpy(qend + nq, d->qvel, sizeof(double) * (size_t)nv);
  }
  mj_deleteData(d);
  return dt;
}

static void bench_task(const env_task* t, double seconds, result* res) {
  memset(res, 0, sizeof *res);
  res->name = t->name;
  res->gym_id = t->gym_id;
  if (!t->observe || !t->pre_step || !t->reward || !t->healthy) {
    snprintf(res->error, sizeof res->error, "task not implemented (no callbacks)");
    return;
  }
  char err[1200] = "";
  mjModel* m = env_load_model(t, NULL, err, sizeof err);
  if (!m) {
    snprintf(res->error, sizeof res->error, "%s", err);
    return;
  }
  int ad = t->act_dim;
  rng_key k = {1, RNG_TEST};

  /* size the rounds: time a short env run, growing it until it takes at least 0.05 s */
  plan p = {0};
  double dt = 0;
  for (long n = 100;; n *= 4) {
    plan_size(&p, n, t, m);
    dt = run_env(t, m, &p, 1, NULL, NULL);
    if (dt >= 0.05 || n >= 10000000) break;
  }
  long n = (long)((double)p.n * seconds / dt);
  plan_size(&p, n < 100 ? 100 : n, t, m);

  /* the control sequence the env sends (rescaled, clipped), for the bare loop */
  env* e = env_create(t, m, k, 0);
  for (long s = 0; s < p.n; s++) env_rescale_action(e, p.act + s * ad, p.ctrl + s * m->nu);
  env_destroy(e);

  long ncon = 0;
  memset(p.rs, 0, (size_t)p.n);
  run_env(t, m, &p, 1, &ncon, NULL); /* record resets and initial states (also a warm-up) */
  res->steps = p.n;
  res->episodes = p.nep;
  res->mean_ncon = (double)ncon / (double)p.n;

  double* qe = malloc(sizeof(double) * (size_t)(m->nq + m->nv));
  double* qb = malloc(sizeof(double) * (size_t)(m->nq + m->nv));
  res->t_env = res->t_bare = 1e300;
  res->identical = 1;
  for (int r = 0; r < ROUNDS; r++) {
    double te = run_env(t, m, &p, 0, NULL, qe);
    double tb = run_bare(t, m, &p, qb);
    if (te < res->t_env) res->t_env = te;
    if (tb < res->t_bare) res->t_bare = tb;
    res->identical &= memcmp(qe, qb, sizeof(double) * (size_t)(m->nq + m->nv)) == 0;
  }
  free(qe), free(qb);
  free(p.act), free(p.ctrl), free(p.rs), free(p.q0), free(p.v0);
  mj_deleteModel(m);
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "bench/results/envs.json";
  double seconds = argc > 2 ? atof(argv[2]) : 0.4;
  if (!(seconds > 0)) {
    fprintf(stderr, "usage: bench_envs [out.json] [seconds per loop and round > 0]\n");
    return 2;
  }
  char cpu[256], commit[64];
  cpu_model(cpu, sizeof cpu);
  git_commit(commit, sizeof commit);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int ver = mj_version();
  char mjver[32];
  snprintf(mjver, sizeof mjver, "%d.%d.%d", ver / 100, ver / 10 % 10, ver % 10);
  double load0 = loadavg1();

  printf("env benchmark: one thread, uniform random actions, best of %d rounds of ~%.2g s\n", ROUNDS,
         seconds);
  printf("machine: %s, %ld cores, load %.2f; MuJoCo %s; commit %s\n", cpu, cores, load0, mjver,
         commit);
  printf("%-18s %10s %12s %10s %10s %8s %6s %5s\n", "task", "steps/s", "bare steps/s", "us/step",
         "overhead", "episodes", "ncon", "same");

  int nt = env_ntasks();
  result* res = calloc((size_t)nt, sizeof(result));
  for (int i = 0; i < nt; i++) {
    const env_task* t = env_task_at(i);
    bench_task(t, seconds, &res[i]);
    result* r = &res[i];
    if (r->error[0]) {
      printf("%-18s skipped: %s\n", t->name, r->error);
    } else {
      printf("%-18s %10.0f %12.0f %10.1f %9.2f%% %8ld %6.1f %5s\n", t->name, r->steps / r->t_env,
             r->steps / r->t_bare, 1e6 * r->t_env / r->steps, (r->t_env / r->t_bare - 1) * 100,
             r->episodes, r->mean_ncon, r->identical ? "yes" : "NO");
    }
    fflush(stdout);
  }
  double load1 = loadavg1();

  FILE* f = bench_json_open(out, "envs", cpu, commit, cores, load0, load1);
  if (!f) return 1;
  fprintf(f, "  \"mujoco_version\": \"%s\",\n  \"env_version\": \"%s\",\n", mjver, ENV_VERSION);
  fprintf(f, "  \"method\": \"one thread; uniform random actions; reset on termination or "
             "truncation; bare loop = same controls, frame_skip mj_step per step, same resets; "
             "best of %d rounds\",\n",
          ROUNDS);
  fprintf(f, "  \"seconds_per_round\": %.3g,\n  \"tasks\": [\n", seconds);
  for (int i = 0; i < nt; i++) {
    result* r = &res[i];
    fprintf(f, "    {\"task\": ");
    json_str(f, r->name);
    fprintf(f, ", \"gym_id\": ");
    json_str(f, r->gym_id);
    if (r->error[0]) {
      fprintf(f, ", \"skipped\": ");
      json_str(f, r->error);
    } else {
      fprintf(f,
              ", \"steps\": %ld, \"episodes\": %ld, \"steps_per_s\": %.1f, \"bare_steps_per_s\": "
              "%.1f, \"us_per_step\": %.2f, \"overhead_pct\": %.2f, \"mean_contacts\": %.2f, "
              "\"same_trajectory\": %s",
              r->steps, r->episodes, r->steps / r->t_env, r->steps / r->t_bare,
              1e6 * r->t_env / r->steps, (r->t_env / r->t_bare - 1) * 100, r->mean_ncon,
              r->identical ? "true" : "false");
    }
    fprintf(f, "}%s\n", i + 1 < nt ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  fclose(f);
  printf("wrote %s\n", out);
  free(res);
  return 0;
}
