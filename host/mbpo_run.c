/* mbpo_run.c: one training run's host side (mbpo_run.h): its components and files, the env step
 * and the running episode, the bookkeeping of the backend's phases with their checks; the epoch
 * ends are host/mbpo_epoch.c's. The order of the phases is the loop's (host/mbpo.c); what each
 * computes is the backend's (mbpo_backend.h). */
#include "mbpo_run.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"
#include "rng.h"
#include "threads.h"

/* ---- failures ---- */

void mbpo_run_fail(mbpo_state* s, const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "mbpo: error: %s%s\n", s->prefix, msg);
  s->want = MBPO_WANT_NONE;
  s->phase = MBPO_PHASE_DONE;
  s->rc = 1;
}

/* ---- test hook: a non-finite number where a check looks ---- */

/* MBPO_TEST_NAN=WHERE:SEED:STEP makes the run of seed SEED see a non-finite number at WHERE (obs,
 * fit, rollout, vexp or sac) once it has taken STEP env steps, exploration included: tests/test_nan.c
 * checks that each check stops that run alone, names its phase and keeps its last checkpoint.
 * Nothing is computed differently; only what the check reads is replaced. */
static int nan_hook(const mbpo_state* s, const char* where) {
  const char* h = getenv("MBPO_TEST_NAN");
  char w[16];
  long seed, step;
  if (!h || sscanf(h, "%15[a-z]:%ld:%ld", w, &seed, &step) != 3) return 0;
  return strcmp(w, where) == 0 && seed == s->c->seed && (long)s->env_steps >= step;
}

/* ---- the running episode ---- */

static path_buf path_create(int od, int ad, int cap) {
  path_buf p = {0, cap, NULL, NULL, NULL, NULL, NULL, 0};
  p.obs = (float*)malloc(sizeof(float) * (size_t)cap * (size_t)od);
  p.act = (float*)malloc(sizeof(float) * (size_t)cap * (size_t)ad);
  p.rew = (float*)malloc(sizeof(float) * (size_t)cap);
  p.next_obs = (float*)malloc(sizeof(float) * (size_t)cap * (size_t)od);
  p.done = (float*)malloc(sizeof(float) * (size_t)cap);
  if (!p.obs || !p.act || !p.rew || !p.next_obs || !p.done) mbpo_fatal("out of memory");
  return p;
}

static void path_free(path_buf* p) {
  free(p->obs);
  free(p->act);
  free(p->rew);
  free(p->next_obs);
  free(p->done);
}

/* One env step with action a; the finished episode is flushed into D_env. Returns -1 (the run
 * stopped) on a non-finite observation. */
static int env_step_and_store(mbpo_state* s, const float* a) {
  float next[ENV_MAX_OBS];
  double r;
  int term, trunc;
  env* e = s->envs->envs[0];
  long unstable0 = e->unstable;
  env_step(e, a, next, &r, &term, &trunc);
  path_buf* p = &s->path;
  memcpy(p->obs + (size_t)p->n * s->od, s->obs, sizeof(float) * (size_t)s->od);
  memcpy(p->act + (size_t)p->n * s->ad, a, sizeof(float) * (size_t)s->ad);
  p->rew[p->n] = (float)r;
  memcpy(p->next_obs + (size_t)p->n * s->od, next, sizeof(float) * (size_t)s->od);
  p->done[p->n] = (float)term;
  p->n++;
  p->ret += r;
  s->env_steps++;
  if (nan_hook(s, "obs")) next[0] = NAN;
  for (int i = 0; i < s->od; i++)
    if (!isfinite(next[i])) {
      mbpo_run_fail(s, "NaN/Inf in the observation (env step %llu)", (unsigned long long)s->env_steps);
      return -1;
    }
  if (e->unstable != unstable0) s->unstable++;
  /* the sampler cuts at max_path_length without a terminal flag */
  if (term || p->n >= s->c->max_path_length) {
    pool_add(s->real, p->n, p->obs, p->act, p->rew, p->next_obs, p->done);
    s->be->push_real(s->be, s->q, p->n, p->obs, p->act, p->rew, p->next_obs, p->done);
    s->ep_ret_sum += p->ret;
    s->ep_count++;
    p->n = 0;
    p->ret = 0;
    env_reset(e, s->obs);
  } else {
    memcpy(s->obs, next, sizeof(float) * (size_t)s->od);
  }
  return 0;
}

