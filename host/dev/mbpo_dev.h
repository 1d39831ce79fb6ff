/* mbpo_dev.h: the CUDA backend's phases of the MBPO loop (internal to host/mbpo.c).
 *
 * host/mbpo.c runs Algorithm 2 once; with a device it calls these instead of the CPU components.
 * The device holds the agent, the model, both pools and the counters; the host keeps the MuJoCo
 * environment, the running episode and mirrors of the real pool and the counters, and receives
 * the rest (mbpod_to_host) only for checkpoints and the evaluation's policy snapshot.
 *
 * Per environment step one graph runs (captured once, re-captured when the model pool is
 * reallocated): upload the next observation and the step counter from pinned memory, the G SAC
 * updates (each: 12 real + 244 model rows sampled on the device, one update, the update counter
 * advanced on the device), the stochastic action for the next observation, and one copy of the
 * action and the last update's statistics back to pinned memory. The action for step t + 1 is
 * thereby ready when the host has stepped MuJoCo for step t; the model phase in between does not
 * change the policy or the acting counter, so it is valid across it.
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

/** Build the device side of a run from s (set up, and restored when resuming): allocates
 *  everything and uploads the agent, the model, the pools and the counters. */
struct mbpo_dev* mbpod_create(mbpo_state* s, int kind);

/** Free the device side (NULL is allowed). */
void mbpod_free(struct mbpo_dev* d);

/** Name of the context kind in use ("cuda", or "cuda-emulated" on the host). */
const char* mbpod_name(const struct mbpo_dev* d);

/** The real pool got n rows at its end (the host pool already has them): copy them to the device
 *  pool from the given pinned rows. */
void mbpod_push_real(struct mbpo_dev* d, long n, const float* obs, const float* act, const float* rew,
                     const float* next_obs, const float* done);

/** The action for obs at acting counter env_step (no SAC updates): used when no action is
 *  pending (the first step, and steps while the real pool is below min_pool). */
void mbpod_act(struct mbpo_dev* d, const float* obs, uint64_t env_step, float* a);

/** G SAC updates (update counter continues from the device's), then the action for next_obs at
 *  acting counter env_step into a; last gets the last update's statistics. Returns 0, or -1 when
 *  a statistic is not finite. */
int mbpod_updates_and_act(struct mbpo_dev* d, const float* next_obs, uint64_t env_step, float* a,
                          sac_stats* last);

/** Model phase on the device: fit on the real pool (fit index s->fits), resize the model pool to
 *  cap rows, roll out k steps. Returns 0, or MODEL_NONFINITE from the fit, or -2 when the rollout
 *  predicted a non-finite value. */
int mbpod_model_phase(struct mbpo_dev* d, uint32_t fit_index, int k, long cap, model_fit_stats* fs,
                      rollout_stats* rs);

/** The model pool's size and capacity (host mirror). */
void mbpod_model_pool_size(const struct mbpo_dev* d, long* size, long* cap);

/** Copy the device state into the host components of s (agent, model, model pool with the
 *  device's capacity): before a checkpoint and before the evaluation's policy snapshot. With
 *  policy_only, only the policy's parameters. */
void mbpod_to_host(struct mbpo_dev* d, mbpo_state* s, int policy_only);

#endif
