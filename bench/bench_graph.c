/* bench_graph.c: the structure of the device programs' graphs, counted on the host emulation (the
 * same counts as on a GPU: dx.h's ops and critical path are kept the same way on both kinds).
 *
 *   bench_graph [out.json]          (default: bench/results/graph.json)
 *
 * Figures (Hopper dimensions: obs 11, act 3; SAC 2 x 256, batch 256; G = 20):
 *   sac_update_ops / sac_update_critical_path at P = 1 and P = 16: one captured sacd_update_runs;
 *   env_step_ops / env_step_critical_path at P = 1 and P = 16: the per-env-step graph as the loop's
 *     device backend captures it (host/dev/backend_dev.c: inputs in from pinned memory, G x
 *     (minibatch draw, update, counter), every run's next action, outputs back to pinned memory);
 *   rollout_step_ops: the ops one model-rollout step launches at 100,000 rows (rolloutd_run with
 *     k = 2 minus k = 1; not captured; sizes do not change the count, so the nets are small), with
 *     the model in chunks of the host emulation's default and of a GPU's (rollout_dev.h);
 *   model_fit_instantiations_per_run (captures = instantiations on a GPU) and model_fits: a short
 *     Hopper run of `mbpo train` on the emulated device (MBPO_DEVICE_EMULATE=1, MBPO_DX_TRACE=1,
 *     small nets), counting the "model fit" graphs it captured, with the size and critical path of
 *     each of the fitter's three (a block of K minibatch steps, the epoch's tail, a scoring chunk);
 *     with its env step graph's figures as a cross-check of the in-process ones.
 * Timings are bench_gpu's (bench/results/gpu.json), on a GPU. Exit status 1 when a figure could not
 * be measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dx.h"
#include "model.h"
#include "model_dev.h"
#include "nn_dev.h"
#include "pool_dev.h"
#include "pool_k.h"
#include "rng.h"
#include "rollout_dev.h"
#include "sac.h"
#include "sac_dev.h"
#include "termination.h"
#include "bench_util.h"

enum { OBS = 11, ACT = 3, BATCH = 256, G = 20, NREAL = 12, ROWS = 100000 };

typedef struct graph_fig {
  long ops, crit;
} graph_fig;

static sac* hopper_agent(void) {
  sac_params sp = sac_params_default(ACT);
  sp.hidden = 256;
  sp.batch = BATCH;
  return sac_create(OBS, ACT, &sp, (rng_key){1, RNG_INIT});
}

/* One captured update of P runs. */
static graph_fig sac_update_fig(dx_ctx* c, const sac* h, int P) {
  const sac** hosts = xmalloc(sizeof *hosts * (size_t)P);
  for (int q = 0; q < P; q++) hosts[q] = h;
  const size_t R = (size_t)P, B = R * BATCH;
  sac_dev* d = sacd_create_runs(c, hosts, P, 1);
  float *obs = dx_allocf(c, B * OBS), *nxt = dx_allocf(c, B * OBS), *act = dx_allocf(c, B * ACT);
  float *rew = dx_allocf(c, B), *done = dx_allocf(c, B), *stats = dx_allocf(c, R * SACD_NSTATS);
  uint64_t* upd = dx_alloc(c, R * sizeof(uint64_t));
  int* active = dx_alloc(c, R * sizeof(int));
  dx_capture_begin(c);
  sacd_update_runs(d, obs, act, rew, nxt, done, BATCH, upd, 1, active, stats);
  dx_graph* g = dx_capture_end(c);
  graph_fig f = {dx_graph_ops(g), dx_graph_critical_path(g)};
  dx_graph_free(c, g);
  void* bufs[] = {obs, nxt, act, rew, done, stats, upd, active};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  sacd_free(d);
  free(hosts);
  printf("SAC update, P = %2d: %ld ops, critical path %ld\n", P, f.ops, f.crit);
  return f;
}

/* The env step graph of P runs as host/dev/backend_dev.c captures it (enq_inputs, G x enq_update,
 * enq_act_outputs). */
