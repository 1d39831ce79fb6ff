/* bench_model.c: the dynamics model on the CPU backend: minibatch Adam steps per second, a short
 * fit, and model_predict rows per second; the same work in PyTorch (bench/peers/torch_model.py) on
 * the same thread count, as ratios.
 *
 *   bench_model [out.json] [seconds]     (defaults: bench/results/model.json, 2)
 *
 * Model: the default configuration with Hopper dims (obs 11 + act 3 -> 4 x 200 swish -> 24 outputs,
 * E = 7, batch 256 per member). Steps: model_step (forward, loss with soft bounds, backward, one
 * Adam over all parameters) on a fixed batch, for `seconds` per round, best of 3 rounds. Fit:
 * model_train on 10,000 synthetic rows capped at 2 epochs (split, bootstrap, gathers, shuffles,
 * holdout scoring included), steps per second of the whole fit; the first Hopper fit's epochs (a fresh
 * model on 5,001 rows, 20 epochs, ms per epoch). Predict: model_predict of 100,000
 * rows (all 7 members, mean and soft-clamped log-variance), best of 3 calls.
 * Steps and prediction are measured at 1 thread and at all cores, each beside the sgemm roof at
 * that count, as the GEMM FLOP rate's fraction of it (forward 2 B in out per layer and member,
 * a step 3 times that); at 1 thread also timed in process CPU seconds against a roof timed the same
 * way, which a shared machine's load distorts far less. Beside each, the same GEMMs alone
 * (nnf_gemms_only): their fraction of the roof is the ceiling on this BLAS, and the share of the
 * op's time they take says what the element work costs. The fit and the peer run at all cores
 * (OpenMP's and OpenBLAS's defaults); the peer gets the same count. Without an
 * OMP_WAIT_POLICY in the environment the program re-runs itself with OMP_WAIT_POLICY=passive (the
 * peer inherits it): spinning OpenMP threads starve OpenBLAS's threads. */
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

#include "config.h"
#include "model.h"
#include "bench_util.h"
#include "gemm.h"
#include "nn_fused.h"
#include "swish.h"
#include "threads.h"

enum { OBS = 11, ACT = 3, PRED_ROWS = 100000, FIT_ROWS = 10000, FIRST_ROWS = 5001, FIRST_EPOCHS = 20 };

static float nrm(uint32_t c1, uint64_t n) { return rng_normal((rng_key){99, RNG_TEST}, 0, c1, n); }


/* ---- the GEMMs alone ------------------------------------------------------------------------ */

/* A step's or a prediction's GEMMs without the rest (nnf_gemms_only: the calls, shapes and split
 * over tasks of nn_fused.c, with no bias, activation, loss, Adam or copies). Their FLOP rate is the
 * ceiling of the whole op's on this BLAS; the op's rate over it is what the element work leaves.
 * Seconds of `rows` rows in chunks of n per member at `threads` threads, the best mean of `rounds`
 * rounds of `reps` passes after one to warm up (timed as model_step and model_predict are, by clock:
 * now_s or bench_cpu_s): with bwd, one step's (rows = n); without, a prediction's forward. */
static double gemm_alone_s(const dyn_model* m, int threads, int rows, int n, int bwd, int rounds, int reps,
                           double (*clock)(void)) {
  const nn_mlp* net = &m->net;
  const size_t E = (size_t)net->E, in = (size_t)net->dims[0], out = (size_t)net->dims[net->nlayers];
  nn_cache* c = nn_cache_alloc(net, n);
  float *x = nn_alloc(E * n * in), *y = nn_alloc(E * n * out), *dy = nn_alloc(E * n * out);
  float* g = nn_alloc(net->nparams);
  for (size_t i = 0; i < E * n * in; i++) x[i] = 0.01f * (float)(i % 97) - 0.48f;
  for (size_t i = 0; i < E * n * out; i++) dy[i] = 0.001f * (float)(i % 89) - 0.04f;
  threads_set(threads);
  double best = 0;
  for (int round = 0; round <= rounds; round++) {
    const double t0 = clock();
    for (int rep = 0; rep < reps; rep++)
      for (int r0 = 0; r0 < rows; r0 += n)
        nnf_gemms_only(net, m->params, rows - r0 < n ? rows - r0 : n, x, c, y, dy, bwd ? g : NULL);
    const double t = (clock() - t0) / reps;
    if (round > 0 && (best == 0 || t < best)) best = t;
  }
  nn_cache_free(c);
  free(x), free(y), free(dy), free(g);
  return best;
}

