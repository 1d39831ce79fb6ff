/* bench_population.c: end-to-end wall time of Hopper populations: P runs in
 * one `$MBPO_BIN train hopper ... sweep.seed=0,...,P-1` process, against P = 1 measured in the same
 * benchmark run (P runs one after the other would take P x time(1)).
 *
 *   bench_population [out.json]          (default bench/results/population.json)
 *
 * Cases (each population in a fresh temp run_dir, checkpoint.every=0, under `timeout`):
 *   cpu   device=cpu on a reduced Hopper config (CPU_ARGS below with BENCH_POP_CPU_STEPS env steps
 *         after exploration, default 200, 0 = skip), small enough for a 2-core machine: P = 1 and 2 with
 *         threads=1 (one CPU thread per run, so that P = 2 fits the 2 cores and compares like for
 *         like), and P = 1 with threads=0 (all cores) to show what one run gets from the whole machine.
 *   cuda  device=cuda on the full Hopper preset with BENCH_POP_GPU_STEPS env steps after the 5,000
 *         exploration steps (default 6000, 0 = skip), P in BENCH_POP_GPU_P (default 1,2,4,8,16),
 *         threads=0 (the cores shared out among the runs' host threads). Without a usable GPU
 *         (backend_cuda_probe) a skip record with the reason. A population that fails or times out
 *         (BENCH_POP_TIMEOUT seconds, default 1200) is recorded with the reason and the larger P are
 *         not run.
 * Figures per population: wall seconds of the process (start-up, exploration, the population's
 * summary included: what a user waits for), env steps per run (progress.csv's last row), seconds per
 * 1000 env steps per run (wall / env steps, and the last epoch's epoch_time_s alone: the steady
 * state without start-up and exploration), aggregate env steps per second (all runs), ratio
 * time(P) / time(1) and the speed-up over P sequential runs, P x time(1) / time(P). The goal
 * (one H100: P = 8 in at most 2x the time of P = 1) is checked in the JSON. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "bench_util.h"

enum { MAX_P = 64, MAX_CASES = 16 };

/* The reduced CPU config (steps, epoch_length and model.train_freq are added from BENCH_POP_CPU_STEPS). */
#define CPU_ARGS "init_steps=1000 rollout.batch=10000 model.max_epochs=5 checkpoint.every=0"
#define GPU_ARGS "checkpoint.every=0"

/* One run of a population: its last progress.csv row. */
typedef struct run_fig {
  int ok;
  double env_steps, total_steps, wall, epoch_time, epoch_steps, eval_mean;
} run_fig;

/* One population. */
typedef struct pop_case {
  const char* backend; /* "cpu" or "cuda" */
  int p, threads;      /* runs; the threads setting */
  int at_once, per_run; /* from mbpo's "population of" line (P = 1: computed) */
  char cmd[4096], note[1024];
  int ran, ok, status;
  double wall, load0, load1;
  run_fig run[MAX_P];
  double env_steps, s_per_1000, s_per_1000_epoch, agg_per_s; /* means over runs / totals */
  int peer;           /* index of the P = 1 case this one is compared with (itself for that case; -1: none) */
} pop_case;

static long env_long(const char* name, long def) {
  const char* v = getenv(name);
  return v && *v ? atol(v) : def;
}

