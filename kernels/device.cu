// device.cu: probing the CUDA device (backend.h).
#include <cuda_runtime.h>
#include <stdio.h>

#include "dx_cuda.h"

// The GPU this process uses: index modulo the device count (MPI ranks pass their local rank).
static int g_gpu_index = 0;

extern "C" void backend_cuda_select_impl(int index) { g_gpu_index = index < 0 ? 0 : index; }

// The CUDA ordinal in use (0 when none can be counted).
extern "C" int backend_cuda_ordinal_impl(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) return 0;
  return g_gpu_index % count;
}

// The CUDA runtime's current device is per host thread: a worker thread that drives a run's
// device context binds to the process's GPU first.
extern "C" void backend_cuda_bind_thread_impl(void) {
  cudaError_t e = cudaSetDevice(backend_cuda_ordinal_impl());
  if (e != cudaSuccess) dx_cuda_fail(nullptr, "cudaSetDevice (binding a worker thread)", cudaGetErrorString(e));
}

extern "C" int backend_gpu_present(char* driver, int n); // host/backend.c

#ifndef MBPO_CUDA_ARCHS
#define MBPO_CUDA_ARCHS "unknown"
#endif

// The driver a CUDA runtime of this major version needs at least (Linux; docs/cuda.md).
static const char* driver_needed(void) { return CUDART_VERSION >= 13000 ? "580" : CUDART_VERSION >= 12000 ? "525" : "450"; }

// Why CUDA cannot be used although a GPU is present (nvidia-smi or /proc/driver/nvidia): the driver
// found and the one this binary's runtime needs, so that an old driver is named, not a mystery.
static void explain(char* why, int n, cudaError_t e, const char* driver) {
  int drv = 0;
  cudaDriverGetVersion(&drv);
  cudaGetLastError();
  char sup[64] = "";
  if (drv > 0) snprintf(sup, sizeof sup, ", which supports CUDA up to %d.%d", drv / 1000, (drv % 1000) / 10);
  if (e == cudaErrorInsufficientDriver || (drv > 0 && drv < CUDART_VERSION))
    snprintf(why, (size_t)n,
             "a GPU is present (NVIDIA driver %s%s) but this binary's CUDA %d.%d runtime needs driver >= %s: "
             "update the NVIDIA driver, or build with an older CUDA toolkit (docs/cuda.md)",
             driver, sup, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, driver_needed());
  else
    snprintf(why, (size_t)n, "a GPU is present (NVIDIA driver %s%s) but CUDA cannot use it: %s", driver, sup,
             cudaGetErrorString(e));
}

__global__ void backend_probe_kernel(int* p) {
  if (p) *p = 1;
}

extern "C" int backend_cuda_probe_impl(char* why, int n) {
  int count = 0;
  char driver[64];
  const int present = backend_gpu_present(driver, sizeof driver);
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (present) explain(why, n, e, driver);
    else /* without a driver the runtime says "driver version is insufficient": say what is missing */
      snprintf(why, (size_t)n, "no NVIDIA GPU found (no /proc/driver/nvidia, no nvidia-smi; CUDA: %s)",
               cudaGetErrorString(e));
    return 0;
  }
  if (count == 0) {
    snprintf(why, (size_t)n, "no CUDA device found");
    return 0;
  }
  int ord = g_gpu_index % count;
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, ord)) != cudaSuccess || (e = cudaSetDevice(ord)) != cudaSuccess ||
      (e = cudaFree(0)) != cudaSuccess) {
    if (present) explain(why, n, e, driver);
    else snprintf(why, (size_t)n, "CUDA device %d is not usable: %s", ord, cudaGetErrorString(e));
    return 0;
  }
  // a GPU that none of the binary's architectures runs: say so here, not at the first kernel
  backend_probe_kernel<<<1, 1>>>(nullptr);
  if ((e = cudaGetLastError()) == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (e == cudaErrorNoKernelImageForDevice)
      snprintf(why, (size_t)n,
               "%s (device %d) is sm_%d%d and this binary holds GPU code for sm_%s only (no kernel image for its "
               "architecture): rebuild with `make CUDA_ARCH=%d%d`",
               p.name, ord, p.major, p.minor, MBPO_CUDA_ARCHS, p.major, p.minor);
    else
      snprintf(why, (size_t)n, "CUDA device %d (%s) cannot run a kernel: %s", ord, p.name, cudaGetErrorString(e));
    return 0;
  }
  int drv = 0;
  if ((e = cudaDriverGetVersion(&drv)) != cudaSuccess) {
    snprintf(why, (size_t)n, "cudaDriverGetVersion failed: %s", cudaGetErrorString(e));
    return 0;
  }
  snprintf(why, (size_t)n, "%s (device %d, sm_%d%d, %.1f GiB, driver %d.%d)", p.name, ord, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv / 1000, (drv % 1000) / 10);
  return 1;
}

extern "C" int backend_cuda_memory_impl(double* free_b, double* total_b) {
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
    cudaGetLastError();
    *free_b = *total_b = 0;
    return 0;
  }
  *free_b = (double)f;
  *total_b = (double)t;
  return 1;
}
