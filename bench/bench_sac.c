/* bench_sac.c: CPU SAC throughput (host/cpu/sac.c), and the same work in PyTorch for a ratio.
 *
 *   bench_sac [out.json] [seconds]     (defaults: bench/results/sac.json, 3)
 *
 * Measured at 1 thread and at all threads (OpenMP's count, OPENBLAS/OMP_NUM_THREADS honoured), each
 * C figure next to the peer's at the same thread count: on a small shared machine the 1-thread
 * figures are the steadier ones (other processes stall multi-threaded BLAS and OpenMP barriers).
 *
 * Hopper dimensions (obs 11, act 3), the official networks (2 x 256) and batch 256:
 *   sac_update   updates/s: 20 warm-up updates, then updates for `seconds` (8 batches in rotation)
 *   sac_act      rows/s of stochastic actions for 100,000 rows (a model rollout step), best of
 *                several calls after one warm-up call
 * The peer, bench/peers/torch_sac.py, does the same update (same losses, simultaneous, two Adam'd
 * critics, policy, log alpha, Polyak) and the same 100k-row acting in PyTorch on the CPU, with
 * torch.set_num_threads set to the same thread count as the C figure beside it. It is skipped, with the reason in the JSON, when python3 or torch is missing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "sac.h"
#include "bench_util.h"
#include "threads.h"

enum { OBS = 11, ACT = 3, BATCH = 256, NBATCH = 8, ACT_ROWS = 100000 };







/* A number after "key": in a one-line JSON object, or -1. */

/* One measurement at a thread count. */
typedef struct figures {
  int threads;
  double ups, act_ms;   /* C: updates/s, best ms per sac_act call on ACT_ROWS rows */
  long n_upd;
  char peer[1024];      /* the peer's JSON line, or "" */
  char peer_skip[512];  /* why the peer has no figures */
  double t_ups, t_rows; /* the peer's updates/s and acting rows/s (-1: none) */
  double roof, gflop;   /* sgemm GFLOP/s at these threads; GFLOP of one update's GEMMs */
} figures;

static float g_obs[NBATCH][BATCH * OBS], g_nxt[NBATCH][BATCH * OBS], g_act[NBATCH][BATCH * ACT];
static float g_rew[NBATCH][BATCH], g_done[NBATCH][BATCH];

static void run_peer(figures* fg, double seconds) {
  fg->t_ups = fg->t_rows = -1;
  if (access("bench/peers/torch_sac.py", R_OK) != 0) {
    snprintf(fg->peer_skip, sizeof fg->peer_skip, "bench/peers/torch_sac.py not found (run from the repo root)");
    return;
  }
  if (access("/usr/bin/python3", X_OK) != 0) {
    snprintf(fg->peer_skip, sizeof fg->peer_skip, "/usr/bin/python3 not found");
    return;
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/peers/torch_sac.py --threads %d --seconds %g", fg->threads,
           seconds);
  FILE* f = popen(cmd, "r");
  if (!f) {
    snprintf(fg->peer_skip, sizeof fg->peer_skip, "popen failed");
    return;
  }
  char line[1024];
  while (fgets(line, sizeof line, f))
    if (line[0] == '{') snprintf(fg->peer, sizeof fg->peer, "%s", line);
  int rc = pclose(f);
  fg->peer[strcspn(fg->peer, "\r\n")] = 0;
  fg->t_ups = json_num(fg->peer, "updates_per_s");
  fg->t_rows = json_num(fg->peer, "act_rows_per_s");
  if (fg->t_ups > 0) return;
  const char* why = strstr(fg->peer, "\"skipped\": \"");
  if (why) {
    snprintf(fg->peer_skip, sizeof fg->peer_skip, "%s", why + strlen("\"skipped\": \""));
    fg->peer_skip[strcspn(fg->peer_skip, "\"")] = 0;
  } else {
    snprintf(fg->peer_skip, sizeof fg->peer_skip, "peer gave no figures (exit status %d)", rc);
  }
  fg->peer[0] = 0;
}

