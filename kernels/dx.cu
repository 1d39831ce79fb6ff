// dx.cu: the CUDA side of device execution (dx.h, dx_cuda.h): one stream, cuBLAS strided-batched
// GEMMs (row-major calls mapped onto column-major cuBLAS), CUB radix sort and stream compaction,
// CUDA graphs by stream capture.
#include <cstdio>
#include <cstring>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>

#include "dx_cuda.h"

extern "C" void mbpo_fatal(const char* fmt, ...);

#define CK(call)                                                                        \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) mbpo_fatal("CUDA: %s failed: %s", #call, cudaGetErrorString(e_)); \
  } while (0)
#define CKB(call)                                                                       \
  do {                                                                                  \
    cublasStatus_t e_ = (call);                                                         \
    if (e_ != CUBLAS_STATUS_SUCCESS) mbpo_fatal("cuBLAS: %s failed: status %d", #call, (int)e_); \
  } while (0)

struct dxc_state {
  cudaStream_t stream;
  cublasHandle_t blas;
  void* sort_tmp;
  size_t sort_tmp_bytes;
  void* select_tmp;
  size_t select_tmp_bytes;
  void** ptrs;   // [3][DXC_PTR_CAP]: the pointer tables of dxc_gemm2, rewritten by each call
};

// Largest batch of one pointer-array GEMM (dxc_gemm2): runs x members.
#define DXC_PTR_CAP 4096

extern "C" int backend_cuda_ordinal_impl(void); // kernels/device.cu

extern "C" void* dxc_create(char* err, int n) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    snprintf(err, (size_t)n, "no usable CUDA device: %s",
             e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return nullptr;
  }
  int ord = backend_cuda_ordinal_impl();
  if ((e = cudaSetDevice(ord)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess) {
    snprintf(err, (size_t)n, "CUDA device %d is not usable: %s", ord, cudaGetErrorString(e));
    return nullptr;
  }
  dxc_state* s = new dxc_state();
  CK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
  if (cublasCreate(&s->blas) != CUBLAS_STATUS_SUCCESS) {
    snprintf(err, (size_t)n, "cuBLAS could not be initialised");
    delete s;
    return nullptr;
  }
  CKB(cublasSetStream(s->blas, s->stream));
  CKB(cublasSetMathMode(s->blas, CUBLAS_PEDANTIC_MATH)); // float32, no TF32 (DESIGN.md)
  // cuBLAS needs its workspace set explicitly to be capturable without allocating
  void* ws = nullptr;
  size_t ws_bytes = 32u << 20;
  CK(cudaMalloc(&ws, ws_bytes));
  CKB(cublasSetWorkspace(s->blas, ws, ws_bytes));
  CK(cudaMalloc(&s->ptrs, 3 * DXC_PTR_CAP * sizeof(void*)));
  return s;
}

extern "C" void dxc_destroy(void* p) {
  dxc_state* s = (dxc_state*)p;
  cudaStreamSynchronize(s->stream);
  cublasDestroy(s->blas);
  cudaFree(s->sort_tmp);
  cudaFree(s->select_tmp);
  cudaFree(s->ptrs);
  cudaStreamDestroy(s->stream);
  delete s;
}

extern "C" void* dxc_alloc(void* p, size_t bytes) {
  dxc_state* s = (dxc_state*)p;
  void* d = nullptr;
  size_t b = bytes ? bytes : 4;
  cudaError_t e = cudaMalloc(&d, b);
  if (e != cudaSuccess) mbpo_fatal("CUDA: cannot allocate %zu bytes on the GPU: %s", bytes, cudaGetErrorString(e));
  CK(cudaMemsetAsync(d, 0, b, s->stream));
  CK(cudaStreamSynchronize(s->stream));
  return d;
}

extern "C" void dxc_free(void*, void* d) { cudaFree(d); }

extern "C" void* dxc_alloc_pinned(void*, size_t bytes) {
  void* h = nullptr;
  CK(cudaMallocHost(&h, bytes ? bytes : 4));
  memset(h, 0, bytes ? bytes : 4);
  return h;
}

extern "C" void dxc_free_pinned(void*, void* h) { cudaFreeHost(h); }

// Is host memory page-locked (registered with CUDA)?
static bool pinned(const void* h) {
  cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, h) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

extern "C" void dxc_copy(void* p, void* dst, const void* src, size_t bytes, int dir) {
  dxc_state* s = (dxc_state*)p;
  if (!bytes) return;
  cudaMemcpyKind k = dir == DXC_H2D ? cudaMemcpyHostToDevice : dir == DXC_D2H ? cudaMemcpyDeviceToHost
                                                                             : cudaMemcpyDeviceToDevice;
  cudaStreamCaptureStatus cs;
  CK(cudaStreamIsCapturing(s->stream, &cs));
  const void* host = dir == DXC_H2D ? src : dir == DXC_D2H ? (const void*)dst : nullptr;
  bool is_pinned = host && pinned(host);
  // a graph cannot copy from or to pageable memory: say so instead of CUDA's capture error
  if (cs != cudaStreamCaptureStatusNone && host && !is_pinned)
    mbpo_fatal("dx: a %s copy of %zu bytes inside a capture uses pageable host memory (use dx_alloc_pinned)",
               dir == DXC_H2D ? "host-to-device" : "device-to-host", bytes);
  CK(cudaMemcpyAsync(dst, src, bytes, k, s->stream));
  // a download into pageable memory is complete only after a sync; outside a capture the caller
  // expects the data (dx.h), so wait (pinned buffers are waited for with dx_sync instead)
  if (dir == DXC_D2H && cs == cudaStreamCaptureStatusNone && !is_pinned) CK(cudaStreamSynchronize(s->stream));
}

extern "C" void dxc_zero(void* p, void* dst, size_t bytes) {
  dxc_state* s = (dxc_state*)p;
  if (bytes) CK(cudaMemsetAsync(dst, 0, bytes, s->stream));
}

extern "C" void dxc_sync(void* p) {
  dxc_state* s = (dxc_state*)p;
  CK(cudaStreamSynchronize(s->stream));
  CK(cudaGetLastError());
}

extern "C" void dxc_capture_begin(void* p) {
  dxc_state* s = (dxc_state*)p;
  CK(cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal));
}

