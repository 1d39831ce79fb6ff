/* swish.h: bias + swish over rows, vectorised with the same bits as the scalar expressions.
 *
 * nn_swish(v) = v / (1 + expf(-v)) and nn_swish_grad(v) = s (1 + v (1 - s)), s = 1 / (1 + expf(-v)).
 * With AVX-512 (checked at run time) 8 units a step evaluate glibc's expf (the FMA variant, which
 * glibc picks on every CPU that has AVX-512) with its own table, polynomial and FMA sequence in
 * double precision, then the same float operations in the same order: the results equal the scalar
 * code's bit for bit (tests/test_nn.c sweeps every float). Arguments where glibc leaves its main
 * path (|x| >= 88, infinities, NaN) are handed to expf itself. Elsewhere, the scalar loop. */
#ifndef MBPO_SWISH_H
#define MBPO_SWISH_H

/** For rows x n values o (row-major) and biases b[n]: v = o + b, o = swish(v), and when g is not
 *  NULL g = swish'(v) (same layout as o). */
void swish_bias_forward(float* o, const float* b, int rows, int n, float* g);

/** e[i] = expf(x[i]) for n floats through the vector path when available (bit-equal to expf);
 *  for tests. */
void swish_expf(const float* x, float* e, long n);

/** 1 when the vector path is used on this machine. */
int swish_vectorized(void);

#endif
