/* mbpo_state.h: everything one training run holds (internal to host/mbpo.c and
 * host/checkpoint.c): the components, the pools, the loop's counters and the epoch's accumulators.
 * A checkpoint is this struct's state; the random streams are pure functions of its counters. */
#ifndef MBPO_STATE_H
#define MBPO_STATE_H

#include <setjmp.h>
#include <stdint.h>

#include "config.h"
#include "env.h"
#include "evaluate.h"
#include "model.h"
#include "pool.h"
#include "rollout.h"
#include "run.h"
#include "sac.h"
#include "tboard.h"

/* ---- progress.csv columns ---- */
enum {
  P_EPOCH, P_ENV_STEPS, P_TOTAL_STEPS, P_EVAL_MEAN, P_EVAL_STD, P_EVAL_MIN, P_EVAL_MAX, P_EVAL_FIRST,
  P_EVAL_LEN, P_TRAIN_RETURN, P_TRAIN_EPISODES, P_MODEL_LOSS, P_MODEL_MSE, P_MODEL_EPOCHS,
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

/* What mbpo_run_tick did. MBPO_TICK_MODEL (device): its model phase came up and it stopped before
 * the fit, which the population runs with the rollout for all its runs at once (mbpo_pdev_model);
 * after
 * mbpo_run_after_rollout the next tick goes on from there (the env step of the same t). */
enum { MBPO_TICK_STEP, MBPO_TICK_DONE, MBPO_TICK_MODEL };

/* Where a run's model phase is on the device (mbpo_state.mstate). */
enum { MBPO_MODEL_NONE, MBPO_MODEL_ROLLOUT, MBPO_MODEL_RESUME };

/* Everything one run holds. */
typedef struct mbpo_state {
  const mbpo_config* c;
  int phase;             /* MBPO_PHASE_* */
  int rc;                /* exit status once done: 0, or 1 (failed, or the final checkpoint not written) */
  jmp_buf fail;          /* run_fail returns here (to mbpo_run_tick) */
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
  sac* agent;
  dyn_model* model;
  pool *real, *mpool;
  rollout_ctx* ro;
  struct mbpo_dev* dev;  /* the device side (CUDA backend; NULL on the CPU backend) */
  int have_act;          /* device: next_act holds the action for obs (computed by the last graph) */
  int want;              /* device: what this tick asks of the population's step (MBPOD_WANT_*) */
  float next_act[ENV_MAX_ACT];
  int mstate;            /* device: MBPO_MODEL_*: the model phase waits for / has had the population's rollout */
  model_fit_stats mfit;  /* device: the fit of the model phase in progress ... */
  double mfit_time;      /* ... its seconds ... */
  rollout_stats mroll;   /* ... and its rollout's statistics and status (mbpo_pdev_model) */
  int mroll_rc;
  evaluator* ev;
  path_buf path;
  float obs[ENV_MAX_OBS];
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
  /* SAC minibatch */
  uint32_t* bidx;
  float *bobs, *bact, *brew, *bnext, *bdone;
} mbpo_state;

/** Build run s for config c (every component and buffer, allocated once here), open its new run
 *  folder and start it (exploration first). kind = the resolved backend (backend.h); in_population:
 *  log lines name the run and there is no live terminal line. Errors here are fatal: nothing has
 *  trained yet. c must outlive s. */
void mbpo_run_open(mbpo_state* s, const mbpo_config* c, int kind, int in_population);

/** Read the config.ini of the run folder run_path into cfg (fatal when missing or invalid). */
void mbpo_run_load_config(const char* run_path, mbpo_config* cfg);

/** Build run s for cfg (read by mbpo_run_load_config) and continue the run folder run_path from its
 *  newest checkpoint (checkpoint.latest). Bad or missing checkpoints are fatal. */
void mbpo_run_resume(mbpo_state* s, const mbpo_config* cfg, const char* run_path, int kind,
                     int in_population);

/** Advance run s by one env step (exploration or training: with the model phase when due and the G
 *  SAC updates), handling the epoch ends (log, evaluation, checkpoint) on the way. Returns
 *  MBPO_TICK_STEP, MBPO_TICK_MODEL (device: paused for the population's rollout), or
 *  MBPO_TICK_DONE once the run has ended (s->rc holds its exit status; a NaN/Inf
 *  ends only this run, reported with the phase named). */
int mbpo_run_tick(mbpo_state* s);

/** After the population's model phase (mbpo_pdev_model, seconds long): complete the model phase
 *  of a run whose tick returned MBPO_TICK_MODEL (its log line and progress columns; a NaN in the
 *  fit or the rollout stops the run). Nothing for other runs. */
void mbpo_run_after_rollout(mbpo_state* s, double seconds);

/** After the population's device step (mbpo_pdev_step, seconds long): take its results for this
 *  run (the next action; with updates, their count, time and statistics, a NaN stopping the run).
 *  Nothing when the tick asked for nothing. */
void mbpo_run_after_step(mbpo_state* s, double seconds);

/** Interrupted (Ctrl-C, SIGTERM): wait for the evaluation, write the mid-epoch checkpoint
 *  ckpt-e<epoch>-t<step>.npz, and end the run. Returns its exit status (1 when not written). Only
 *  for a run in MBPO_PHASE_TRAIN. */
int mbpo_run_interrupt(mbpo_state* s);

/** Free everything of run s and close its files. */
void mbpo_run_close(mbpo_state* s);

/** Write the run's whole state to path atomically (checkpoint.h); elapsed = wall seconds so far.
 *  Returns 0, or -1 with err (the previous file at path is left intact). */
int ckpt_save(mbpo_state* s, const char* path, double elapsed, char* err, int errlen);

/** Restore a run's state from path into s, which setup() built from the same config. Returns 0, or
 *  -1 with err (truncated, corrupt, another format version, task or shape). */
int ckpt_load(mbpo_state* s, const char* path, double* elapsed, char* err, int errlen);

#endif
