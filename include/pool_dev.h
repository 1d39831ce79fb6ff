/* pool_dev.h: replay pools on a dx context (dx.h), the CUDA backend's twin of pool.h.
 *
 * The same ring of structure-of-arrays as pool.h (row i, oldest first, at physical index
 * (start + i) % cap; the same FIFO overwrite), held in device memory so that minibatches are drawn
 * and gathered on the device, and rollouts append to the model pool without the host. The size and
 * the next write position live on the device (state) because kernels, including those replayed
 * from captured graphs and those appending rollout rows, must read the current values; the host
 * keeps a mirror (size, next) that is exact after poold_add_host and after poold_sync_state.
 *
 * Draws are those of pool_sample_indices (rng.h), so a device minibatch equals the CPU backend's
 * row for row. */
#ifndef MBPO_POOL_DEV_H
#define MBPO_POOL_DEV_H

#include <stdint.h>

#include "dx.h"
#include "pool.h"
#include "rng.h"

/** A replay pool in device memory. */
typedef struct pool_dev {
  int obs_dim, act_dim;
  long cap;
  float *obs, *act, *rew, *next_obs, *done; /* device, the same physical ring layout as pool.h */
  long* state;    /* device [2]: size, next (kernels read the size from here) */
  long size, next;/* host mirror: exact after poold_add_host, and after poold_sync_state for
                     device-side appends (rolloutd_run refreshes it) */
} pool_dev;

/** An empty pool of cap rows (cap < 1 is taken as 1) on c; fatal when memory is short. */
pool_dev* poold_create(dx_ctx* c, int obs_dim, int act_dim, long cap);

/** Free a pool (NULL is allowed). */
void poold_free(dx_ctx* c, pool_dev* p);

/** Append n rows from host memory (the caller's pinned staging buffers) as pool_add: wraps around
 *  the ring, overwrites the oldest rows when full, n > cap keeps the newest cap rows where single-
 *  row adds would put them. Updates the mirror and the device state. Asynchronous: the caller keeps
 *  the buffers unchanged until its next dx_sync. The mirror must be exact (after device-side
 *  appends, call poold_sync_state first). Not inside a capture (host copies). */
void poold_add_host(dx_ctx* c, pool_dev* p, long n, const float* obs, const float* act,
                    const float* rew, const float* next_obs, const float* done);

/** Draw n rows as pool_sample_indices: idx[j] = rng_index(key, c0, c1, first + j, size) with
 *  c0 = (uint32_t)*ctr, c1 = (uint32_t)(*ctr >> 32) (ctr a device counter) and size read from
 *  p->state on the device, and gather them into the device arrays obs [n][obs], act [n][act],
 *  rew [n], next_obs [n][obs], done [n] (any may be NULL). One element op: capturable, and a
 *  replay uses the counter's and the size's values at replay time. An empty pool gives row 0
 *  (the CPU's pool_sample_indices stops with an error instead; callers check the size first). */
void poold_sample_gather(dx_ctx* c, const pool_dev* p, rng_key key, const uint64_t* ctr,
                         uint64_t first, int n, float* obs, float* act, float* rew,
                         float* next_obs, float* done);

/** poold_sample_gather with the counter words as arguments (c0, c1) instead of a device counter:
 *  for draws whose counter is known when the op is enqueued (rollout start states). */
void poold_sample_gather_c(dx_ctx* c, const pool_dev* p, rng_key key, uint32_t c0, uint32_t c1,
                           uint64_t first, int n, float* obs, float* act, float* rew,
                           float* next_obs, float* done);

struct poolk_batch_src; /* kernels/pool_k.h */

/** The SAC minibatches of P runs in one op: run q's B rows drawn and gathered as sac_phase does
 *  (rows j < nreal from its real pool, the rest from its model pool; draw j of (key, update
 *  counter ctr[q * ctr_stride])) from the pools named by srcs[q] (device array [P], see
 *  kernels/pool_k.h), into obs [P][B][obs], act, rew, next_obs, done. Capturable. */
void poold_sample_gather_runs(dx_ctx* c, const struct poolk_batch_src* srcs, int P, const uint64_t* ctr,
                              long ctr_stride, int B, int obs_dim, int act_dim, float* obs, float* act,
                              float* rew, float* next_obs, float* done);

/** Replace the whole state by a host pool's (resume): its stored rows, size and next. The device
 *  pool takes the host pool's capacity (reallocating when it differs: graphs holding the old
 *  pointers must then be re-captured). Synced. */
void poold_upload(dx_ctx* c, pool_dev* p, const pool* host);

/** Copy the whole state to a host pool (checkpoints): stored rows at the same physical places,
 *  size and next read from the device state (the mirror need not be current, and is left as it
 *  is); the host pool is resized to the device capacity when it differs (its rows outside the
 *  stored ones are unspecified). Synced. */
void poold_download(dx_ctx* c, const pool_dev* p, pool* host);

/** Change the capacity as pool_resize: the newest min(size, new_cap) rows, oldest first, at
 *  physical 0.., next = size % new_cap. Reallocates (graphs holding the old pointers must be
 *  re-captured); syncs the state first, so the mirror need not be current. */
void poold_resize(dx_ctx* c, pool_dev* p, long new_cap);

/** Download the device state (size, next) into the mirror (a host sync). */
void poold_sync_state(dx_ctx* c, pool_dev* p);

/** Device-side append of *count rows (count a device int, at most nmax) from the device arrays obs,
 *  act, rew, next_obs, done ([nmax][width] each) at the device-side next, as pool_add (FIFO
 *  overwrite; more than cap rows keep the newest cap). Two element ops; capturable. The mirror is
 *  stale afterwards until poold_sync_state. */
void poold_append_dev(dx_ctx* c, pool_dev* p, const int* count, long nmax, const float* obs,
                      const float* act, const float* rew, const float* next_obs, const float* done);

#endif
