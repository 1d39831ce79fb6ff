/* softclamp.h: the soft log-variance bounds (model_soft_clamp) and the Gaussian NLL terms of
 * model_loss, a row of outputs at a time, vectorised with the same bits as the scalar expressions.
 *
 * With AVX-512 (checked at run time, swish_vectorized()) 8 units a step evaluate glibc's expf (the
 * vector expf of swish.c) and glibc 2.36's log1pf (its fdlibm-derived float code, operation for
 * operation), then the scalar code's float operations in its order: the results equal the scalar
 * code's bit for bit (tests/test_model.c sweeps log1pf over every float in [0, 1] and the clamp
 * and NLL over random and edge values). Lanes where log1pf leaves its main path (below 2^-29, an
 * exact power of two in 1 + x, NaN) are handed to log1pf itself. Elsewhere, the scalar loop. */
#ifndef MBPO_SOFTCLAMP_H
#define MBPO_SOFTCLAMP_H

/** lv[d] = model_soft_clamp(z[d], hi[d], lo[d]) for d < n. */
void softclamp_row(const float* z, const float* hi, const float* lo, int n, float* lv);

/** softclamp_row for `rows` rows: row r's z at z + r zs, its lv at lv + r ls. Blocks of 8 rows go
 *  through the vector stages side by side (where n <= 64), which a row at a time leaves waiting on
 *  the latency of one expf / log1pf chain. */
void softclamp_rows(const float* z, long zs, const float* hi, const float* lo, int n, long rows, float* lv,
                    long ls);

/** One row of n outputs of model_loss: mean mu[d], raw log-variance z[d], target t[d], bounds hi[d]
 *  and lo[d], s the loss's 1 / (B D). Writes lv[d] (the clamped log-variance) and sq[d] = (mu -
 *  t)² exp(-lv); with gmu not NULL also the gradients gmu[d] = dL/dmu, gz[d] = dL/dz and this
 *  row's shares of the bounds' ghi[d] = dL/dhi, glo[d] = dL/dlo. */
void nll_row(const float* mu, const float* z, const float* t, const float* hi, const float* lo, int n,
             float s, float* sq, float* lv, float* gmu, float* gz, float* ghi, float* glo);

/** The scalar twins of the two above (the reference the vector path is held to). */
void softclamp_row_scalar(const float* z, const float* hi, const float* lo, int n, float* lv);
void nll_row_scalar(const float* mu, const float* z, const float* t, const float* hi, const float* lo, int n,
                    float s, float* sq, float* lv, float* gmu, float* gz, float* ghi, float* glo);

/** y[i] = log1pf(x[i]) through the vector path where available (bit-equal to log1pf); for tests. */
void softclamp_log1pf(const float* x, float* y, long n);

#endif
