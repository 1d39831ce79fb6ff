/* mbpo_backend.h: the seam between the MBPO loop (host/mbpo.c) and the backend that computes it.
 *
 * The loop runs Algorithm 2 once, for a population of P runs (P = 1 for a single run), and asks
 * its backend for the phases below; nothing in the loop depends on which backend it has. Two
 * implement it:
 *   - the CPU reference (host/cpu/backend_cpu.c): each run's own components (sac.h, model.h,
 *     pool.h, rollout.h), the runs of a phase spread over the population's worker threads;
 *   - the device programs (host/dev/backend_dev.c): the P agents as one P-run device agent, one
 *     graph per round for every run's updates and next action, batched fits and rollouts; on a GPU
 *     (DX_CUDA) or on its host emulation (MBPO_DEVICE_EMULATE=1, for tests).
 *
 * What a run holds on the host (mbpo_run.h) is the state of record on the CPU backend and a mirror
 * on the device one: the real pool is pushed as episodes end, and the device's agent, model and
 * model pool come back only through snapshot (evaluation, checkpoints). Every random draw is a
 * function of the run's seed and counters, so both backends draw the same numbers (docs/design.md).
 *
 * The phases read their inputs from the runs' states and write their results there: the model
 * phase reads s->k and s->fits and fills s->mfit, s->mroll, s->mroll_rc; the step reads s->want,
 * s->obs, s->env_steps and s->updates and fills s->next_act and (with updates) s->last. The loop
 * checks the results (one copy of each check) and keeps the counters. */
#ifndef MBPO_MBPO_BACKEND_H
#define MBPO_MBPO_BACKEND_H

struct mbpo_state;
struct workers;
struct mbpo_config;

/** What a run asks of the next step (mbpo_state.want). */
enum { MBPO_WANT_NONE = 0, MBPO_WANT_ACT = 1, MBPO_WANT_STEP = 2 };

/** A backend of the loop, open for the P runs it was opened with (run q is runs[q]). */
typedef struct mbpo_backend mbpo_backend;
struct mbpo_backend {
  /** Name for log lines ("cpu", "cuda", "cuda-emulated (host)"). */
  const char* name;

  /** Run q's episode ended: its n rows were added at the end of its host real pool; make them part
   *  of the pool the phases sample (the CPU backend's is that pool). May be called from the worker
   *  thread stepping run q, concurrently for different runs. */
  void (*push_real)(mbpo_backend* be, int q, long n, const float* obs, const float* act, const float* rew,
                    const float* next_obs, const float* done);

  /** The model phase of the n runs which[0..n-1], at once: fit run q's model on all of its real
   *  pool (fit index s->fits), size its model pool for rollout length s->k, and roll out s->k steps
   *  from rollout.batch real states into it (key (seed, RNG_ROLLOUT)). A run whose fit went
   *  non-finite is not rolled out. Results into s->mfit, s->mroll, s->mroll_rc. */
  void (*model)(mbpo_backend* be, const int* which, int n);

  /** One step of every run with s->want != MBPO_WANT_NONE: with MBPO_WANT_STEP its G SAC updates
   *  first (update counters s->updates .. s->updates + G - 1, each minibatch int(B * real_ratio)
   *  real rows and the rest model rows; the last one's statistics into s->last), then the
   *  stochastic action for s->obs at acting counter s->env_steps into s->next_act. */
  void (*step)(mbpo_backend* be);

  /** Bring run q's state into its host components: with policy_only the policy's parameters (the
   *  evaluation's snapshot), else the agent, the model and the model pool (a checkpoint). */
  void (*snapshot)(mbpo_backend* be, int q, int policy_only);

  /** Run q's model pool: rows held and capacity (0 and 0 before its first model phase). */
  void (*model_pool)(const mbpo_backend* be, int q, long* size, long* cap);

  /** Free the backend (before the runs are closed). */
  void (*close)(mbpo_backend* be);
};

/** The name of the backend mbpo_backend_open would open for kind (backend.h), for log lines
 *  written before it is open. */
const char* mbpo_backend_label(int kind);

/** Refuse (fatal, with the reason) settings of the n runs cfgs that the backend for kind cannot
 *  run: sac.value_expansion on the device programs (not built there yet), model pools larger than
 *  the memory on the CPU backend (backend_cpu_check). Called before any run folder is made. */
void mbpo_backend_check(int kind, const struct mbpo_config* cfgs, int n);

/** Open the backend for kind (backend.h: BACKEND_CPU or BACKEND_CUDA; the device programs on the
 *  host emulation when MBPO_DEVICE_EMULATE=1) over the P opened (or resumed) runs; w spreads the
 *  CPU backend's per-run work. Sets runs[q]->be and runs[q]->q. Fatal on failure. */
mbpo_backend* mbpo_backend_open(int kind, struct mbpo_state* const* runs, int P, struct workers* w);

#endif