/* The peer's figures: one JSON object on the last line of the script's output. */
typedef struct peer {
  int ok;
  double steps_per_s, predict_rows_per_s;
  char version[64], note[256];
} peer;


static peer run_peer(int threads, double seconds) {
  peer r;
  memset(&r, 0, sizeof r);
  char args[128], last[4096];
  int rc;
  snprintf(args, sizeof args, "--threads %d --seconds %g", threads, seconds);
  if (bench_peer_run("torch_model.py", args, "", last, sizeof last, &rc, r.note, sizeof r.note) != 0)
    return r;
  if (!last[0]) {
    snprintf(r.note, sizeof r.note, "peer gave no figures (exit %d)", rc);
    return r;
  }
  r.steps_per_s = json_num(last, "steps_per_s");
  r.predict_rows_per_s = json_num(last, "predict_rows_per_s");
  const char* v = strstr(last, "\"torch\": \"");
  if (v) {
    v += 10;
    size_t n = strcspn(v, "\"");
    if (n >= sizeof r.version) n = sizeof r.version - 1;
    memcpy(r.version, v, n);
  }
  const char* sk = strstr(last, "\"skipped\": \"");
  if (sk) {
    sk += 12;
    size_t n = strcspn(sk, "\"");
    if (n >= sizeof r.note) n = sizeof r.note - 1;
    memcpy(r.note, sk, n);
    return r;
  }
  r.ok = r.steps_per_s > 0 && r.predict_rows_per_s > 0;
  return r;
}

/* One thread count's figures: steps per second, predicted rows per second and the roof. */
typedef struct at_threads {
  double steps, pred, roof;
  double cpu_steps, cpu_pred, cpu_roof; /* at 1 thread: the same timed in CPU seconds */
  double gemm_step_s, gemm_pred_s;      /* the GEMMs alone: a step's, a prediction's (seconds) */
  double cpu_gemm_step_s, cpu_gemm_pred_s; /* at 1 thread: the same in CPU seconds */
} at_threads;

/* model_step on the fixed batch (x, y) for `seconds` per round, best of 3 rounds; model_predict of
 * PRED_ROWS rows, best of 3 calls; then the sgemm roof, all at `threads` threads. */
