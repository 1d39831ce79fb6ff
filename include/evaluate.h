/* evaluate.h: deterministic evaluation episodes on a snapshot of the actor, in a worker thread so
 * that training does not wait (docs/algorithm.md §11; the project default is eval.episodes =
 * 5). */
#ifndef MBPO_EVALUATE_H
#define MBPO_EVALUATE_H

#include <stdint.h>

#include "env.h"
#include "model.h"
#include "sac.h"

/** Returns of one evaluation. */
typedef struct eval_result {
  int episodes;
  double mean, std, min, max; /* of the undiscounted returns */
  double first;               /* the first episode's return (the official 1-episode metric) */
  double mean_length;         /* mean episode length */
  double model_mean, model_std; /* eval.model_return: returns of the rollouts in the model (NaN: none) */
} eval_result;

typedef struct evaluator evaluator;

/** An evaluator for a task: its own env on the shared compiled model (reset noise key
 *  (seed, RNG_EVAL_RESET), env index = epoch, so results do not depend on timing) and its own copy
 *  of the policy with the agent's shapes. */
evaluator* eval_create(const env_task* task, const mjModel* model, const sac* agent, uint32_t seed,
                       int episodes, int max_steps);

/** Free an evaluator (waits for a running evaluation). */
void eval_free(evaluator* ev);

/** Also run each episode's policy in the learned model (eval.model_return): after each real
 *  episode of initial state s0 and length T, `rollouts` model rollouts of the same deterministic
 *  policy from s0 for at most T steps (model_return.h; key (seed, RNG_EVAL_MODEL), c_pick =
 *  2 epoch, c_noise = 2 epoch + 1, n0 = episode * rollouts), their returns' mean and std in the
 *  result. like gives the model's shapes; term_kind is the task's termination rule. */
void eval_enable_model(evaluator* ev, const dyn_model* like, int term_kind, int rollouts);

/** Make model (NULL: none fitted yet) the snapshot the next evaluation runs in (with
 *  eval_enable_model; otherwise nothing). Waits for no running evaluation: call it between them. */
void eval_set_model(evaluator* ev, dyn_model* model);

/** The model snapshot of the last eval_start (NULL without eval_enable_model) and, in *valid,
 *  its flag (0: no fitted model was given, the model return is NaN); for checkpoints. */
dyn_model* eval_model_snapshot(evaluator* ev, int** valid);

/** Snapshot the agent's policy (and, with eval_enable_model, the model: NULL before its first fit)
 *  and start evaluating it for epoch in the worker thread. */
void eval_start(evaluator* ev, const sac* agent, dyn_model* model, uint32_t epoch);

/** The policy snapshot of the last eval_start (the agent's policy layout; for checkpoints). */
float* eval_snapshot(evaluator* ev);

/** Start evaluating the snapshot as it is now (restored from a checkpoint) for epoch. */
void eval_start_snapshot(evaluator* ev, uint32_t epoch);

/** Wait for the running evaluation and return its result (zeros when none ran). */
eval_result eval_wait(evaluator* ev);

/** Run an evaluation in the calling thread (used by the worker and by `mbpo eval`). */
eval_result eval_run(evaluator* ev, uint32_t epoch);

/** Call fn(ctx, e) with the evaluation env after each reset and each step of eval_run (`mbpo eval
 *  --video` renders e->d); fn must not change the env. fn = NULL removes it. */
void eval_set_observer(evaluator* ev, void (*fn)(void* ctx, env* e), void* ctx);

#endif
