/* dx_op.h: an element op written once for the host emulation and the GPU (dx.h).
 *
 * An op NAME is an argument struct (plain data: device pointers and scalars, identical in C and
 * C++) and a body
 *     MBPO_HD static void NAME_body(long i, const ARGS* a)
 * that does the work of index i and writes only what index i owns (the indices run in parallel).
 * Then, in the family's host C file,  DX_OP(NAME, ARGS)  defines the host runner (a loop, OpenMP
 * when long) and the op table entry `const dx_op dxop_NAME`; in the family's .cu file,
 * DX_CUDA_OP(NAME, ARGS)  defines the __global__ kernel (grid-stride loop over the same body) and
 * its launcher. Run it with  DX_RUN(ctx, NAME, args, n). */
#ifndef MBPO_DX_OP_H
#define MBPO_DX_OP_H

#include "dx.h"
#include "hd.h"

/** Host loops longer than this run OpenMP-parallel. */
#define DX_OMP_MIN 32768L

#ifdef MBPO_CUDA
#define DX_CUDA_REF_(name) name##_cuda_
#define DX_CUDA_DECL_(name) void name##_cuda_(void* stream, const void* args, long n);
#else
#define DX_CUDA_REF_(name) 0
#define DX_CUDA_DECL_(name)
#endif

/** Define the host runner and the op table entry dxop_NAME (host C file). */
#define DX_OP(name, args_t)                                                  \
  static void name##_host_(const void* a_, long n) {                         \
    const args_t* a = (const args_t*)a_;                                     \
    _Pragma("omp parallel for if (n > DX_OMP_MIN) schedule(static)")         \
    for (long i = 0; i < n; i++) name##_body(i, a);                          \
  }                                                                          \
  DX_CUDA_DECL_(name)                                                        \
  const dx_op dxop_##name = {#name, name##_host_, DX_CUDA_REF_(name)};

#ifdef __CUDACC__
/** Define the kernel and launcher of op NAME (.cu file). 256 threads per block, grid-stride. */
#define DX_CUDA_OP(name, args_t)                                                           \
  __global__ void name##_kernel_(args_t a, long n) {                                       \
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n;                      \
         i += (long)gridDim.x * blockDim.x)                                                \
      name##_body(i, &a);                                                                  \
  }                                                                                        \
  extern "C" void name##_cuda_(void* stream, const void* args, long n) {                   \
    long blocks = (n + 255) / 256;                                                         \
    if (blocks > 16384) blocks = 16384;                                                    \
    name##_kernel_<<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(*(const args_t*)args, n); \
  }
#endif

/** Run op NAME with argument struct args over n indices. */
#define DX_RUN(ctx, name, args, n) dx_run((ctx), &dxop_##name, &(args), sizeof(args), (long)(n))

#endif
