/* dx_cuda.h: the CUDA side of dx.h (kernels/dx.cu), called by host/dev/dx.c in CUDA builds only.
 * Every CUDA and cuBLAS call is checked; a failure goes to dx_cuda_fail (host/dev/dx.c), which
 * names the context's phase and the op being issued (dx_phase), then exits through mbpo_fatal. */
#ifndef MBPO_DX_CUDA_H
#define MBPO_DX_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Lanes of a context (dx.h's DX_LANES): one stream, cuBLAS handle, workspace and pointer tables
 *  each. */
#define DXC_LANES 4

/** Copy directions of dxc_copy. */
enum { DXC_H2D = 0, DXC_D2H = 1, DXC_D2D = 2 };

/** Report a failed CUDA/cuBLAS call of the context `owner` (a dx_ctx*; NULL outside one): `call`
 *  is the call, `err` the error text. Does not return. Defined in host/dev/dx.c. */
void dx_cuda_fail(void* owner, const char* call, const char* err);

/** Create the CUDA state (the selected device, a stream, a cuBLAS handle) for the context owner;
 *  NULL with the reason in err. */
void* dxc_create(void* owner, char* err, int n);
void dxc_destroy(void* s);
void* dxc_alloc(void* s, size_t bytes);
void dxc_free(void* s, void* p);
void* dxc_alloc_pinned(void* s, size_t bytes);
void dxc_free_pinned(void* s, void* p);
/** 1 when host memory [p, p + bytes) is page-locked (usable by a captured copy). */
int dxc_is_pinned(const void* p);
void dxc_copy(void* s, void* dst, const void* src, size_t bytes, int dir);
void dxc_zero(void* s, void* dst, size_t bytes);
/** Wait for every lane's stream; 0 when all went well, else 1 with the CUDA error in err (the caller
 *  reports it with its phase and op: dx_sync, MBPO_DX_SYNC=1). */
int dxc_sync_check(void* s, char* err, int n);
void dxc_capture_begin(void* s);
/** Ends the capture and instantiates it; returns the cudaGraphExec_t. */
void* dxc_capture_end(void* s, long* nodes);
void dxc_graph_launch(void* s, void* exec);
void dxc_graph_free(void* s, void* exec);
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
/** dx_gemm2_ep's fused GEMM (kernels/dx_lt.cu): one strided-batched cuBLASLt matmul with the
 *  epilogue ep_kind (dx.h's dx_ep_kind: relu(C + bias) into out) on the current lane; 1 when it
 *  ran, 0 when the caller must take the two steps (no plan: an unsupported shape, or no algorithm
 *  from the heuristic, logged once per shape). A plan (descriptors, layouts, the heuristic's
 *  algorithm) is made once per shape and lane at the first call (at capture) and reused; graph
 *  replay calls nothing here. Every cuBLASLt status is checked, naming the op and the shapes. */
int dxc_gemm_ep(void* s, int ta, int tb, int M, int N, int K, const float* A, int lda, long sA, const float* B,
                int ldb, long sB, float* C, int ldc, long sC, int batch, int ep_kind, const float* bias,
                long bias_stride, float* out, const char* name);
/** Create the process's cuBLASLt handle (once; at dxc_create, outside any capture). */
void dxc_lt_init(void* s);
/** The context (dx_ctx*) of a CUDA state, for dx_cuda_fail. */
void* dxc_owner(void* s);
/** The current lane's stream (returned) and its cuBLAS workspace and size (shared by dxc_gemm_ep:
 *  one stream orders their uses). */
void* dxc_lane_ws(void* s, void** ws, size_t* bytes);
/** Make lane l current: the following calls enqueue on its stream and cuBLAS handle. */
void dxc_lane(void* s, int l);
/** Lane dst waits for the work enqueued on lane src so far (an event; captured as graph edges). */
void dxc_wait(void* s, int dst, int src);
void dxc_reserve_sort(void* s, long n);
void dxc_reserve_select(void* s, long n);
void dxc_sort_pairs(void* s, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n);
void dxc_sort_segments(void* s, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n, int nseg,
                       const int* off);
void dxc_select_flagged(void* s, const int* in, const uint8_t* flag, int* out, int* count, long n);

#ifdef __cplusplus
}
#endif
#endif
