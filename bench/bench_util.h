/* bench_util.h: what every benchmark program shares: the machine and commit for the JSON, the
 * output folder, JSON helpers, the CPU benches' default model, and running a PyTorch peer; the
 * monotonic clock comes from clock.h. Header-only (the benches are single files). */
#ifndef MBPO_BENCH_UTIL_H
#define MBPO_BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "clock.h"
#include "config.h"
#include "model.h"
#include "nn.h"
#include "threads.h"
#include <cblas.h>

int openblas_get_num_threads(void); /* OpenBLAS */

/** The CPU model name from /proc/cpuinfo ("unknown" when absent). */
static inline void cpu_model(char* out, size_t n) {
  snprintf(out, n, "unknown");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "model name", 10) == 0) {
      const char* p = strchr(line, ':');
      if (p) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        snprintf(out, n, "%s", p);
        out[strcspn(out, "\n")] = 0;
      }
      break;
    }
  fclose(f);
}

/** The short commit hash of the checkout ("unknown" outside git). */
static inline void git_commit(char* out, size_t n) {
  snprintf(out, n, "unknown");
  FILE* p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
  if (!p) return;
  char buf[64];
  if (fgets(buf, sizeof buf, p)) {
    buf[strcspn(buf, "\r\n")] = 0;
    if (buf[0]) snprintf(out, n, "%s", buf);
  }
  pclose(p);
}

/** The 1-minute load average (-1 when unknown): benchmarks on a shared machine record it. */
static inline double loadavg1(void) {
  double l = -1;
  FILE* f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

/** Create the folders above path. */
static inline void make_parent_dirs(const char* path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char* p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) return;
      *p = '/';
    }
}