extern "C" void* dxc_capture_end(void* p, long* nodes) {
  dxc_state* s = (dxc_state*)p;
  cudaGraph_t g;
  CK(cudaStreamEndCapture(s->stream, &g));
  size_t n = 0;
  CK(cudaGraphGetNodes(g, NULL, &n));
  *nodes = (long)n;
  cudaGraphExec_t x;
  CK(cudaGraphInstantiate(&x, g, 0));
  CK(cudaGraphDestroy(g));
  return (void*)x;
}

extern "C" void dxc_graph_launch(void* p, void* x) {
  dxc_state* s = (dxc_state*)p;
  CK(cudaGraphLaunch((cudaGraphExec_t)x, s->stream));
}

extern "C" void dxc_graph_free(void* x) {
  if (x) cudaGraphExecDestroy((cudaGraphExec_t)x);
}

extern "C" void dxc_run(void* p, void (*launch)(void*, const void*, long), const void* args, long n,
                        const char* name) {
  dxc_state* s = (dxc_state*)p;
  launch((void*)s->stream, args, n);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) mbpo_fatal("CUDA: kernel %s (%ld threads) failed to launch: %s", name, n, cudaGetErrorString(e));
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
extern "C" void dxc_gemm(void* p, int ta, int tb, int M, int N, int K, float alpha, const float* A,
                         int lda, long sA, const float* B, int ldb, long sB, float beta, float* C,
                         int ldc, long sC, int batch) {
  dxc_state* s = (dxc_state*)p;
  CKB(cublasSgemmStridedBatched(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                N, M, K, &alpha, B, ldb, (long long)sB, A, lda, (long long)sA, &beta, C,
                                ldc, (long long)sC, batch));
}

