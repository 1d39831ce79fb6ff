/* mbpo_epoch.c: the epoch ends of one run (mbpo_run.h): its evaluation and progress.csv row
 * (written when the next epoch ends, since the evaluation runs meanwhile), TensorBoard, the
 * checkpoints and their rotation, the interrupt and the end of the run. */
#include "mbpo_run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"

static const char* const g_pcols[P_NCOL] = {
    "epoch", "env_steps", "total_env_steps", "eval_return_mean", "eval_return_std",
    "eval_return_min", "eval_return_max", "eval_return_first", "eval_length_mean",
    "eval_model_return_mean", "eval_model_return_std", "train_return",
    "train_episodes", "model_train_loss", "model_holdout_mse_elites", "model_epochs",
    "rollout_length", "rollout_rows", "real_pool_size", "model_pool_size", "model_pool_capacity",
    "q1_loss", "q2_loss", "policy_loss", "alpha", "entropy", "q_mean", "sac_updates",
    "unstable_steps", "wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s",
    "env_steps_per_s"};

void mbpo_run_progress_header(mbpo_state* s) { run_csv_header(s->run.progress, P_NCOL, g_pcols); }

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
