/* bench_gpu.c: the CUDA backend's hot operations on a DX_CUDA context (issue 4, "Benchmarks"), and
 * the same work in PyTorch on the same GPU in the same run (bench/peers/torch_gpu.py), as ratios.
 *
 *   bench_gpu [out.json] [seconds]     (defaults: bench/results/gpu.json, 3)
 *
 * Without a usable GPU (backend_cuda_probe) it prints "bench_gpu: skipped: <reason>", writes
 * {"skipped": reason, machine, commit} and exits 0, so that `make bench` passes on CPU machines.
 *
 * Figures (Hopper dims: obs 11, act 3; float32; every figure the best of 3 rounds of seconds/3):
 *   sac      SAC updates per second inside the per-env-step graph: G = 20 updates captured once
 *            (dx_capture_begin/end), each drawing its batch on the device as the training loop does
 *            (poold_sample_gather: 12 rows of a real pool of 50,000 and 244 of a model pool of
 *            400,000, keyed by a device counter), sacd_update (batch 256, 2 x 256), nnd_ctr_add of
 *            the update counter; then the next action (sacd_act, 1 row) and the env-step counter.
 *            Replayed with dx_graph_launch; microseconds per update = graph time / G. Also the same
 *            ops enqueued without capture (launch overhead visible).
 *   sac_pop  the same per-env-step graph for a population of P = 1, 2, 4, 8, 16 runs as the training
 *            loop runs it (host/dev/mbpo_dev.c): one P-run agent (sacd_create_runs), each update's
 *            minibatches of all runs in one op (poold_sample_gather_runs), sacd_update_runs with an
 *            active mask, nnd_ctr_add_runs, then every run's next action (sacd_act_runs).
 *            Microseconds per env step (G updates of every run) and time(P) / time(P = 1), against
 *            P separate runs' P x time(1) (issue 6: P = 8 in at most 2x the time of P = 1).
 *   model    minibatch steps per second: modeld_step (E 7, 14 -> 4 x 200 swish -> 24, batch 256 per
 *            member; loss with soft bounds, gradient, one Adam over all parameters) on one fixed
 *            device minibatch, G steps captured in one graph (as an epoch is), and uncaptured; and
 *            a short fit (modeld_train, 10,000 synthetic rows, max_epochs 2) per reported step.
 *   mfit_pop one batched model fit of P = 1, 2, 4, 8, 16 runs (modeld_fit_runs, as the training loop
 *            fits a population's models): the short fit's settings and rows, each run its own model
 *            (own key seed); ms per fit, ms per epoch (every run stops at max_epochs 2) and
 *            time(P) / time(P = 1), the best of 3 fits after a warm-up.
 *   rollout  rolloutd_run at 100,000 rows for k = 1 and k = 5 (start states, policy, all 7
 *            members, elite pick, sampling, the Hopper termination rule, append, compaction):
 *            rows x steps per second (rows appended / s) and ms per step. The model is benign
 *            (model_create's weights with the output layer scaled by 0.01, log-variance bounds -8 /
 *            -12, normaliser fitted on the real pool) so that rows survive several steps as with a
 *            trained model; the peer's synthetic model is built the same way.
 *   roll_pop one batched rollout of P = 1, 2, 4, 8, 16 runs (rolloutd_run_runs, as the training loop
 *            rolls out a population): 100,000 rows and k = 5 each, the same benign model and policy,
 *            each run its own key and model pool; ms per rollout and time(P) / time(P = 1).
 *   e2e      seconds per 1,000 env steps of `$MBPO_BIN train hopper device=cuda` (a short run,
 *            BENCH_GPU_E2E_STEPS env steps after exploration, default 6000, 0 = skip; timeout 900 s),
 *            from the last epoch row of progress.csv; when the run fails, the reason is recorded
 *            instead. The late-training figure (epoch 100 state) is not measured here.
 * BENCH_GPU_HOST=1 runs the same program on a DX_HOST context with small sizes (5,000 rollout rows,
 * 2,000 fit rows, populations of P = 1 and 2 only, no e2e, no peer, JSON to stdout's log only): a
 * smoke test of the benchmark itself on a machine without a GPU; its figures mean nothing.
 * The peer runs after the C figures (nothing else on the GPU meanwhile); ratios are C time / torch
 * time per variant (eager, CUDA graphs, torch.compile), and the targets on one H100 (SAC
 * update <= 40 us, model step <= 60 us, 100k-row rollout step <= 4 ms) are checked in the JSON. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "config.h"
#include "dx.h"
#include "nn_dev.h"
#include "model.h"
#include "model_dev.h"
#include "pool_dev.h"
#include "pool_k.h"
#include "rng.h"
#include "rollout_dev.h"
#include "sac.h"
#include "sac_dev.h"
#include "termination.h"
#include "bench_util.h"

enum { OBS = 11, ACT = 3, BATCH = 256, NREAL = 12, G = 20 };
/* Sizes (smaller in the host smoke test, BENCH_GPU_HOST=1). */
static long REAL = 50000, MPOOL = 400000;
static int ROWS = 100000, FIT_ROWS = 10000;
static const int KS[2] = {1, 5};
static double g_seconds = 3.0;

static float nrm(uint32_t c1, uint64_t n) { return rng_normal((rng_key){7, RNG_TEST}, 0, c1, n); }
static float unif(uint32_t c1, uint64_t n) { return rng_uniform((rng_key){7, RNG_TEST}, 0, c1, n); }

/* Best seconds per call of fn(ctx) over 3 rounds of g_seconds / 3 (at least 3 calls per round,
 * synced at the end of each round), after one warm-up call. */
typedef void (*bench_fn)(void* ctx);
static double best_per_call(dx_ctx* c, bench_fn fn, void* ctx) {
  fn(ctx);
  dx_sync(c);
  double best = 1e30;
  for (int round = 0; round < 3; round++) {
    long n = 0;
    double t0 = now_s(), t = 0;
    do {
      fn(ctx);
      n++;
      if (n < 3) continue;
      dx_sync(c);
      t = now_s() - t0;
      if (t >= g_seconds / 3) break;
    } while (1);
    if (t / (double)n < best) best = t / (double)n;
  }
  return best;
}

