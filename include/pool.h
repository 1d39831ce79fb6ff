/* pool.h: replay pools, FIFO ring buffers of structure-of-arrays (obs, act, rew, next_obs, done).
 * The real pool D_env and the model pool D_model are both pools; sampling is uniform with
 * replacement over the stored rows (softlearning's SimpleReplayPool). */
#ifndef MBPO_POOL_H
#define MBPO_POOL_H

#include <stdint.h>

#include "rng.h"

/** A replay pool. Row i of the ring is at physical index (start + i) % cap, i = 0 the oldest. */
typedef struct pool {
  int obs_dim, act_dim;
  long cap;   /* capacity in rows */
  long size;  /* rows stored */
  long next;  /* physical index of the next write */
  float* obs; /* [cap][obs_dim] */
  float* act; /* [cap][act_dim] */
  float* rew; /* [cap] */
  float* next_obs; /* [cap][obs_dim] */
  float* done;     /* [cap], 1 = terminal */
} pool;

/** Allocate an empty pool of cap rows. Fatal error when memory is short. */
pool* pool_create(int obs_dim, int act_dim, long cap);

/** Free a pool. */
void pool_free(pool* p);

/** Append n rows (arrays of n rows each); the oldest rows are overwritten when full. */
void pool_add(pool* p, long n, const float* obs, const float* act, const float* rew,
              const float* next_obs, const float* done);

/** Change the capacity keeping the contents, oldest first (the newest rows when shrinking). */
void pool_resize(pool* p, long new_cap);

/** Physical index of the i-th oldest row. */
long pool_physical(const pool* p, long i);

/** Copy the rows at physical indices idx[0..n) into contiguous arrays (any output may be NULL). */
void pool_gather(const pool* p, const uint32_t* idx, long n, float* obs, float* act, float* rew,
                 float* next_obs, float* done);

/** Draw n physical row indices uniformly with replacement: idx[j] = rng_index(key, c0, c1,
 *  first + j, size). Row order of the ring does not matter for uniform draws. */
void pool_sample_indices(const pool* p, rng_key key, uint32_t c0, uint32_t c1, uint64_t first,
                         long n, uint32_t* idx);

#endif
