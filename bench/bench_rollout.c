/* bench_rollout.c: branched model rollouts on the CPU backend (host/cpu/rollout.c, docs/algorithm.md §6), rows x
 * steps per second, and the same rollout in PyTorch (bench/peers/torch_rollout.py) on the same
 * thread count, as ratios.
 *
 *   bench_rollout [out.json] [repetitions]     (defaults: bench/results/rollout.json, 3)
 *
 * Setup (Hopper dims, the official sizes): obs 11, act 3; the default model (E 7, 4 x 200 swish,
 * 5 elites; untrained weights, normaliser fitted on the real pool); the default SAC policy (2 x 256);
 * a real pool of 50,000 synthetic Hopper-like rows (torso height ~1.25, small pitch); a model pool
 * of capacity B k. Termination: TERM_HALFCHEETAH (never terminates), so every step runs the full
 * batch and rows appended = B k exactly, on both sides (with an untrained model the Hopper rule would
 * end most rows after the first step and the two sides would do different amounts of work).
 *
 * Figures: rollout_run at B = 100,000 rows for k = 1 and k = 5, rows appended / seconds, best of the
 * repetitions (after one warm-up rollout). Parts of one step at B rows, each best of the
 * repetitions: start states (sample + gather), sac_act, elite picks, model_normalize, the picked-
 * member prediction (rollout_predict_picked: rows grouped by member, gathered, one
 * 1-member forward each, scattered back), sampling + termination, pool_add, compaction. Also one
 * model_predict of all 7 members on the same rows (what the official code computes per step).
 *
 * The peer does the official method (all 7 members evaluated and sampled, elite pick by gather)
 * and, second, the picked-member method; it is skipped, with the reason in the JSON, when
 * /usr/bin/python3 or torch is missing. Threads: OpenMP's and OpenBLAS's defaults; the peer gets
 * torch.set_num_threads(OpenMP's count). Without an OMP_WAIT_POLICY in the environment the program
 * re-runs itself with OMP_WAIT_POLICY=passive (the peer inherits it). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "config.h"
#include "env.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "rollout.h"
#include "sac.h"
#include "termination.h"
#include "bench_util.h"
#include "threads.h"

enum { OBS = 11, ACT = 3, ROWS = 100000, REAL = 50000, NK = 2 };
#define TERM TERM_HALFCHEETAH /* the termination rule (termination.h) of both sides */
static const int KS[NK] = {1, 5};








/* A number after "key": in a one-line JSON object, or -1. */


static float nrm(uint32_t c1, uint64_t n) { return rng_normal((rng_key){7, RNG_TEST}, 0, c1, n); }

/* ---- the parts of one rollout step (the steps of host/cpu/rollout.c, timed one by one) ---- */


enum { P_START, P_ACT, P_PICK, P_NORM, P_PRED, P_SAMPLE, P_APPEND, P_COMPACT, NPARTS };
static const char* PART_NAME[NPARTS] = {"start_states", "sac_act", "elite_pick", "normalize",
                                        "predict_picked", "sample_terminate", "pool_append", "compact"};

/* One step at B rows, each part timed; best[p] keeps the minimum seconds. */
static void time_parts(rollout_ctx* r, dyn_model* m, const sac* agent, const pool* real, pool* mp, int B,
                       rng_key key, uint32_t fit, double* best) {
  const int od = r->obs_dim, D = r->D;
  int ne;
  const int* el = model_elites(m, &ne);
  double t[NPARTS + 1];
  t[0] = now_s();
  pool_sample_indices(real, key, fit, 3, 0, B, r->idx);
  pool_gather(real, r->idx, B, r->S, NULL, NULL, NULL, NULL);
  t[1] = now_s();
  sac_act(agent, r->S, B, 0, key, fit, 0, r->A);
  t[2] = now_s();
  for (int b = 0; b < B; b++) r->pick[b] = el[rng_index(key, fit, 1, (uint64_t)b, (uint32_t)ne)];
  t[3] = now_s();
  model_normalize(m, B, r->S, r->A, r->X);
  t[4] = now_s();
  rollout_predict_picked(r, m, B);
  t[5] = now_s();
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; b++) {
    const float* mu = r->mean + (size_t)b * D;
    const float* lv = r->lv + (size_t)b * D;
    float y[ENV_MAX_OBS + 1];
    for (int d = 0; d < D; d++) y[d] = mu[d] + rng_normal(key, fit, 2, (uint64_t)b * D + d) * expf(0.5f * lv[d]);
    r->rew[b] = y[0];
    float* s2 = r->S2 + (size_t)b * od;
    const float* s = r->S + (size_t)b * od;
    for (int d = 0; d < od; d++) s2[d] = s[d] + y[1 + d];
    r->done[b] = (float)term_done(r->term_kind, s2, od);
  }
  t[6] = now_s();
  pool_add(mp, B, r->S, r->A, r->rew, r->S2, r->done);
  t[7] = now_s();
  int keep = 0;
  double rs = 0, ds = 0;
  for (int b = 0; b < B; b++) {
    rs += r->rew[b];
    ds += r->done[b];
    if (r->done[b] == 0.0f) {
      memcpy(r->S + (size_t)keep * od, r->S2 + (size_t)b * od, (size_t)od * sizeof(float));
      keep++;
    }
  }
  t[8] = now_s();
  if (!isfinite(rs + ds)) fprintf(stderr, "bench_rollout: non-finite rewards in the parts run\n");
  for (int p = 0; p < NPARTS; p++)
    if (t[p + 1] - t[p] < best[p]) best[p] = t[p + 1] - t[p];
}