/* Synthetic rows of n Hopper-like transitions (torso height ~1.25, small pitch) into host arrays. */
static void hopper_rows(uint32_t stream, long n, float* obs, float* act, float* rew, float* nxt, float* done) {
  for (long i = 0; i < n; i++) {
    for (int j = 0; j < OBS; j++) {
      float s = 0.05f * nrm(stream, (uint64_t)(i * OBS + j)) * (j >= 5 ? 10.0f : 1.0f);
      obs[i * OBS + j] = s + (j == 0 ? 1.25f : 0.0f);
      nxt[i * OBS + j] = obs[i * OBS + j] + 0.01f * nrm(stream + 1, (uint64_t)(i * OBS + j));
    }
    for (int j = 0; j < ACT; j++) act[i * ACT + j] = 2 * unif(stream + 2, (uint64_t)(i * ACT + j)) - 1;
    rew[i] = nrm(stream + 3, (uint64_t)i);
    done[i] = unif(stream + 4, (uint64_t)i) < 0.05f;
  }
}

/* A device pool of cap rows holding n synthetic rows. */
static pool_dev* filled_pool(dx_ctx* c, long cap, long n, uint32_t stream) {
  pool_dev* p = poold_create(c, OBS, ACT, cap);
  float* obs = xmalloc(sizeof(float) * (size_t)n * OBS);
  float* nxt = xmalloc(sizeof(float) * (size_t)n * OBS);
  float* act = xmalloc(sizeof(float) * (size_t)n * ACT);
  float* rew = xmalloc(sizeof(float) * (size_t)n);
  float* done = xmalloc(sizeof(float) * (size_t)n);
  hopper_rows(stream, n, obs, act, rew, nxt, done);
  poold_add_host(c, p, n, obs, act, rew, nxt, done);
  dx_sync(c);
  free(obs), free(nxt), free(act), free(rew), free(done);
  return p;
}

/* ---- SAC: the per-env-step program ---- */

typedef struct sac_prog {
  dx_ctx* c;
  sac_dev* d;
  pool_dev *real, *mpool;
  rng_key bk, ak;
  uint64_t *upd, *envstep; /* device counters */
  float *obs, *act, *rew, *nxt, *done, *stats, *obs1, *act1;
  dx_graph* graph;
} sac_prog;

/* G updates on batches drawn on the device, then the next action: the ops of one env step. */
static void sac_enqueue(void* ctx) {
  sac_prog* s = ctx;
  const int nm = BATCH - NREAL;
  for (int g = 0; g < G; g++) {
    poold_sample_gather(s->c, s->real, s->bk, s->upd, 0, NREAL, s->obs, s->act, s->rew, s->nxt, s->done);
    poold_sample_gather(s->c, s->mpool, s->bk, s->upd, NREAL, nm, s->obs + NREAL * OBS, s->act + NREAL * ACT,
                        s->rew + NREAL, s->nxt + NREAL * OBS, s->done + NREAL);
    sacd_update(s->d, s->obs, s->act, s->rew, s->nxt, s->done, BATCH, s->upd, s->stats);
    nnd_ctr_add(s->c, s->upd, 1);
  }
  sacd_act(s->d, s->obs1, 1, 0, s->ak, 0, s->envstep, s->act1);
  nnd_ctr_add(s->c, s->envstep, 1);
}

static void sac_replay(void* ctx) {
  sac_prog* s = ctx;
  dx_graph_launch(s->c, s->graph);
}

typedef struct sac_fig {
  double us_graph, us_eager;
  int finite;
  double q1_loss, alpha;
} sac_fig;

static sac_fig bench_sac(dx_ctx* c, sac_dev* d, pool_dev* real, pool_dev* mpool) {
  sac_prog s = {.c = c, .d = d, .real = real, .mpool = mpool, .bk = {1, RNG_SAC_BATCH}, .ak = {1, RNG_ACT}};
  s.upd = dx_alloc(c, sizeof(uint64_t));
  s.envstep = dx_alloc(c, sizeof(uint64_t));
  s.obs = dx_allocf(c, BATCH * OBS), s.nxt = dx_allocf(c, BATCH * OBS);
  s.act = dx_allocf(c, BATCH * ACT), s.rew = dx_allocf(c, BATCH), s.done = dx_allocf(c, BATCH);
  s.stats = dx_allocf(c, SACD_NSTATS);
  s.obs1 = dx_allocf(c, OBS), s.act1 = dx_allocf(c, ACT);
  sac_fig f;
  f.us_eager = 1e6 * best_per_call(c, sac_enqueue, &s) / G;
  dx_capture_begin(c);
  sac_enqueue(&s);
  s.graph = dx_capture_end(c);
  f.us_graph = 1e6 * best_per_call(c, sac_replay, &s) / G;
  float st[SACD_NSTATS];
  dx_download(c, st, s.stats, sizeof st);
  dx_sync(c);
  sac_stats hs;
  sacd_stats_to_host(st, &hs);
  f.q1_loss = hs.q1_loss, f.alpha = hs.alpha;
  f.finite = isfinite(hs.q1_loss) && isfinite(hs.q2_loss) && isfinite(hs.pi_loss) && isfinite(hs.alpha);
  printf("SAC update (batch %d = %d real + %d model rows, graph of %d + next action): %.2f us captured "
         "(%.0f updates/s), %.2f us uncaptured; last q1 loss %.4g, alpha %.4g%s\n",
         BATCH, NREAL, BATCH - NREAL, G, f.us_graph, 1e6 / f.us_graph, f.us_eager, f.q1_loss, f.alpha,
         f.finite ? "" : " (NOT FINITE)");
  dx_graph_free(c, s.graph);
  void* bufs[] = {s.upd, s.envstep, s.obs, s.nxt, s.act, s.rew, s.done, s.stats, s.obs1, s.act1};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  return f;
}

/* ---- SAC of a population: the per-env-step graph of P runs ---- */

enum { NPOPS = 5 };
static const int POPS[NPOPS] = {1, 2, 4, 8, 16};
static int g_npops = NPOPS;
static long g_pop_ops[NPOPS], g_pop_crit[NPOPS]; /* each P's graph: dx ops, critical path (dx.h) */

