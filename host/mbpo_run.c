/* mbpo_run.c: one training run's host side (mbpo_run.h): its components and files, the env step
 * and the running episode, the bookkeeping of the backend's phases with their checks, the epoch
 * ends (evaluation, progress.csv, TensorBoard, checkpoints). The order of the phases is the loop's
 * (host/mbpo.c); what each computes is the backend's (mbpo_backend.h). */
#include "mbpo_run.h"

#include <dirent.h>
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

static const char* const g_pcols[P_NCOL] = {
    "epoch", "env_steps", "total_env_steps", "eval_return_mean", "eval_return_std",
    "eval_return_min", "eval_return_max", "eval_return_first", "eval_length_mean", "eval_model_return_mean", "eval_model_return_std", "train_return",
    "train_episodes", "model_train_loss", "model_holdout_mse_elites", "model_epochs",
    "rollout_length", "rollout_rows", "real_pool_size", "model_pool_size", "model_pool_capacity",
    "q1_loss", "q2_loss", "policy_loss", "alpha", "entropy", "q_mean", "sac_updates",
    "unstable_steps", "wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s",
    "env_steps_per_s"};


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

/* ---- epochs ---- */

/* When the pending epoch's evaluation is the best so far and its epoch-end checkpoint exists,
 * ckpt-best.npz becomes a hard link to it (replaced atomically). */
static void keep_best(mbpo_state* s, eval_result er) {
  if (er.episodes < 1 || !(er.mean > s->best_eval)) return;
  s->best_eval = er.mean;
  char src[4400], tmp[4400], dst[4400];
  snprintf(src, sizeof src, "%s/ckpt-e%06ld.npz", s->run.path, (long)s->pending[P_EPOCH]);
  snprintf(tmp, sizeof tmp, "%s/ckpt-best.npz.tmp", s->run.path);
  snprintf(dst, sizeof dst, "%s/ckpt-best.npz", s->run.path);
  if (access(src, F_OK) != 0) return; /* no checkpoint at that epoch (checkpoint.every) */
  unlink(tmp);
  if (link(src, tmp) != 0 || rename(tmp, dst) != 0) {
    mbpo_warn("cannot update %s: %s", dst, strerror(errno));
    unlink(tmp);
  }
}

/* Wait for the pending epoch's evaluation, complete its row and log it. Returns its result. */
static eval_result log_pending(mbpo_state* s, int final) {
  eval_result er = eval_wait(s->ev);
  double* p = s->pending;
  p[P_EVAL_MEAN] = er.mean;
  p[P_EVAL_STD] = er.std;
  p[P_EVAL_MIN] = er.min;
  p[P_EVAL_MAX] = er.max;
  p[P_EVAL_FIRST] = er.first;
  p[P_EVAL_LEN] = er.mean_length;
  p[P_EVAL_MODEL_MEAN] = er.model_mean; /* NaN without eval.model_return or before the first fit */
  p[P_EVAL_MODEL_STD] = er.model_std;
  /* A failed write (disk full, say) is warned once per streak; the run goes on. The event writer
   * keeps failed records and writes them at its next successful flush. */
  int csv_ok = run_csv_row(s->run.progress, P_NCOL, p) == 0;
  if (!csv_ok && !s->csv_failing) mbpo_warn("progress.csv: row of epoch %.0f not written: %s", p[P_EPOCH], strerror(errno));
  s->csv_failing = !csv_ok;
  if (s->tb) {
    int ok = tboard_scalars(s->tb, (long)p[P_ENV_STEPS], tboard_now(), P_NCOL - 2, g_pcols + 2, p + 2) == 0;
    ok = tboard_flush(s->tb) == 0 && ok;
    if (!ok && !s->tb_failing) mbpo_warn("TensorBoard events not written: %s", tboard_error(s->tb));
    s->tb_failing = !ok;
  }
  s->last_eval = er.mean;
  s->have_pending = 0;
  keep_best(s, er);
  run_status(&s->run, 1,
             "%sepoch %4.0f  env steps %7.0f  eval %8.1f ± %6.1f  train %8.1f  model mse %.4g  k %2.0f  "
             "%.0f upd/s  %.0f s%s",
             s->prefix, p[P_EPOCH], p[P_ENV_STEPS], er.mean, er.std, p[P_TRAIN_RETURN], p[P_MODEL_MSE],
             p[P_ROLLOUT_K], p[P_UPDATES_PER_S], p[P_WALL], final ? "  (final)" : "");
  return er;
}

