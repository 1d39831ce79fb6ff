/* mbpo_dev.h: the CUDA backend's phases of the MBPO loop (internal to host/mbpo.c).
 *
 * host/mbpo.c runs Algorithm 2 once; with a device it calls these instead of the CPU components.
 * The device holds the agent, the model, both pools and the counters; the host keeps the MuJoCo
 * environment, the running episode and mirrors of the real pool and the counters, and receives
 * the rest (mbpod_to_host) only for checkpoints and the evaluation's policy snapshot.
 *
 * The device side is in two parts. Each run has its own (struct mbpo_dev, its own context: stream,
 * cuBLAS handle): its model's state and both pools, filled from its worker thread. The agents of
 * all runs live in one population device (struct mbpo_pdev, one context) as one P-run device agent
 * (sac_dev.h), with the runs' counters and the fit and rollout workspaces of all runs: the model
 * phases of the runs whose phase comes up in a round are one batched fit (model_dev.h's
 * modeld_fit_runs) and one batched rollout (mbpo_pdev_model), and per round of the population one graph runs for all of them (captured
 * once): upload the runs' next observations, acting counters and which runs update this step, the
 * G SAC updates of every updating run (each: its 12 real + 244 model rows sampled on the device,
 * one update, its update counter advanced; runs not updating keep their state), the stochastic
 * action of every run for its next observation, and one copy of the actions and the last updates'
 * statistics back to pinned memory. A run alone is the population of one (P = 1).
 *
 * A run tells the population's step what it needs in s->want (MBPOD_WANT_*): the action for
 * s->obs at acting counter s->env_steps, with or without its G updates first. The action for step
 * t + 1 is thereby ready when the host has stepped MuJoCo for step t; the model phase in between
 * does not change the policy or the acting counter, so it is valid across it.
 *
 * The context kind is DX_CUDA, or DX_HOST when the environment variable MBPO_DEVICE_EMULATE=1 is
 * set: the device path run on the CPU, which is how the tests compare it with the CPU loop on a
 * machine without a GPU. */
#ifndef MBPO_MBPO_DEV_H
#define MBPO_MBPO_DEV_H

#include "../mbpo_state.h"
#include "model.h"
#include "rollout.h"

struct mbpo_dev;
struct mbpo_pdev;

/** What a run asks of the population's next step (mbpo_state.want). */
enum { MBPOD_WANT_NONE = 0, MBPOD_WANT_ACT = 1, MBPOD_WANT_STEP = 2 };

/** Build the device side of a run from s (set up, and restored when resuming): allocates
 *  everything and uploads the model and the pools. The agent joins the population device
 *  (mbpo_pdev_create) before the run's first step. */
struct mbpo_dev* mbpod_create(mbpo_state* s, int kind);

/** Free the device side (NULL is allowed). */
void mbpod_free(struct mbpo_dev* d);

/** Name of the context kind in use ("cuda", or "cuda-emulated" on the host). */
const char* mbpod_name(const struct mbpo_dev* d);

/** The real pool got n rows at its end (the host pool already has them): copy them to the device
 *  pool, asynchronously through a pinned stage of max_path_length rows (the call first waits for
 *  the run's stream, so that the previous episode's copies have left the stage). */
void mbpod_push_real(struct mbpo_dev* d, long n, const float* obs, const float* act, const float* rew,
                     const float* next_obs, const float* done);

/** Wait for the run's own queued work (its real rows reach the device pool before the
 *  population's step samples them). */
void mbpod_sync(struct mbpo_dev* d);

/** The population device of the P runs (each opened with a device side): one P-run agent from the
 *  runs' host agents, the counters from their states, the step graphs. */
struct mbpo_pdev* mbpo_pdev_create(mbpo_state* const* runs, int P);

/** Free it (NULL is allowed), after the runs' device sides. */
void mbpo_pdev_free(struct mbpo_pdev* pd);

/** One step of the population: for every run with want STEP its G SAC updates, then for every run
 *  with want other than NONE the action for s->obs at acting counter s->env_steps into
 *  s->next_act, and for the updating runs the last update's statistics into s->last. One graph
 *  launch for all runs; nothing when no run wants anything. Returns the seconds it took. */
double mbpo_pdev_step(struct mbpo_pdev* pd, mbpo_state* const* runs);

/** The model phases of every run whose phase waits for the population (s->mstate
 *  MBPO_MODEL_ROLLOUT), all at once: one batched fit of their models on their real pools (fit
 *  index s->fits; model_dev.h's modeld_fit_runs), each model pool resized for its rollout length
 *  s->k, then one batched rollout (rollout_dev.h's rolloutd_run_runs; runs with different lengths
 *  share it): run q's s->k steps from its real pool into its model pool with its policy, key
 *  (seed, RNG_ROLLOUT) and fit index, exactly the fit and rollout it would take alone. Results into
 *  s->mfit, s->mroll and s->mroll_rc (a run whose fit turned NaN is not rolled out). The runs'
 *  real rows must be on the device (mbpod_sync). Returns the seconds it took (0 with none). */
double mbpo_pdev_model(struct mbpo_pdev* pd, mbpo_state* const* runs);

/** The model pool's size and capacity (host mirror). */
void mbpod_model_pool_size(const struct mbpo_dev* d, long* size, long* cap);

/** Copy the device state into the host components of s (agent, model, model pool with the
 *  device's capacity): before a checkpoint and before the evaluation's policy snapshot. With
 *  policy_only, only the policy's parameters. */
void mbpod_to_host(struct mbpo_dev* d, mbpo_state* s, int policy_only);

#endif
