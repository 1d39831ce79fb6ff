/* backend.c: backend selection (backend.h). */
#include "backend.h"

#include "config.h"
#include "log.h"

#ifdef MBPO_CUDA
int backend_cuda_probe_impl(char* why, int n);
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

const char* backend_name(int kind) { return kind == BACKEND_CUDA ? "cuda" : "cpu"; }

int backend_resolve(int device_setting) {
  char why[256];
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
  mbpo_note("device=auto: %s; using the CPU backend", why);
  return BACKEND_CPU;
}
