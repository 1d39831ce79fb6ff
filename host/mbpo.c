/* mbpo.c: the MBPO training loop, Algorithm 2 of Janner et al. (2019) as the official code
 * (jannerm/mbpo, softlearning) runs it; reference/mbpo.md §2 is the specification.
 *
 *   explore:   act uniformly at random until the real pool D_env holds init_steps transitions
 *   for each epoch e:
 *     for t = 0, 1, ... until t >= E and |D_env| >= min_pool:
 *       if t mod F == 0:  fit the model on all of D_env; k = schedule(e); resize D_model;
 *                         branched rollout of k steps from rollout.batch real states into D_model
 *       take one env step with the stochastic policy (the episode enters D_env when it ends)
 *       if |D_env| >= min_pool:  G SAC updates, each on 12 real + 244 model rows
 *     evaluate the policy deterministically (worker thread) and log the epoch
 */
#include "mbpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "env.h"
#include "evaluate.h"
#include "log.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "rollout.h"
#include "run.h"
#include "sac.h"
#include "threads.h"


static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- progress.csv columns ---- */
enum {
  P_EPOCH, P_ENV_STEPS, P_TOTAL_STEPS, P_EVAL_MEAN, P_EVAL_STD, P_EVAL_MIN, P_EVAL_MAX, P_EVAL_FIRST,
  P_EVAL_LEN, P_TRAIN_RETURN, P_TRAIN_EPISODES, P_MODEL_LOSS, P_MODEL_MSE, P_MODEL_EPOCHS,
  P_ROLLOUT_K, P_ROLLOUT_ROWS, P_REAL_POOL, P_MODEL_POOL, P_MODEL_POOL_CAP, P_Q1_LOSS, P_Q2_LOSS,
  P_PI_LOSS, P_ALPHA, P_ENTROPY, P_Q_MEAN, P_UPDATES, P_UNSTABLE,
  P_WALL, P_EPOCH_TIME, P_MODEL_TIME, P_UPDATES_PER_S, P_STEPS_PER_S, P_NCOL
};
static const char* const g_pcols[P_NCOL] = {
    "epoch", "env_steps", "total_env_steps", "eval_return_mean", "eval_return_std",
    "eval_return_min", "eval_return_max", "eval_return_first", "eval_length_mean", "train_return",
    "train_episodes", "model_train_loss", "model_holdout_mse_elites", "model_epochs",
    "rollout_length", "rollout_rows", "real_pool_size", "model_pool_size", "model_pool_capacity",
    "q1_loss", "q2_loss", "policy_loss", "alpha", "entropy", "q_mean", "sac_updates",
    "unstable_steps", "wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s",
    "env_steps_per_s"};
/* Columns that depend on timing (left out when runs are compared). */
#define P_FIRST_TIME_COL P_WALL

/* The running episode: transitions enter D_env only when their episode ends (softlearning's
 * sampler adds whole paths). */
typedef struct path_buf {
  int n, cap;
  float *obs, *act, *rew, *next_obs, *done;
  double ret;
} path_buf;

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

/* Everything one run holds. */
typedef struct mbpo_state {
  const mbpo_config* c;
  const env_task* task;
  int od, ad;
  env_batch* envs;       /* P = 1 training env */
  sac* agent;
  dyn_model* model;
  pool *real, *mpool;
  rollout_ctx* ro;
  evaluator* ev;
  path_buf path;
  float obs[ENV_MAX_OBS];
  uint64_t env_steps;    /* all env steps, exploration included (the acting counter) */
  uint64_t updates;      /* SAC updates so far (the noise and batch counter) */
  uint32_t fits;         /* model fits so far */
  int k;                 /* current rollout length */
  /* SAC minibatch */
  uint32_t* bidx;
  float *bobs, *bact, *brew, *bnext, *bdone;
  /* per-epoch accumulators */
  double ep_ret_sum;
  int ep_count;
  long unstable;
} mbpo_state;

/* One env step with action a; the finished episode is flushed into D_env. */
static void env_step_and_store(mbpo_state* s, const float* a) {
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
  for (int i = 0; i < s->od; i++)
    if (!isfinite(next[i])) mbpo_fatal("NaN/Inf in the observation (env step %llu)", (unsigned long long)s->env_steps);
  if (e->unstable != unstable0) s->unstable++;
  /* the sampler cuts at max_path_length without a terminal flag */
  if (term || p->n >= s->c->max_path_length) {
    pool_add(s->real, p->n, p->obs, p->act, p->rew, p->next_obs, p->done);
    s->ep_ret_sum += p->ret;
    s->ep_count++;
    p->n = 0;
    p->ret = 0;
    env_reset(e, s->obs);
  } else {
    memcpy(s->obs, next, sizeof(float) * (size_t)s->od);
  }
}

