/* nn.h: ensemble MLPs on the CPU backend (the reference for kernels/nn.cu).
 *
 * An ensemble MLP holds E independent members with identical shapes; a plain network is E = 1 and
 * the twin critics are E = 2. Layer l has weights [E][in_l][out_l] and biases [E][out_l], all in one
 * contiguous float buffer (params), so that one Adam call and one Polyak call cover a network, and
 * the CUDA backend runs all members with one strided-batched GEMM. Hidden layers use one activation
 * (swish for the dynamics model, ReLU for SAC); the output layer is linear.
 *
 * Activations are [E][B][dim] row-major. An input may be shared by all members ([B][in], the critics
 * and model rollouts) or per member ([E][B][in], bootstrapped model training). Gradients are
 * accumulated into a grads buffer with the params layout; callers zero it (nn_zero) per step. */
#ifndef MBPO_NN_H
#define MBPO_NN_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define NN_MAX_LAYERS 8

/** Hidden-layer activations. */
enum nn_act { NN_RELU = 0, NN_SWISH = 1 };

/** Shape of an ensemble MLP and the offsets of its tensors in the flat parameter buffer. */
typedef struct nn_mlp {
  int E;                          /* members */
  int nlayers;                    /* linear layers (hidden layers + 1) */
  int dims[NN_MAX_LAYERS + 1];    /* dims[0] = input, dims[nlayers] = output */
  int act;                        /* enum nn_act, after every hidden layer */
  size_t w_off[NN_MAX_LAYERS];    /* offset of layer l's weights [E][in][out] */
  size_t b_off[NN_MAX_LAYERS];    /* offset of layer l's biases [E][out] */
  size_t nparams;                 /* total floats */
} nn_mlp;

/** Describe an MLP: E members, nlayers linear layers with dims[0..nlayers]. */
nn_mlp nn_mlp_make(int E, int nlayers, const int* dims, int act);

/** Per-batch activations kept by the forward pass for the backward pass (allocated once for up
 *  to Bmax rows): a[l] is the input of layer l ([E][B][dims[l]]), z[l] the pre-activation of hidden
 *  layer l (ReLU) or swish's derivative there (swish: nn_fused.h). The forward reads the input through x and does not copy it into a[0]; a[0] and
 *  a[nlayers] ([E][Bmax][in] and [E][Bmax][out]) are workspaces for nn_forward_chunked. */
typedef struct nn_cache {
  int Bmax, B, shared_input;
  const float* x;                    /* the input of the last forward */
  float* a[NN_MAX_LAYERS + 1];
  float* z[NN_MAX_LAYERS];
  float* scratch;                    /* backward workspace */
} nn_cache;

/** Allocate a cache for up to Bmax rows. */
nn_cache* nn_cache_alloc(const nn_mlp* net, int Bmax);

/** Free a cache. */
void nn_cache_free(nn_cache* c);

/** Forward: x is [B][in] when shared_input, else [E][B][in]; y is [E][B][out]. The cache (may be
 *  NULL when no backward follows) keeps what the backward needs; x must stay valid until then.
 *  With a cache, B <= cache->Bmax (fatal otherwise); without one, any B (chunked, allocating). */
void nn_forward(const nn_mlp* net, const float* params, int B, const float* x, int shared_input,
                nn_cache* cache, float* y);

/** Forward of any number of rows B in chunks of cache->Bmax rows (cache required; B may exceed
 *  Bmax). Same x and y layouts as nn_forward; nothing is kept for a backward. When cache is NULL,
 *  nn_forward does the same with a temporary cache of at most NN_CHUNK rows. */
void nn_forward_chunked(const nn_mlp* net, const float* params, int B, const float* x,
                        int shared_input, nn_cache* cache, float* y);

/** Rows per chunk of a forward without a cache. */
#define NN_CHUNK 4096

/** Backward of the last forward through cache: dy is [E][B][out]. Accumulates parameter gradients
 *  into grads (may be NULL) and writes the input gradient into dx (may be NULL): [B][in] summed over
 *  members when the input was shared, else [E][B][in]. */
void nn_backward(const nn_mlp* net, const float* params, nn_cache* cache, const float* dy,
                 float* grads, float* dx);

/** Initialise the weights from a truncated normal (|x| <= 2 std re-drawn) with std
 *  1 / (2 sqrt(fan_in)) and the biases to 0: the dynamics model's initialisation (TF). */
void nn_init_truncnormal(const nn_mlp* net, float* params, rng_key key, uint32_t net_id);

/** Initialise the weights Glorot-uniform, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) per
 *  member, and the biases to 0: Keras' default, used by SAC. */
void nn_init_glorot(const nn_mlp* net, float* params, rng_key key, uint32_t net_id);

/** Swish x * sigmoid(x) and its derivative. */
float nn_swish(float x);
float nn_swish_grad(float x);

/** Adam as TF1 runs it: t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *  p -= lr sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps). State persists across calls. */
typedef struct nn_adam {
  size_t n;
  float lr, b1, b2, eps;
  long t;
  float* m;
  float* v;
} nn_adam;

/** Adam state for n parameters, moments zero, with TF1 defaults b1 0.9, b2 0.999, eps 1e-8. */
nn_adam* nn_adam_alloc(size_t n, float lr);

/** Free Adam state. */
void nn_adam_free(nn_adam* a);

/** One Adam step of params (n floats) with gradients g. */
void nn_adam_step(nn_adam* a, float* params, const float* g);

/** Polyak averaging: target = tau * src + (1 - tau) * target over n floats. */
void nn_polyak(float* target, const float* src, size_t n, float tau);

/** Zero n floats. */
void nn_zero(float* p, size_t n);

/** Allocate n floats (64-byte aligned, zeroed); fatal on failure. */
float* nn_alloc(size_t n);

#endif
