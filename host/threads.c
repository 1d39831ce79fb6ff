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

/* The value of the first "key : value" line of /proc/cpuinfo whose key is key, or "?". */
static void cpuinfo(const char* key, char* out, int n) {
  snprintf(out, (size_t)n, "?");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  const size_t k = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, k) != 0 || (line[k] != ' ' && line[k] != '\t' && line[k] != ':')) continue;
    const char* v = strchr(line, ':');
    if (!v) continue;
    v += 1 + (v[1] == ' ');
    snprintf(out, (size_t)n, "%.*s", (int)strcspn(v, "\n"), v);
    break;
  }
  fclose(f);
}

void threads_describe(char* buf, int n) {
  char name[160], family[16], model[16];
  cpuinfo("model name", name, sizeof name);
  cpuinfo("cpu family", family, sizeof family);
  cpuinfo("model", model, sizeof model);
  if (openblas_get_corename && openblas_get_config)
    snprintf(buf, (size_t)n, "%s, kernels %s; CPU %s (family %s, model %s)", openblas_get_config(),
             openblas_get_corename(), name, family, model);
  else
    snprintf(buf, (size_t)n, "a BLAS other than OpenBLAS; CPU %s (family %s, model %s)", name, family, model);
}
