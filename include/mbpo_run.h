/* mbpo_run.h: one training run of the loop (host/mbpo_run.c and host/mbpo_epoch.c): everything
 * it holds (the host components, the pools, the loop's counters and the epoch's accumulators)
 * and the host side of each phase of Algorithm 2: the env step and its episode, the bookkeeping
 * after the backend's model phase and step, the epoch ends with their evaluation, logs and
 * checkpoints. The loop (host/mbpo.c) drives a population of these; the backend
 * (mbpo_backend.h) computes the phases. A checkpoint (host/checkpoint.c) is this struct's state;
 * the random streams are pure functions of its counters and the seed. */
#ifndef MBPO_MBPO_RUN_H
#define MBPO_MBPO_RUN_H

#include <stdint.h>

#include "config.h"
#include "env.h"
#include "log.h"
#include "evaluate.h"
#include "mbpo_backend.h"
#include "model.h"
#include "pool.h"
#include "rollout.h"
#include "schedule.h"
#include "run.h"
#include "sac.h"
#include "tboard.h"

/* ---- progress.csv columns ---- */
enum {
  P_EPOCH, P_ENV_STEPS, P_TOTAL_STEPS, P_EVAL_MEAN, P_EVAL_STD, P_EVAL_MIN, P_EVAL_MAX, P_EVAL_FIRST,
  P_EVAL_LEN, P_EVAL_MODEL_MEAN, P_EVAL_MODEL_STD, P_TRAIN_RETURN, P_TRAIN_EPISODES, P_MODEL_LOSS, P_MODEL_MSE, P_MODEL_EPOCHS,
  P_ROLLOUT_K, P_ROLLOUT_ROWS, P_REAL_POOL, P_MODEL_POOL, P_MODEL_POOL_CAP, P_Q1_LOSS, P_Q2_LOSS,
  P_PI_LOSS, P_ALPHA, P_ENTROPY, P_Q_MEAN, P_UPDATES, P_UNSTABLE,
  P_WALL, P_EPOCH_TIME, P_MODEL_TIME, P_UPDATES_PER_S, P_STEPS_PER_S, P_NCOL
};
/* The timing columns start at P_WALL (left out when runs are compared). */

/* The running episode: transitions enter D_env only when their episode ends (softlearning's
 * sampler adds whole paths). */
typedef struct path_buf {
  int n, cap;
  float *obs, *act, *rew, *next_obs, *done;
  double ret;
} path_buf;

/* Where a run is: exploring, training (epochs), or finished (done, stopped, failed, interrupted). */
enum { MBPO_PHASE_EXPLORE, MBPO_PHASE_TRAIN, MBPO_PHASE_DONE };

/* Everything one run holds. */
typedef struct mbpo_state {
  const mbpo_config* c;
  int phase;             /* MBPO_PHASE_* */
  int rc;                /* exit status once done: 0, or 1 (failed, or the final checkpoint not written) */
  char prefix[128];      /* "<folder>: " before the run's log lines in a population, else "" */
  const env_task* task;
  int od, ad;
  run_folder run;
  tboard* tb;            /* TensorBoard event file beside progress.csv (NULL if it failed) */
  int tb_failing;        /* the last write of events failed (warned once; records kept pending) */
  char tb_file[256];     /* resume: the checkpoint's event file name ("" = none) ... */
  uint64_t tb_bytes;     /* ... and its length at the checkpoint */
  char last_ckpt[64];    /* name of the newest checkpoint written ("" = none yet) */
  int ckpt_failed;       /* the last checkpoint could not be written */
  int csv_failing;       /* the last progress.csv row could not be written (warned once) */
  int fit_csv_failing;   /* the same for model_train.csv */
  env_batch* envs;       /* P = 1 training env */
  /* the host components: the state of record on the CPU backend, a mirror on the device one */
  sac* agent;
  dyn_model* model;
  pool *real, *mpool;    /* D_env, D_model (NULL before the first model phase) */
  evaluator* ev;
  path_buf path;
  float obs[ENV_MAX_OBS];
  /* the backend (mbpo_backend.h) that computes this run's phases, as its run q */
  mbpo_backend* be;
  int q;
  int want;              /* what the next step computes for this run (MBPO_WANT_*) */
  int have_act;          /* next_act holds the policy's action for obs (not saved: recomputed) */
  int epoch_open;        /* the current epoch's accumulators are started (epoch_begin) */
  float next_act[ENV_MAX_ACT];
  model_fit_stats mfit;  /* the model phase's results: the fit, ... */
  rollout_stats mroll;   /* ... the rollout's statistics ... */
  int mroll_rc;          /* ... and its status (non-zero: a non-finite prediction) */
  int vexp_rc;           /* the step's value expansion (non-zero: a non-finite prediction) */
  /* counters: every random draw is a function of these and the seed */
  uint64_t env_steps;    /* all env steps, exploration included (the acting counter) */
  uint64_t train_steps;  /* env steps after exploration */
  uint64_t updates;      /* SAC updates so far (the noise and batch counter) */
  uint32_t fits;         /* model fits so far */
  int k;                 /* current rollout length */
  long epoch;            /* current epoch */
  long t;                /* next step of the current epoch */
  long unstable;         /* env steps with a MuJoCo instability */
  /* the current epoch's accumulators and the previous epoch's row, waiting for its evaluation */
  double row[P_NCOL];
  sac_stats last;
  double ep_ret_sum;
  int ep_count;
  double sac_time;
  double pending[P_NCOL];
  int have_pending;
  double last_eval;
  double best_eval;      /* best mean evaluation return so far (ckpt-best.npz) */
  double t_start, t_epoch; /* clock at the (virtual) start of the run and of the epoch */
} mbpo_state;

