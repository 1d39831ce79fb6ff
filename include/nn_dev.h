/* nn_dev.h: ensemble MLPs, Adam and Polyak averaging on a dx context (dx.h): the CUDA backend's twin
 * of nn.h, with the same shapes (nn_mlp) and the same flat parameter layout, so that parameters
 * move between the backends as one copy.
 *
 * A layer is one strided-batched GEMM over the E members (a shared input has stride 0) with its
 * bias + activation op, issued as one op (dx_gemm2_ep; on the GPU a ReLU layer's may be one
 * cuBLASLt call); the backward is per layer the weight-gradient GEMM (plus, at the top, a
 * column-sum op for the bias gradient) and the input-gradient GEMM fused with the activation's
 * derivative and the bias gradient below. ReLU's derivative reads the layer's output, not z.
 * Everything is enqueued on the context and may be captured into a graph: nothing reads the host
 * and nothing allocates after nnd_cache_alloc / nnd_adam_alloc.
 *
 * Populations. A cache, an Adam state and the updates below may cover P runs of one network at
 * once (the leading run dimension, docs/cuda.md §7): parameters [P][nparams] (each run's vector
 * in nn.h's layout, so one run moves to and from the host as one copy), activations
 * [P][E][B][...], inputs [P][B][in] (shared) or [P][E][B][in]. Every op covers all P runs in one
 * launch; the GEMMs are dx_gemm2 calls (one strided-batched call, or E of them where a shared
 * input's strides do not collapse). P = 1 is the plain case. */
#ifndef MBPO_NN_DEV_H
#define MBPO_NN_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "dx.h"
#include "nn.h"

/** What a forward keeps for its backward (device buffers for up to Bmax rows). */
typedef struct nnd_cache {
  int P;                          /* runs the next forward covers (nnd_cache_use_runs) */
  int Pmax;                       /* runs allocated */
  int Bmax, B, shared_input;
  int fwd_only;                   /* forward only (nnd_cache_alloc_fwd): no a, z, dxe; the layers
                                     alternate between buf[0] and buf[1], activations in place */
  long ps;                        /* floats between the runs' parameter (and gradient) vectors:
                                     net->nparams unless set after allocation (a model's vector
                                     carries its log-variance bounds after the network's) */
  const float* x;                 /* the input of the last forward (device) */
  float* a[NN_MAX_LAYERS + 1];    /* a[l], 1 <= l < nlayers: input of layer l, [P][E][B][dims[l]] */
  float* z[NN_MAX_LAYERS];        /* z[l]: pre-activation of hidden layer l (a ReLU layer fused on
                                     the GPU leaves it unwritten: its backward reads a[l + 1]) */
  float* buf[2];                  /* backward workspaces [P][E][Bmax][max hidden] */
  float* dxe;                     /* per-member input gradients [P][E][Bmax][dims[0]] */
  int dw_lane;                    /* the lane (dx.h) of the backward's weight-gradient GEMMs: beside
                                     the input-gradient chain when not the caller's lane (0 at
                                     allocation: a backward from lane 0 stays on one lane) */
} nnd_cache;

/** Allocate a cache for up to Bmax rows of one run on c. */
nnd_cache* nnd_cache_alloc(dx_ctx* c, const nn_mlp* net, int Bmax);

/** Allocate a cache for up to Bmax rows of each of P runs (parameters [P][nparams]). */
nnd_cache* nnd_cache_alloc_runs(dx_ctx* c, const nn_mlp* net, int P, int Bmax);

/** A forward-only cache (no nnd_backward) for up to Bmax rows of each of P runs: two activation
 *  buffers instead of every layer's input and pre-activation and the backward's workspaces, about
 *  2 / (2 nlayers + 3) of a full cache's memory (rollouts, scoring, acting). The same results. */
nnd_cache* nnd_cache_alloc_fwd(dx_ctx* c, const nn_mlp* net, int P, int Bmax);

/** Make the next forwards (and their backwards) cover the first P <= k->Pmax runs only: the strides
 *  do not depend on the run count, so a population's cache serves any prefix of its runs. */
void nnd_cache_use_runs(nnd_cache* k, int P);

/** Free a cache (NULL is allowed). */
void nnd_cache_free(dx_ctx* c, nnd_cache* k);

/** Forward of B <= k->Bmax rows, as nn_forward: x [B][in] when shared_input, else [E][B][in];
 *  y [E][B][out]; with k->P runs params is [P][nparams] and x, y get the leading [P]. x must stay
 *  valid until the backward. */
void nnd_forward(dx_ctx* c, const nn_mlp* net, const float* params, int B, const float* x,
                 int shared_input, nnd_cache* k, float* y);

/** nnd_forward without the last layer's bias: y holds the output GEMM's result, and the op that
 *  reads y adds the bias (params + net->b_off[nlayers - 1], run stride k->ps) with nnk_bias_act's
 *  expression: one op fewer, the same bits (sac_k.h's heads). A backward through y's gradient is
 *  as after nnd_forward. */