/* ---- the peer ---- */

typedef struct peer {
  int ok;
  double all[NK], picked[NK];
  char line[4096], note[512];
} peer;

static peer run_peer(int threads, int reps) {
  peer r;
  memset(&r, 0, sizeof r);
  char args[256];
  int rc;
  snprintf(args, sizeof args, "--threads %d --rows %d --reps %d --term %s --real %d", threads, ROWS, reps,
           TERM == TERM_HOPPER ? "hopper" : "halfcheetah", REAL);
  if (bench_peer_run("torch_rollout.py", args, "  peer: ", r.line, sizeof r.line, &rc, r.note, sizeof r.note) != 0)
    return r;
  const char* sk = strstr(r.line, "\"skipped\": \"");
  if (sk) {
    snprintf(r.note, sizeof r.note, "%s", sk + 12);
    r.note[strcspn(r.note, "\"")] = 0;
    r.line[0] = 0;
    return r;
  }
  for (int i = 0; i < NK; i++) {
    char key[32];
    snprintf(key, sizeof key, "all_k%d", KS[i]);
    r.all[i] = json_num(r.line, key);
    snprintf(key, sizeof key, "picked_k%d", KS[i]);
    r.picked[i] = json_num(r.line, key);
  }
  r.ok = r.all[0] > 0 && r.all[NK - 1] > 0;
  if (!r.ok) {
    snprintf(r.note, sizeof r.note, "peer gave no figures (exit status %d)", rc);
    r.line[0] = 0;
  }
  return r;
}