typedef struct pop_prog {
  dx_ctx* c;
  sac_dev* d;
  int P;
  poolk_batch_src* srcs;
  rng_key* keys;
  int* active;
  uint64_t *upd, *envstep;
  float *obs, *act, *rew, *nxt, *done, *stats, *obs1, *act1;
  dx_graph* graph;
} pop_prog;

static void pop_replay(void* ctx) {
  pop_prog* s = ctx;
  dx_graph_launch(s->c, s->graph);
}

/* Microseconds per env step of P runs (every run's G updates and next action, one graph). */
static double bench_sac_pop(dx_ctx* c, const sac* hs, pool_dev* real, pool_dev* mpool, int P) {
  const sac** hosts = xmalloc(sizeof *hosts * (size_t)P);
  poolk_batch_src* srcs = xmalloc(sizeof *srcs * (size_t)P);
  rng_key* keys = xmalloc(sizeof *keys * (size_t)P);
  int* ones = xmalloc(sizeof *ones * (size_t)P);
  for (int q = 0; q < P; q++) {
    hosts[q] = hs;
    memset(&srcs[q], 0, sizeof srcs[q]);
    srcs[q].real = (poolk_rows){{real->obs, real->act, real->rew, real->next_obs, real->done}};
    srcs[q].model = (poolk_rows){{mpool->obs, mpool->act, mpool->rew, mpool->next_obs, mpool->done}};
    srcs[q].real_state = real->state;
    srcs[q].model_state = mpool->state;
    srcs[q].key = (rng_key){(uint32_t)q, RNG_SAC_BATCH};
    srcs[q].nreal = NREAL;
    keys[q] = (rng_key){(uint32_t)q, RNG_ACT};
    ones[q] = 1;
  }
  const size_t R = (size_t)P, B = R * BATCH;
  pop_prog s = {.c = c, .P = P};
  s.d = sacd_create_runs(c, hosts, P, 1);
  s.srcs = dx_alloc(c, R * sizeof *srcs);
  s.keys = dx_alloc(c, R * sizeof *keys);
  s.active = dx_alloc(c, R * sizeof *ones);
  dx_upload(c, s.srcs, srcs, R * sizeof *srcs);
  dx_upload(c, s.keys, keys, R * sizeof *keys);
  dx_upload(c, s.active, ones, R * sizeof *ones);
  s.upd = dx_alloc(c, R * sizeof(uint64_t));
  s.envstep = dx_alloc(c, R * sizeof(uint64_t));
  s.obs = dx_allocf(c, B * OBS), s.nxt = dx_allocf(c, B * OBS);
  s.act = dx_allocf(c, B * ACT), s.rew = dx_allocf(c, B), s.done = dx_allocf(c, B);
  s.stats = dx_allocf(c, R * SACD_NSTATS);
  s.obs1 = dx_allocf(c, R * OBS), s.act1 = dx_allocf(c, R * ACT);
  dx_sync(c);
  dx_capture_begin(c);
  for (int g = 0; g < G; g++) {
    poold_sample_gather_runs(c, s.srcs, P, s.upd, 1, BATCH, OBS, ACT, s.obs, s.act, s.rew, s.nxt, s.done);
    sacd_update_runs_advance(s.d, s.obs, s.act, s.rew, s.nxt, s.done, BATCH, s.upd, 1, s.active, s.stats);
  }
  sacd_act_runs(s.d, s.obs1, 1, 0, s.keys, 0, s.envstep, 1, s.act1);
  nnd_ctr_add_runs(c, s.envstep, P, 1, NULL);
  s.graph = dx_capture_end(c);
  for (int i = 0; i < NPOPS; i++)
    if (POPS[i] == P) g_pop_ops[i] = dx_graph_ops(s.graph), g_pop_crit[i] = dx_graph_critical_path(s.graph);
  double us = 1e6 * best_per_call(c, pop_replay, &s);
  printf("SAC step of a population of %2d runs (%d updates of each + next actions, one graph of %ld ops, critical "
         "path %ld): %.1f us\n", P, G, dx_graph_ops(s.graph), dx_graph_critical_path(s.graph), us);
  dx_graph_free(c, s.graph);
  void* bufs[] = {s.srcs, s.keys, s.active, s.upd, s.envstep, s.obs, s.nxt, s.act, s.rew, s.done, s.stats, s.obs1, s.act1};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  sacd_free(s.d);
  free(hosts), free(srcs), free(keys), free(ones);
  return us;
}

/* ---- model ---- */

typedef struct model_prog {
  model_dev* d;
  float *x, *y;
  double* loss; /* [G] */
  dx_graph* graph;
} model_prog;

static void model_enqueue(void* ctx) {
  model_prog* m = ctx;
  for (int g = 0; g < G; g++) modeld_step(m->d, m->d->p.batch, m->x, m->y, m->loss + g);
}

static void model_replay(void* ctx) {
  model_prog* m = ctx;
  dx_graph_launch(m->d->c, m->graph);
}

typedef struct model_fig {
  double us_graph, us_eager, us_fit_step, fit_s, last_loss;
  long fit_steps;
  int fit_epochs, fit_status;
} model_fig;