static run_folder g_run;

static void log_fit(const mbpo_state* s, int epoch, const model_fit_stats* fs, const rollout_stats* rs,
                  double secs) {
  FILE* f = g_run.model_train;
  int E = (int)s->c->model_ensemble;
  if (s->fits == 0) {
    fprintf(f, "fit,epoch,env_steps,n_train,n_holdout,epochs,train_loss");
    for (int m = 0; m < E; m++) fprintf(f, ",holdout_mse_%d", m);
    fprintf(f, ",elites,elite_mse,rollout_length,rollout_rows,rollout_done_frac,seconds\n");
  }
  fprintf(f, "%u,%d,%llu,%d,%d,%d,%.9g", s->fits, epoch, (unsigned long long)s->env_steps,
          fs->n_train, fs->n_holdout, fs->epochs, fs->train_loss);
  for (int m = 0; m < E; m++) fprintf(f, ",%.9g", fs->holdout_mse[m]);
  fputc(',', f);
  for (int i = 0; i < fs->n_elites; i++) fprintf(f, "%s%d", i ? " " : "", fs->elites[i]);
  fprintf(f, ",%.9g,%d,%ld,%.6g,%.3f\n", fs->elite_mse, s->k, rs->rows_added, rs->done_frac, secs);
  fflush(f);
}

/* Fit the model on all of D_env, set k, resize D_model, roll out. Fills the model columns. */
static void model_phase(mbpo_state* s, int epoch, double* row, double* model_time) {
  const mbpo_config* c = s->c;
  double t0 = now_s();
  model_fit_stats fs;
  pool* R = s->real; /* rows 0..size-1 of the ring are all valid; their order does not matter */
  int rc = model_train(s->model, (int)R->size, R->obs, R->act, R->rew, R->next_obs, s->fits, &fs);
  if (rc == MODEL_NONFINITE)
    mbpo_fatal("NaN/Inf in the model training loss (model fit %u, epoch %d, env step %llu)", s->fits,
               epoch, (unsigned long long)s->env_steps);
  s->k = mbpo_rollout_length(c, epoch);
  long cap = mbpo_model_pool_capacity(c, s->k);
  if (!s->mpool) s->mpool = pool_create(s->od, s->ad, cap);
  else if (cap != s->mpool->cap) pool_resize(s->mpool, cap);
  rollout_stats rs;
  rng_key rk = {(uint32_t)c->seed, RNG_ROLLOUT};
  if (rollout_run(s->ro, s->model, s->agent, R, s->mpool, (int)c->rollout_batch, s->k, rk, s->fits, &rs) != 0)
    mbpo_fatal("NaN/Inf in a model prediction during the rollout (model fit %u, epoch %d)", s->fits, epoch);
  double dt = now_s() - t0;
  *model_time += dt;
  row[P_MODEL_LOSS] = fs.train_loss;
  row[P_MODEL_MSE] = fs.elite_mse;
  row[P_MODEL_EPOCHS] = fs.epochs;
  row[P_ROLLOUT_K] = s->k;
  row[P_ROLLOUT_ROWS] += (double)rs.rows_added;
  log_fit(s, epoch, &fs, &rs, dt);
  s->fits++;
}

/* G SAC updates, each on int(batch * real_ratio) real rows and the rest model rows. */
static void sac_phase(mbpo_state* s, double* row, sac_stats* last) {
  const mbpo_config* c = s->c;
  int B = (int)c->sac_batch, nreal = (int)(c->sac_batch * c->sac_real_ratio), nmodel = B - nreal;
  rng_key bk = {(uint32_t)c->seed, RNG_SAC_BATCH};
  for (long g = 0; g < c->sac_updates; g++) {
    uint32_t c0 = (uint32_t)s->updates, c1 = (uint32_t)(s->updates >> 32);
    pool_sample_indices(s->real, bk, c0, c1, 0, nreal, s->bidx);
    pool_gather(s->real, s->bidx, nreal, s->bobs, s->bact, s->brew, s->bnext, s->bdone);
    if (nmodel > 0) {
      pool_sample_indices(s->mpool, bk, c0, c1, (uint64_t)nreal, nmodel, s->bidx + nreal);
      pool_gather(s->mpool, s->bidx + nreal, nmodel, s->bobs + (size_t)nreal * s->od,
                  s->bact + (size_t)nreal * s->ad, s->brew + nreal, s->bnext + (size_t)nreal * s->od,
                  s->bdone + nreal);
    }
    sac_update(s->agent, s->bobs, s->bact, s->brew, s->bnext, s->bdone, B, s->updates, last);
    s->updates++;
    if (!isfinite(last->q1_loss) || !isfinite(last->q2_loss) || !isfinite(last->pi_loss) ||
        !isfinite(last->alpha))
      mbpo_fatal("NaN/Inf in the SAC losses (update %llu, env step %llu)",
                 (unsigned long long)s->updates, (unsigned long long)s->env_steps);
  }
  row[P_UPDATES] += (double)c->sac_updates;
}