static void measure(sac* s, figures* fg, double seconds, const float* aobs, float* aact) {
  threads_set(fg->threads);
  uint64_t u = 0;
  for (; u < 20; u++)
    sac_update(s, g_obs[u % NBATCH], g_act[u % NBATCH], g_rew[u % NBATCH], g_nxt[u % NBATCH], g_done[u % NBATCH],
               BATCH, u, NULL);
  long n = 0;
  double t0 = now_s(), dt = 0;
  while (dt < seconds) {
    for (int r = 0; r < 10; r++, u++, n++)
      sac_update(s, g_obs[u % NBATCH], g_act[u % NBATCH], g_rew[u % NBATCH], g_nxt[u % NBATCH],
                 g_done[u % NBATCH], BATCH, u, NULL);
    dt = now_s() - t0;
  }
  fg->n_upd = n;
  fg->ups = (double)n / dt;

  rng_key ak = {1, RNG_ROLLOUT};
  sac_act(s, aobs, ACT_ROWS, 0, ak, 0, 0, aact); /* warm-up */
  double best = 1e30, spent = 0;
  for (int calls = 0; spent < seconds / 2 || calls < 3; calls++) {
    double a0 = now_s();
    sac_act(s, aobs, ACT_ROWS, 0, ak, 0, (uint32_t)calls + 1, aact);
    double d = now_s() - a0;
    spent += d;
    if (d < best) best = d;
  }
  fg->act_ms = 1e3 * best;
  /* the roof at the same threads, and the update's GEMM FLOPs: policy forward on s' (target),
   * forward and backward on s (policy loss) = 4 policy forwards; target critics on s', critics
   * forward and backward on (s, a), critics forward on (s, a~) and their input gradient = 6 */
  fg->roof = bench_sgemm_roof(fg->threads, 5, fg->threads);
  fg->gflop = (4.0 * bench_mlp_forward_flops(&s->pi, BATCH) + 6.0 * bench_mlp_forward_flops(&s->q, BATCH)) / 1e9;
  run_peer(fg, seconds);

  printf("%d thread%s: sac_update %7.1f updates/s (%.2f ms), sac_act %.3g rows/s (%.1f ms / %d rows)\n",
         fg->threads, fg->threads > 1 ? "s" : " ", fg->ups, 1e3 / fg->ups, ACT_ROWS / (1e-3 * fg->act_ms),
         fg->act_ms, ACT_ROWS);
  printf("           roof: sgemm 1024^3 %.1f GFLOP/s; sac_update %.3f GFLOP: %.1f GFLOP/s, %.0f %% of the roof\n",
         fg->roof, fg->gflop, fg->gflop * fg->ups, fg->roof > 0 ? 100.0 * fg->gflop * fg->ups / fg->roof : 0.0);
  if (fg->t_ups > 0)
    printf("           torch     %7.1f updates/s,             %.3g rows/s   -> C/torch %.2fx updates, %.2fx acting\n",
           fg->t_ups, fg->t_rows, fg->ups / fg->t_ups, fg->t_rows > 0 ? ACT_ROWS / (1e-3 * fg->act_ms) / fg->t_rows : 0);
  else
    printf("           torch peer skipped: %s\n", fg->peer_skip);
}