static model_fig bench_model(dx_ctx* c, const dyn_model* host) {
  model_fig f;
  memset(&f, 0, sizeof f);
  model_dev* d = modeld_create(c, host, FIT_ROWS);
  const int E = d->p.ensemble, B = d->p.batch, I = d->in_dim, D = d->D;
  model_prog m = {.d = d};
  float* hx = xmalloc(sizeof(float) * (size_t)E * B * I);
  float* hy = xmalloc(sizeof(float) * (size_t)E * B * D);
  for (long i = 0; i < (long)E * B * I; i++) hx[i] = nrm(10, (uint64_t)i);
  for (long i = 0; i < (long)E * B * D; i++) hy[i] = 0.1f * nrm(11, (uint64_t)i);
  m.x = dx_allocf(c, (size_t)E * B * I);
  m.y = dx_allocf(c, (size_t)E * B * D);
  m.loss = dx_alloc(c, sizeof(double) * G);
  dx_upload(c, m.x, hx, sizeof(float) * (size_t)E * B * I);
  dx_upload(c, m.y, hy, sizeof(float) * (size_t)E * B * D);
  dx_sync(c);
  f.us_eager = 1e6 * best_per_call(c, model_enqueue, &m) / G;
  dx_capture_begin(c);
  model_enqueue(&m);
  m.graph = dx_capture_end(c);
  f.us_graph = 1e6 * best_per_call(c, model_replay, &m) / G;
  double losses[G];
  dx_download(c, losses, m.loss, sizeof losses);
  dx_sync(c);
  f.last_loss = losses[G - 1];
  printf("model minibatch step (E %d, %d x %d, batch %d per member): %.2f us captured (%.0f steps/s), "
         "%.2f us uncaptured; last loss %.5g\n",
         E, d->p.layers, d->p.hidden, B, f.us_graph, 1e6 / f.us_graph, f.us_eager, f.last_loss);
  dx_graph_free(c, m.graph);

  /* a short fit on synthetic rows */
  pool_dev* fp = filled_pool(c, FIT_ROWS, FIT_ROWS, 40);
  model_fit_stats st;
  memset(&st, 0, sizeof st);
  modeld_train(d, FIT_ROWS, fp->obs, fp->act, fp->rew, fp->next_obs, 0, &st); /* warm-up (captures) */
  memset(&st, 0, sizeof st);
  double t0 = now_s();
  f.fit_status = modeld_train(d, FIT_ROWS, fp->obs, fp->act, fp->rew, fp->next_obs, 1, &st);
  dx_sync(c);
  f.fit_s = now_s() - t0;
  f.fit_steps = st.steps, f.fit_epochs = st.epochs;
  f.us_fit_step = st.steps > 0 ? 1e6 * f.fit_s / (double)st.steps : -1;
  printf("model fit (%d rows, %d epochs, %ld steps, status %d): %.3f s, %.2f us per step including split, "
         "bootstrap, shuffles and holdout scoring\n",
         FIT_ROWS, f.fit_epochs, f.fit_steps, f.fit_status, f.fit_s, f.us_fit_step);
  poold_free(c, fp);
  dx_free(c, m.x), dx_free(c, m.y), dx_free(c, m.loss);
  free(hx), free(hy);
  modeld_free(d);
  return f;
}

/* ---- model fits of a population ---- */

typedef struct mfit_pop_fig {
  double ms[NPOPS];            /* one batched fit of P runs (POPS) */
  double ms_per_epoch[NPOPS];  /* ms / epochs_max (the batched fit runs as many epochs as its longest run) */
  int epochs_min[NPOPS], epochs_max[NPOPS];
  long steps[NPOPS];           /* Adam steps of all the runs together */
  int failed[NPOPS];           /* runs whose rc was not MODEL_OK */
  double elite_mse[NPOPS];     /* mean over the runs of their elites' holdout MSE */
} mfit_pop_fig;

/* One batched fit of P runs at once (modeld_fit_runs: FIT_ROWS rows each, the short fit's settings
 * of mp, every run its own model (key seed 100 + q) on the same rows of fp): the best of 3 timed
 * fits after one warm-up, each fit's epoch graph captured inside it as in training. */
static void bench_model_fit_pop(dx_ctx* c, dyn_model* const* hosts, pool_dev* fp, int P, mfit_pop_fig* f, int i) {
  modeld_fitter* fit = modeld_fitter_create(c, hosts[0], P, FIT_ROWS);
  model_dev** md = xmalloc(sizeof *md * (size_t)P);
  modeld_fit_job* jobs = xmalloc(sizeof *jobs * (size_t)P);
  for (int q = 0; q < P; q++) md[q] = modeld_create(c, hosts[q], 0);
  dx_sync(c);
  double best = 1e30;
  for (int rep = 0; rep < 4; rep++) { /* the first is the warm-up */
    for (int q = 0; q < P; q++) {
      memset(&jobs[q], 0, sizeof jobs[q]);
      jobs[q].m = md[q];
      jobs[q].N = FIT_ROWS;
      jobs[q].obs = fp->obs, jobs[q].act = fp->act, jobs[q].rew = fp->rew, jobs[q].next_obs = fp->next_obs;
      jobs[q].fit_index = (uint32_t)rep;
    }
    double t0 = now_s();
    modeld_fit_runs(fit, jobs, P);
    dx_sync(c);
    double dt = now_s() - t0;
    if (rep > 0 && dt < best) {
      best = dt;
      f->epochs_min[i] = 1 << 30, f->epochs_max[i] = 0, f->steps[i] = 0, f->failed[i] = 0, f->elite_mse[i] = 0;
      for (int q = 0; q < P; q++) {
        const model_fit_stats* st = &jobs[q].st;
        if (st->epochs < f->epochs_min[i]) f->epochs_min[i] = st->epochs;
        if (st->epochs > f->epochs_max[i]) f->epochs_max[i] = st->epochs;
        f->steps[i] += st->steps;
        f->failed[i] += jobs[q].rc != MODEL_OK;
        f->elite_mse[i] += st->elite_mse / P;
      }
    }
  }
  f->ms[i] = 1e3 * best;
  f->ms_per_epoch[i] = f->epochs_max[i] > 0 ? f->ms[i] / f->epochs_max[i] : -1;
  printf("model fit of a population of %2d runs (%d rows each, one batched fit): %.2f ms, %d-%d epochs "
         "(%.2f ms per epoch), %ld steps, %d failed, mean elite MSE %.5g\n",
         P, FIT_ROWS, f->ms[i], f->epochs_min[i], f->epochs_max[i], f->ms_per_epoch[i], f->steps[i], f->failed[i],
         f->elite_mse[i]);
  for (int q = 0; q < P; q++) modeld_free(md[q]);
  modeld_fitter_free(fit);
  free(md), free(jobs);
}

static mfit_pop_fig bench_model_fit_pops(dx_ctx* c, const model_params* mp) {
  mfit_pop_fig f;
  memset(&f, 0, sizeof f);
  const int Pmax = POPS[g_npops - 1];
  dyn_model** hosts = xmalloc(sizeof *hosts * (size_t)Pmax);
  for (int q = 0; q < Pmax; q++) hosts[q] = model_create(OBS, ACT, mp, (rng_key){(uint32_t)(100 + q), 0});
  pool_dev* fp = filled_pool(c, FIT_ROWS, FIT_ROWS, 40); /* bench_model's fit rows */
  for (int i = 0; i < g_npops; i++) bench_model_fit_pop(c, hosts, fp, POPS[i], &f, i);
  poold_free(c, fp);
  for (int q = 0; q < Pmax; q++) model_free(hosts[q]);
  free(hosts);
  return f;
}