/* Column name's value in the last data row of a CSV file, from the header and row read by caller. */
static double csv_col(char* head, const char* last, const char* name) {
  char h[8192];
  snprintf(h, sizeof h, "%s", head);
  int col = -1, i = 0;
  char* save = NULL;
  for (char* tok = strtok_r(h, ",\r\n", &save); tok; tok = strtok_r(NULL, ",\r\n", &save), i++)
    if (strcmp(tok, name) == 0) col = i;
  if (col < 0) return NAN;
  const char* p = last;
  for (i = 0; i < col && p; i++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  return p ? strtod(p, NULL) : NAN;
}

/* The last row of progress.csv (and the env steps of the row before, for the last epoch's length). */
static run_fig read_progress(const char* path) {
  run_fig r;
  memset(&r, 0, sizeof r);
  FILE* f = fopen(path, "r");
  if (!f) return r;
  static char head[8192], line[8192], last[8192], prev[8192];
  last[0] = prev[0] = 0;
  if (!fgets(head, sizeof head, f)) {
    fclose(f);
    return r;
  }
  while (fgets(line, sizeof line, f))
    if (line[0] >= '0' && line[0] <= '9') memcpy(prev, last, sizeof prev), memcpy(last, line, sizeof last);
  fclose(f);
  if (!last[0]) return r;
  r.env_steps = csv_col(head, last, "env_steps");
  r.total_steps = csv_col(head, last, "total_env_steps");
  r.wall = csv_col(head, last, "wall_time_s");
  r.epoch_time = csv_col(head, last, "epoch_time_s");
  r.eval_mean = csv_col(head, last, "eval_return_mean");
  r.epoch_steps = r.env_steps - (prev[0] ? csv_col(head, prev, "env_steps") : 0);
  r.ok = isfinite(r.env_steps) && r.env_steps > 0 && isfinite(r.wall) && isfinite(r.epoch_time) && r.epoch_steps > 0;
  return r;
}

/* The last non-empty line of a log file, for a failure's reason. */
static void last_line(const char* path, char* out, size_t n) {
  out[0] = 0;
  FILE* f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (line[0] != '\n') snprintf(out, n, "%s", line);
  fclose(f);
  out[strcspn(out, "\r\n")] = 0;
}

/* "population of P runs: A at a time, T thread(s) each" from mbpo's log; 0 when absent. */
static void read_layout(const char* path, pop_case* c) {
  FILE* f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    const char* p = strstr(line, "population of ");
    int n, a, t;
    if (p && sscanf(p, "population of %d runs: %d at a time, %d thread", &n, &a, &t) == 3) c->at_once = a, c->per_run = t;
  }
  fclose(f);
}

/* Run one population of c->p runs with the extra arguments args; fill c. timeout in seconds. */
static void run_case(pop_case* c, const char* bin, const char* args, long timeout) {
  char dir[] = "/tmp/bench_pop_XXXXXX";
  c->ran = 1;
  if (!mkdtemp(dir)) {
    snprintf(c->note, sizeof c->note, "mkdtemp: %s", strerror(errno));
    return;
  }
  char seeds[4 * MAX_P] = "", log[600];
  for (int i = 0; i < c->p; i++) snprintf(seeds + strlen(seeds), sizeof seeds - strlen(seeds), "%s%d", i ? "," : "", i);
  snprintf(log, sizeof log, "%s/train.log", dir);
  snprintf(c->cmd, sizeof c->cmd, "%s train hopper device=%s threads=%d %s tag=bench sweep.seed=%s run_dir=<temp dir>",
           "$MBPO_BIN",
           c->backend, c->threads, args, seeds);
  char sh[8192];
  snprintf(sh, sizeof sh, "timeout %ld '%s' train hopper device=%s threads=%d %s tag=bench sweep.seed=%s run_dir='%s' >'%s' 2>&1",
           timeout, bin, c->backend, c->threads, args, seeds, dir, log);
  printf("%s P = %2d, threads=%d: %s\n", c->backend, c->p, c->threads, c->cmd);
  fflush(stdout);
  c->load0 = loadavg1();
  double t0 = now_s();
  int rc = system(sh);
  c->wall = now_s() - t0;
  c->load1 = loadavg1();
  c->status = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
  if (c->p == 1) c->at_once = 1, c->per_run = c->threads > 0 ? c->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  else read_layout(log, c);
  int good = 0;
  double steps = 0, per = 0, per_epoch = 0;
  for (int i = 0; i < c->p; i++) {
    char csv[700];
    snprintf(csv, sizeof csv, "%s/hopper-bench-s%d/progress.csv", dir, i);
    c->run[i] = read_progress(csv);
    const run_fig* r = &c->run[i];
    if (!r->ok) continue;
    good++;
    steps += r->env_steps;
    per += 1000.0 * c->wall / r->env_steps;
    per_epoch += 1000.0 * r->epoch_time / r->epoch_steps;
  }
  c->ok = c->status == 0 && good == c->p;
  if (good) {
    c->env_steps = steps / good, c->s_per_1000 = per / good, c->s_per_1000_epoch = per_epoch / good;
    c->agg_per_s = steps / c->wall;
  }
  if (c->status != 0) {
    char why[512];
    last_line(log, why, sizeof why);
    snprintf(c->note, sizeof c->note, "mbpo train exited with %d%s: %s", c->status,
             c->status == 124 ? " (timeout)" : "", why);
  } else if (good != c->p) {
    snprintf(c->note, sizeof c->note, "%d of %d runs have no complete progress.csv row", c->p - good, c->p);
  }
  if (c->note[0]) printf("  %s\n", c->note);
  snprintf(sh, sizeof sh, "rm -rf '%s'", dir);
  if (system(sh) != 0) fprintf(stderr, "bench_population: could not remove %s\n", dir);
}

