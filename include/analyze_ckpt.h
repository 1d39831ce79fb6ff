/* analyze_ckpt.h: the checkpoints of a run folder as the analyses use them, and fresh real
 * transitions of a checkpoint's policy.
 *
 * A run's checkpoints are its epoch-end files ckpt-e<epoch>.npz (training writes one every
 * `checkpoint.every` epochs and at the end, and keeps the last `checkpoint.keep`); ckpt-best.npz
 * and the mid-epoch ckpt-e<epoch>-t<step>.npz of an interruption are left out. Each is loaded with
 * evaluate_cmd.h's run_policy_load (config, task and policy checked against the run) and, where an
 * analysis needs it, run_policy_load_model.
 *
 * Draws: key (seed, RNG_ANALYZE); the counter word c0 holds a kind (ANALYZE_C_*) in its top 4 bits
 * and an index below, so that no two uses share a virtual stream. The env's reset noise uses the
 * env index as c0 and the episode as c1 (env.h), so an env index is such a c0 too. */
#ifndef MBPO_ANALYZE_CKPT_H
#define MBPO_ANALYZE_CKPT_H

#include <stdint.h>

#include "evaluate_cmd.h"
#include "model.h"

/** Kinds of the analyses' draws (the top 4 bits of c0). */
enum analyze_draw {
  ANALYZE_C_GEN_RESET = 1,  /* generalization: env index for checkpoint epoch e's episodes */
  ANALYZE_C_GEN_ACT = 2,    /* generalization: policy noise, index = epoch, c1 = step */
  ANALYZE_C_EXP_RESET = 3,  /* exploitation: env index (index 0) of the real episodes */
  ANALYZE_C_EXP_PICK = 4,   /* exploitation: elite picks, index = episode, c1 = step, n = rollout */
  ANALYZE_C_EXP_NOISE = 5,  /* exploitation: model noise, index = episode, c1 = step, n = rollout D + d */
  ANALYZE_C_REP_PICK = 6,   /* replay: elite picks, index = episode, c1 = step, n = rollout */
  ANALYZE_C_REP_NOISE = 7   /* replay: model noise, index = episode, c1 = step, n = rollout D + d */
};

/** The counter word c0 of a draw kind and an index (below 2^28). */
static inline uint32_t analyze_c0(int kind, long index) {
  return ((uint32_t)kind << 28) | ((uint32_t)index & 0x0FFFFFFFu);
}

/** One checkpoint of a run, loaded. */
typedef struct analyze_ckpt {
  run_policy p;       /* config, task, policy and counters (p.epoch: the epoch being run) */
  long epoch;         /* the <epoch> of its name ckpt-e<epoch>.npz (another name: p.epoch) */
  dyn_model* model;   /* its model (NULL when not asked for) */
  long real_rows;     /* rows of its real pool (-1 when the model was not loaded) */
  long fit_rows;      /* rows its model's last fit had (model_train.csv; else real_rows) */
  long train_rows;    /* of those, the training split (the rest were held out; -1: unknown) */
} analyze_ckpt;

/** Load the checkpoints of run folder run for subcommand cmd: those named by list (comma-separated
 *  epochs E, meaning ckpt-e<E>.npz, or .npz paths), or with list NULL every epoch-end checkpoint,
 *  sorted by epoch. need_model: also load each model (a checkpoint without a fitted model is an
 *  error). Fewer than min_count checkpoints, a missing or bad one, one of another task: fatal, with
 *  a message naming what is missing and that checkpoint.every / checkpoint.keep control them.
 *  Returns the count; *out is malloc'ed (analyze_free_ckpts). */
int analyze_load_ckpts(const char* cmd, const char* run, const char* list, int need_model, int min_count,
                       analyze_ckpt** out);

/** Free the checkpoints of analyze_load_ckpts. */
void analyze_free_ckpts(analyze_ckpt* c, int n);

/** Transitions of the real env (n rows): obs, act (policy actions in [-1, 1]), rew, next_obs. */
typedef struct analyze_rows {
  int n, obs_dim, act_dim;
  float *obs, *act, *rew, *next_obs;
} analyze_rows;

/** Allocate r for n rows of obs_dim / act_dim (fatal when out of memory). */
void analyze_rows_alloc(analyze_rows* r, int n, int obs_dim, int act_dim);

/** Fill out's out->n rows with transitions of checkpoint c's stochastic policy in a fresh env of
 *  model m: episodes from resets (env index analyze_c0(ANALYZE_C_GEN_RESET, c->epoch)), reset again
 *  on termination or after max_path_length steps; policy noise from analyze_c0(ANALYZE_C_GEN_ACT,
 *  c->epoch) with c1 = the step. */
void analyze_collect(const analyze_ckpt* c, const mjModel* m, uint32_t seed, analyze_rows* out);

/** Free the rows of analyze_rows_alloc. */
void analyze_rows_free(analyze_rows* r);

/** The folder an analysis writes to: dir, or <run>/analysis when dir is NULL; created if missing
 *  (fatal when it cannot be). */
void analyze_out_dir(const char* run, const char* dir, char* out, int n);

#endif
