/* test_batch_split.c: the real/model split of every SAC batch in a training run, through the real
 * binary and its checkpoints.
 *
 * docs/algorithm.md: each of the G SAC updates of an env step trains on a batch of sac.batch rows,
 * int(sac.batch * sac.real_ratio) of them drawn uniformly from the real pool D_env and the rest from
 * the model pool D_model (256 * 0.05 = 12.8: 12 real rows, 244 model rows). Index draws: real row j
 * = rng_index((seed, RNG_SAC_BATCH), update index, j), model row j the same at j + 12 (pool.h).
 *
 * The loop's batches are not visible from outside, so the test replays them: two runs of one
 * configuration (device=cpu, threads=1) interrupted after training steps N and N + 1
 * (MBPO_TEST_INTERRUPT_STEP; an interrupted run equals the uninterrupted one, test_resume) give the
 * agent before and after step N + 1's G updates; step N + 1 is chosen without a model fit, so the
 * pools the updates drew from are the second checkpoint's. The test rebuilds the agent (sac.h) and
 * both pools (pool.h) from the first and second checkpoint (npz.h), runs the G updates itself with
 * the 12 + 244 split, and must obtain the second checkpoint's agent bit for bit. The same replay
 * with 11 or 13 real rows, or with the real and model draws swapped, must not: it shows that the
 * comparison can tell the splits apart.
 *
 * Only library APIs in include/ and the checkpoint format (include/checkpoint.h) are used. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "config.h"
#include "npy.h"
#include "npz.h"
#include "pool.h"
#include "rng.h"
#include "sac.h"
#include "test.h"
#include "tmp_files.h"
#include "threads.h"

#define ARGS                                                                                      \
  "inverted_pendulum device=cpu threads=1 steps=300 epoch_length=100 init_steps=100 min_pool=250 " \
  "model.train_freq=50 rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=3 "             \
  "model.max_epochs=5 eval.episodes=1 max_path_length=100 rollout.min_epoch=0 rollout.max_epoch=2 " \
  "rollout.max_length=3"
enum { STEP = 230, F = 50 }; /* epoch 1, t = 76 (epoch 0 runs 154 steps): no model fit at t = 76 */

static char g_dir[] = "/tmp/mbpo-split-XXXXXX";

/* The npz entry name as float32 data of n elements into out; 0 or -1. */
static int get_f32(npz_archive* a, const char* name, float* out, size_t n) {
  npy_array t;
  char e[512];
  if (npz_get(a, name, &t, e, sizeof e) != 0) {
    fprintf(stderr, "  %s: %s\n", name, e);
    return -1;
  }
  int ok = t.type == NPY_F32 && t.count == n;
  if (ok) memcpy(out, t.data, n * sizeof(float));
  else fprintf(stderr, "  %s: %zu elements of type %d, want %zu float32\n", name, t.count, t.type, n);
  npy_free(&t);
  return ok ? 0 : -1;
}

/* A scalar or an element of an int64/float64 vector; NAN when missing. */
static double get_num(npz_archive* a, const char* name, size_t i) {
  npy_array t;
  char e[512];
  if (npz_get(a, name, &t, e, sizeof e) != 0) return NAN;
  double v = NAN;
  if (i < t.count && t.type == NPY_I64) v = (double)((long long*)t.data)[i];
  if (i < t.count && t.type == NPY_F64) v = ((double*)t.data)[i];
  npy_free(&t);
  return v;
}

/* The pool saved under prefix ("real", "model_pool"), in its physical layout. NULL on failure. */
static pool* load_pool(npz_archive* a, const char* prefix, int od, int ad) {
  char n[64];
  snprintf(n, sizeof n, "%s/cap", prefix);
  long cap = (long)get_num(a, n, 0);
  snprintf(n, sizeof n, "%s/next", prefix);
  long next = (long)get_num(a, n, 0);
  snprintf(n, sizeof n, "%s/rew", prefix);
  npy_array t;
  char e[512];
  if (cap <= 0 || npz_get(a, n, &t, e, sizeof e) != 0) return NULL;
  long rows = (long)t.count;
  npy_free(&t);
  pool* p = pool_create(od, ad, cap);
  p->size = rows;
  p->next = next;
  const char* f[5] = {"obs", "act", "rew", "next_obs", "done"};
  float* d[5] = {p->obs, p->act, p->rew, p->next_obs, p->done};
  size_t w[5] = {(size_t)od, (size_t)ad, 1, (size_t)od, 1};
  for (int i = 0; i < 5; i++) {
    snprintf(n, sizeof n, "%s/%s", prefix, f[i]);
    if (get_f32(a, n, d[i], (size_t)rows * w[i]) != 0) {
      pool_free(p);
      return NULL;
    }
  }
  return p;
}