int main(int argc, char** argv) {
  threads_init(argc, argv); /* passive OpenMP waiting (threads.h) */
  const char* out = argc > 1 ? argv[1] : "bench/results/rollout.json";
  const int reps = argc > 2 ? atoi(argv[2]) : 3;
  if (argc > 3 || reps < 1) {
    fprintf(stderr, "usage: bench_rollout [out.json] [repetitions >= 1]\n");
    return 2;
  }
  const bench_machine mach = bench_machine_read();
  const int threads = mach.threads;

  model_params mp;
  dyn_model* m = bench_default_model(OBS, ACT, &mp);
  sac_params sp = sac_params_default(ACT);
  sac* agent = sac_create(OBS, ACT, &sp, (rng_key){1, RNG_INIT});

  /* the real pool: Hopper-like rows (torso height ~1.25, pitch ~0, angles small, velocities ~1) */
  pool* real = pool_create(OBS, ACT, REAL);
  {
    float* o = xmalloc(sizeof(float) * REAL * OBS);
    float* a = xmalloc(sizeof(float) * REAL * ACT);
    float* rw = xmalloc(sizeof(float) * REAL);
    float* o2 = xmalloc(sizeof(float) * REAL * OBS);
    float* d = xmalloc(sizeof(float) * REAL);
    for (long i = 0; i < (long)REAL * OBS; i++) {
      int j = (int)(i % OBS);
      o[i] = (j == 0 ? 1.25f : 0.0f) + (j < 5 ? 0.05f : 1.0f) * nrm(0, (uint64_t)i);
      o2[i] = o[i] + 0.01f * nrm(1, (uint64_t)i);
    }
    for (long i = 0; i < (long)REAL * ACT; i++) a[i] = 2.0f * rng_uniform((rng_key){7, RNG_TEST}, 0, 2, (uint64_t)i) - 1.0f;
    for (long i = 0; i < REAL; i++) {
      rw[i] = 1.0f + 0.1f * nrm(3, (uint64_t)i);
      d[i] = 0.0f;
    }
    pool_add(real, REAL, o, a, rw, o2, d);
    model_fit_normalizer(m, REAL, o, a);
    free(o), free(a), free(rw), free(o2), free(d);
  }
  int ne;
  model_elites(m, &ne);
  printf("rollout: B %d rows, obs %d, act %d; model E %d, %d x %d swish, %d elites; policy %d x %d; real pool %d "
         "rows; termination %s; best of %d\n",
         ROWS, OBS, ACT, mp.ensemble, mp.layers, mp.hidden, ne, sp.layers, sp.hidden, REAL,
         TERM == TERM_HOPPER ? "hopper" : "halfcheetah (never)", reps);

  rollout_ctx* ro = rollout_create(m, ROWS, TERM);
  const rng_key key = {1, RNG_ROLLOUT};
  uint32_t fit = 0;
  double rate[NK], best_s[NK];
  long added[NK];
  int failed = 0;
  {
    pool* warm = pool_create(OBS, ACT, ROWS);
    rollout_stats st;
    failed |= rollout_run(ro, m, agent, real, warm, ROWS, 1, key, fit++, &st) != 0;
    pool_free(warm);
  }
  for (int i = 0; i < NK; i++) {
    pool* mpool = pool_create(OBS, ACT, (long)ROWS * KS[i]);
    best_s[i] = 1e30;
    added[i] = 0;
    for (int rep = 0; rep < reps; rep++) {
      rollout_stats st;
      double t0 = now_s();
      failed |= rollout_run(ro, m, agent, real, mpool, ROWS, KS[i], key, fit++, &st) != 0;
      double t = now_s() - t0;
      if (t < best_s[i]) best_s[i] = t, added[i] = st.rows_added;
    }
    rate[i] = (double)added[i] / best_s[i];
    printf("rollout_run k=%d: %ld rows appended, %.3f s -> %.0f rows*steps/s\n", KS[i], added[i], best_s[i], rate[i]);
    pool_free(mpool);
  }
  if (failed) printf("warning: a rollout predicted non-finite values\n");
  /* the roof: the same BLAS's sgemm here and now; a row's step is one policy forward and one
   * forward of the member it picked (the GEMMs only; rows that terminate early count as added) */
  const double roof = bench_sgemm_roof(mach.blas_threads, 5, mach.blas_threads);
  const double row_flops = bench_mlp_forward_flops(&agent->pi, 1) + bench_mlp_forward_flops(&m->net, 1) / m->net.E;
  printf("roof: sgemm 1024^3 %.1f GFLOP/s at %d threads; a row's step %.0f kFLOP: k=1 at %.1f GFLOP/s, %.0f %% of "
         "the roof\n",
         roof, mach.blas_threads, row_flops / 1e3, rate[0] * row_flops / 1e9,
         roof > 0 ? 100.0 * rate[0] * row_flops / 1e9 / roof : 0.0);

  /* parts of one step */
  double part[NPARTS];
  for (int p = 0; p < NPARTS; p++) part[p] = 1e30;
  {
    pool* mpool = pool_create(OBS, ACT, ROWS);
    for (int rep = 0; rep < reps; rep++) time_parts(ro, m, agent, real, mpool, ROWS, key, fit++, part);
    pool_free(mpool);
  }
  double part_sum = 0;
  printf("parts of one step at %d rows (ms, best of %d):", ROWS, reps);
  for (int p = 0; p < NPARTS; p++) {
    part_sum += part[p];
    printf(" %s %.1f%s", PART_NAME[p], 1e3 * part[p], p + 1 < NPARTS ? "," : "\n");
  }
  printf("  sum %.1f ms (rollout_run k=1: %.1f ms)\n", 1e3 * part_sum, 1e3 * best_s[0]);

  /* all 7 members, what the official code evaluates per step (one call) */
  double t_all;
  {
    const int E = mp.ensemble, D = OBS + 1;
    float* A = xmalloc(sizeof(float) * ROWS * ACT);
    float* mean = xmalloc(sizeof(float) * (size_t)E * ROWS * D);
    float* lv = xmalloc(sizeof(float) * (size_t)E * ROWS * D);
    sac_act(agent, ro->S, ROWS, 0, key, 0, 0, A); /* ro->S: the parts run's start states, compacted in place;
                                                     any finite rows will do */
    double t0 = now_s();
    model_predict(m, ro->S, A, ROWS, mean, lv);
    t_all = now_s() - t0;
    printf("model_predict, all %d members on %d rows (one call): %.1f ms\n", E, ROWS, 1e3 * t_all);
    free(A), free(mean), free(lv);
  }

  peer pr = run_peer(threads, reps);
  if (pr.ok) {
    for (int i = 0; i < NK; i++)
      printf("k=%d: C %.0f rows*steps/s; torch all members %.0f (C/torch %.2fx), torch picked member %.0f "
             "(C/torch %.2fx)\n",
             KS[i], rate[i], pr.all[i], rate[i] / pr.all[i], pr.picked[i],
             pr.picked[i] > 0 ? rate[i] / pr.picked[i] : 0.0);
  } else {
    printf("peer PyTorch: skipped (%s)\n", pr.note);
  }
  const double load1 = loadavg1();
  printf("load average (1 min) %.2f at the start, %.2f at the end: timings on a shared machine are noisy\n",
         mach.load0, load1);

  FILE* f = bench_json_open_cpu(out, "rollout", &mach, load1);
  if (!f) return 1;
  fprintf(f, ", \"torch\": %d},\n", threads);
  fprintf(f, "  \"dims\": {\"obs\": %d, \"act\": %d, \"ensemble\": %d, \"elites\": %d, \"model_hidden\": %d, "
             "\"model_layers\": %d, \"policy_hidden\": %d, \"policy_layers\": %d, \"rows\": %d, \"real_pool\": %d, "
             "\"termination\": \"%s\"},\n",
          OBS, ACT, mp.ensemble, ne, mp.hidden, mp.layers, sp.hidden, sp.layers, ROWS, REAL,
          TERM == TERM_HOPPER ? "hopper" : "halfcheetah (never terminates: full batch every step)");
  fprintf(f, "  \"method\": \"rollout_run of %d rows from a %d-row synthetic real pool into a model pool of "
             "capacity rows*k; rows*steps/s = rows appended / seconds, best of %d after one warm-up; untrained "
             "model, normaliser fitted on the real pool\",\n",
          ROWS, REAL, reps);
  fprintf(f, "  \"c\": {");
  for (int i = 0; i < NK; i++)
    fprintf(f, "\"k%d\": {\"rows_appended\": %ld, \"seconds\": %.4f, \"rows_steps_per_s\": %.1f}%s", KS[i], added[i],
            best_s[i], rate[i], i + 1 < NK ? ", " : "");
  fprintf(f, "},\n  \"c_step_parts_ms\": {");
  for (int p = 0; p < NPARTS; p++) fprintf(f, "\"%s\": %.3f, ", PART_NAME[p], 1e3 * part[p]);
  fprintf(f, "\"sum\": %.3f},\n", 1e3 * part_sum);
  fprintf(f, "  \"c_model_predict_all_members_ms\": %.3f,\n", 1e3 * t_all);
  fprintf(f, "  \"roof\": {\"sgemm\": \"1024^3 row-major, best of 5\", \"gflops\": %.2f, \"threads\": %d, "
             "\"row_step_kflop\": %.1f, \"k1_gflops\": %.2f, \"fraction\": %.3f},\n",
          roof, mach.blas_threads, row_flops / 1e3, rate[0] * row_flops / 1e9,
          roof > 0 ? rate[0] * row_flops / 1e9 / roof : 0.0);
  fprintf(f, "  \"nonfinite_predictions\": %s,\n", failed ? "true" : "false");
  if (pr.ok) {
    fprintf(f, "  \"peer_torch\": %s,\n  \"ratio_c_over_torch\": {", pr.line);
    for (int i = 0; i < NK; i++)
      fprintf(f, "\"k%d\": %.3f%s", KS[i], rate[i] / pr.all[i], i + 1 < NK ? ", " : "");
    fprintf(f, "},\n  \"ratio_c_over_torch_picked_member\": {");
    for (int i = 0; i < NK; i++)
      fprintf(f, "\"k%d\": %.3f%s", KS[i], pr.picked[i] > 0 ? rate[i] / pr.picked[i] : 0.0, i + 1 < NK ? ", " : "");
    fprintf(f, "}\n}\n");
  } else {
    fprintf(f, "  \"peer_torch\": {\"skipped\": ");
    json_str(f, pr.note);
    fprintf(f, "}\n}\n");
  }
  fclose(f);
  printf("wrote %s\n", out);
  rollout_free(ro);
  pool_free(real);
  sac_free(agent);
  model_free(m);
  return 0;
}
