/* gemm.c: the networks' GEMMs through OpenBLAS's CBLAS (gemm.h says why this library). */
#include "gemm.h"

#include <cblas.h>

char* openblas_get_config(void); /* OpenBLAS */
int openblas_get_parallel(void);  /* OpenBLAS: 0 sequential, 1 pthreads, 2 OpenMP */

void gemm_nn(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void gemm_tn(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void gemm_nt(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
             float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

int gemm_task_safe(void) { return openblas_get_parallel() != 1; }

const char* gemm_library(void) { return openblas_get_config(); }
