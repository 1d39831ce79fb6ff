/* dxn.h: ensemble MLPs, Adam and Polyak averaging on a dx context (dx.h): the CUDA backend's twin
 * of nn.h, with the same shapes (nn_mlp) and the same flat parameter layout, so that parameters
 * move between the backends as one copy.
 *
 * A layer is one strided-batched GEMM over the E members (a shared input has stride 0) and one
 * fused element op (bias + activation); the backward is two GEMMs per layer (weight and input
 * gradients), a column-sum op for the bias gradient and an op for the activation's derivative.
 * Everything is enqueued on the context and may be captured into a graph: nothing reads the host
 * and nothing allocates after dxn_cache_alloc / dxn_adam_alloc. */
#ifndef MBPO_DXN_H
#define MBPO_DXN_H

#include <stddef.h>
#include <stdint.h>

#include "dx.h"
#include "nn.h"

/** What a forward keeps for its backward (device buffers for up to Bmax rows). */
typedef struct dxn_cache {
  int Bmax, B, shared_input;
  const float* x;                 /* the input of the last forward (device) */
  float* a[NN_MAX_LAYERS + 1];    /* a[l], 1 <= l < nlayers: input of layer l, [E][B][dims[l]] */
  float* z[NN_MAX_LAYERS];        /* z[l]: pre-activation of hidden layer l */
  float* buf[2];                  /* backward workspaces [E][Bmax][max hidden] */
  float* dxe;                     /* per-member input gradients [E][Bmax][dims[0]] */
} dxn_cache;

/** Allocate a cache for up to Bmax rows on c. */
dxn_cache* dxn_cache_alloc(dx_ctx* c, const nn_mlp* net, int Bmax);

/** Free a cache (NULL is allowed). */
void dxn_cache_free(dx_ctx* c, dxn_cache* k);

/** Forward of B <= k->Bmax rows, as nn_forward: x [B][in] when shared_input, else [E][B][in];
 *  y [E][B][out]. x must stay valid until the backward. */
void dxn_forward(dx_ctx* c, const nn_mlp* net, const float* params, int B, const float* x,
                 int shared_input, dxn_cache* k, float* y);

/** Backward of the last forward, as nn_backward: dy [E][B][out]; adds the parameter gradients to
 *  grads (may be NULL); writes the input gradient to dx (may be NULL; [B][in] summed over the
 *  members for a shared input, else [E][B][in]). */
void dxn_backward(dx_ctx* c, const nn_mlp* net, const float* params, dxn_cache* k, const float* dy,
                  float* grads, float* dx);

/** Adam state on the device, TF1 form as nn_adam: the step count t and the bias-corrected rate
 *  live in device memory so that a captured graph advances them on every replay. */
typedef struct dxn_adam {
  size_t n;
  float lr, b1, b2, eps;
  float* m;        /* [n] */
  float* v;        /* [n] */
  int64_t* t;      /* [1] steps taken */
  float* lr_t;     /* [1] lr sqrt(1 - b2^t) / (1 - b1^t) of the current step */
} dxn_adam;

/** Adam state for n parameters (moments zero, t = 0), TF1 defaults as nn_adam_alloc. */
dxn_adam* dxn_adam_alloc(dx_ctx* c, size_t n, float lr);

/** Free Adam state (NULL is allowed). */
void dxn_adam_free(dx_ctx* c, dxn_adam* a);

/** One Adam step of params with gradients g: t += 1, then the update (two ops). */
void dxn_adam_step(dx_ctx* c, dxn_adam* a, float* params, const float* g);

/** Copy host Adam state (moments and t) to the device, or back (dx_sync'd). */
void dxn_adam_upload(dx_ctx* c, dxn_adam* a, const nn_adam* h);
void dxn_adam_download(dx_ctx* c, const dxn_adam* a, nn_adam* h);

/** target = tau src + (1 - tau) target over n floats. */
void dxn_polyak(dx_ctx* c, float* target, const float* src, size_t n, float tau);

/** out[e][j] = scale * sum_r x[e][r][j] (+ out[e][j] when accumulate) for x [E][R][D]: one thread
 *  per column, rows summed in order (deterministic, the same on both kinds). */
void dxn_colsum(dx_ctx* c, const float* x, int E, int R, int D, float scale, int accumulate, float* out);

/** out[r] = [a[r], b[r]] for R rows: a [R][da], b [R][db], out [R][da + db]. */
void dxn_concat(dx_ctx* c, const float* a, int da, const float* b, int db, int R, float* out);

/** *ctr += v on the device (one thread): the counters a captured graph advances on each replay. */
void dxn_ctr_add(dx_ctx* c, uint64_t* ctr, uint64_t v);

/** Random draws on the device: u[i] = rng_u32 and z[i] = rng_normal of the stream (key, c0, c1) at
 *  index first + i (either may be NULL): the device generator's check against the host's. */
void dxn_rng(dx_ctx* c, rng_key key, uint32_t c0, uint32_t c1, uint64_t first, long n, uint32_t* u, float* z);

/** x[i] = v for n floats. */
void dxn_fill(dx_ctx* c, float* x, float v, size_t n);

#endif