static graph_fig env_step_fig(dx_ctx* c, const sac* h, pool_dev* real, int P) {
  const sac** hosts = xmalloc(sizeof *hosts * (size_t)P);
  poolk_batch_src* srcs = xmalloc(sizeof *srcs * (size_t)P);
  for (int q = 0; q < P; q++) {
    hosts[q] = h;
    memset(&srcs[q], 0, sizeof srcs[q]);
    srcs[q].real = (poolk_rows){{real->obs, real->act, real->rew, real->next_obs, real->done}};
    srcs[q].model = srcs[q].real;
    srcs[q].real_state = real->state;
    srcs[q].model_state = real->state;
    srcs[q].key = (rng_key){(uint32_t)q, RNG_SAC_BATCH};
    srcs[q].nreal = NREAL;
  }
  const size_t R = (size_t)P, B = R * BATCH;
  sac_dev* d = sacd_create_runs(c, hosts, P, 1);
  poolk_batch_src* dsrcs = dx_alloc(c, R * sizeof *srcs);
  dx_upload(c, dsrcs, srcs, R * sizeof *srcs);
  rng_key* keys = dx_alloc(c, R * sizeof(rng_key));
  int* active = dx_alloc(c, R * sizeof(int));
  uint64_t *upd = dx_alloc(c, R * sizeof(uint64_t)), *env = dx_alloc(c, R * sizeof(uint64_t));
  float *obs = dx_allocf(c, B * OBS), *nxt = dx_allocf(c, B * OBS), *act = dx_allocf(c, B * ACT);
  float *rew = dx_allocf(c, B), *done = dx_allocf(c, B), *stats = dx_allocf(c, R * SACD_NSTATS);
  float *obs1 = dx_allocf(c, R * OBS), *act1 = dx_allocf(c, R * ACT);
  char* io = dx_alloc_pinned(c, R * (sizeof(int) + sizeof(uint64_t) + (OBS + ACT + SACD_NSTATS) * sizeof(float)));
  int* io_active = (int*)io;
  uint64_t* io_env = (uint64_t*)(io + R * sizeof(int));
  float* io_obs = (float*)(io + R * (sizeof(int) + sizeof(uint64_t)));
  float *io_act = io_obs + R * OBS, *io_stats = io_act + R * ACT;
  dx_sync(c);
  dx_capture_begin(c);
  dx_upload(c, active, io_active, R * sizeof(int));
  dx_upload(c, env, io_env, R * sizeof(uint64_t));
  dx_upload(c, obs1, io_obs, R * OBS * sizeof(float));
  for (int g = 0; g < G; g++) {
    poold_sample_gather_runs(c, dsrcs, P, upd, 1, BATCH, OBS, ACT, obs, act, rew, nxt, done);
    sacd_update_runs_advance(d, obs, act, rew, nxt, done, BATCH, upd, 1, active, stats);
  }
  sacd_act_runs(d, obs1, 1, 0, keys, 0, env, 1, act1);
  dx_download(c, io_act, act1, R * ACT * sizeof(float));
  dx_download(c, io_stats, stats, R * SACD_NSTATS * sizeof(float));
  dx_graph* gr = dx_capture_end(c);
  graph_fig f = {dx_graph_ops(gr), dx_graph_critical_path(gr)};
  dx_graph_free(c, gr);
  void* bufs[] = {dsrcs, keys, active, upd, env, obs, nxt, act, rew, done, stats, obs1, act1};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dx_free_pinned(c, io);
  sacd_free(d);
  free(hosts);
  free(srcs);
  printf("env step graph, G = %d, P = %2d: %ld ops, critical path %ld\n", G, P, f.ops, f.crit);
  return f;
}

/* Ops of one rollout step at ROWS rows, the model in chunks of `chunk` rows: a k = 2 rollout minus
 * a k = 1 one. */
