/* backend_dev.h: the device backend of the loop (host/dev/backend_dev.c): the device programs
 * (sac_dev.h, model_dev.h, pool_dev.h, rollout_dev.h) on a dx context (dx.h).
 *
 * The device holds each run's agent, model, both pools and counters; the host keeps the MuJoCo
 * environment, the running episode and a mirror of the real pool, and receives the rest only for
 * checkpoints and the evaluation's policy snapshot (mbpo_backend.snapshot).
 *
 * Each run has its own context (stream, cuBLAS handle) for its model's state and its pools, which
 * its worker thread fills as episodes end. The agents of all runs are one P-run device agent on the
 * backend's own context, with the runs' counters and the fit and rollout workspaces of all runs.
 * The model phases of a round are one batched fit (modeld_fit_runs) and one batched rollout
 * (rolloutd_run_runs); the step is one graph for all runs, captured once: upload the runs' next
 * observations, acting counters and which runs update; the G SAC updates of every updating run
 * (each: its 12 real + 244 model rows sampled on the device, one update, its update counter
 * advanced; runs not updating keep their state); the stochastic action of every run for its next
 * observation; one copy of the actions and the last updates' statistics back to pinned memory.
 * The action for step t + 1 is thereby ready when the host has stepped MuJoCo for step t; the model
 * phase in between changes neither the policy nor the acting counter. */
#ifndef MBPO_BACKEND_DEV_H
#define MBPO_BACKEND_DEV_H

#include "mbpo_backend.h"

/** Open the device backend over the P runs on a context of kind dx_kind (dx.h: DX_CUDA, or DX_HOST
 *  for the host emulation): allocates everything, uploads each run's host state (built, or
 *  restored from a checkpoint) and captures the step graphs. */
mbpo_backend* backendd_open(struct mbpo_state* const* runs, int P, int dx_kind);

/** The label of a device backend of dx_kind ("cuda", "cuda-emulated (host)"). */
const char* backendd_label(int dx_kind);

#endif
