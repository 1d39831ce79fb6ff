// device.cu: probing the CUDA device (backend.h).
#include <cuda_runtime.h>
#include <stdio.h>

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
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess) {
    snprintf(why, (size_t)n, "CUDA device 0 is not usable: %s", cudaGetErrorString(e));
    return 0;
  }
  int drv = 0;
  cudaDriverGetVersion(&drv);
  snprintf(why, (size_t)n, "%s (sm_%d%d, %.1f GiB, driver %d.%d)", p.name, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv / 1000, (drv % 1000) / 10);
  return 1;
}
