/* gemm.c: the networks' GEMMs through OpenBLAS's CBLAS (gemm.h says why this library). */
#include "gemm.h"

#include <cblas.h>

char* openblas_get_config(void); /* OpenBLAS */

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

const char* gemm_library(void) { return openblas_get_config(); }