/** Write s as a JSON string. */
static inline void json_str(FILE* f, const char* s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

/** The number after "key": in a flat JSON text (a peer's answer), or -1. */
static inline double json_num(const char* s, const char* key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = strstr(s, pat);
  return p ? strtod(p + strlen(pat), NULL) : -1.0;
}

/** What a benchmark records about the machine it ran on. */
typedef struct bench_machine {
  char cpu[256], commit[64];
  long cores;
  double load0;      /* 1-minute load average at the start */
  int threads;       /* OpenMP threads */
  int blas_threads;  /* OpenBLAS threads */
} bench_machine;

/** Read the machine, commit, load and thread counts, and print them on one line. */
static inline bench_machine bench_machine_read(void) {
  bench_machine b;
  b.threads = 1;
#ifdef _OPENMP
  b.threads = omp_get_max_threads();
#endif
  b.blas_threads = openblas_get_num_threads();
  cpu_model(b.cpu, sizeof b.cpu);
  git_commit(b.commit, sizeof b.commit);
  b.cores = sysconf(_SC_NPROCESSORS_ONLN);
  b.load0 = loadavg1();
  const char* wp = getenv("OMP_WAIT_POLICY");
  printf("machine: %s, %ld cores, load %.2f; OpenMP threads %d (OMP_WAIT_POLICY %s), OpenBLAS threads %d; "
         "commit %s\n",
         b.cpu, b.cores, b.load0, b.threads, wp ? wp : "unset", b.blas_threads, b.commit);
  return b;
}

/** Create the JSON file out (and its folders) and write its common head: {"benchmark", "date",
 *  "commit", "machine": {cpu, cores, load at start and end}, ... The caller writes the rest and
 *  the closing brace. Returns NULL after printing why when the file cannot be created. */
static inline FILE* bench_json_open(const char* out, const char* name, const char* cpu,
                                    const char* commit, long cores, double load0, double load1) {
  make_parent_dirs(out);
  FILE* f = fopen(out, "w");
  if (!f) {
    fprintf(stderr, "bench_%s: cannot write %s: %s\n", name, out, strerror(errno));
    return NULL;
  }
  char date[32];
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  fprintf(f, "{\n  \"benchmark\": ");
  json_str(f, name);
  fprintf(f, ",\n  \"date\": \"%s\",\n  \"commit\": ", date);
  json_str(f, commit);
  fprintf(f, ",\n  \"machine\": {\"cpu\": ");
  json_str(f, cpu);
  fprintf(f, ", \"cores\": %ld, \"loadavg_1min_start\": %.2f, \"loadavg_1min_end\": %.2f},\n", cores,
          load0, load1);
  return f;
}

/** bench_json_open for a CPU benchmark on machine m (the load at its end now), then its
 *  "backend": "cpu" and the start of "threads" ({"openmp", "openblas", "omp_wait_policy"}: the
 *  caller may add entries, then closes it with "},\n"). NULL after printing why, as
 *  bench_json_open. */
static inline FILE* bench_json_open_cpu(const char* out, const char* name, const bench_machine* m,
                                        double load1) {
  FILE* f = bench_json_open(out, name, m->cpu, m->commit, m->cores, m->load0, load1);
  if (!f) return NULL;
  fprintf(f, "  \"backend\": \"cpu\",\n  \"threads\": {\"openmp\": %d, \"openblas\": %d, "
             "\"omp_wait_policy\": ",
          m->threads, m->blas_threads);
  json_str(f, getenv("OMP_WAIT_POLICY"));
  return f;
}

/** The model of the CPU benches: the default configuration's (its settings in *p) for obs + act
 *  inputs, untrained, key {1, 0}. */
static inline dyn_model* bench_default_model(int obs, int act, model_params* p) {
  mbpo_config c;
  cfg_defaults(&c);
  *p = model_params_from_config(&c);
  return model_create(obs, act, p, (rng_key){1, 0});
}

/** Run the peer bench/peers/<script> (below $MBPO_ROOT, else the current folder) as
 *  `/usr/bin/python3 SCRIPT ARGS 2>&1`. Its lines are echoed on stdout after prefix, all but its
 *  answer, the last line starting with '{', which goes to answer (n bytes, line end removed; ""
 *  when none). Returns 0 with pclose's status in *status, or -1 with why in note (nn bytes) when
 *  the script or python3 is missing or does not start. */
static inline int bench_peer_run(const char* script, const char* args, const char* prefix,
                                 char* answer, size_t n, int* status, char* note, size_t nn) {
  const char* root = getenv("MBPO_ROOT");
  char path[2048], cmd[4096];
  snprintf(path, sizeof path, "%s/bench/peers/%s", root ? root : ".", script);
  if (access(path, R_OK) != 0) {
    if (root) snprintf(note, nn, "bench/peers/%s not found below MBPO_ROOT %.120s", script, root);
    else snprintf(note, nn, "bench/peers/%s not found (run from the repo root or set MBPO_ROOT)", script);
    return -1;
  }
  if (access("/usr/bin/python3", X_OK) != 0) {
    snprintf(note, nn, "/usr/bin/python3 not found");
    return -1;
  }
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s 2>&1", path, args);
  fflush(stdout); /* what the bench printed comes before the peer's lines */
  FILE* p = popen(cmd, "r");
  if (!p) {
    snprintf(note, nn, "cannot run /usr/bin/python3");
    return -1;
  }
  char line[4096];
  answer[0] = 0;
  while (fgets(line, sizeof line, p)) {
    if (line[0] == '{') snprintf(answer, n, "%s", line);
    else printf("%s%s", prefix, line);
  }
  *status = pclose(p);
  answer[strcspn(answer, "\r\n")] = 0;
  return 0;
}

/** CPU seconds used by this process so far (all its threads). At 1 thread a figure timed with it
 *  leaves out the time other jobs on a shared machine hold the core, which wall time does not. */
static inline double bench_cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The sgemm roof at `threads` threads timed with clock (now_s or bench_cpu_s). */
static inline double bench_sgemm_roof_with(int threads, int rounds, int restore, double (*clock)(void)) {
  enum { N = 1024 };
  float* a = (float*)malloc(sizeof(float) * N * N);
  float* b = (float*)malloc(sizeof(float) * N * N);
  float* c = (float*)malloc(sizeof(float) * N * N);
  double best = 0;
  if (a && b && c) {
    for (long i = 0; i < (long)N * N; i++) a[i] = b[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    threads_set(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    for (int r = 0; r < rounds; r++) {
      double t0 = clock();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
      double t = clock() - t0;
      if (t > 0 && 2.0 * N * N * N / t / 1e9 > best) best = 2.0 * N * N * N / t / 1e9;
    }
    threads_set(restore);
  }
  free(a), free(b), free(c);
  return best;
}

/** The roof a benchmark's figures are held against: the same BLAS's sgemm on one large square
 *  GEMM (n = 1024, 2.1 GFLOP a call) at `threads` threads (OpenBLAS and OpenMP), in GFLOP/s, best
 *  of `rounds` calls after a warm-up, in wall time (0 when out of memory). The thread counts are
 *  set back to restore afterwards. */
static inline double bench_sgemm_roof(int threads, int rounds, int restore) {
  return bench_sgemm_roof_with(threads, rounds, restore, now_s);
}

/** bench_sgemm_roof at 1 thread timed in CPU seconds (bench_cpu_s): the roof of 1-thread figures
 *  timed the same way. Thread counts are set back to restore afterwards. */
static inline double bench_sgemm_roof_cpu(int rounds, int restore) {
  return bench_sgemm_roof_with(1, rounds, restore, bench_cpu_s);
}

/** FLOPs of a forward pass of an MLP ensemble on B rows per member: 2 B in out per layer and
 *  member (the GEMMs; element work such as bias and activation is left out). */
static inline double bench_mlp_forward_flops(const nn_mlp* net, int B) {
  double f = 0;
  for (int l = 0; l < net->nlayers; l++) f += 2.0 * B * net->dims[l] * net->dims[l + 1];
  return net->E * f;
}

/** FLOPs of one minibatch step (forward and backward): the backward is two more GEMMs of each
 *  layer's size (input and weight gradients). */
static inline double bench_mlp_step_flops(const nn_mlp* net, int B) { return 3.0 * bench_mlp_forward_flops(net, B); }

/** malloc that exits on failure. */
static inline void* xmalloc(size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  return p;
}

#endif