/* ---- opening and closing ---- */

/** Build run s for config c (every component and buffer, allocated once here), open its new run
 *  folder and start it (exploration first). backend: the backend's name for the log line;
 *  in_population: log lines name the run and there is no live terminal line. Errors here are
 *  fatal: nothing has trained yet. c must outlive s. */
void mbpo_run_open(mbpo_state* s, const mbpo_config* c, const char* backend, int in_population);

/** Read the config.ini of the run folder run_path into cfg (fatal when missing or invalid). */
void mbpo_run_load_config(const char* run_path, mbpo_config* cfg);

/** Build run s for cfg (read by mbpo_run_load_config) and continue the run folder run_path from its
 *  newest checkpoint (checkpoint.latest). Bad or missing checkpoints are fatal. */
void mbpo_run_resume(mbpo_state* s, const mbpo_config* cfg, const char* run_path, int in_population);

/** Append to the run folder's machine.txt what this session's bits depend on: the backend, the CPU
 *  threads per run (threads_per_run, runs_at_once at a time), the BLAS and its kernel set, the CPU
 *  model (docs/results.md says when a run reproduces exactly). One line per start or resume. */
void mbpo_run_record_machine(mbpo_state* s, int resumed, const char* backend, int threads_per_run,
                             int runs_at_once);

/** Free everything of run s and close its files (after its backend is closed). */
void mbpo_run_close(mbpo_state* s);

/* ---- the phases' host side (host/mbpo.c calls these in Algorithm 2's order) ---- */

/** Stop run s: the message (printf format) goes to stderr naming the run, the run ends with exit
 *  status 1 and writes nothing more (its last good checkpoint is kept). */
void mbpo_run_fail(mbpo_state* s, const char* fmt, ...) MBPO_PRINTF(2, 3);

/** Write progress.csv's header (a new run; host/mbpo_epoch.c owns the columns). */
void mbpo_run_progress_header(mbpo_state* s);

/** Between steps (host/mbpo_epoch.c): end exploration once D_env holds init_steps rows; end the epoch when it is over
 *  (log the previous epoch, whose evaluation ran meanwhile; start this one's; checkpoint); end the
 *  run after its last epoch or at stop_return; start the next epoch's accumulators. */
void mbpo_run_between_steps(mbpo_state* s);

/** 1 when the model phase of step t is due (t mod F == 0, model rows used) and the run is ready
 *  for it (its action for step t known). Sets s->k from the schedule when it returns 1. */
int mbpo_run_model_due(mbpo_state* s);

/** After the backend's model phase (seconds long): stop the run on a non-finite fit or rollout;
 *  else the model columns, model_train.csv's row, the fit counter. */
void mbpo_run_model_done(mbpo_state* s, double seconds);

/** 1 when run s can take its env step this round: exploring, or training with its action known
 *  and no model phase due (model_ready: this round's model phase for it is done). */
int mbpo_run_can_step(const mbpo_state* s, int model_ready);

/** One env step: a uniform random action while exploring, else the policy's action next_act; the
 *  transition joins the running episode, which enters D_env (and the backend) when it ends. Sets
 *  s->want for the backend's step. A non-finite observation stops the run. */
void mbpo_run_env_step(mbpo_state* s);

/** A run without its next action asks the backend's step for it (s->want). */
void mbpo_run_want_action(mbpo_state* s);

/** After the backend's step (seconds long): the next action is known; with updates, their count
 *  and time, a non-finite loss stopping the run. */
void mbpo_run_step_done(mbpo_state* s, double seconds);

/** Interrupted (Ctrl-C, SIGTERM): wait for the evaluation, write the mid-epoch checkpoint
 *  ckpt-e<epoch>-t<step>.npz, and end the run. Returns its exit status (1 when not written). Only
 *  for a run in MBPO_PHASE_TRAIN, between rounds. */
int mbpo_run_interrupt(mbpo_state* s);

#endif
