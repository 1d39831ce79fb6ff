/* gemm.h: the row-major single-precision GEMMs of the CPU networks, one member at a time.
 *
 * The one place that names the GEMM library. Measured on the model's shapes (docs/results.md,
 * bench/bench_gemm.c): OpenBLAS, BLIS, libxsmm and oneDNN run these 256 x 200 x 200-sized products
 * within about 10 % of each other on one Zen 4 core, and OpenBLAS's sums are the ones every CPU
 * reference was recorded with, so it stays. Called from inside OpenMP regions, OpenBLAS's OpenMP build
 * runs each call on the calling thread; the per-element sums do not depend on how rows are split
 * between calls (each element is one dot product over k, in order), which the tests check bit for
 * bit against whole-batch calls. */
#ifndef MBPO_GEMM_H
#define MBPO_GEMM_H

/** C[M][N] = A[M][K] B[K][N] + beta C (row-major, leading dimensions lda, ldb, ldc). */
void gemm_nn(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc);

/** C[M][N] = A^T B + beta C with A stored [K][M] and B [K][N]. */
void gemm_tn(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc);

/** C[M][N] = A B^T + beta C with A stored [M][K] and B [N][K]. */
void gemm_nt(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc);

/** 1 when calls from inside an OpenMP region run on the calling thread (OpenBLAS's OpenMP or
 *  sequential build), so per-member tasks may call in parallel; 0 for its pthreads build, whose own
 *  thread pool would be entered from every task at once. */
int gemm_task_safe(void);

/** The library behind these calls, for benchmark records ("OpenBLAS 0.3.21 ..."). */
const char* gemm_library(void);

#endif
