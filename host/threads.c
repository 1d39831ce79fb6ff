/* threads.c: CPU thread set-up (threads.h). */
#include "threads.h"

#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <stdio.h>
#include <string.h>

void openblas_set_num_threads(int n);
/* OpenBLAS extensions (Debian's cblas.h is the reference one and does not declare them); weak, so
 * that a binary linked with another BLAS says so instead of failing to link. */
char* openblas_get_corename(void) __attribute__((weak));
char* openblas_get_config(void) __attribute__((weak));

void threads_init(int argc, char** argv) {
  (void)argc;
  if (getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv); /* on failure, go on with the default policy */
}

void threads_set(int n) {
  if (n <= 0) return;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(n);
}

void threads_describe(char* buf, int n) {
  char cpu[160] = "unknown CPU";
  FILE* f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char* v = strchr(line, ':');
    if (!v) continue;
    v += 1 + (v[1] == ' ');
    snprintf(cpu, sizeof cpu, "%.*s", (int)strcspn(v, "\n"), v);
    break;
  }
  if (f) fclose(f);
  if (openblas_get_corename && openblas_get_config)
    snprintf(buf, (size_t)n, "%s, kernels %s; CPU %s", openblas_get_config(), openblas_get_corename(), cpu);
  else
    snprintf(buf, (size_t)n, "a BLAS other than OpenBLAS; CPU %s", cpu);
}