int main(int argc, char** argv) {
  threads_init(argc, argv); /* passive OpenMP waiting (threads.h) */
  const char* out_path = argc > 1 ? argv[1] : "bench/results/sac.json";
  const double seconds = argc > 2 ? atof(argv[2]) : 3.0;
  int maxt = 1;
#ifdef _OPENMP
  maxt = omp_get_max_threads();
#endif
  if (openblas_get_num_threads() > maxt) maxt = openblas_get_num_threads();

  sac_params p = sac_params_default(ACT);
  p.batch = BATCH;
  sac* s = sac_create(OBS, ACT, &p, (rng_key){1, RNG_INIT});
  rng_key k = {3, RNG_TEST};
  for (int j = 0; j < NBATCH; j++) {
    for (int i = 0; i < BATCH * OBS; i++) g_obs[j][i] = rng_normal(k, (uint32_t)j, 0, (uint64_t)i);
    for (int i = 0; i < BATCH * OBS; i++) g_nxt[j][i] = rng_normal(k, (uint32_t)j, 1, (uint64_t)i);
    for (int i = 0; i < BATCH * ACT; i++) g_act[j][i] = 2 * rng_uniform(k, (uint32_t)j, 2, (uint64_t)i) - 1;
    for (int i = 0; i < BATCH; i++) g_rew[j][i] = rng_normal(k, (uint32_t)j, 3, (uint64_t)i);
    for (int i = 0; i < BATCH; i++) g_done[j][i] = rng_uniform(k, (uint32_t)j, 4, (uint64_t)i) < 0.05f;
  }
  float* aobs = nn_alloc((size_t)ACT_ROWS * OBS);
  float* aact = nn_alloc((size_t)ACT_ROWS * ACT);
  for (size_t i = 0; i < (size_t)ACT_ROWS * OBS; i++) aobs[i] = rng_normal(k, 100, 0, i);

  printf("SAC on the CPU: obs %d, act %d, hidden %d x %d, batch %d; %gs per figure\n", OBS, ACT, p.hidden,
         p.layers, BATCH, seconds);
  figures fg[2];
  memset(fg, 0, sizeof fg);
  int nf = maxt > 1 ? 2 : 1;
  fg[0].threads = 1;
  fg[1].threads = maxt;
  for (int i = 0; i < nf; i++) measure(s, &fg[i], seconds, aobs, aact);
  threads_set(maxt);

  char cpu[256], commit[64];
  cpu_model(cpu, sizeof cpu);
  git_commit(commit, sizeof commit);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  make_parent_dirs(out_path);
  FILE* f = fopen(out_path, "w");
  if (!f) {
    perror(out_path);
    return 1;
  }
  fprintf(f, "{\n  \"bench\": \"sac\",\n  \"backend\": \"cpu\",\n  \"commit\": \"%s\",\n", commit);
  fprintf(f, "  \"machine\": {\"cpu\": ");
  json_str(f, cpu);
  fprintf(f, ", \"cores\": %ld, \"loadavg1\": %.2f},\n", cores, loadavg1());
  fprintf(f, "  \"dims\": {\"obs\": %d, \"act\": %d, \"hidden\": %d, \"layers\": %d, \"batch\": %d, \"act_rows\": %d},\n",
          OBS, ACT, p.hidden, p.layers, BATCH, ACT_ROWS);
  fprintf(f, "  \"seconds\": %g,\n  \"runs\": [\n", seconds);
  for (int i = 0; i < nf; i++) {
    const figures* g = &fg[i];
    double rows = ACT_ROWS / (1e-3 * g->act_ms);
    fprintf(f, "    {\"threads\": %d, \"sac_update_per_s\": %.2f, \"ms_per_update\": %.4f, \"updates_timed\": %ld,\n",
            g->threads, g->ups, 1e3 / g->ups, g->n_upd);
    fprintf(f, "     \"sac_act_rows_per_s\": %.1f, \"sac_act_ms\": %.3f,\n", rows, g->act_ms);
    fprintf(f, "     \"roof\": {\"sgemm\": \"1024^3 row-major, best of 5\", \"gflops\": %.2f, \"update_gflop\": %.4f, "
               "\"update_gflops\": %.2f, \"fraction\": %.3f},\n",
            g->roof, g->gflop, g->gflop * g->ups, g->roof > 0 ? g->gflop * g->ups / g->roof : 0.0);
    if (g->t_ups > 0)
      fprintf(f, "     \"peer_torch\": %s,\n     \"ratio_update_c_over_torch\": %.3f, \"ratio_act_c_over_torch\": %.3f}",
              g->peer, g->ups / g->t_ups, g->t_rows > 0 ? rows / g->t_rows : 0.0);
    else {
      fprintf(f, "     \"peer_torch\": {\"skipped\": ");
      json_str(f, g->peer_skip);
      fprintf(f, "}}");
    }
    fprintf(f, "%s\n", i + 1 < nf ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  fclose(f);
  printf("wrote %s\n", out_path);
  free(aobs), free(aact);
  sac_free(s);
  return 0;
}