static long rollout_step_ops(dx_ctx* c, const sac* h, pool_dev* real, int chunk) {
  mbpo_config cfg;
  cfg_defaults(&cfg);
  model_params mp = model_params_from_config(&cfg);
  mp.hidden = 8; /* the count does not depend on the widths; the emulation's time does */
  dyn_model* hm = model_create(OBS, ACT, &mp, (rng_key){1, 0});
  model_dev* md = modeld_create(c, hm, 1);
  sac_dev* agent = sacd_create(c, h, 1);
  rolloutd_model rm = {.net = &md->net, .params = md->params, .max_lv = md->max_lv, .min_lv = md->min_lv,
                       .norm_mean = md->norm_mean, .norm_std = md->norm_std, .elites = md->elites,
                       .n_elites = md->p.elites};
  rollout_dev* r = rolloutd_create_runs(c, &md->net, &agent->pi, OBS, ACT, 1, ROWS, TERM_HALFCHEETAH, chunk);
  pool_dev* mpool = poold_create(c, OBS, ACT, (long)ROWS * 2);
  rng_key key = {1, RNG_ROLLOUT};
  rollout_stats st;
  long n[2];
  for (int k = 1; k <= 2; k++) {
    const long o0 = dx_ops_total();
    rolloutd_run(r, &rm, &agent->pi, agent->pi_w, real, mpool, ROWS, k, key, (uint32_t)k, &st);
    n[k - 1] = dx_ops_total() - o0;
  }
  poold_free(c, mpool);
  rolloutd_free(r);
  sacd_free(agent);
  modeld_free(md);
  model_free(hm);
  printf("rollout of %d rows in chunks of %d: k = 1: %ld ops, k = 2: %ld ops, one step %ld ops\n", ROWS, chunk, n[0],
         n[1], n[1] - n[0]);
  return n[1] - n[0];
}

/* A short Hopper run on the emulated device, its traced graphs counted. */
typedef struct run_fig {
  int ok;
  long fits, fit_captures, step_ops, step_crit, captures;
  long fit_ops[3], fit_crit[3]; /* the fitter's block, tail and scoring-chunk graphs */
  int block_steps;
  char cmd[1024];
} run_fig;

