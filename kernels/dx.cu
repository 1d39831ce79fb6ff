// dx.cu: the CUDA side of device execution (dx.h, dx_cuda.h): one stream, cuBLAS strided-batched
// GEMMs (row-major calls mapped onto column-major cuBLAS), CUB radix sort and stream compaction,
// CUDA graphs by stream capture.
#include <cstdio>
#include <cstring>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cub/device/device_select.cuh>

#include "dx_cuda.h"

#include <climits>

// CK / CKB: every CUDA and cuBLAS call is checked, frees and destroys too; dx_cuda_fail (host/dev/dx.c)
// names the context's phase and the op being issued.
#define CK(s, call)                                                                        \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) dx_cuda_fail((s) ? (s)->owner : nullptr, #call, dxc_errtext(e_)); \
  } while (0)
#define CKB(s, call)                                                                       \
  do {                                                                                     \
    cublasStatus_t e_ = (call);                                                            \
    if (e_ != CUBLAS_STATUS_SUCCESS) {                                                     \
      char m_[96];                                                                         \
      snprintf(m_, sizeof m_, "cuBLAS status %d", (int)e_);                                \
      dx_cuda_fail((s) ? (s)->owner : nullptr, #call, m_);                                 \
    }                                                                                      \
  } while (0)

// The architectures this binary holds code for (the Makefile's CUDA_ARCH choice), for the message
// of a GPU that none of them runs on.
#ifndef MBPO_CUDA_ARCHS
#define MBPO_CUDA_ARCHS "unknown"
#endif

// The CUDA error's text; "no kernel image" gets the GPU's architecture and what the binary holds,
// as CUDA's own text does not say which (docs/cuda.md).
static const char* dxc_errtext(cudaError_t e) {
  static thread_local char buf[320];
  if (e == cudaErrorNoKernelImageForDevice) {
    int dev = 0, ma = 0, mi = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, dev);
    cudaGetLastError();
    snprintf(buf, sizeof buf,
             "%s: this GPU is sm_%d%d and the binary holds code for sm_%s only; rebuild with "
             "`make CUDA_ARCH=%d%d` (or CUDA_ARCH= for every current GPU)",
             cudaGetErrorString(e), ma, mi, MBPO_CUDA_ARCHS, ma, mi);
    return buf;
  }
  return cudaGetErrorString(e);
}

// One lane (dx.h): a stream with its own cuBLAS handle, workspace and pointer tables, so that GEMMs
// on different lanes may run at the same time without sharing scratch memory; its event is what
// other lanes wait on (dxc_wait).
struct dxc_lane_res {
  cudaStream_t stream;
  cublasHandle_t blas;
  void* blas_ws;
  size_t blas_ws_bytes;
  void** ptrs;
  cudaEvent_t ev;
};

struct dxc_state {
  void* owner;   // the dx_ctx, for error messages (dx_cuda_fail)
  cudaStream_t stream;   // the current lane's (dxc_lane)
  cublasHandle_t blas;   // the current lane's
  int lane;              // the current lane
  void** ptrs;           // the current lane's [3][DXC_PTR_CAP]: dxc_gemm2's pointer tables
  dxc_lane_res lanes[DXC_LANES];
  void* sort_tmp;
  size_t sort_tmp_bytes;
  void* select_tmp;
  size_t select_tmp_bytes;
};

// Largest batch of one pointer-array GEMM (dxc_gemm2): runs x members.
#define DXC_PTR_CAP 4096

extern "C" int backend_cuda_ordinal_impl(void); // kernels/device.cu