void nnd_forward_head(dx_ctx* c, const nn_mlp* net, const float* params, int B, const float* x,
                      int shared_input, nnd_cache* k, float* y);

/** Backward of the last forward, as nn_backward: dy [E][B][out]; adds the parameter gradients to
 *  grads (may be NULL); writes the input gradient to dx (may be NULL; [B][in] summed over the
 *  members for a shared input, else [E][B][in]); all with the leading [P] of the cache's runs. */
void nnd_backward(dx_ctx* c, const nn_mlp* net, const float* params, nnd_cache* k, const float* dy,
                  float* grads, float* dx);

/** nnd_backward for a shared input and E > 1 members, the input gradient left per member in
 *  k->dxe ([P][E][B][in]) for the caller to sum in an op of its own (nnk_sum_members' order). */
void nnd_backward_members(dx_ctx* c, const nn_mlp* net, const float* params, nnd_cache* k, const float* dy,
                          float* grads);

/** nnd_backward with the parameter gradients written to grads instead of added (no zeroing op
 *  before it: the weight GEMMs take beta = 0). */
void nnd_backward_set(dx_ctx* c, const nn_mlp* net, const float* params, nnd_cache* k, const float* dy,
                      float* grads, float* dx);

/** Adam state on the device, TF1 form as nn_adam: the step count t and the bias-corrected rate
 *  live in device memory so that a captured graph advances them on every replay. */
typedef struct nnd_adam {
  size_t n;        /* parameters of one run */
  int P;           /* runs */
  float lr, b1, b2, eps; /* lr: run 0's (each run's is in lrs) */
  float* m;        /* [P][n] */
  float* v;        /* [P][n] */
  int64_t* t;      /* [P] steps taken */
  float* lr_t;     /* [P] lr sqrt(1 - b2^t) / (1 - b1^t) of the current step */
  float* lrs;      /* [P] learning rates */
} nnd_adam;

/** Adam state for n parameters (moments zero, t = 0), TF1 defaults as nn_adam_alloc. */
nnd_adam* nnd_adam_alloc(dx_ctx* c, size_t n, float lr);

/** The same for P runs of n parameters each, run q with learning rate lrs[q] (host array). */
nnd_adam* nnd_adam_alloc_runs(dx_ctx* c, size_t n, int P, const float* lrs);

/** Free Adam state (NULL is allowed). */
void nnd_adam_free(dx_ctx* c, nnd_adam* a);

/** One Adam step of params with gradients g: t += 1, then the update (two ops). */
void nnd_adam_step(dx_ctx* c, nnd_adam* a, float* params, const float* g);

/** The same for every run q with active[q] != 0 (device [P]; NULL = all); params, g [P][n]. */
void nnd_adam_step_runs(dx_ctx* c, nnd_adam* a, float* params, const float* g, const int* active);

/** Copy host Adam state (moments and t) to the device, or back (dx_sync'd). */
void nnd_adam_upload(dx_ctx* c, nnd_adam* a, const nn_adam* h);
void nnd_adam_download(dx_ctx* c, const nnd_adam* a, nn_adam* h);

/** The same for run q of a population's Adam state. */
void nnd_adam_upload_run(dx_ctx* c, nnd_adam* a, int q, const nn_adam* h);
void nnd_adam_download_run(dx_ctx* c, const nnd_adam* a, int q, nn_adam* h);

/** target = tau src + (1 - tau) target over n floats. */
void nnd_polyak(dx_ctx* c, float* target, const float* src, size_t n, float tau);

/** The same over P runs of n floats, run q with rate taus[q] (device [P]), only where active[q]
 *  (device [P]; NULL = all). */
void nnd_polyak_runs(dx_ctx* c, float* target, const float* src, size_t n, int P, const float* taus,
                     const int* active);

/** out[e][j] = scale * sum_r x[e][r][j] (+ out[e][j] when accumulate) for x [E][R][D]: one thread
 *  per column, rows summed in order (deterministic, the same on both kinds). */
void nnd_colsum(dx_ctx* c, const float* x, int E, int R, int D, float scale, int accumulate, float* out);

/** out[r] = [a[r], b[r]] for R rows: a [R][da], b [R][db], out [R][da + db]. */
void nnd_concat(dx_ctx* c, const float* a, int da, const float* b, int db, int R, float* out);

/** *ctr += v on the device (one thread): the counters a captured graph advances on each replay. */
void nnd_ctr_add(dx_ctx* c, uint64_t* ctr, uint64_t v);

/** ctr[q] += v for the P runs' counters where active[q] (device [P]; NULL = all). */
void nnd_ctr_add_runs(dx_ctx* c, uint64_t* ctr, int P, uint64_t v, const int* active);

/** Random draws on the device: u[i] = rng_u32 and z[i] = rng_normal of the stream (key, c0, c1) at
 *  index first + i (either may be NULL): the device generator's check against the host's. */
void nnd_rng(dx_ctx* c, rng_key key, uint32_t c0, uint32_t c1, uint64_t first, long n, uint32_t* u, float* z);

/** x[i] = v for n floats. */
void nnd_fill(dx_ctx* c, float* x, float v, size_t n);

#endif