static run_fig short_run(void) {
  run_fig f;
  memset(&f, 0, sizeof f);
  const char* bin = getenv("MBPO_BIN");
  if (!bin || !*bin) bin = "build/mbpo";
  char dir[] = "/tmp/bench_graph.XXXXXX";
  if (!mkdtemp(dir)) return f;
  snprintf(f.cmd, sizeof f.cmd,
           "MBPO_DEVICE_EMULATE=1 MBPO_DX_TRACE=1 %s train hopper steps=1100 epoch_length=100 init_steps=200 "
           "min_pool=250 model.train_freq=100 model.hidden=16 model.max_epochs=3 rollout.batch=400 sac.hidden=16 "
           "sac.updates=%d eval.episodes=1 threads=1 run_dir=%s/run",
           bin, G, dir);
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "%s 2>&1 >/dev/null | grep '^dx trace: graph'", f.cmd);
  printf("short run: %s\n", f.cmd);
  fflush(stdout);
  FILE* p = popen(cmd, "r");
  if (!p) return f;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    f.captures++;
    long ops = 0, crit = 0;
    const char* tail = strstr(line, "\": ");
    if (tail) sscanf(tail, "\": %ld ops, critical path %ld", &ops, &crit);
    if (strstr(line, "model fit")) {
      const char* k = strstr(line, "): ");
      const int which = strstr(line, "minibatch step") ? 0 : strstr(line, "shuffles") ? 1 : 2;
      if (which == 0 && k) f.block_steps = atoi(k + 3);
      f.fit_ops[which] = ops, f.fit_crit[which] = crit;
      f.fit_captures++;
    }
    if (strstr(line, "SAC updates each")) f.step_ops = ops, f.step_crit = crit;
  }
  f.ok = pclose(p) == 0 && f.captures > 0;
  char csv[600];
  snprintf(csv, sizeof csv, "tail -n +2 %s/run/*/model_train.csv | wc -l", dir); /* rows less the header */
  FILE* m = popen(csv, "r");
  if (m) {
    if (fscanf(m, "%ld", &f.fits) != 1) f.fits = 0;
    pclose(m);
  }
  char rm[600];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) fprintf(stderr, "bench_graph: could not remove %s\n", dir);
  printf("short run: %ld graphs captured, %ld of them the model fit's, over %ld fits; env step graph %ld ops, "
         "critical path %ld; fit graphs (ops, critical path): %d-step block %ld, %ld; tail %ld, %ld; scoring chunk "
         "%ld, %ld\n", f.captures, f.fit_captures, f.fits, f.step_ops, f.step_crit, f.block_steps, f.fit_ops[0],
         f.fit_crit[0], f.fit_ops[1], f.fit_crit[1], f.fit_ops[2], f.fit_crit[2]);
  return f;
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "bench/results/graph.json";
  const bench_machine mach = bench_machine_read();
  dx_ctx* c = dx_create(DX_HOST);
  sac* h = hopper_agent();
  pool_dev* real = poold_create(c, OBS, ACT, 5000);
  {
    const long n = 5000;
    float* obs = calloc((size_t)n * OBS, sizeof(float));
    float* act = calloc((size_t)n * ACT, sizeof(float));
    float* rew = calloc((size_t)n, sizeof(float));
    float* done = calloc((size_t)n, sizeof(float));
    for (long i = 0; i < n * OBS; i++) obs[i] = 0.1f * rng_normal((rng_key){3, RNG_TEST}, 0, 0, (uint64_t)i);
    poold_add_host(c, real, n, obs, act, rew, obs, done);
    dx_sync(c);
    free(obs), free(act), free(rew), free(done);
  }
  graph_fig su[2] = {sac_update_fig(c, h, 1), sac_update_fig(c, h, 16)};
  graph_fig es[2] = {env_step_fig(c, h, real, 1), env_step_fig(c, h, real, 16)};
  const long ro = rollout_step_ops(c, h, real, ROLLOUTD_CHUNK_HOST), ro_gpu = rollout_step_ops(c, h, real, ROLLOUTD_CHUNK);
  poold_free(c, real);
  sac_free(h);
  dx_destroy(c);
  run_fig rf = short_run();

  FILE* f = bench_json_open(out, "graph", mach.cpu, mach.commit, mach.cores, mach.load0, loadavg1());
  if (!f) return 1;
  fprintf(f, "  \"counted_on\": \"host emulation (dx.h: the same op counts and critical paths as a GPU)\",\n");
  fprintf(f, "  \"shapes\": \"Hopper: obs 11, act 3, SAC 2 x 256, batch 256, G = %d\",\n", G);
  fprintf(f, "  \"sac_update_ops\": {\"P1\": %ld, \"P16\": %ld},\n", su[0].ops, su[1].ops);
  fprintf(f, "  \"sac_update_critical_path\": {\"P1\": %ld, \"P16\": %ld},\n", su[0].crit, su[1].crit);
  fprintf(f, "  \"env_step_ops\": {\"P1\": %ld, \"P16\": %ld},\n", es[0].ops, es[1].ops);
  fprintf(f, "  \"env_step_critical_path\": {\"P1\": %ld, \"P16\": %ld},\n", es[0].crit, es[1].crit);
  fprintf(f, "  \"rollout_step_ops\": {\"chunk_%d_host_default\": %ld, \"chunk_%d_gpu_default\": %ld},\n",
          ROLLOUTD_CHUNK_HOST, ro, ROLLOUTD_CHUNK, ro_gpu);
  fprintf(f, "  \"rollout_rows\": %d,\n", ROWS);
  fprintf(f, "  \"short_run\": {\"ok\": %s, \"command\": ", rf.ok ? "true" : "false");
  json_str(f, rf.cmd);
  fprintf(f, ", \"model_fits\": %ld, \"graphs_captured\": %ld, \"env_step_ops\": %ld, \"env_step_critical_path\": %ld},\n",
          rf.fits, rf.captures, rf.step_ops, rf.step_crit);
  fprintf(f, "  \"model_fit_instantiations_per_run\": %ld,\n", rf.fit_captures);
  fprintf(f, "  \"model_fit_graphs\": {\"block\": {\"steps\": %d, \"ops\": %ld, \"critical_path\": %ld}, "
             "\"tail\": {\"ops\": %ld, \"critical_path\": %ld}, \"score_chunk\": {\"ops\": %ld, \"critical_path\": %ld}, "
             "\"note\": \"captured once per fitter; an epoch launches the block ceil(steps / K) times, the tail once, "
             "the scoring chunk once per 5120 scored rows\"},\n",
          rf.block_steps, rf.fit_ops[0], rf.fit_crit[0], rf.fit_ops[1], rf.fit_crit[1], rf.fit_ops[2], rf.fit_crit[2]);
  fprintf(f, "  \"gpu_timings\": \"bench/results/gpu.json (bench_gpu, on a GPU)\"\n}\n");
  fclose(f);
  printf("wrote %s\n", out);
  return rf.ok ? 0 : 1;
}