/* time(P) / time(1) against the case's peer; NAN without one. */
static double ratio(const pop_case* cs, const pop_case* c) {
  if (c->peer < 0 || !c->ok || !cs[c->peer].ok) return NAN;
  return c->wall / cs[c->peer].wall;
}

static void num(FILE* f, const char* key, double v, const char* fmt) {
  fprintf(f, "\"%s\": ", key);
  if (isfinite(v)) fprintf(f, fmt, v);
  else fprintf(f, "null");
}

static void case_json(FILE* f, const pop_case* cs, int i, const char* sep) {
  const pop_case* c = &cs[i];
  double r = ratio(cs, c);
  fprintf(f, "      {\"P\": %d, \"threads_setting\": %d, \"runs_at_once\": %d, \"threads_per_run\": %d, \"ran\": %s, "
             "\"ok\": %s, \"exit_status\": %d, ",
          c->p, c->threads, c->at_once, c->per_run, c->ran ? "true" : "false", c->ok ? "true" : "false", c->status);
  num(f, "wall_s", c->wall, "%.2f"), fputs(", ", f);
  num(f, "env_steps_per_run", c->ok ? c->env_steps : NAN, "%.0f"), fputs(", ", f);
  num(f, "s_per_1000_env_steps_per_run", c->ok ? c->s_per_1000 : NAN, "%.3f"), fputs(", ", f);
  num(f, "s_per_1000_env_steps_last_epoch", c->ok ? c->s_per_1000_epoch : NAN, "%.3f"), fputs(", ", f);
  num(f, "aggregate_env_steps_per_s", c->ok ? c->agg_per_s : NAN, "%.3f"), fputs(", ", f);
  num(f, "ratio_time_p_over_time_1", r, "%.4f"), fputs(", ", f);
  num(f, "speedup_vs_p_sequential", c->p * (1.0 / r), "%.4f");
  fprintf(f, ", \"peer\": ");
  if (c->peer == i) fprintf(f, "\"itself (the P = 1 reference of this backend)\"");
  else if (c->peer >= 0) fprintf(f, "\"P = 1, threads=%d, this benchmark run\"", cs[c->peer].threads);
  else fprintf(f, "null");
  fprintf(f, ", \"loadavg_1min_start\": %.2f, \"loadavg_1min_end\": %.2f, \"command\": ", c->load0, c->load1);
  json_str(f, c->cmd);
  fprintf(f, ", \"note\": ");
  json_str(f, c->note);
  fprintf(f, ",\n       \"runs\": [");
  for (int j = 0; j < c->p; j++) {
    const run_fig* rr = &c->run[j];
    fprintf(f, "%s{\"seed\": %d, ", j ? ", " : "", j);
    if (rr->ok)
      fprintf(f, "\"env_steps\": %.0f, \"total_env_steps\": %.0f, \"wall_time_s\": %.2f, \"last_epoch_time_s\": %.2f, "
                 "\"eval_return_mean\": %.2f}",
              rr->env_steps, rr->total_steps, rr->wall, rr->epoch_time, rr->eval_mean);
    else
      fprintf(f, "\"missing\": true}");
  }
  fprintf(f, "]}%s\n", sep);
}