// The operands of batch entry i = o inner + e: base + o outer stride + e inner stride.
__global__ void dxc_gemm_ptrs(const float* A, long soA, long siA, const float* B, long soB, long siB, float* C,
                              long soC, long siC, int inner, int n, const float** pa, const float** pb,
                              float** pc) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const long o = i / inner, e = i % inner;
  pa[i] = A + o * soA + e * siA;
  pb[i] = B + o * soB + e * siB;
  pc[i] = C + o * soC + e * siC;
}

// One pointer-array batched GEMM over outer x inner matrices whose two strides do not collapse into
// one: a small kernel writes the three pointer tables (stream order keeps the next call from
// overwriting them early, in a graph too), then cublasSgemmBatched. 0 when the batch exceeds the
// tables (the caller falls back to strided calls).
extern "C" int dxc_gemm2(void* p, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda,
                         long soA, long siA, const float* B, int ldb, long soB, long siB, float beta, float* C,
                         int ldc, long soC, long siC, int outer, int inner) {
  dxc_state* s = (dxc_state*)p;
  const long n = (long)outer * inner;
  if (n > DXC_PTR_CAP) return 0;
  const float** pa = (const float**)s->ptrs;
  const float** pb = pa + DXC_PTR_CAP;
  float** pc = (float**)(pb + DXC_PTR_CAP);
  dxc_gemm_ptrs<<<(unsigned)((n + 127) / 128), 128, 0, s->stream>>>(A, soA, siA, B, soB, siB, C, soC, siC, inner,
                                                                     (int)n, pa, pb, pc);
  CK(cudaGetLastError());
  CKB(cublasSgemmBatched(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                         pb, ldb, pa, lda, &beta, pc, ldc, (int)n));
  return 1;
}

extern "C" void dxc_reserve_sort(void* p, long n) {
  dxc_state* s = (dxc_state*)p;
  size_t bytes = 0;
  CK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint64_t*)nullptr, (uint64_t*)nullptr,
                                     (const int*)nullptr, (int*)nullptr, (int)n, 0, 64, s->stream));
  if (bytes > s->sort_tmp_bytes) {
    CK(cudaStreamSynchronize(s->stream));
    cudaFree(s->sort_tmp);
    CK(cudaMalloc(&s->sort_tmp, bytes));
    s->sort_tmp_bytes = bytes;
  }
}

extern "C" void dxc_reserve_select(void* p, long n) {
  dxc_state* s = (dxc_state*)p;
  size_t bytes = 0;
  CK(cub::DeviceSelect::Flagged(nullptr, bytes, (const int*)nullptr, (const uint8_t*)nullptr,
                                (int*)nullptr, (int*)nullptr, (int)n, s->stream));
  if (bytes > s->select_tmp_bytes) {
    CK(cudaStreamSynchronize(s->stream));
    cudaFree(s->select_tmp);
    CK(cudaMalloc(&s->select_tmp, bytes));
    s->select_tmp_bytes = bytes;
  }
}

extern "C" void dxc_sort_pairs(void* p, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n) {
  dxc_state* s = (dxc_state*)p;
  size_t bytes = s->sort_tmp_bytes;
  CK(cub::DeviceRadixSort::SortPairs(s->sort_tmp, bytes, ki, ko, vi, vo, (int)n, 0, 64, s->stream));
}

extern "C" void dxc_select_flagged(void* p, const int* in, const uint8_t* flag, int* out, int* count, long n) {
  dxc_state* s = (dxc_state*)p;
  if (n <= 0) {
    CK(cudaMemsetAsync(count, 0, sizeof(int), s->stream));
    return;
  }
  size_t bytes = s->select_tmp_bytes;
  CK(cub::DeviceSelect::Flagged(s->select_tmp, bytes, in, flag, out, count, (int)n, s->stream));
}