/* The agent of a checkpoint (config c): every tensor sac_tensors lists and the Adam step counts. */
static sac* load_agent(npz_archive* a, const mbpo_config* c, int od, int ad) {
  sac_params sp = sac_params_from_config(c);
  sac* s = sac_create(od, ad, &sp, (rng_key){(uint32_t)c->seed, RNG_INIT});
  sac_tensor t[SAC_NTENSORS];
  int nt = sac_tensors(s, t);
  for (int i = 0; i < nt; i++) {
    char n[160];
    snprintf(n, sizeof n, "sac/%s", t[i].name);
    if (get_f32(a, n, t[i].data, t[i].n) != 0) {
      sac_free(s);
      return NULL;
    }
  }
  s->pi_adam->t = (long)get_num(a, "loop/counters", 10);
  s->q_adam->t = (long)get_num(a, "loop/counters", 11);
  s->alpha_adam->t = (long)get_num(a, "loop/counters", 12);
  return s;
}

/* The number of floats of a that differ from b's, over every tensor. */
static long agent_diff(sac* a, sac* b) {
  sac_tensor ta[SAC_NTENSORS], tb[SAC_NTENSORS];
  int n = sac_tensors(a, ta);
  sac_tensors(b, tb);
  long d = 0;
  for (int i = 0; i < n; i++)
    for (size_t j = 0; j < ta[i].n; j++) d += memcmp(&ta[i].data[j], &tb[i].data[j], sizeof(float)) != 0;
  return d;
}

/* G updates from agent s (update counter u0) on batches of nreal rows of `first` and the rest of
 * `second` (each pool drawn with index offsets 0 and nreal, as the loop does). */
static void replay(sac* s, const pool* first, const pool* second, int nreal, int B, long G, uint64_t u0,
                   uint32_t seed) {
  int od = first->obs_dim, ad = first->act_dim;
  uint32_t* idx = malloc(sizeof(uint32_t) * (size_t)B);
  float *obs = malloc(sizeof(float) * (size_t)B * (size_t)od), *act = malloc(sizeof(float) * (size_t)B * (size_t)ad);
  float *rew = malloc(sizeof(float) * (size_t)B), *next = malloc(sizeof(float) * (size_t)B * (size_t)od);
  float* done = malloc(sizeof(float) * (size_t)B);
  rng_key bk = {seed, RNG_SAC_BATCH};
  for (long g = 0; g < G; g++) {
    uint64_t u = u0 + (uint64_t)g;
    uint32_t c0 = (uint32_t)u, c1 = (uint32_t)(u >> 32);
    pool_sample_indices(first, bk, c0, c1, 0, nreal, idx);
    pool_gather(first, idx, nreal, obs, act, rew, next, done);
    pool_sample_indices(second, bk, c0, c1, (uint64_t)nreal, B - nreal, idx + nreal);
    pool_gather(second, idx + nreal, B - nreal, obs + (size_t)nreal * od, act + (size_t)nreal * ad, rew + nreal,
                next + (size_t)nreal * od, done + nreal);
    sac_update(s, obs, act, rew, next, done, B, u, NULL);
  }
  free(idx);
  free(obs);
  free(act);
  free(rew);
  free(next);
  free(done);
}

/* Train tag interrupted after training step n; the path of its checkpoint in out. 0 or -1. */
static int interrupted(const char* bin, const char* tag, int n, char* out, size_t len) {
  char cmd[2048], run[700], name[256] = "";
  snprintf(cmd, sizeof cmd, "MBPO_TEST_INTERRUPT_STEP=%d '%s' train " ARGS " run_dir=%s tag=%s > %s/%s.log 2>&1", n,
           bin, g_dir, tag, g_dir, tag);
  int st = system(cmd);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "interrupted run %s failed: %s", tag, cmd);
  snprintf(run, sizeof run, "%s/inverted_pendulum-%s-s0", g_dir, tag);
  snprintf(cmd, sizeof cmd, "%s/checkpoint.latest", run);
  FILE* f = fopen(cmd, "r");
  if (!f || !fgets(name, sizeof name, f)) name[0] = '\0';
  if (f) fclose(f);
  name[strcspn(name, "\n")] = '\0';
  CHECK(strstr(name, "-t") != NULL, "%s: checkpoint.latest names '%s', not a mid-epoch checkpoint", tag, name);
  snprintf(out, len, "%s/%s", run, name);
  return tst_case_failed ? -1 : 0;
}