static at_threads measure(dyn_model* m, int threads, double seconds, const float* x, const float* y,
                          const float* obs, const float* act, float* mean, float* lv, double step_gflop,
                          double pred_gflop) {
  at_threads r = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const int B = m->p.batch;
  threads_set(threads);
  for (int i = 0; i < 5; i++) model_step(m, B, x, y);
  for (int round = 0; round < 3; round++) {
    long n = 0;
    double t0 = now_s(), t;
    do {
      model_step(m, B, x, y);
      n++;
      t = now_s() - t0;
    } while (t < seconds);
    if (n / t > r.steps) r.steps = n / t;
  }
  if (threads == 1)
    for (int round = 0; round < 3; round++) {
      double c0 = bench_cpu_s();
      for (int i = 0; i < 10; i++) model_step(m, B, x, y);
      double c = bench_cpu_s() - c0;
      if (10 / c > r.cpu_steps) r.cpu_steps = 10 / c;
    }
  for (int round = 0; round < 3; round++) {
    double t0 = now_s();
    double c0 = bench_cpu_s();
    model_predict(m, obs, act, PRED_ROWS, mean, lv);
    double t = now_s() - t0, c = bench_cpu_s() - c0;
    if (PRED_ROWS / t > r.pred) r.pred = PRED_ROWS / t;
    if (threads == 1 && PRED_ROWS / c > r.cpu_pred) r.cpu_pred = PRED_ROWS / c;
  }
  if (threads == 1) {
    r.cpu_roof = bench_sgemm_roof_cpu(20, 1);
    printf("1 thread in CPU time: model_step %.2f ms, %.0f %% of the roof; model_predict %.0f rows/s, %.0f %% of "
           "the roof; roof %.1f GFLOP/s\n",
           1e3 / r.cpu_steps, 100.0 * step_gflop * r.cpu_steps / r.cpu_roof, r.cpu_pred,
           100.0 * pred_gflop * r.cpu_pred / PRED_ROWS / r.cpu_roof, r.cpu_roof);
  }
  r.gemm_step_s = gemm_alone_s(m, threads, B, B, 1, 8, 25, now_s);
  r.gemm_pred_s = gemm_alone_s(m, threads, PRED_ROWS, m->chunk, 0, 3, 1, now_s);
  if (threads == 1) {
    r.cpu_gemm_step_s = gemm_alone_s(m, 1, B, B, 1, 8, 25, bench_cpu_s);
    r.cpu_gemm_pred_s = gemm_alone_s(m, 1, PRED_ROWS, m->chunk, 0, 3, 1, bench_cpu_s);
  }
  r.roof = bench_sgemm_roof(threads, 20, threads);
  if (threads == 1)
    printf("1 thread in CPU time, the GEMMs alone: a step's %.2f ms, %.0f %% of the roof (%.0f %% of the step's "
           "time); a prediction's %.0f ms, %.0f %% of the roof (%.0f %% of its time)\n",
           1e3 * r.cpu_gemm_step_s, 100.0 * step_gflop / r.cpu_gemm_step_s / r.cpu_roof,
           100.0 * r.cpu_gemm_step_s * r.cpu_steps, 1e3 * r.cpu_gemm_pred_s,
           100.0 * pred_gflop / r.cpu_gemm_pred_s / r.cpu_roof, 100.0 * r.cpu_gemm_pred_s * r.cpu_pred / PRED_ROWS);
  printf("%d thread%s, the GEMMs alone: a step's %.2f ms, %.0f %% of the roof (the step's time: %.0f %% in them); "
         "a prediction's %.0f ms, %.0f %% of the roof (%.0f %% of its time)\n",
         threads, threads > 1 ? "s" : "", 1e3 * r.gemm_step_s, 100.0 * step_gflop / r.gemm_step_s / r.roof,
         100.0 * r.gemm_step_s * r.steps, 1e3 * r.gemm_pred_s, 100.0 * pred_gflop / r.gemm_pred_s / r.roof,
         100.0 * r.gemm_pred_s * r.pred / PRED_ROWS);
  printf("%d thread%s: model_step %.1f steps/s (%.2f ms/step), %.1f GFLOP/s, %.0f %% of the roof; model_predict "
         "(%d rows x %d members, chunk %d) %.0f rows/s, %.0f %% of the roof; roof: sgemm 1024^3 %.1f GFLOP/s\n",
         threads, threads > 1 ? "s" : "", r.steps, 1e3 / r.steps, step_gflop * r.steps,
         r.roof > 0 ? 100.0 * step_gflop * r.steps / r.roof : 0.0, PRED_ROWS, m->p.ensemble, m->chunk, r.pred,
         r.roof > 0 ? 100.0 * pred_gflop * r.pred / PRED_ROWS / r.roof : 0.0, r.roof);
  return r;
}