void mbpo_run_env_step(mbpo_state* s) {
  const mbpo_config* c = s->c;
  if (s->phase == MBPO_PHASE_EXPLORE) {
    /* uniform actions in [-1, 1] until D_env holds init_steps rows */
    rng_key xk = {(uint32_t)c->seed, RNG_EXPLORE};
    float a[ENV_MAX_ACT];
    for (int i = 0; i < s->ad; i++) a[i] = 2.0f * rng_uniform(xk, 0, (uint32_t)s->env_steps, (uint64_t)i) - 1.0f;
    env_step_and_store(s, a);
    return;
  }
  s->have_act = 0;
  if (env_step_and_store(s, s->next_act) != 0) return;
  s->train_steps++;
  s->t++;
  s->want = s->real->size >= c->min_pool ? MBPO_WANT_STEP : MBPO_WANT_ACT;
  if (s->run.tty && ((s->t - 1) % 50 == 0)) {
    double el = now_s() - s->t_start, per = el / (double)(s->train_steps ? s->train_steps : 1);
    double eta = per * (double)((uint64_t)(mbpo_epochs(c) * c->epoch_length) - s->train_steps);
    run_status(&s->run, 0, "epoch %ld  step %llu  eval %.1f  model mse %.4g  k %d  %.0f upd/s  ETA %.0f min",
               s->epoch, (unsigned long long)s->train_steps, s->last_eval, s->row[P_MODEL_MSE], s->k,
               s->sac_time > 0 ? s->row[P_UPDATES] / s->sac_time : 0.0, eta / 60);
  }
}

int mbpo_run_can_step(const mbpo_state* s, int model_ready) {
  if (s->phase == MBPO_PHASE_EXPLORE) return 1;
  if (s->phase != MBPO_PHASE_TRAIN || !s->have_act) return 0;
  return model_ready || s->t % s->c->model_train_freq != 0 || !mbpo_fits_model(s->c);
}

void mbpo_run_want_action(mbpo_state* s) {
  if (s->phase == MBPO_PHASE_TRAIN && !s->have_act && s->want == MBPO_WANT_NONE) s->want = MBPO_WANT_ACT;
}

/* One model_train.csv row (the header first while the file is empty). A row that cannot be
 * written (disk full) is cut off whole and warned once per streak; the run goes on. */
static void log_fit(mbpo_state* s, int epoch, const model_fit_stats* fs, const rollout_stats* rs,
                    double secs) {
  FILE* f = s->run.model_train;
  int E = (int)s->c->model_ensemble;
  char text[16384];
  size_t n = 0, cap = sizeof text;
#define ADD(...) (n += (size_t)snprintf(text + n, n < cap ? cap - n : 0, __VA_ARGS__))
  struct stat st;
  fflush(f);
  if (fstat(fileno(f), &st) == 0 && st.st_size == 0) {
    ADD("fit,epoch,env_steps,n_train,n_holdout,epochs,train_loss");
    for (int m = 0; m < E; m++) ADD(",holdout_mse_%d", m);
    ADD(",elites,elite_mse,rollout_length,rollout_rows,rollout_done_frac,seconds\n");
  }
  ADD("%u,%d,%llu,%d,%d,%d,%.9g", s->fits, epoch, (unsigned long long)s->env_steps, fs->n_train,
      fs->n_holdout, fs->epochs, fs->train_loss);
  for (int m = 0; m < E; m++) ADD(",%.9g", fs->holdout_mse[m]);
  ADD(",");
  for (int i = 0; i < fs->n_elites; i++) ADD("%s%d", i ? " " : "", fs->elites[i]);
  ADD(",%.9g,%d,%ld,%.6g,%.3f\n", fs->elite_mse, s->k, rs->rows_added, rs->done_frac, secs);
#undef ADD
  int ok = n < cap && run_csv_text(f, text) == 0;
  if (!ok && !s->fit_csv_failing)
    mbpo_warn("%smodel_train.csv: row of model fit %u not written: %s", s->prefix, s->fits, strerror(errno));
  s->fit_csv_failing = !ok;
}

/* ---- the model phase ---- */

int mbpo_run_model_due(mbpo_state* s) {
  const mbpo_config* c = s->c;
  if (s->phase != MBPO_PHASE_TRAIN || !s->have_act) return 0;
  if (s->t % c->model_train_freq != 0 || !mbpo_fits_model(c)) return 0;
  s->k = mbpo_rolls_out(c) ? mbpo_rollout_length(c, (int)s->epoch) : 0; /* value expansion: no rollout */
  return 1;
}

