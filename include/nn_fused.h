/* nn_fused.h: the swish ensemble's forward and backward with the element work fused into the GEMM
 * tasks (nn.c calls these for NN_SWISH networks; ReLU networks, SAC's, keep nn.c's own passes).
 *
 * One OpenMP task per member (members beyond a multiple of the thread count split over several
 * tasks) runs every layer of its member: a single-threaded GEMM, then one pass over its output
 * that adds the bias and applies swish while the output is still in cache. Swish's derivative is
 * kept instead of the pre-activation, from the same exponential, so the backward evaluates no
 * exponential at all; it multiplies the incoming gradient by it and sums the bias gradient in the
 * same pass. Every sum
 * keeps the order of the unfused code (bias added after the dot product, rows summed in order,
 * members of a shared input summed in order), so the bits equal nn.c's separate passes. */
#ifndef MBPO_NN_FUSED_H
#define MBPO_NN_FUSED_H

#include "nn.h"

/** Forward of n rows of a swish network (see forward_rows in nn.c for the layout): member e reads
 *  x + e * x_es and writes y + e * y_es. With keep, hidden layer l's swish derivative goes to
 *  z[l] (member e at e * n * dims[l + 1]) and its activation to a[l + 1], for nnf_backward;
 *  without, activations go to a[] only. */
void nnf_forward(const nn_mlp* net, const float* P, int n, const float* x, size_t x_es,
                 float* const* z, float* const* a, float* y, size_t y_es, int keep);

/** Backward through a cache filled by nnf_forward with keep (same contract as nn_backward). */
void nnf_backward(const nn_mlp* net, const float* P, nn_cache* c, const float* dy, float* grads,
                  float* dx);

/** nnf_backward, and with wd (one value per layer) each member's weight gradient of layer l also
 *  gets wd[l] W added (in that float expression) right after its GEMM, while in cache: the weight
 *  decay of the model's loss without a pass over all the weights. */
void nnf_backward_decay(const nn_mlp* net, const float* P, nn_cache* c, const float* dy, float* grads,
                        float* dx, const float* wd);

/** The GEMMs alone of nnf_forward on n rows per member (y [E][n][out], cache c of at least n rows)
 *  and, with grads, of nnf_backward from dy into grads (x [E][n][in]; without, x [n][in] shared by
 *  the members, as in prediction): the same calls, shapes and
 *  split over tasks, the bias, swish and their gradients left out. For benchmarks: the ceiling of
 *  the fused passes on this BLAS. Not thread-safe (one call at a time). */
void nnf_gemms_only(const nn_mlp* net, const float* P, int n, const float* x, nn_cache* c, float* y,
                    const float* dy, float* grads);

/** How many members (the first ones) run as single-threaded tasks on `threads` threads; the rest run
 *  one at a time on every thread (see nn_fused.c). For benchmarks that mirror the split. */
int nnf_task_members(int E, int threads);

#endif