/* ---- rollout ---- */

typedef struct roll_fig {
  double rows_steps_per_s[2], ms_per_step[2], done_frac[2];
  long rows_added[2];
  int steps_run[2], status[2];
  double pop_ms[NPOPS];      /* one rollout of P runs (POPS), k = POP_K */
  long pop_rows[NPOPS];      /* rows added by all of them */
} roll_fig;

enum { POP_K = 5 };

/* Milliseconds of one rollout of P runs at once (rolloutd_run_runs: ROWS rows and k = POP_K each,
 * the same model and policy, each run its own key and model pool); rows added by all into *rows. */
static double bench_rollout_pop(dx_ctx* c, const rolloutd_model* rm, const sac_dev* agent, pool_dev* real, int P,
                                long* rows) {
  rollout_dev* r = rolloutd_create_runs(c, rm->net, &agent->pi, OBS, ACT, P, ROWS, TERM_HOPPER, ROLLOUTD_CHUNK);
  pool_dev** mp = xmalloc(sizeof *mp * (size_t)P);
  rolloutd_job* jobs = xmalloc(sizeof *jobs * (size_t)P);
  for (int q = 0; q < P; q++) mp[q] = poold_create(c, OBS, ACT, (long)ROWS * POP_K);
  double best = 1e30;
  for (int rep = 0; rep < 4; rep++) { /* the first is the warm-up */
    for (int q = 0; q < P; q++) {
      memset(&jobs[q], 0, sizeof jobs[q]);
      jobs[q].m = *rm;
      jobs[q].pi_w = agent->pi_w;
      jobs[q].real = real;
      jobs[q].model_pool = mp[q];
      jobs[q].k = POP_K;
      jobs[q].key = (rng_key){(uint32_t)(100 + q), RNG_ROLLOUT};
      jobs[q].fit_index = (uint32_t)rep;
    }
    double t0 = now_s();
    rolloutd_run_runs(r, &agent->pi, jobs, P, ROWS);
    double dt = now_s() - t0;
    if (rep > 0 && dt < best) {
      best = dt;
      *rows = 0;
      for (int q = 0; q < P; q++) *rows += jobs[q].st.rows_added;
    }
  }
  printf("rollout of a population of %2d runs (%d rows, k = %d each, one batched rollout): %.2f ms, %ld rows\n", P,
         ROWS, POP_K, 1e3 * best, *rows);
  for (int q = 0; q < P; q++) poold_free(c, mp[q]);
  free(mp), free(jobs);
  rolloutd_free(r);
  return 1e3 * best;
}

/* The benign model of the header comment: output layer x 0.01, bounds -8 / -12. */
static void benign_model(dyn_model* m, int n, const float* obs, const float* act) {
  model_tensor t[MODEL_MAX_TENSORS];
  int nt = model_tensors(m, t);
  char last[16];
  snprintf(last, sizeof last, "W%d", m->p.layers);
  for (int i = 0; i < nt; i++) {
    long sz = 1;
    for (int j = 0; j < t[i].ndim; j++) sz *= t[i].shape[j];
    if (strcmp(t[i].name, last) == 0)
      for (long j = 0; j < sz; j++) t[i].data[j] *= 0.01f;
  }
  for (int j = 0; j < m->D; j++) m->max_lv[j] = -8.0f, m->min_lv[j] = -12.0f;
  model_fit_normalizer(m, n, obs, act);
}

static roll_fig bench_rollout(dx_ctx* c, dyn_model* host, const sac_dev* agent, pool_dev* real) {
  roll_fig f;
  memset(&f, 0, sizeof f);
  float* obs = xmalloc(sizeof(float) * (size_t)REAL * OBS);
  float* nxt = xmalloc(sizeof(float) * (size_t)REAL * OBS);
  float* act = xmalloc(sizeof(float) * (size_t)REAL * ACT);
  float* rew = xmalloc(sizeof(float) * REAL);
  float* done = xmalloc(sizeof(float) * REAL);
  hopper_rows(20, REAL, obs, act, rew, nxt, done); /* the real pool's rows (filled_pool, stream 20) */
  benign_model(host, REAL, obs, act);
  free(obs), free(nxt), free(act), free(rew), free(done);
  model_dev* md = modeld_create(c, host, 1);
  rolloutd_model rm = {.net = &md->net, .params = md->params, .max_lv = md->max_lv, .min_lv = md->min_lv,
                       .norm_mean = md->norm_mean, .norm_std = md->norm_std, .elites = md->elites,
                       .n_elites = md->p.elites};
  rollout_dev* r = rolloutd_create(c, &md->net, &agent->pi, OBS, ACT, ROWS, TERM_HOPPER);
  pool_dev* mp = poold_create(c, OBS, ACT, (long)ROWS * 5);
  rng_key key = {1, RNG_ROLLOUT};
  uint32_t fit = 0;
  for (int ki = 0; ki < 2; ki++) {
    int k = KS[ki];
    rollout_stats st;
    rolloutd_run(r, &rm, &agent->pi, agent->pi_w, real, mp, ROWS, k, key, fit++, &st); /* warm-up */
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
      double t0 = now_s();
      f.status[ki] = rolloutd_run(r, &rm, &agent->pi, agent->pi_w, real, mp, ROWS, k, key, fit++, &st);
      double dt = now_s() - t0;
      if (dt < best) {
        best = dt;
        f.rows_added[ki] = st.rows_added, f.steps_run[ki] = st.steps_run, f.done_frac[ki] = st.done_frac;
      }
    }
    f.rows_steps_per_s[ki] = (double)f.rows_added[ki] / best;
    f.ms_per_step[ki] = 1e3 * best / (f.steps_run[ki] > 0 ? f.steps_run[ki] : 1);
    printf("rollout %d rows, k = %d: %.4g rows*steps/s, %.3f ms per step (%ld rows added, %d steps, done "
           "fraction %.4f, status %d)\n",
           ROWS, k, f.rows_steps_per_s[ki], f.ms_per_step[ki], f.rows_added[ki], f.steps_run[ki],
           f.done_frac[ki], f.status[ki]);
  }
  for (int i = 0; i < g_npops; i++) f.pop_ms[i] = bench_rollout_pop(c, &rm, agent, real, POPS[i], &f.pop_rows[i]);
  poold_free(c, mp);
  rolloutd_free(r);
  modeld_free(md);
  return f;
}

