// device.cu: probing the CUDA device (backend.h).
#include <cuda_runtime.h>
#include <stdio.h>

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
extern "C" void backend_cuda_bind_thread_impl(void) { cudaSetDevice(backend_cuda_ordinal_impl()); }

extern "C" int backend_cuda_probe_impl(char* why, int n) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    snprintf(why, (size_t)n, "no usable CUDA device: %s", cudaGetErrorString(e));
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
    snprintf(why, (size_t)n, "CUDA device %d is not usable: %s", ord, cudaGetErrorString(e));
    return 0;
  }
  int drv = 0;
  cudaDriverGetVersion(&drv);
  snprintf(why, (size_t)n, "%s (device %d, sm_%d%d, %.1f GiB, driver %d.%d)", p.name, ord, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv / 1000, (drv % 1000) / 10);
  return 1;
}