void mbpo_run_model_done(mbpo_state* s, double seconds) {
  if (s->phase == MBPO_PHASE_DONE) return;
  const model_fit_stats* fs = &s->mfit;
  const rollout_stats* rs = &s->mroll;
  if (nan_hook(s, "fit")) s->mfit.status = MODEL_NONFINITE;
  if (nan_hook(s, "rollout")) s->mroll_rc = 1;
  if (fs->status == MODEL_NONFINITE) {
    mbpo_run_fail(s, "NaN/Inf in the model training loss (model fit %u, epoch %ld, env step %llu)", s->fits,
                  s->epoch, (unsigned long long)s->env_steps);
    return;
  }
  if (s->mroll_rc != 0) {
    mbpo_run_fail(s, "NaN/Inf in a model prediction during the rollout (model fit %u, epoch %ld)", s->fits,
                  s->epoch);
    return;
  }
  double* row = s->row;
  row[P_MODEL_TIME] += seconds;
  row[P_MODEL_LOSS] = fs->train_loss;
  row[P_MODEL_MSE] = fs->elite_mse;
  row[P_MODEL_EPOCHS] = fs->epochs;
  row[P_ROLLOUT_K] = s->k;
  row[P_ROLLOUT_ROWS] += (double)rs->rows_added;
  log_fit(s, (int)s->epoch, fs, rs, seconds);
  s->fits++;
}

/* ---- the SAC updates and the next action ---- */

void mbpo_run_step_done(mbpo_state* s, double seconds) {
  const mbpo_config* c = s->c;
  int want = s->want;
  s->want = MBPO_WANT_NONE;
  if (want == MBPO_WANT_NONE || s->phase == MBPO_PHASE_DONE) return;
  s->have_act = 1;
  if (want != MBPO_WANT_STEP) return;
  s->updates += (uint64_t)c->sac_updates;
  s->row[P_UPDATES] += (double)c->sac_updates;
  s->sac_time += seconds;
  if (nan_hook(s, "vexp")) s->vexp_rc = 1;
  if (s->vexp_rc) {
    mbpo_run_fail(s, "NaN/Inf in a model prediction of the value expansion (updates %llu-%llu, env step %llu)",
                  (unsigned long long)(s->updates - (uint64_t)c->sac_updates + 1), (unsigned long long)s->updates,
                  (unsigned long long)s->env_steps);
    return;
  }
  if (nan_hook(s, "sac")) s->last.q1_loss = NAN;
  const sac_stats* l = &s->last;
  if (!isfinite(l->q1_loss) || !isfinite(l->q2_loss) || !isfinite(l->pi_loss) || !isfinite(l->alpha))
    mbpo_run_fail(s, "NaN/Inf in the SAC losses (updates %llu-%llu, env step %llu)",
                  (unsigned long long)(s->updates - (uint64_t)c->sac_updates + 1), (unsigned long long)s->updates,
                  (unsigned long long)s->env_steps);
}

/* Allocate every component and buffer of a run (before the loop; nothing is allocated inside). */
static void setup(mbpo_state* s, const mbpo_config* c) {
  memset(s, 0, sizeof *s);
  s->c = c;
  s->task = env_find(c->task);
  if (!s->task) mbpo_fatal("unknown task '%s'; tasks: %s", c->task, env_task_list());
  s->od = s->task->obs_dim;
  s->ad = s->task->act_dim;
  uint32_t seed = (uint32_t)c->seed;
  s->envs = env_batch_create(s->task, 1, c->model_dir, (rng_key){seed, RNG_ENV_RESET});
  sac_params sp = sac_params_from_config(c);
  s->agent = sac_create(s->od, s->ad, &sp, (rng_key){seed, RNG_INIT});
  model_params mp = model_params_from_config(c);
  s->model = model_create(s->od, s->ad, &mp, (rng_key){seed, RNG_INIT});
  s->real = pool_create(s->od, s->ad, c->real_pool_size);
  s->ev = eval_create(s->task, s->envs->model, s->agent, seed, (int)c->eval_episodes,
                      (int)c->max_path_length);
  if (c->eval_model_return) eval_enable_model(s->ev, s->model, s->task->term, (int)c->eval_model_rollouts);
  s->path = path_create(s->od, s->ad, (int)c->max_path_length);
  s->last_eval = NAN;
  s->best_eval = -INFINITY;
}

/* TensorBoard scalars (the progress columns after epoch and env_steps, stepped by env steps). A
 * resumed run continues the checkpoint's event file, cut back to its length at the checkpoint (as
 * progress.csv is), so that no step appears twice; without one it starts a new file. */
static void open_tboard(mbpo_state* s) {
  char err[4600];
  if (s->tb_file[0]) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", s->run.path, s->tb_file);
    s->tb = tboard_open_append(path, s->tb_bytes, err, sizeof err);
    if (s->tb) return;
    mbpo_warn("%s; TensorBoard events continue in a new file", err);
  }
  s->tb = tboard_open(s->run.path, err, sizeof err);
  if (!s->tb) mbpo_warn("no TensorBoard events: %s", err);
}