/* ---- end to end ---- */

typedef struct e2e_fig {
  int ok;
  long steps;
  double wall_s, s_per_1000, last_epoch;
  char note[512];
} e2e_fig;

/* The value of column name in the last data row of a CSV file; NAN when absent. */
static double csv_last(const char* path, const char* name) {
  FILE* f = fopen(path, "r");
  if (!f) return NAN;
  static char head[8192], line[8192], last[8192];
  last[0] = 0;
  if (!fgets(head, sizeof head, f)) {
    fclose(f);
    return NAN;
  }
  while (fgets(line, sizeof line, f))
    if (line[0] >= '0' && line[0] <= '9') memcpy(last, line, sizeof last);
  fclose(f);
  int col = -1, i = 0;
  for (char* tok = strtok(head, ",\r\n"); tok; tok = strtok(NULL, ",\r\n"), i++)
    if (strcmp(tok, name) == 0) col = i;
  if (col < 0 || !last[0]) return NAN;
  char* p = last;
  for (i = 0; i < col && p; i++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  return p ? strtod(p, NULL) : NAN;
}

static e2e_fig bench_e2e(void) {
  e2e_fig f;
  memset(&f, 0, sizeof f);
  f.s_per_1000 = f.last_epoch = NAN;
  const char* bin = getenv("MBPO_BIN");
  const char* ev = getenv("BENCH_GPU_E2E_STEPS");
  f.steps = ev ? atol(ev) : 6000;
  if (f.steps <= 0) {
    snprintf(f.note, sizeof f.note, "BENCH_GPU_E2E_STEPS=0: not run");
    return f;
  }
  if (!bin || access(bin, X_OK) != 0) {
    snprintf(f.note, sizeof f.note, "MBPO_BIN not set or not executable (run through make bench)");
    return f;
  }
  char dir[] = "/tmp/bench_gpu_e2e_XXXXXX";
  if (!mkdtemp(dir)) {
    snprintf(f.note, sizeof f.note, "mkdtemp: %s", strerror(errno));
    return f;
  }
  char cmd[4096], log[600];
  snprintf(log, sizeof log, "%s/train.log", dir);
  snprintf(cmd, sizeof cmd,
           "timeout 900 '%s' train hopper device=cuda steps=%ld run_dir='%s' tag=bench checkpoint.every=0 "
           ">'%s' 2>&1",
           bin, f.steps, dir, log);
  printf("end to end: %s\n", cmd);
  fflush(stdout);
  double t0 = now_s();
  int rc = system(cmd);
  f.wall_s = now_s() - t0;
  int code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
  if (code != 0) {
    char last[400] = "";
    FILE* lf = fopen(log, "r");
    if (lf) {
      char line[400];
      while (fgets(line, sizeof line, lf))
        if (line[0] != '\n') memcpy(last, line, sizeof last);
      fclose(lf);
    }
    last[strcspn(last, "\r\n")] = 0;
    snprintf(f.note, sizeof f.note, "mbpo train device=cuda exited with %d%s: %s", code,
             code == 124 ? " (timeout 900 s)" : "", last);
  } else {
    char csv[600];
    snprintf(csv, sizeof csv, "%s/hopper-bench-s0/progress.csv", dir);
    double et = csv_last(csv, "epoch_time_s"), es = csv_last(csv, "env_steps");
    f.last_epoch = csv_last(csv, "epoch");
    if (isfinite(et) && es > 0) {
      f.ok = 1;
      f.s_per_1000 = 1000.0 * et / es;
      snprintf(f.note, sizeof f.note, "last epoch row of progress.csv (epoch_time_s / env_steps); total wall "
               "time includes start-up and the exploration steps");
    } else {
      snprintf(f.note, sizeof f.note, "run finished but its progress.csv has no epoch_time_s/env_steps row");
    }
  }
  printf("end to end: %s\n", f.note);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_gpu: could not remove %s\n", dir);
  return f;
}

/* ---- the peer ---- */

typedef struct peer {
  char line[8192], skip[512];
} peer;

static peer run_peer(void) {
  peer p;
  memset(&p, 0, sizeof p);
  const char* root = getenv("MBPO_ROOT");
  char script[2048], cmd[4096];
  snprintf(script, sizeof script, "%s/bench/peers/torch_gpu.py", root ? root : ".");
  if (access(script, R_OK) != 0) {
    snprintf(p.skip, sizeof p.skip, "bench/peers/torch_gpu.py not found (run from the repo root or set MBPO_ROOT)");
    return p;
  }
  if (access("/usr/bin/python3", X_OK) != 0) {
    snprintf(p.skip, sizeof p.skip, "/usr/bin/python3 not found");
    return p;
  }
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --device cuda --seconds %g --rows %d --graph-updates %d", script,
           g_seconds, ROWS, G);
  fflush(stdout);
  FILE* f = popen(cmd, "r");
  if (!f) {
    snprintf(p.skip, sizeof p.skip, "popen failed: %s", strerror(errno));
    return p;
  }
  char line[8192];
  while (fgets(line, sizeof line, f))
    if (line[0] == '{') snprintf(p.line, sizeof p.line, "%s", line);
  int rc = pclose(f);
  p.line[strcspn(p.line, "\r\n")] = 0;
  const char* why = strstr(p.line, "\"skipped\": \"");
  if (why) {
    snprintf(p.skip, sizeof p.skip, "%s", why + 12);
    p.skip[strcspn(p.skip, "\"")] = 0;
    p.line[0] = 0;
  } else if (!p.line[0]) {
    snprintf(p.skip, sizeof p.skip, "peer gave no JSON (exit status %d)", rc);
  }
  return p;
}