static void test_real_model_split(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!mkdtemp(g_dir)) SKIP("cannot create a temporary folder");
  threads_set(1); /* as the runs: the same GEMM sums */
  char pa[1200], pb[1200], err[1024];
  if (interrupted(bin, "a", STEP, pa, sizeof pa) != 0 || interrupted(bin, "b", STEP + 1, pb, sizeof pb) != 0) return;
  mbpo_config c;
  cfg_defaults(&c);
  char ini[800];
  snprintf(ini, sizeof ini, "%s/inverted_pendulum-a-s0/config.ini", g_dir);
  CHECK(cfg_load_ini(&c, ini, err, sizeof err) == 0, "%s", err);
  const int B = (int)c.sac_batch, nreal = (int)(c.sac_batch * c.sac_real_ratio);
  CHECK(B == 256 && nreal == 12, "batch %d, %d real rows: the test expects 256 and int(256 * 0.05) = 12", B, nreal);
  npz_archive *a = npz_open(pa, err, sizeof err), *b = a ? npz_open(pb, err, sizeof err) : NULL;
  CHECK(a && b, "cannot open the checkpoints: %s", err);
  if (!a || !b) {
    if (a) npz_close(a);
    return;
  }
  const int od = 4, ad = 1;
  /* step N + 1 ran G updates and no model fit: the counters say so */
  double upd_a = get_num(a, "loop/counters", 2), upd_b = get_num(b, "loop/counters", 2);
  double fits_a = get_num(a, "loop/counters", 3), fits_b = get_num(b, "loop/counters", 3);
  double t_a = get_num(a, "loop/counters", 6);
  CHECK(upd_b - upd_a == c.sac_updates && fits_a == fits_b && (long)t_a % F != 0,
        "step %d: updates %g -> %g (G = %ld), fits %g -> %g, t %g", STEP + 1, upd_a, upd_b, c.sac_updates, fits_a,
        fits_b, t_a);
  sac *before = load_agent(a, &c, od, ad), *after = load_agent(b, &c, od, ad);
  pool *real = load_pool(b, "real", od, ad), *model = load_pool(b, "model_pool", od, ad);
  CHECK(before && after && real && model, "cannot rebuild the agent or the pools from the checkpoints");
  if (before && after && real && model) {
    CHECK(real->size >= c.min_pool && model->size > B, "pools of %ld and %ld rows", real->size, model->size);
    struct {
      const char* what;
      int nreal, swap, want_same;
    } cases[] = {{"12 real + 244 model rows", nreal, 0, 1},
                 {"11 real rows", nreal - 1, 0, 0},
                 {"13 real rows", nreal + 1, 0, 0},
                 {"the real and model draws swapped", B - nreal, 1, 0}};
    for (int i = 0; i < 4; i++) {
      sac* s = load_agent(a, &c, od, ad);
      replay(s, cases[i].swap ? model : real, cases[i].swap ? real : model, cases[i].nreal, B, c.sac_updates,
             (uint64_t)upd_a, (uint32_t)c.seed);
      long d = agent_diff(s, after);
      if (cases[i].want_same)
        CHECK(d == 0, "replaying step %d's updates with %s: %ld floats differ from the run's agent", STEP + 1,
              cases[i].what, d);
      else
        CHECK(d > 0, "replaying with %s gives the run's agent too: the comparison cannot see the split",
              cases[i].what);
      sac_free(s);
    }
    CHECK(agent_diff(before, after) > 0, "the agent did not change in step %d", STEP + 1);
  }
  sac_free(before);
  sac_free(after);
  if (real) pool_free(real);
  if (model) pool_free(model);
  npz_close(a);
  npz_close(b);
}

int main(void) {
  RUN(test_real_model_split);
  if (g_dir[sizeof g_dir - 2] != 'X') tmp_dir_done(g_dir, tst_fail);
  return test_done();
}