static void teardown(mbpo_state* s) {
  if (s->tb) {
    char e[256];
    if (tboard_close(s->tb, e, sizeof e) != 0) mbpo_warn("TensorBoard events: %s", e);
    s->tb = NULL;
  }
  eval_free(s->ev);
  pool_free(s->real);
  pool_free(s->mpool);
  model_free(s->model);
  sac_free(s->agent);
  env_batch_destroy(s->envs);
  path_free(&s->path);
  run_close(&s->run);
}

/* ---- opening and closing ---- */

/* "<folder name>: " in a population (log lines name their run), "" for a single run. */
static void set_prefix(mbpo_state* s, int in_population) {
  s->prefix[0] = '\0';
  if (!in_population) return;
  const char* base = strrchr(s->run.path, '/');
  snprintf(s->prefix, sizeof s->prefix, "%.120s: ", base ? base + 1 : s->run.path);
  s->run.tty = 0; /* one live line cannot show several runs */
}

void mbpo_run_open(mbpo_state* s, const mbpo_config* c, const char* backend, int in_population) {
  char err[4400];
  setup(s, c);
  if (run_open(&s->run, c, err, sizeof err) != 0) mbpo_fatal("%s", err);
  set_prefix(s, in_population);
  mbpo_note("%srun folder %s (backend %s, task %s, seed %ld)", s->prefix, s->run.path,
            backend, c->task, c->seed);
  mbpo_run_progress_header(s);
  open_tboard(s);
  s->t_start = now_s();
  env_reset(s->envs->envs[0], s->obs);
  s->phase = MBPO_PHASE_EXPLORE;
}

void mbpo_run_load_config(const char* run_path, mbpo_config* cfg) {
  char err[4600], path[4400];
  cfg_defaults(cfg);
  snprintf(path, sizeof path, "%s/config.ini", run_path);
  if (cfg_load_ini(cfg, path, err, sizeof err) != 0 || cfg_validate(cfg, err, sizeof err) != 0)
    mbpo_fatal("cannot resume %s: %s", run_path, err);
}

void mbpo_run_resume(mbpo_state* s, const mbpo_config* cfg, const char* run_path, int in_population) {
  char err[4600], path[4400];
  snprintf(path, sizeof path, "%s/%s", run_path, CKPT_LATEST);
  FILE* f = fopen(path, "r");
  char name[300] = "";
  if (!f || !fgets(name, sizeof name, f)) mbpo_fatal("cannot resume %s: no checkpoint (%s)", run_path, path);
  fclose(f);
  name[strcspn(name, "\r\n")] = '\0';
  setup(s, cfg);
  double elapsed = 0;
  snprintf(path, sizeof path, "%s/%s", run_path, name);
  if (ckpt_load(s, path, &elapsed, err, sizeof err) != 0) mbpo_fatal("cannot resume: %s", err);
  snprintf(s->last_ckpt, sizeof s->last_ckpt, "%s", name);
  long rows = s->epoch - s->have_pending;
  if (run_reopen(&s->run, run_path, rows, (long)s->fits, err, sizeof err) != 0)
    mbpo_fatal("cannot resume: %s", err);
  set_prefix(s, in_population);
  open_tboard(s);
  s->t_start = now_s() - elapsed;
  s->t_epoch = now_s();
  if (s->have_pending) eval_start_snapshot(s->ev, (uint32_t)s->pending[P_EPOCH]);
  mbpo_note("%sresuming %s from %s (epoch %ld, step %ld, %llu env steps)", s->prefix, run_path, name,
            s->epoch, s->t, (unsigned long long)s->env_steps);
  s->phase = MBPO_PHASE_TRAIN; /* checkpoints are written after exploration only */
  s->epoch_open = s->t > 0;     /* a checkpoint at t = 0 has nothing of its epoch yet */
}

void mbpo_run_record_machine(mbpo_state* s, int resumed, const char* backend, int threads_per_run,
                             int runs_at_once) {
  char path[4400], blas[512], when[64];
  snprintf(path, sizeof path, "%s/machine.txt", s->run.path);
  threads_describe(blas, sizeof blas);
  time_t now = time(NULL);
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
  FILE* f = fopen(path, "a");
  if (!f) {
    mbpo_warn("%scannot write %s: %s", s->prefix, path, strerror(errno));
    return;
  }
  fprintf(f, "%s %s at epoch %ld step %ld: backend %s; %d CPU thread%s per run (threads=%ld), %d run%s at a time; %s\n",
          when, resumed ? "resumed" : "started", s->epoch, s->t, backend, threads_per_run,
          threads_per_run == 1 ? "" : "s", s->c->threads, runs_at_once, runs_at_once == 1 ? "" : "s", blas);
  if (fclose(f) != 0) mbpo_warn("%scannot write %s: %s", s->prefix, path, strerror(errno));
}

void mbpo_run_close(mbpo_state* s) { teardown(s); }