extern "C" void* dxc_create(void* owner, char* err, int n) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    snprintf(err, (size_t)n, "no usable CUDA device: %s", e != cudaSuccess ? dxc_errtext(e) : "none found");
    return nullptr;
  }
  int ord = backend_cuda_ordinal_impl();
  if ((e = cudaSetDevice(ord)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess) {
    snprintf(err, (size_t)n, "CUDA device %d is not usable: %s", ord, dxc_errtext(e));
    return nullptr;
  }
  dxc_state* s = new dxc_state();
  s->owner = owner;
  for (int l = 0; l < DXC_LANES; l++) {
    dxc_lane_res* r = &s->lanes[l];
    CK(s, cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking));
    cublasStatus_t b = cublasCreate(&r->blas);
    if (b != CUBLAS_STATUS_SUCCESS) {
      snprintf(err, (size_t)n, "cuBLAS could not be initialised (status %d)", (int)b);
      for (int k = 0; k < l; k++) {
        CKB(s, cublasDestroy(s->lanes[k].blas));
        CK(s, cudaFree(s->lanes[k].blas_ws));
        CK(s, cudaFree(s->lanes[k].ptrs));
        CK(s, cudaEventDestroy(s->lanes[k].ev));
        CK(s, cudaStreamDestroy(s->lanes[k].stream));
      }
      CK(s, cudaStreamDestroy(r->stream));
      delete s;
      return nullptr;
    }
    // one handle per lane: cublasSetStream would reset the workspace set below
    CKB(s, cublasSetStream(r->blas, r->stream));
    // float32 semantics (docs/design.md): the default math mode never uses TF32 for SGEMM (that needs
    // CUBLAS_TF32_TENSOR_OP_MATH), and reduced-precision reductions are disallowed explicitly. The
    // pedantic mode this replaces kept cuBLAS off some of its fp32 kernels and split-K choices for no
    // accuracy gain in fp32 (docs/cuda.md).
    CKB(s, cublasSetMathMode(r->blas, (cublasMath_t)(CUBLAS_DEFAULT_MATH |
                                                     CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    // cuBLAS needs its workspace set explicitly to be capturable without allocating; every lane gets
    // the same size, so that a GEMM picks the same algorithm on any lane
    size_t ws_bytes = 32u << 20;
    CK(s, cudaMalloc(&r->blas_ws, ws_bytes));
    CKB(s, cublasSetWorkspace(r->blas, r->blas_ws, ws_bytes));
    r->blas_ws_bytes = ws_bytes;
    CK(s, cudaMalloc(&r->ptrs, 3 * DXC_PTR_CAP * sizeof(void*)));
    CK(s, cudaEventCreateWithFlags(&r->ev, cudaEventDisableTiming));
  }
  dxc_lane(s, 0);
  dxc_lt_init(s); // kernels/dx_lt.cu
  return s;
}

extern "C" void* dxc_owner(void* p) { return ((dxc_state*)p)->owner; }

extern "C" void* dxc_lane_ws(void* p, void** ws, size_t* bytes) {
  dxc_state* s = (dxc_state*)p;
  *ws = s->lanes[s->lane].blas_ws;
  *bytes = s->lanes[s->lane].blas_ws_bytes;
  return (void*)s->stream;
}

extern "C" void dxc_lane(void* p, int l) {
  dxc_state* s = (dxc_state*)p;
  s->lane = l;
  s->stream = s->lanes[l].stream;
  s->blas = s->lanes[l].blas;
  s->ptrs = s->lanes[l].ptrs;
}

// The fork/join of stream capture: an event recorded on src, waited for on dst. Inside a capture
// this adds graph edges (and brings dst into the capture); outside it orders the streams.
extern "C" void dxc_wait(void* p, int dst, int src) {
  dxc_state* s = (dxc_state*)p;
  CK(s, cudaEventRecord(s->lanes[src].ev, s->lanes[src].stream));
  CK(s, cudaStreamWaitEvent(s->lanes[dst].stream, s->lanes[src].ev, 0));
}

extern "C" void dxc_destroy(void* p) {
  dxc_state* s = (dxc_state*)p;
  for (int l = 0; l < DXC_LANES; l++) CK(s, cudaStreamSynchronize(s->lanes[l].stream));
  for (int l = 0; l < DXC_LANES; l++) {
    dxc_lane_res* r = &s->lanes[l];
    CKB(s, cublasDestroy(r->blas));
    CK(s, cudaFree(r->blas_ws));
    CK(s, cudaFree(r->ptrs));
    CK(s, cudaEventDestroy(r->ev));
    CK(s, cudaStreamDestroy(r->stream));
  }
  CK(s, cudaFree(s->sort_tmp));
  CK(s, cudaFree(s->select_tmp));
  delete s;
}

extern "C" void* dxc_alloc(void* p, size_t bytes) {
  dxc_state* s = (dxc_state*)p;
  void* d = nullptr;
  size_t b = bytes ? bytes : 4;
  cudaError_t e = cudaMalloc(&d, b);
  if (e != cudaSuccess) {
    char m[400];
    snprintf(m, sizeof m, "cannot allocate %zu bytes on the GPU: %s", bytes, dxc_errtext(e));
    dx_cuda_fail(s->owner, "cudaMalloc", m);
  }
  CK(s, cudaMemsetAsync(d, 0, b, s->lanes[0].stream));
  CK(s, cudaStreamSynchronize(s->lanes[0].stream));
  return d;
}

extern "C" void dxc_free(void* p, void* d) {
  dxc_state* s = (dxc_state*)p;
  CK(s, cudaFree(d));
}

extern "C" void* dxc_alloc_pinned(void* p, size_t bytes) {
  dxc_state* s = (dxc_state*)p;
  void* h = nullptr;
  CK(s, cudaMallocHost(&h, bytes ? bytes : 4));
  memset(h, 0, bytes ? bytes : 4);
  return h;
}

extern "C" void dxc_free_pinned(void* p, void* h) {
  dxc_state* s = (dxc_state*)p;
  CK(s, cudaFreeHost(h));
}

// Is host memory page-locked (registered with CUDA)? (cudaPointerGetAttributes reports plain
// pageable memory as cudaMemoryTypeUnregistered; an error here only means "not CUDA's".)
extern "C" int dxc_is_pinned(const void* h) {
  cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, h) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return a.type == cudaMemoryTypeHost;
}

extern "C" void dxc_copy(void* p, void* dst, const void* src, size_t bytes, int dir) {
  dxc_state* s = (dxc_state*)p;
  if (!bytes) return;
  cudaMemcpyKind k = dir == DXC_H2D ? cudaMemcpyHostToDevice : dir == DXC_D2H ? cudaMemcpyDeviceToHost
                                                                             : cudaMemcpyDeviceToDevice;
  cudaStreamCaptureStatus cs;
  CK(s, cudaStreamIsCapturing(s->stream, &cs));
  const void* host = dir == DXC_H2D ? src : dir == DXC_D2H ? (const void*)dst : nullptr;
  bool is_pinned = host && dxc_is_pinned(host);
  // a graph cannot copy from or to pageable memory: say so instead of CUDA's capture error
  if (cs != cudaStreamCaptureStatusNone && host && !is_pinned) {
    char m[200];
    snprintf(m, sizeof m, "a %s copy of %zu bytes inside a capture uses pageable host memory (use dx_alloc_pinned)",
             dir == DXC_H2D ? "host-to-device" : "device-to-host", bytes);
    dx_cuda_fail(s->owner, "cudaMemcpyAsync", m);
  }
  CK(s, cudaMemcpyAsync(dst, src, bytes, k, s->stream));
  // a download into pageable memory is complete only after a sync; outside a capture the caller
  // expects the data (dx.h), so wait (pinned buffers are waited for with dx_sync instead)
  if (dir == DXC_D2H && cs == cudaStreamCaptureStatusNone && !is_pinned) CK(s, cudaStreamSynchronize(s->stream));
}

extern "C" void dxc_zero(void* p, void* dst, size_t bytes) {
  dxc_state* s = (dxc_state*)p;
  if (bytes) CK(s, cudaMemsetAsync(dst, 0, bytes, s->stream));
}

extern "C" int dxc_sync_check(void* p, char* err, int n) {
  dxc_state* s = (dxc_state*)p;
  cudaError_t e = cudaSuccess;
  for (int l = 0; l < DXC_LANES && e == cudaSuccess; l++) e = cudaStreamSynchronize(s->lanes[l].stream);
  const char* call = "cudaStreamSynchronize";
  if (e == cudaSuccess) {
    e = cudaGetLastError();
    call = "cudaGetLastError";
  }
  if (e == cudaSuccess) return 0;
  snprintf(err, (size_t)n, "%s (%s)", dxc_errtext(e), call);
  return 1;
}

extern "C" void dxc_capture_begin(void* p) {
  dxc_state* s = (dxc_state*)p;
  // on lane 0; the other lanes join the capture by waiting on it (dxc_wait)
  CK(s, cudaStreamBeginCapture(s->lanes[0].stream, cudaStreamCaptureModeThreadLocal));
}

extern "C" void* dxc_capture_end(void* p, long* nodes) {
  dxc_state* s = (dxc_state*)p;
  cudaGraph_t g;
  CK(s, cudaStreamEndCapture(s->lanes[0].stream, &g));
  size_t n = 0;
  CK(s, cudaGraphGetNodes(g, NULL, &n));
  *nodes = (long)n;
  cudaGraphExec_t x;
  CK(s, cudaGraphInstantiate(&x, g, 0));
  CK(s, cudaGraphDestroy(g));
  return (void*)x;
}

extern "C" void dxc_graph_launch(void* p, void* x) {
  dxc_state* s = (dxc_state*)p;
  CK(s, cudaGraphLaunch((cudaGraphExec_t)x, s->lanes[0].stream));
}

extern "C" void dxc_graph_free(void* p, void* x) {
  dxc_state* s = (dxc_state*)p;
  if (x) CK(s, cudaGraphExecDestroy((cudaGraphExec_t)x));
}

extern "C" void dxc_run(void* p, void (*launch)(void*, const void*, long), const void* args, long n,
                        const char* name) {
  dxc_state* s = (dxc_state*)p;
  launch((void*)s->stream, args, n);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    char call[96];
    snprintf(call, sizeof call, "launch of kernel %s", name);
    dx_cuda_fail(s->owner, call, dxc_errtext(e));
  }
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
extern "C" void dxc_gemm(void* p, int ta, int tb, int M, int N, int K, float alpha, const float* A,
                         int lda, long sA, const float* B, int ldb, long sB, float beta, float* C,
                         int ldc, long sC, int batch) {
  dxc_state* s = (dxc_state*)p;
  CKB(s, cublasSgemmStridedBatched(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
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
  CK(s, cudaGetLastError());
  CKB(s, cublasSgemmBatched(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                         pb, ldb, pa, lda, &beta, pc, ldc, (int)n));
  return 1;
}

// CUB takes its item counts as int: a larger count would wrap (dx.c refuses it before this, on both
// kinds; this is the last line of defence).
static void dxc_check_items(dxc_state* s, long n, const char* what) {
  if (n > INT_MAX) {
    char m[160];
    snprintf(m, sizeof m, "%ld items, more than CUB's limit of INT_MAX (%d)", n, INT_MAX);
    dx_cuda_fail(s->owner, what, m);
  }
}

extern "C" void dxc_reserve_sort(void* p, long n) {
  dxc_state* s = (dxc_state*)p;
  dxc_check_items(s, n, "cub::DeviceRadixSort::SortPairs");
  size_t bytes = 0;
  CK(s, cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint64_t*)nullptr, (uint64_t*)nullptr,
                                     (const int*)nullptr, (int*)nullptr, (int)n, 0, 64, s->stream));
  /* dxc_sort_segments shares the workspace: its need (an alternate key and value buffer of n) does
   * not depend on the segment count */
  size_t seg = 0;
  CK(s, cub::DeviceSegmentedRadixSort::SortPairs(nullptr, seg, (const uint64_t*)nullptr, (uint64_t*)nullptr,
                                              (const int*)nullptr, (int*)nullptr, (int)n, 1, (const int*)nullptr,
                                              (const int*)nullptr, 0, 64, s->stream));
  if (seg > bytes) bytes = seg;
  if (bytes > s->sort_tmp_bytes) {
    CK(s, cudaStreamSynchronize(s->stream));
    CK(s, cudaFree(s->sort_tmp));
    CK(s, cudaMalloc(&s->sort_tmp, bytes));
    s->sort_tmp_bytes = bytes;
  }
}

extern "C" void dxc_reserve_select(void* p, long n) {
  dxc_state* s = (dxc_state*)p;
  dxc_check_items(s, n, "cub::DeviceSelect::Flagged");
  size_t bytes = 0;
  CK(s, cub::DeviceSelect::Flagged(nullptr, bytes, (const int*)nullptr, (const uint8_t*)nullptr,
                                (int*)nullptr, (int*)nullptr, (int)n, s->stream));
  if (bytes > s->select_tmp_bytes) {
    CK(s, cudaStreamSynchronize(s->stream));
    CK(s, cudaFree(s->select_tmp));
    CK(s, cudaMalloc(&s->select_tmp, bytes));
    s->select_tmp_bytes = bytes;
  }
}

extern "C" void dxc_sort_pairs(void* p, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n) {
  dxc_state* s = (dxc_state*)p;
  dxc_check_items(s, n, "cub::DeviceRadixSort::SortPairs");
  size_t bytes = s->sort_tmp_bytes;
  CK(s, cub::DeviceRadixSort::SortPairs(s->sort_tmp, bytes, ki, ko, vi, vo, (int)n, 0, 64, s->stream));
}

extern "C" void dxc_sort_segments(void* p, const uint64_t* ki, uint64_t* ko, const int* vi, int* vo, long n, int nseg,
                                  const int* off) {
  dxc_state* s = (dxc_state*)p;
  dxc_check_items(s, n, "cub::DeviceSegmentedRadixSort::SortPairs");
  size_t bytes = s->sort_tmp_bytes;
  CK(s, cub::DeviceSegmentedRadixSort::SortPairs(s->sort_tmp, bytes, ki, ko, vi, vo, (int)n, nseg, off, off + 1, 0, 64,
                                              s->stream));
}

extern "C" void dxc_select_flagged(void* p, const int* in, const uint8_t* flag, int* out, int* count, long n) {
  dxc_state* s = (dxc_state*)p;
  if (n <= 0) {
    CK(s, cudaMemsetAsync(count, 0, sizeof(int), s->stream));
    return;
  }
  dxc_check_items(s, n, "cub::DeviceSelect::Flagged");
  size_t bytes = s->select_tmp_bytes;
  CK(s, cub::DeviceSelect::Flagged(s->select_tmp, bytes, in, flag, out, count, (int)n, s->stream));
}