static void epoch_begin(mbpo_state* s) {
  for (int i = 0; i < P_NCOL; i++) s->row[i] = 0;
  memset(&s->last, 0, sizeof s->last);
  s->ep_ret_sum = 0;
  s->ep_count = 0;
  s->sac_time = 0;
  s->t_epoch = now_s();
  s->epoch_open = 1;
}

/* End of the epoch: log the previous epoch (its evaluation ran meanwhile), start this epoch's
 * evaluation, and keep this epoch's row pending. Returns 1 when stop_return was reached. */
static int epoch_end(mbpo_state* s) {
  const mbpo_config* c = s->c;
  if (s->have_pending) {
    eval_result er = log_pending(s, 0);
    if (er.episodes > 0 && er.mean >= c->stop_return) {
      mbpo_note("%sepoch %.0f reached the evaluation return %.1f >= stop_return %g; stopping",
                s->prefix, s->pending[P_EPOCH], er.mean, c->stop_return);
      return 1;
    }
  }
  /* the evaluation's policy snapshot (and the model's, for eval.model_return) */
  s->be->snapshot(s->be, s->q, !c->eval_model_return);
  eval_start(s->ev, s->agent, c->eval_model_return && s->fits > 0 ? s->model : NULL, (uint32_t)s->epoch);
  double dt = now_s() - s->t_epoch, *row = s->row;
  row[P_EPOCH] = (double)s->epoch;
  row[P_ENV_STEPS] = (double)s->train_steps;
  row[P_TOTAL_STEPS] = (double)s->env_steps;
  row[P_TRAIN_RETURN] = s->ep_count ? s->ep_ret_sum / s->ep_count : NAN;
  row[P_TRAIN_EPISODES] = s->ep_count;
  row[P_REAL_POOL] = (double)s->real->size;
  long size, cap;
  s->be->model_pool(s->be, s->q, &size, &cap);
  row[P_MODEL_POOL] = (double)size;
  row[P_MODEL_POOL_CAP] = (double)cap;
  row[P_Q1_LOSS] = s->last.q1_loss;
  row[P_Q2_LOSS] = s->last.q2_loss;
  row[P_PI_LOSS] = s->last.pi_loss;
  row[P_ALPHA] = s->last.alpha;
  row[P_ENTROPY] = s->last.entropy;
  row[P_Q_MEAN] = s->last.q_mean;
  row[P_UNSTABLE] = (double)s->unstable;
  row[P_WALL] = now_s() - s->t_start;
  row[P_EPOCH_TIME] = dt;
  row[P_UPDATES_PER_S] = s->sac_time > 0 ? row[P_UPDATES] / s->sac_time : 0;
  row[P_STEPS_PER_S] = dt > 0 ? (double)s->t / dt : 0;
  memcpy(s->pending, row, sizeof s->pending);
  s->have_pending = 1;
  s->epoch_open = 0;
  return 0;
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


/* ---- checkpoints ---- */

/* Save a checkpoint named name in the run folder and point checkpoint.latest at it. */
static int save_checkpoint(mbpo_state* s, const char* name) {
  char path[4400], err[4600];
  s->be->snapshot(s->be, s->q, 0); /* the backend's state into the host components */
  snprintf(path, sizeof path, "%s/%s", s->run.path, name);
  if (ckpt_save(s, path, now_s() - s->t_start, err, sizeof err) != 0) {
    if (s->last_ckpt[0]) mbpo_warn("%scheckpoint not written (%s is kept): %s", s->prefix, s->last_ckpt, err);
    else mbpo_warn("%scheckpoint not written: %s", s->prefix, err);
    s->ckpt_failed = 1;
    return -1;
  }
  s->ckpt_failed = 0;
  snprintf(s->last_ckpt, sizeof s->last_ckpt, "%s", name);
  char latest[4400];
  snprintf(latest, sizeof latest, "%s/%s", s->run.path, CKPT_LATEST);
  char text[300];
  int n = snprintf(text, sizeof text, "%s\n", name);
  if (run_write_atomic(latest, text, (size_t)n) != 0) mbpo_warn("cannot write %s", latest);
  return 0;
}

/* Remove the mid-epoch checkpoints (Ctrl-C's ckpt-e<epoch>-t<step>.npz) of epochs up to e: a
 * resumed run that has saved epoch e's end no longer needs them. */
static void drop_interrupt_checkpoints(const mbpo_state* s, long e) {
  DIR* d = opendir(s->run.path);
  if (!d) return;
  struct dirent* de;
  while ((de = readdir(d)) != NULL) {
    long ep, t;
    char tail[8];
    if (sscanf(de->d_name, "ckpt-e%ld-t%ld.np%7s", &ep, &t, tail) == 3 && strcmp(tail, "z") == 0 && ep <= e) {
      char path[4400];
      snprintf(path, sizeof path, "%s/%s", s->run.path, de->d_name);
      unlink(path);
    }
  }
  closedir(d);
}

/* The epoch-end checkpoint of epoch e (0-based, just ended): every checkpoint.every epochs; the
 * one checkpoint.keep saves back is removed, and so are the mid-epoch ones it supersedes. */
static void epoch_checkpoint(mbpo_state* s, long e, int final) {
  const mbpo_config* c = s->c;
  if (!final && (c->checkpoint_every <= 0 || (e + 1) % c->checkpoint_every != 0)) return;
  char name[64];
  snprintf(name, sizeof name, "ckpt-e%06ld.npz", e);
  if (save_checkpoint(s, name) != 0) return;
  drop_interrupt_checkpoints(s, e);
  if (c->checkpoint_every <= 0) return;
  long old = e - c->checkpoint_keep * c->checkpoint_every;
  if (old >= 0) {
    char path[4400];
    snprintf(path, sizeof path, "%s/ckpt-e%06ld.npz", s->run.path, old);
    unlink(path); /* may not exist (the final checkpoint is off the grid) */
  }
}

int mbpo_run_interrupt(mbpo_state* s) {
  char name[64];
  snprintf(name, sizeof name, "ckpt-e%06ld-t%06ld.npz", s->epoch, s->t);
  eval_wait(s->ev);
  int ok = save_checkpoint(s, name) == 0;
  run_status(&s->run, 1, "mbpo: %sinterrupted at epoch %ld step %ld; %s", s->prefix, s->epoch, s->t,
             ok ? "checkpoint written" : "NO checkpoint written");
  if (ok) fprintf(stderr, "mbpo: resume with: mbpo train --resume %s\n", s->run.path);
  s->phase = MBPO_PHASE_DONE;
  s->rc = ok ? 0 : 1;
  return s->rc;
}

/* The end of the run: log the last epoch, say whether its final state is saved. */
static void run_finish(mbpo_state* s) {
  if (s->have_pending) log_pending(s, 1);
  mbpo_note("%sdone: %llu env steps after exploration, %.0f s", s->prefix, (unsigned long long)s->train_steps,
            now_s() - s->t_start);
  s->phase = MBPO_PHASE_DONE;
  s->rc = 0;
  if (s->ckpt_failed) { /* the run's end state is not saved: say so in the exit status */
    if (s->last_ckpt[0])
      mbpo_warn("the final checkpoint could not be written; the newest is %s/%s (resume with: mbpo "
                "train --resume %s)", s->run.path, s->last_ckpt, s->run.path);
    else
      mbpo_warn("%sthe final checkpoint could not be written; this run has no checkpoint", s->prefix);
    s->rc = 1;
  }
}


void mbpo_run_between_steps(mbpo_state* s) {
  const mbpo_config* c = s->c;
  if (s->phase == MBPO_PHASE_EXPLORE) {
    if (s->real->size < c->init_steps) return;
    mbpo_note("%sexplored %llu steps (%ld transitions in the real pool)", s->prefix,
              (unsigned long long)s->env_steps, s->real->size);
    s->phase = MBPO_PHASE_TRAIN; /* the target critics were hard-copied at creation */
  }
  if (s->phase != MBPO_PHASE_TRAIN) return;
  /* an epoch ends when t >= E and the real pool holds min_pool rows */
  long n_epochs = mbpo_epochs(c);
  if (s->epoch < n_epochs && s->t >= c->epoch_length && s->real->size >= c->min_pool) {
    int stop = epoch_end(s);
    long ended = s->epoch;
    s->t = 0;
    s->epoch++;
    epoch_checkpoint(s, ended, s->epoch >= n_epochs || stop);
    if (stop) s->epoch = n_epochs;
  }
  if (s->epoch >= n_epochs) {
    run_finish(s);
    return;
  }
  if (!s->epoch_open) epoch_begin(s);
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
  run_csv_header(s->run.progress, P_NCOL, g_pcols);
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