/* "key": C / torch (C time over torch time), or null when the peer has no such figure. */
static void ratio(FILE* f, const char* key, double c_time, const peer* p, const char* peer_key, const char* sep) {
  double t = p->line[0] ? json_num(p->line, peer_key) : -1;
  fprintf(f, "\"%s\": ", key);
  if (t > 0 && c_time > 0) fprintf(f, "%.4f", c_time / t);
  else fprintf(f, "null");
  fputs(sep, f);
  if (t > 0 && c_time > 0) printf("  %-36s C %10.3f  torch %10.3f  C/torch %.3f\n", key, c_time, t, c_time / t);
}

static void target(FILE* f, const char* key, double measured, double goal, const char* sep) {
  fprintf(f, "\"%s\": {\"target\": %g, \"measured\": %.4f, \"met\": %s}%s", key, goal, measured,
          measured > 0 && measured <= goal ? "true" : "false", sep);
  printf("  target %-24s %.3f (<= %g): %s\n", key, measured, goal, measured > 0 && measured <= goal ? "met" : "NOT met");
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "bench/results/gpu.json";
  g_seconds = argc > 2 ? atof(argv[2]) : 3.0;
  if (argc > 3 || !(g_seconds > 0)) {
    fprintf(stderr, "usage: bench_gpu [out.json] [seconds per figure > 0]\n");
    return 2;
  }
  const bench_machine mach = bench_machine_read();
  char gpu[512];
  const char* hv = getenv("BENCH_GPU_HOST");
  const int host = hv && atoi(hv) == 1;
  if (host) {
    REAL = 5000, MPOOL = 20000, ROWS = 5000, FIT_ROWS = 2000, g_npops = 2;
    snprintf(gpu, sizeof gpu, "host emulation (BENCH_GPU_HOST=1: smoke test, figures meaningless)");
    printf("bench_gpu: %s\n", gpu);
  } else if (!backend_cuda_probe(gpu, sizeof gpu)) {
    printf("bench_gpu: skipped: %s\n", gpu);
    FILE* f = bench_json_open(out, "gpu", mach.cpu, mach.commit, mach.cores, mach.load0, loadavg1());
    if (!f) return 1;
    fprintf(f, "  \"skipped\": ");
    json_str(f, gpu);
    fprintf(f, "\n}\n");
    fclose(f);
    printf("wrote %s\n", out);
    return 0;
  }
  else
    printf("GPU: %s\n", gpu);

  mbpo_config cfg;
  cfg_defaults(&cfg);
  dx_ctx* c = dx_create(host ? DX_HOST : DX_CUDA);
  sac_params sp = sac_params_default(ACT);
  sp.batch = BATCH;
  sac* hs = sac_create(OBS, ACT, &sp, (rng_key){1, RNG_INIT});
  sac_dev* sd = sacd_create(c, hs, 1);
  pool_dev* real = filled_pool(c, REAL, REAL, 20);
  pool_dev* mpool = filled_pool(c, MPOOL, MPOOL, 30);
  model_params mp = model_params_from_config(&cfg);
  mp.max_epochs = 2; /* the short fit of bench_model */
  dyn_model* hm = model_create(OBS, ACT, &mp, (rng_key){1, 0});

  sac_fig sf = bench_sac(c, sd, real, mpool);
  double pop_us[NPOPS];
  for (int i = 0; i < g_npops; i++) pop_us[i] = bench_sac_pop(c, hs, real, mpool, POPS[i]);
  poold_free(c, mpool);
  model_fig mf = bench_model(c, hm);
  mfit_pop_fig mpf = bench_model_fit_pops(c, &mp);
  roll_fig rf = bench_rollout(c, hm, sd, real);
  e2e_fig ef;
  peer p;
  memset(&p, 0, sizeof p);
  if (host) {
    memset(&ef, 0, sizeof ef);
    snprintf(ef.note, sizeof ef.note, "host smoke test");
    snprintf(p.skip, sizeof p.skip, "host smoke test");
    out = "/dev/stdout";
  } else {
    ef = bench_e2e();
    printf("PyTorch peer on the same GPU (bench/peers/torch_gpu.py)...\n");
    fflush(stdout);
    p = run_peer();
    if (!p.line[0]) printf("peer skipped: %s\n", p.skip);
  }

  fflush(stdout);
  FILE* f = bench_json_open(out, "gpu", mach.cpu, mach.commit, mach.cores, mach.load0, loadavg1());
  if (!f) return 1;
  fprintf(f, "  \"gpu\": ");
  json_str(f, gpu);
  fprintf(f, ",\n  \"seconds\": %g,\n", g_seconds);
  fprintf(f, "  \"dims\": {\"obs\": %d, \"act\": %d, \"sac_hidden\": %d, \"sac_layers\": %d, \"batch\": %d, "
             "\"real_rows\": %d, \"model_rows\": %d, \"graph_updates\": %d, \"ensemble\": %d, \"model_hidden\": %d, "
             "\"model_layers\": %d, \"rollout_rows\": %d},\n",
          OBS, ACT, sp.hidden, sp.layers, BATCH, NREAL, BATCH - NREAL, G, mp.ensemble, mp.hidden, mp.layers, ROWS);
  fprintf(f, "  \"sac\": {\"us_per_update_graph\": %.3f, \"updates_per_s_graph\": %.1f, \"us_per_update_uncaptured\": "
             "%.3f, \"finite\": %s, \"last_q1_loss\": %.6g, \"last_alpha\": %.6g},\n",
          sf.us_graph, 1e6 / sf.us_graph, sf.us_eager, sf.finite ? "true" : "false", sf.q1_loss, sf.alpha);
  fprintf(f, "  \"sac_population\": {\"note\": \"us per env step: G updates of each of P runs and their next "
             "actions in one graph; ratio = time(P) / time(1); P separate runs would take P x time(1)\", \"runs\": [");
  for (int i = 0; i < g_npops; i++)
    fprintf(f, "%s{\"P\": %d, \"us_per_step\": %.2f, \"ratio_to_p1\": %.3f, \"graph_ops\": %ld, "
            "\"graph_critical_path\": %ld}", i ? ", " : "", POPS[i], pop_us[i], pop_us[i] / pop_us[0], g_pop_ops[i],
            g_pop_crit[i]);
  fprintf(f, "]");
  if (g_npops > 3) fprintf(f, ", \"goal_p8_within_2x_p1\": %s", pop_us[3] <= 2 * pop_us[0] ? "true" : "false");
  fprintf(f, "},\n");
  fprintf(f, "  \"model\": {\"us_per_step_graph\": %.3f, \"steps_per_s_graph\": %.1f, \"us_per_step_uncaptured\": %.3f, "
             "\"last_loss\": %.6g, \"fit_rows\": %d, \"fit_epochs\": %d, \"fit_steps\": %ld, \"fit_s\": %.4f, "
             "\"fit_us_per_step\": %.3f, \"fit_status\": %d},\n",
          mf.us_graph, 1e6 / mf.us_graph, mf.us_eager, mf.last_loss, FIT_ROWS, mf.fit_epochs, mf.fit_steps, mf.fit_s,
          mf.us_fit_step, mf.fit_status);
  fprintf(f, "  \"model_fit_population\": {\"note\": \"ms per batched model fit of P runs at once (modeld_fit_runs: "
             "%d rows and max_epochs %d each, every run its own model and keys); ms_per_epoch = ms / epochs_max; "
             "ratio = time(P) / time(1); P separate fits would take P x time(1)\", \"runs\": [",
          FIT_ROWS, mp.max_epochs);
  for (int i = 0; i < g_npops; i++)
    fprintf(f, "%s{\"P\": %d, \"ms\": %.3f, \"epochs_min\": %d, \"epochs_max\": %d, \"ms_per_epoch\": %.3f, "
               "\"steps\": %ld, \"failed\": %d, \"mean_elite_mse\": %.6g, \"ratio_to_p1\": %.3f}",
            i ? ", " : "", POPS[i], mpf.ms[i], mpf.epochs_min[i], mpf.epochs_max[i], mpf.ms_per_epoch[i], mpf.steps[i],
            mpf.failed[i], mpf.elite_mse[i], mpf.ms[i] / mpf.ms[0]);
  fprintf(f, "]},\n");
  fprintf(f, "  \"rollout\": [");
  for (int ki = 0; ki < 2; ki++)
    fprintf(f, "%s{\"k\": %d, \"rows_steps_per_s\": %.1f, \"ms_per_step\": %.4f, \"rows_added\": %ld, \"steps_run\": "
               "%d, \"done_frac\": %.5f, \"status\": %d}",
            ki ? ", " : "", KS[ki], rf.rows_steps_per_s[ki], rf.ms_per_step[ki], rf.rows_added[ki], rf.steps_run[ki],
            rf.done_frac[ki], rf.status[ki]);
  fprintf(f, "],\n  \"rollout_population\": {\"note\": \"ms per rollout of P runs at once (%d rows and k = %d each); "
             "ratio = time(P) / time(1); P separate rollouts would take P x time(1)\", \"runs\": [", ROWS, POP_K);
  for (int i = 0; i < g_npops; i++)
    fprintf(f, "%s{\"P\": %d, \"ms\": %.3f, \"rows_added\": %ld, \"ratio_to_p1\": %.3f}", i ? ", " : "", POPS[i],
            rf.pop_ms[i], rf.pop_rows[i], rf.pop_ms[i] / rf.pop_ms[0]);
  fprintf(f, "]},\n  \"e2e\": {\"measured\": %s, \"env_steps_after_exploration\": %ld, \"wall_s\": %.2f, ",
          ef.ok ? "true" : "false", ef.steps, ef.wall_s);
  if (ef.ok) fprintf(f, "\"s_per_1000_env_steps\": %.3f, \"last_epoch\": %.0f, ", ef.s_per_1000, ef.last_epoch);
  fprintf(f, "\"note\": ");
  json_str(f, ef.note);
  fprintf(f, ", \"late\": \"not measured (epoch-100 state or a synthetic pool of that size: to do)\"},\n");
  if (p.line[0]) fprintf(f, "  \"peer_torch\": %s,\n", p.line);
  else {
    fprintf(f, "  \"peer_torch\": {\"skipped\": ");
    json_str(f, p.skip);
    fprintf(f, "},\n");
  }
  printf("ratios (C time / torch time; < 1: C faster):\n");
  const double ms1 = rf.ms_per_step[0];
  fprintf(f, "  \"ratio_c_over_torch\": {");
  ratio(f, "sac_graph_vs_eager", sf.us_graph, &p, "sac_eager_us", ", ");
  ratio(f, "sac_graph_vs_graph", sf.us_graph, &p, "sac_graph_us", ", ");
  ratio(f, "sac_graph_vs_compile", sf.us_graph, &p, "sac_compile_us", ", ");
  ratio(f, "model_graph_vs_eager", mf.us_graph, &p, "model_eager_us", ", ");
  ratio(f, "model_graph_vs_graph", mf.us_graph, &p, "model_graph_us", ", ");
  ratio(f, "rollout_step_k1_vs_eager_ms", ms1, &p, "rollout_eager_ms", ", ");
  ratio(f, "rollout_step_k1_vs_graph_ms", ms1, &p, "rollout_graph_ms", ", ");
  double t1 = p.line[0] ? json_num(p.line, "rollout_k1_rows_steps_per_s") : -1;
  double t5 = p.line[0] ? json_num(p.line, "rollout_k5_rows_steps_per_s") : -1;
  fprintf(f, "\"rollout_k1_rows_steps\": ");
  if (t1 > 0) fprintf(f, "%.4f", t1 / rf.rows_steps_per_s[0]);
  else fprintf(f, "null");
  fprintf(f, ", \"rollout_k5_rows_steps\": ");
  if (t5 > 0) fprintf(f, "%.4f", t5 / rf.rows_steps_per_s[1]);
  else fprintf(f, "null");
  fprintf(f, "},\n  \"targets\": {");
  target(f, "sac_update_us", sf.us_graph, 40, ", ");
  target(f, "model_step_us", mf.us_graph, 60, ", ");
  target(f, "rollout_step_100k_ms", ms1, 4, "");
  fprintf(f, "}\n}\n");
  fclose(f);
  printf("wrote %s\n", out);

  model_free(hm);
  poold_free(c, real);
  sacd_free(sd);
  sac_free(hs);
  dx_destroy(c);
  return sf.finite ? 0 : 1;
}