int mbpo_train(const mbpo_config* c) {
  char err[4400];
  int backend = backend_resolve((int)c->device);
  (void)backend;
  threads_set((int)c->threads);
  mbpo_state S;
  memset(&S, 0, sizeof S);
  mbpo_state* s = &S;
  s->c = c;
  s->task = env_find(c->task);
  if (!s->task) mbpo_fatal("unknown task '%s'; tasks: %s", c->task, env_task_list());
  s->od = s->task->obs_dim;
  s->ad = s->task->act_dim;
  if (run_open(&g_run, c, err, sizeof err) != 0) mbpo_fatal("%s", err);
  mbpo_note("run folder %s (backend %s, task %s, seed %ld)", g_run.path, backend_name(BACKEND_CPU),
            c->task, c->seed);

  /* Set-up: every buffer is allocated here, before the loop. */
  uint32_t seed = (uint32_t)c->seed;
  s->envs = env_batch_create(s->task, 1, c->model_dir, (rng_key){seed, RNG_ENV_RESET});
  sac_params sp = sac_params_from_config(c);
  s->agent = sac_create(s->od, s->ad, &sp, (rng_key){seed, RNG_INIT});
  model_params mp = model_params_from_config(c);
  s->model = model_create(s->od, s->ad, &mp, (rng_key){seed, RNG_INIT});
  s->real = pool_create(s->od, s->ad, c->real_pool_size);
  s->ro = rollout_create(s->model, (int)c->rollout_batch, s->task->term);
  s->ev = eval_create(s->task, s->envs->model, s->agent, seed, (int)c->eval_episodes,
                      (int)c->max_path_length);
  s->path = path_create(s->od, s->ad, (int)c->max_path_length);
  size_t B = (size_t)c->sac_batch;
  s->bidx = (uint32_t*)malloc(B * sizeof(uint32_t));
  s->bobs = (float*)malloc(B * (size_t)s->od * sizeof(float));
  s->bact = (float*)malloc(B * (size_t)s->ad * sizeof(float));
  s->brew = (float*)malloc(B * sizeof(float));
  s->bnext = (float*)malloc(B * (size_t)s->od * sizeof(float));
  s->bdone = (float*)malloc(B * sizeof(float));
  if (!s->bidx || !s->bobs || !s->bact || !s->brew || !s->bnext || !s->bdone) mbpo_fatal("out of memory");
  run_csv_header(g_run.progress, P_NCOL, g_pcols);

  double t_start = now_s();
  env_reset(s->envs->envs[0], s->obs);

  /* 1. Initial exploration: uniform actions in [-1, 1] until D_env holds init_steps rows. */
  rng_key xk = {seed, RNG_EXPLORE};
  while (s->real->size < c->init_steps) {
    float a[ENV_MAX_ACT];
    for (int i = 0; i < s->ad; i++)
      a[i] = 2.0f * rng_uniform(xk, 0, (uint32_t)s->env_steps, (uint64_t)i) - 1.0f;
    env_step_and_store(s, a);
  }
  uint64_t explore_steps = s->env_steps;
  mbpo_note("explored %llu steps (%ld transitions in the real pool)",
            (unsigned long long)explore_steps, s->real->size);

  /* 2. Epochs. (The target critics were hard-copied at creation.) */
  long n_epochs = mbpo_epochs(c);
  rng_key ak = {seed, RNG_ACT};
  double pending[P_NCOL];
  int have_pending = 0;
  double last_eval = NAN, updates_per_s = 0;
  uint64_t train_steps = 0;
  for (long epoch = 0; epoch < n_epochs; epoch++) {
    double row[P_NCOL];
    for (int i = 0; i < P_NCOL; i++) row[i] = 0;
    double t_epoch = now_s(), model_time = 0, sac_time = 0;
    s->ep_ret_sum = 0;
    s->ep_count = 0;
    sac_stats last;
    memset(&last, 0, sizeof last);
    long t = 0;
    for (;; t++) {
      if (t >= c->epoch_length && s->real->size >= c->min_pool) break;
      if (t % c->model_train_freq == 0 && c->sac_real_ratio < 1.0) model_phase(s, (int)epoch, row, &model_time);
      float a[ENV_MAX_ACT];
      sac_act(s->agent, s->obs, 1, 0, ak, 0, (uint32_t)s->env_steps, a);
      env_step_and_store(s, a);
      train_steps++;
      if (s->real->size >= c->min_pool) {
        double t0 = now_s();
        sac_phase(s, row, &last);
        sac_time += now_s() - t0;
      }
      if (g_run.tty && (t % 50 == 0)) {
        double el = now_s() - t_start, per = el / (double)(train_steps ? train_steps : 1);
        double eta = per * (double)((uint64_t)(n_epochs * c->epoch_length) - train_steps);
        run_status(&g_run, 0, "epoch %ld  step %llu  eval %.1f  model mse %.4g  k %d  %.0f upd/s  ETA %.0f min",
                   epoch, (unsigned long long)train_steps, last_eval, row[P_MODEL_MSE], s->k,
                   sac_time > 0 ? row[P_UPDATES] / sac_time : 0.0, eta / 60);
      }
    }
    /* End of epoch: the previous epoch's evaluation finished meanwhile; log it, start this one's. */
    if (have_pending) {
      eval_result er = eval_wait(s->ev);
      pending[P_EVAL_MEAN] = er.mean;
      pending[P_EVAL_STD] = er.std;
      pending[P_EVAL_MIN] = er.min;
      pending[P_EVAL_MAX] = er.max;
      pending[P_EVAL_FIRST] = er.first;
      pending[P_EVAL_LEN] = er.mean_length;
      run_csv_row(g_run.progress, P_NCOL, pending);
      last_eval = er.mean;
      run_status(&g_run, 1, "epoch %4.0f  env steps %7.0f  eval %8.1f ± %6.1f  train %8.1f  model mse %.4g  k %2.0f  %.0f upd/s  %.0f s",
                 pending[P_EPOCH], pending[P_ENV_STEPS], er.mean, er.std, pending[P_TRAIN_RETURN],
                 pending[P_MODEL_MSE], pending[P_ROLLOUT_K], pending[P_UPDATES_PER_S], pending[P_WALL]);
      have_pending = 0;
      if (er.episodes > 0 && er.mean >= c->stop_return) {
        mbpo_note("epoch %.0f reached the evaluation return %.1f >= stop_return %g; stopping",
                  pending[P_EPOCH], er.mean, c->stop_return);
        break;
      }
    }
    eval_start(s->ev, s->agent, (uint32_t)epoch);
    double dt = now_s() - t_epoch;
    updates_per_s = sac_time > 0 ? row[P_UPDATES] / sac_time : 0;
    row[P_EPOCH] = (double)epoch;
    row[P_ENV_STEPS] = (double)train_steps;
    row[P_TOTAL_STEPS] = (double)s->env_steps;
    row[P_TRAIN_RETURN] = s->ep_count ? s->ep_ret_sum / s->ep_count : NAN;
    row[P_TRAIN_EPISODES] = s->ep_count;
    row[P_REAL_POOL] = (double)s->real->size;
    row[P_MODEL_POOL] = s->mpool ? (double)s->mpool->size : 0;
    row[P_MODEL_POOL_CAP] = s->mpool ? (double)s->mpool->cap : 0;
    row[P_Q1_LOSS] = last.q1_loss;
    row[P_Q2_LOSS] = last.q2_loss;
    row[P_PI_LOSS] = last.pi_loss;
    row[P_ALPHA] = last.alpha;
    row[P_ENTROPY] = last.entropy;
    row[P_Q_MEAN] = last.q_mean;
    row[P_UNSTABLE] = (double)s->unstable;
    row[P_WALL] = now_s() - t_start;
    row[P_EPOCH_TIME] = dt;
    row[P_MODEL_TIME] = model_time;
    row[P_UPDATES_PER_S] = updates_per_s;
    row[P_STEPS_PER_S] = dt > 0 ? (double)t / dt : 0;
    memcpy(pending, row, sizeof row);
    have_pending = 1;
  }
  if (have_pending) {
    eval_result er = eval_wait(s->ev);
    pending[P_EVAL_MEAN] = er.mean;
    pending[P_EVAL_STD] = er.std;
    pending[P_EVAL_MIN] = er.min;
    pending[P_EVAL_MAX] = er.max;
    pending[P_EVAL_FIRST] = er.first;
    pending[P_EVAL_LEN] = er.mean_length;
    run_csv_row(g_run.progress, P_NCOL, pending);
    run_status(&g_run, 1, "epoch %4.0f  env steps %7.0f  eval %8.1f ± %6.1f  (final)  %.0f s total",
               pending[P_EPOCH], pending[P_ENV_STEPS], er.mean, er.std, now_s() - t_start);
  }

  eval_free(s->ev);
  rollout_free(s->ro);
  pool_free(s->real);
  pool_free(s->mpool);
  model_free(s->model);
  sac_free(s->agent);
  env_batch_destroy(s->envs);
  path_free(&s->path);
  free(s->bidx);
  free(s->bobs);
  free(s->bact);
  free(s->brew);
  free(s->bnext);
  free(s->bdone);
  run_close(&g_run);
  return 0;
}