int main(int argc, char** argv) {
  threads_init(argc, argv); /* passive OpenMP waiting (threads.h) */
  const char* out = argc > 1 ? argv[1] : "bench/results/model.json";
  const double seconds = argc > 2 ? atof(argv[2]) : 2.0;
  if (argc > 3 || !(seconds > 0)) {
    fprintf(stderr, "usage: bench_model [out.json] [seconds per round > 0]\n");
    return 2;
  }
  const bench_machine mach = bench_machine_read();
  const int threads = mach.threads;

  model_params p;
  dyn_model* m = bench_default_model(OBS, ACT, &p);
  const int E = p.ensemble, B = p.batch, I = OBS + ACT, D = OBS + 1;

  /* steps and prediction at 1 thread, then at all cores (the peer's count), each beside its roof */
  float* x = xmalloc(sizeof(float) * E * B * I);
  float* y = xmalloc(sizeof(float) * E * B * D);
  for (int i = 0; i < E * B * I; i++) x[i] = nrm(0, (uint64_t)i);
  for (int i = 0; i < E * B * D; i++) y[i] = 0.1f * nrm(1, (uint64_t)i);
  float* obs = xmalloc(sizeof(float) * PRED_ROWS * OBS);
  float* act = xmalloc(sizeof(float) * PRED_ROWS * ACT);
  for (long i = 0; i < (long)PRED_ROWS * OBS; i++) obs[i] = nrm(2, (uint64_t)i);
  for (long i = 0; i < (long)PRED_ROWS * ACT; i++) act[i] = 2.0f * rng_uniform((rng_key){99, RNG_TEST}, 3, 0, (uint64_t)i) - 1.0f;
  float* mean = xmalloc(sizeof(float) * (size_t)E * PRED_ROWS * D);
  float* lv = xmalloc(sizeof(float) * (size_t)E * PRED_ROWS * D);
  const double step_gflop = bench_mlp_step_flops(&m->net, B) / 1e9;
  const double pred_gflop = bench_mlp_forward_flops(&m->net, PRED_ROWS) / 1e9;
  at_threads r1 = measure(m, 1, seconds, x, y, obs, act, mean, lv, step_gflop, pred_gflop);
  at_threads rt = threads > 1 ? measure(m, threads, seconds, x, y, obs, act, mean, lv, step_gflop, pred_gflop) : r1;
  threads_set(threads);
  const double best_steps = rt.steps, roof = rt.roof, best_pred = rt.pred;
  printf("gemm: %s; swish: %s\n", gemm_library(), swish_vectorized() ? "AVX-512 (expf bit-equal)" : "scalar");

  /* a short fit */
  float* rew = xmalloc(sizeof(float) * FIT_ROWS);
  float* nxt = xmalloc(sizeof(float) * FIT_ROWS * OBS);
  for (long i = 0; i < FIT_ROWS; i++) rew[i] = obs[i * OBS] + 0.1f * nrm(4, (uint64_t)i);
  for (long i = 0; i < (long)FIT_ROWS * OBS; i++) nxt[i] = 0.9f * obs[i] + 0.1f * act[(i / OBS) * ACT] + 0.05f * nrm(5, (uint64_t)i);
  m->p.max_epochs = 2;
  model_fit_stats st;
  model_train(m, FIT_ROWS, obs, act, rew, nxt, 0, &st);
  const double fit_steps = st.steps / st.seconds;
  printf("model_train (N %d: %d train, %d holdout; %d epochs, %ld steps): %.2f s, %.1f steps/s\n", FIT_ROWS,
         st.n_train, st.n_holdout, st.epochs, st.steps, st.seconds, fit_steps);

  /* the first Hopper fit's epochs: a fresh model on 5,001 rows (16 steps, 1,000 holdout rows), 20
   * epochs, best of 3 fits; at 1 thread in CPU time, at all cores in wall time */
  double first[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    threads_set(k ? threads : 1);
    for (int rep = 0; rep < 3; rep++) {
      model_params fp;
      dyn_model* fm = bench_default_model(OBS, ACT, &fp);
      fm->p.max_epochs = FIRST_EPOCHS;
      fm->p.patience = 1 << 30;
      const double c0 = bench_cpu_s(), w0 = now_s();
      model_train(fm, FIRST_ROWS, obs, act, rew, nxt, 0, &st);
      const double t = (k ? now_s() - w0 : bench_cpu_s() - c0) / st.epochs;
      if (rep == 0 || t < first[k]) first[k] = t;
      model_free(fm);
    }
  }
  threads_set(threads);
  printf("first-fit epoch (%d rows, %d epochs, best of 3): %.1f ms in CPU time at 1 thread, %.1f ms at %d threads\n",
         FIRST_ROWS, FIRST_EPOCHS, 1e3 * first[0], 1e3 * first[1], threads);

  peer pr = run_peer(threads, seconds);
  if (pr.ok)
    printf("peer PyTorch %s (%d threads): %.1f steps/s, %.0f rows/s; ratio C/PyTorch: steps %.2f, predict %.2f\n",
           pr.version, threads, pr.steps_per_s, pr.predict_rows_per_s, best_steps / pr.steps_per_s,
           best_pred / pr.predict_rows_per_s);
  else
    printf("peer PyTorch: skipped (%s)\n", pr.note);

  FILE* f = bench_json_open_cpu(out, "model", &mach, loadavg1());
  if (!f) return 1;
  fprintf(f, "},\n");
  fprintf(f, "  \"model\": {\"obs\": %d, \"act\": %d, \"ensemble\": %d, \"hidden\": %d, \"layers\": %d, "
             "\"batch\": %d, \"outputs\": %d},\n",
          OBS, ACT, E, p.hidden, p.layers, B, 2 * D);
  fprintf(f, "  \"method\": \"model_step on a fixed batch, %.3g s per round, best of 3 rounds; model_train on %d "
             "rows capped at 2 epochs; model_predict of %d rows, best of 3 calls\",\n",
          seconds, FIT_ROWS, PRED_ROWS);
  fprintf(f, "  \"gemm\": ");
  json_str(f, gemm_library());
  fprintf(f, ",\n  \"swish_vector\": %s,\n", swish_vectorized() ? "true" : "false");
  fprintf(f, "  \"steps_per_s\": %.2f,\n  \"ms_per_step\": %.3f,\n", best_steps, 1e3 / best_steps);
  fprintf(f, "  \"roof\": {\"sgemm\": \"1024^3 row-major, best of 20\", \"gflops\": %.2f, \"threads\": %d, "
             "\"gflops_1_thread\": %.2f, \"step_gflop\": %.4f, \"step_gflops\": %.2f, \"fraction\": %.3f, "
             "\"predict_call_gflop\": %.4f, \"predict_gflops\": %.2f, \"predict_fraction\": %.3f},\n",
          roof, threads, r1.roof, step_gflop, step_gflop * best_steps, roof > 0 ? step_gflop * best_steps / roof : 0.0,
          pred_gflop, pred_gflop * best_pred / PRED_ROWS, roof > 0 ? pred_gflop * best_pred / PRED_ROWS / roof : 0.0);
  fprintf(f, "  \"one_thread\": {\"steps_per_s\": %.2f, \"ms_per_step\": %.3f, \"roof_gflops\": %.2f, "
             "\"fraction\": %.3f, \"predict_rows_per_s\": %.0f, \"predict_fraction\": %.3f},\n",
          r1.steps, 1e3 / r1.steps, r1.roof, r1.roof > 0 ? step_gflop * r1.steps / r1.roof : 0.0, r1.pred,
          r1.roof > 0 ? pred_gflop * r1.pred / PRED_ROWS / r1.roof : 0.0);
  fprintf(f, "  \"one_thread_cpu_time\": {\"note\": \"timed in process CPU seconds, which leave out the time "
             "other jobs hold the core\", \"ms_per_step\": %.3f, \"roof_gflops\": %.2f, \"fraction\": %.3f, "
             "\"predict_rows_per_s\": %.0f, \"predict_fraction\": %.3f, \"gemm_alone\": {\"step_ms\": %.3f, "
             "\"step_fraction\": %.3f, \"step_share\": %.3f, \"predict_s\": %.3f, \"predict_fraction\": %.3f, "
             "\"predict_share\": %.3f}},\n",
          1e3 / r1.cpu_steps, r1.cpu_roof, step_gflop * r1.cpu_steps / r1.cpu_roof, r1.cpu_pred,
          pred_gflop * r1.cpu_pred / PRED_ROWS / r1.cpu_roof, 1e3 * r1.cpu_gemm_step_s,
          step_gflop / r1.cpu_gemm_step_s / r1.cpu_roof, r1.cpu_gemm_step_s * r1.cpu_steps, r1.cpu_gemm_pred_s,
          pred_gflop / r1.cpu_gemm_pred_s / r1.cpu_roof, r1.cpu_gemm_pred_s * r1.cpu_pred / PRED_ROWS);
  fprintf(f, "  \"gemm_alone\": {\"note\": \"the same GEMM calls and split over tasks without the element work "
             "(nnf_gemms_only), timed as the op; fraction: of the roof at that thread count; share: of the op's "
             "time\", \"step_ms\": %.3f, \"step_fraction\": %.3f, \"step_share\": %.3f, \"predict_s\": %.3f, "
             "\"predict_fraction\": %.3f, \"predict_share\": %.3f, \"one_thread\": {\"step_ms\": %.3f, "
             "\"step_fraction\": %.3f, \"step_share\": %.3f, \"predict_s\": %.3f, \"predict_fraction\": %.3f, "
             "\"predict_share\": %.3f}},\n",
          1e3 * rt.gemm_step_s, step_gflop / rt.gemm_step_s / roof, rt.gemm_step_s * rt.steps, rt.gemm_pred_s,
          pred_gflop / rt.gemm_pred_s / roof, rt.gemm_pred_s * rt.pred / PRED_ROWS, 1e3 * r1.gemm_step_s,
          step_gflop / r1.gemm_step_s / r1.roof, r1.gemm_step_s * r1.steps, r1.gemm_pred_s,
          pred_gflop / r1.gemm_pred_s / r1.roof, r1.gemm_pred_s * r1.pred / PRED_ROWS);
  fprintf(f, "  \"fit\": {\"rows\": %d, \"epochs\": %d, \"steps\": %ld, \"seconds\": %.3f, \"steps_per_s\": %.2f},\n",
          FIT_ROWS, st.epochs, st.steps, st.seconds, fit_steps);
  fprintf(f, "  \"first_fit_epoch\": {\"rows\": %d, \"epochs\": %d, \"note\": \"a fresh model's fit, best of 3; "
             "ms per epoch (16 steps, holdout scoring, shuffles)\", \"ms_1_thread_cpu\": %.1f, \"ms\": %.1f, "
             "\"threads\": %d},\n",
          FIRST_ROWS, FIRST_EPOCHS, 1e3 * first[0], 1e3 * first[1], threads);
  fprintf(f, "  \"predict_rows\": %d,\n  \"predict_chunk\": %d,\n  \"predict_rows_per_s\": %.0f,\n", PRED_ROWS,
          m->chunk, best_pred);
  if (pr.ok)
    fprintf(f, "  \"peer\": {\"name\": \"pytorch\", \"torch\": \"%s\", \"threads\": %d, \"steps_per_s\": %.2f, "
               "\"predict_rows_per_s\": %.0f},\n  \"ratio\": {\"steps\": %.3f, \"predict\": %.3f}\n}\n",
            pr.version, threads, pr.steps_per_s, pr.predict_rows_per_s, best_steps / pr.steps_per_s,
            best_pred / pr.predict_rows_per_s);
  else {
    fprintf(f, "  \"peer\": {\"name\": \"pytorch\", \"skipped\": ");
    json_str(f, pr.note);
    fprintf(f, "}\n}\n");
  }
  fclose(f);
  printf("wrote %s\n", out);
  free(x);
  free(y);
  free(obs);
  free(act);
  free(rew);
  free(nxt);
  free(mean);
  free(lv);
  model_free(m);
  return 0;
}