static void print_table(const pop_case* cs, int n) {
  printf("\n%-5s %3s %8s %8s %9s %10s %13s %12s %11s %10s\n", "", "P", "threads", "wall s", "steps/run",
         "s/1k/run", "s/1k last ep", "agg steps/s", "t(P)/t(1)", "P*t(1)/t(P)");
  for (int i = 0; i < n; i++) {
    const pop_case* c = &cs[i];
    if (!c->ran) continue;
    double r = ratio(cs, c);
    char th[16];
    snprintf(th, sizeof th, "%dx%d", c->at_once, c->per_run);
    if (!c->ok) {
      printf("%-5s %3d %8s %8.1f  failed: %.80s\n", c->backend, c->p, th, c->wall, c->note);
      continue;
    }
    char rs[32] = "          -", ss[32] = "         -";
    if (isfinite(r)) snprintf(rs, sizeof rs, "%11.3f", r), snprintf(ss, sizeof ss, "%10.3f", c->p / r);
    printf("%-5s %3d %8s %8.1f %9.0f %10.2f %13.2f %12.2f %s %s\n", c->backend, c->p, th, c->wall, c->env_steps,
           c->s_per_1000, c->s_per_1000_epoch, c->agg_per_s, rs, ss);
  }
  printf("(threads: runs stepped at once x CPU threads per run; s/1k: seconds per 1000 env steps per run, wall\n"
         " of the whole process / env steps, and the last epoch's epoch_time_s alone; t(1): P = 1 at threads=1 on\n"
         " the CPU, P = 1 on the GPU)\n\n");
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "bench/results/population.json";
  if (argc > 2) {
    fprintf(stderr, "usage: bench_population [out.json]\n");
    return 2;
  }
  const bench_machine mach = bench_machine_read();
  const char* bin = getenv("MBPO_BIN");
  if (!bin || !*bin) bin = "build/mbpo";
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "bench_population: %s is not executable (set MBPO_BIN or run through make bench)\n", bin);
    return 1;
  }
  const long timeout = env_long("BENCH_POP_TIMEOUT", 1200);
  const long cpu_steps = env_long("BENCH_POP_CPU_STEPS", 200), gpu_steps = env_long("BENCH_POP_GPU_STEPS", 6000);
  pop_case cs[MAX_CASES];
  memset(cs, 0, sizeof cs);
  int n = 0;

  /* ---- CPU ---- */
  char cpu_args[512] = "";
  if (cpu_steps > 0) {
    long el = cpu_steps >= 200 ? cpu_steps / 2 : cpu_steps; /* two epochs, a model fit at the start of each */
    snprintf(cpu_args, sizeof cpu_args, "steps=%ld epoch_length=%ld model.train_freq=%ld %s", cpu_steps, el, el,
             CPU_ARGS);
    const int ps[3] = {1, 2, 1}, th[3] = {1, 1, 0};
    for (int k = 0; k < 3; k++) {
      pop_case* c = &cs[n++];
      c->backend = "cpu", c->p = ps[k], c->threads = th[k], c->peer = 0; /* the first case, P = 1 at threads=1 */
      run_case(c, bin, cpu_args, timeout);
    }
  } else {
    printf("cpu: BENCH_POP_CPU_STEPS=0: not run\n");
  }

  /* ---- CUDA ---- */
  char gpu[512] = "", gpu_skip[512] = "", gpu_args[256] = "";
  int gpu_first = n;
  if (gpu_steps <= 0) {
    snprintf(gpu_skip, sizeof gpu_skip, "BENCH_POP_GPU_STEPS=0: not run");
  } else if (!backend_cuda_probe(gpu, sizeof gpu)) {
    snprintf(gpu_skip, sizeof gpu_skip, "%s", gpu);
    gpu[0] = 0;
  }
  if (gpu_skip[0]) {
    printf("cuda: skipped: %s\n", gpu_skip);
  } else {
    printf("GPU: %s\n", gpu);
    snprintf(gpu_args, sizeof gpu_args, "steps=%ld %s", gpu_steps, GPU_ARGS);
    const char* list = getenv("BENCH_POP_GPU_P");
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list && *list ? list : "1,2,4,8,16");
    int stop = 0;
    char* save = NULL;
    for (char* tok = strtok_r(buf, ",", &save); tok && n < MAX_CASES; tok = strtok_r(NULL, ",", &save)) {
      int p = atoi(tok);
      if (p < 1 || p > MAX_P) {
        fprintf(stderr, "bench_population: BENCH_POP_GPU_P: %s is not in 1..%d\n", tok, MAX_P);
        return 2;
      }
      pop_case* c = &cs[n++];
      c->backend = "cuda", c->p = p, c->threads = 0, c->peer = -1;
      if (stop) {
        snprintf(c->note, sizeof c->note, "not run: a smaller population failed or timed out");
        continue;
      }
      run_case(c, bin, gpu_args, timeout);
      stop = !c->ok;
    }
    for (int i = gpu_first; i < n; i++)
      if (cs[i].p == 1 && cs[i].ok) {
        for (int j = gpu_first; j < n; j++)
          cs[j].peer = i;
        break;
      }
  }
  print_table(cs, n);

  /* the goal: one H100, P = 8 in at most 2x the time of P = 1 */
  double goal_ratio = NAN;
  for (int i = gpu_first; i < n; i++)
    if (cs[i].p == 8) goal_ratio = ratio(cs, &cs[i]);
  const int h100 = strstr(gpu, "H100") != NULL;
  char goal_note[256];
  if (gpu_skip[0]) snprintf(goal_note, sizeof goal_note, "not measured: no GPU run (%.200s)", gpu_skip);
  else if (!isfinite(goal_ratio)) snprintf(goal_note, sizeof goal_note, "not measured: no P = 8 and P = 1 pair");
  else snprintf(goal_note, sizeof goal_note, "%s", h100 ? "measured on an H100" : "measured on a GPU that is not an H100");
  if (isfinite(goal_ratio))
    printf("goal (one H100: P = 8 in <= 2x the time of P = 1): %.3f x: %s%s\n", goal_ratio,
           goal_ratio <= 2 ? "met" : "NOT met", h100 ? "" : " (not an H100)");
  else
    printf("goal (one H100: P = 8 in <= 2x the time of P = 1): %s\n", goal_note);

  fflush(stdout);
  FILE* f = bench_json_open(out, "population", mach.cpu, mach.commit, mach.cores, mach.load0, loadavg1());
  if (!f) return 1;
  fprintf(f, "  \"binary\": ");
  json_str(f, bin);
  fprintf(f, ",\n  \"timeout_s\": %ld,\n  \"cpu\": ", timeout);
  if (cpu_steps > 0) {
    fprintf(f, "{\"task\": \"hopper\", \"config\": ");
    json_str(f, cpu_args);
    fprintf(f, ", \"config_note\": \"the hopper preset with these overrides (env steps after exploration, model "
               "fit capped at 5 epochs, 10,000 rollout rows) so that the CPU part fits a few minutes on 2 cores; "
               "G = 20 SAC updates per env step and the networks as in the preset\",\n    \"cases\": [\n");
    for (int i = 0; i < gpu_first; i++) case_json(f, cs, i, i + 1 < gpu_first ? "," : "");
    fprintf(f, "    ]},\n");
  } else {
    fprintf(f, "{\"skipped\": \"BENCH_POP_CPU_STEPS=0\"},\n");
  }
  fprintf(f, "  \"cuda\": ");
  if (gpu_skip[0]) {
    fprintf(f, "{\"skipped\": ");
    json_str(f, gpu_skip);
    fprintf(f, "},\n");
  } else {
    fprintf(f, "{\"gpu\": ");
    json_str(f, gpu);
    fprintf(f, ", \"task\": \"hopper\", \"config\": ");
    json_str(f, gpu_args);
    fprintf(f, ", \"config_note\": \"the full hopper preset (5,000 exploration steps, epoch 1000, model fit to "
               "convergence, 100,000 rollout rows); each run has its own device context and stream, driven by the "
               "population's host threads\",\n    \"cases\": [\n");
    for (int i = gpu_first; i < n; i++) case_json(f, cs, i, i + 1 < n ? "," : "");
    fprintf(f, "    ]},\n");
  }
  fprintf(f, "  \"goal\": {\"text\": \"on one H100, P = 8 runs in at most 2x the wall time of P = 1\", \"target\": 2, ");
  num(f, "measured", goal_ratio, "%.4f");
  fprintf(f, ", \"met\": %s, \"on_h100\": %s, \"note\": ", isfinite(goal_ratio) ? (goal_ratio <= 2 ? "true" : "false") : "null",
          h100 ? "true" : "false");
  json_str(f, goal_note);
  fprintf(f, "}\n}\n");
  fclose(f);
  printf("wrote %s\n", out);
  int bad = 0;
  for (int i = 0; i < n; i++) bad |= cs[i].ran && !cs[i].ok;
  return bad ? 1 : 0;
}
