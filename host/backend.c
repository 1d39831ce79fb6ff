/* backend.c: backend selection (backend.h). */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#ifdef MBPO_CUDA
int backend_cuda_probe_impl(char* why, int n);
int backend_cuda_memory_impl(double* free_b, double* total_b);
void backend_cuda_select_impl(int index);
void backend_cuda_bind_thread_impl(void);
#endif

void backend_select_gpu(int index) {
#ifdef MBPO_CUDA
  backend_cuda_select_impl(index);
#else
  (void)index;
#endif
}

void backend_bind_thread(int kind) {
#ifdef MBPO_CUDA
  if (kind == BACKEND_CUDA) backend_cuda_bind_thread_impl();
#else
  (void)kind;
#endif
}

int backend_cuda_built(void) {
#ifdef MBPO_CUDA
  return 1;
#else
  return 0;
#endif
}

int backend_cuda_probe(char* why, int n) {
#ifdef MBPO_CUDA
  return backend_cuda_probe_impl(why, n);
#else
  mbpo_fmt(why, n, "this binary was built without CUDA (nvcc was not found or CUDA=0)");
  return 0;
#endif
}

int backend_gpu_memory(double* free_b, double* total_b) {
  const char* fake = getenv("MBPO_TEST_GPU_MEMORY");
  if (fake && *fake) {
    *free_b = *total_b = atof(fake) * 1e9;
    return *total_b > 0;
  }
#ifdef MBPO_CUDA
  return backend_cuda_memory_impl(free_b, total_b);
#else
  *free_b = *total_b = 0;
  return 0;
#endif
}

int backend_gpu_present(char* driver, int n) {
  const char* fake = getenv("MBPO_TEST_GPU_PRESENT");
  if (fake && *fake) {
    mbpo_fmt(driver, n, "%s", fake);
    return 1;
  }
  mbpo_fmt(driver, n, "unknown");
  /* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..." */
  FILE* f = fopen("/proc/driver/nvidia/version", "r");
  if (f) {
    char line[512];
    if (fgets(line, sizeof line, f)) {
      const char* k = strstr(line, "Kernel Module");
      char v[64];
      if (k && sscanf(k + strlen("Kernel Module"), " %63s", v) == 1) mbpo_fmt(driver, n, "%s", v);
    }
    fclose(f);
    return 1;
  }
  f = popen("nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null", "r");
  if (!f) return 0;
  char v[64] = "";
  int got = fgets(v, sizeof v, f) != NULL;
  int rc = pclose(f);
  if (!got || rc != 0) return 0;
  v[strcspn(v, "\r\n")] = 0;
  if (*v) mbpo_fmt(driver, n, "%s", v);
  return 1;
}

const char* backend_name(int kind) { return kind == BACKEND_CUDA ? "cuda" : "cpu"; }

int backend_resolve(int device_setting) {
  char why[512];
  if (device_setting == CFG_DEVICE_CPU) return BACKEND_CPU;
  int usable = backend_cuda_probe(why, sizeof why);
  if (device_setting == CFG_DEVICE_CUDA) {
    if (!usable) mbpo_fatal("device=cuda but %s", why);
    mbpo_note("GPU %s", why);
    return BACKEND_CUDA;
  }
  if (usable) {
    mbpo_note("device=auto: GPU %s; using the CUDA backend", why);
    return BACKEND_CUDA;
  }
  char driver[64];
  if (backend_cuda_built() && backend_gpu_present(driver, sizeof driver))
    mbpo_warn("device=auto: the GPU is not usable: %s; using the CPU backend", why);
  else
    mbpo_note("device=auto: %s; using the CPU backend", why);
  return BACKEND_CPU;
}
