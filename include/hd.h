/* hd.h: MBPO_HD marks inline functions that compile for both the host (C) and the device (CUDA). */
#ifndef MBPO_HD_H
#define MBPO_HD_H
#ifdef __CUDACC__
#define MBPO_HD __host__ __device__ __forceinline__
#else
#define MBPO_HD inline
#endif
#endif
