/* dx_cuda.h: the CUDA side of dx.h (kernels/dx.cu), called by host/dev/dx.c in CUDA builds only.
 * Every function reports a CUDA error through mbpo_fatal with the call named. */
#ifndef MBPO_DX_CUDA_H
#define MBPO_DX_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Copy directions of dxc_copy. */
enum { DXC_H2D = 0, DXC_D2H = 1, DXC_D2D = 2 };

/** Create the CUDA state (device 0, a stream, a cuBLAS handle); NULL with the reason in err. */
void* dxc_create(char* err, int n);
void dxc_destroy(void* s);
void* dxc_alloc(void* s, size_t bytes);
void dxc_free(void* s, void* p);
void* dxc_alloc_pinned(void* s, size_t bytes);
void dxc_free_pinned(void* s, void* p);
void dxc_copy(void* s, void* dst, const void* src, size_t bytes, int dir);
void dxc_zero(void* s, void* dst, size_t bytes);
void dxc_sync(void* s);
void dxc_capture_begin(void* s);
/** Ends the capture and instantiates it; returns the cudaGraphExec_t. */
void* dxc_capture_end(void* s, long* nodes);
void dxc_graph_launch(void* s, void* exec);
void dxc_graph_free(void* exec);
/** Launch an element op through its launcher (checks the launch). */
void dxc_run(void* s, void (*launch)(void* stream, const void* args, long n), const void* args, long n,
             const char* name);
void dxc_gemm(void* s, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
              long sA, const float* B, int ldb, long sB, float beta, float* C, int ldc, long sC,
              int batch);
/** Two-level batched GEMM as one pointer-array call (dx_gemm2's non-collapsing case); 0 when the
 *  batch is too large for its pointer tables. */
int dxc_gemm2(void* s, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda, long soA,
              long siA, const float* B, int ldb, long soB, long siB, float beta, float* C, int ldc, long soC,
              long siC, int outer, int inner);
void dxc_reserve_sort(void* s, long n);
void dxc_reserve_select(void* s, long n);
void dxc_sort_pairs(void* s, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n);
void dxc_select_flagged(void* s, const int* in, const uint8_t* flag, int* out, int* count, long n);

#ifdef __cplusplus
}
#endif
#endif
