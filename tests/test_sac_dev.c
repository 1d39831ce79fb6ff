/* test_sac_dev.c: the device SAC agent (sac_dev.h) against the CPU agent (sac.h), on the host
 * emulation always and on the GPU when one is usable (else each GPU case is a visible skip).
 * Hopper dimensions (obs 11, act 3), hidden 256, batch 256; the agent is moved off its initial
 * state first (log alpha -0.3, perturbed targets, nonzero critic biases, log sigma outputs
 * straddling both clip bounds, two host updates so that the Adam moments and counts are nonzero).
 * Errors are max |got - ref| / max |ref| per buffer. Tolerances (host emulation / GPU):
 *   one update: gradients 1e-6 / 1e-3; parameters, targets, log alpha, Adam moments 1e-6 / 5e-3
 *     (Adam normalises the gradient, so an element whose gradient is at rounding level can move
 *     by up to 2 lr on either side); statistics 1e-6 / 1e-3 relative (they are stored as float);
 *     and the update's displacement (after - before, against the CPU agent's, normalized by its
 *     largest element) 1e-5 / 0.1: 5e-3 of the largest weight is more than one Adam step (~3e-4),
 *     so only the displacement shows a GPU update that changed nothing (it measures 1 then)
 *   one update with exactly tied critics (min's gradient split equally), and one of 100 rows with
 *     no statistics requested: as above
 *   G = 5 updates captured once with nnd_ctr_add of the update counter (crossing 2^32, so both
 *     counter words are read on the device) and replayed 3 times vs 15 sac_update calls:
 *     state 1e-5 / 1e-2, displacement over the 15 updates 1e-4 / 0.2, the last replay's statistics
 *     1e-5 / 1e-2
 *   acting (stochastic, deterministic, and captured with the env-step counter advanced on the
 *     device) vs sac_act: 1e-6 / 1e-4
 *   upload / download round trip: exact.
 * Populations (sacd_*_runs), P = 3 runs from three host agents of different seeds and settings (lr,
 * gamma, tau, target entropy, reward scale, initial log alpha), against three P = 1 device agents
 * that take the same updates on the same rows with the same update numbers:
 *   3 updates with run 1 masked off, then 2 with every run, per-run counters 1 or 2 words apart:
 *     the masked run's state untouched (exact); then every run's parameters, targets, log alpha,
 *     Adam moments and counts, and the active runs' statistics of every update, equal to its
 *     P = 1 agent's (host emulation bit for bit; GPU 1e-2, as the graph case)
 *   acting (deterministic, stochastic; per-run keys and counters) equal row by row to sacd_act of
 *     the P = 1 agents (bit for bit / 1e-4). GPU bounds of the population cases not yet measured.
 *   one launch per op for all runs: the dx-level ops of a captured update (dx_graph_ops) are the
 *     same at P = 1, 2 and 6, on both kinds; the CUDA node count (cuBLAS adds nodes of its own that
 *     change with the batch count) is printed, not compared.
 * Lanes (dx.h): one captured update's dependency graph has a critical path of at most 27 ops of its
 *   62 (target path, critics and policy side by side; weight GEMMs beside the input-gradient
 *   chains), at P = 1 and P = 6; and two updates captured and replayed in the two other orders
 *   their dependencies allow (dx_reorder 1, 2: lower or higher lanes first), advancing the update
 *   counter inside the update (sacd_update_runs_advance), give the same bits as program order with
 *   nnd_ctr_add on the host (a missing wait shows there) and the same values within 1e-2 on a GPU
 *   (where the lanes do run side by side).
 * The host emulation performs the CPU agent's operations in its order and measures exactly equal
 * (0 error) on every state buffer on this machine; only the statistics differ (~5e-8, float
 * storage). The GPU tolerances are set from the arithmetic (libm ulps, FMA contraction, cuBLAS
 * summation order), not yet measured: every GPU comparison prints the error it measured. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dx.h"
#include "nn_dev.h"
#include "sac.h"
#include "sac_dev.h"
#include "dx_test.h"
#include "test.h"

enum { O = 11, A = 3, H = 256, NB = 256, G = 5, REPLAYS = 3, NR = 300 };
static const rng_key K = {2024, RNG_TEST};

/* ---- batches and agents ------------------------------------------------------------------ */

typedef struct batch {
  float obs[NB * O], act[NB * A], rew[NB], next[NB * O], done[NB];
} batch;

typedef struct dbatch { /* the same on the device */
  float *obs, *act, *rew, *next, *done;
} dbatch;

static void make_batch(batch* b, uint32_t c0) {
  for (int i = 0; i < NB * O; i++) b->obs[i] = rng_normal(K, c0, 0, (uint64_t)i);
  for (int i = 0; i < NB * O; i++) b->next[i] = rng_normal(K, c0, 1, (uint64_t)i);
  for (int i = 0; i < NB * A; i++) b->act[i] = 2.0f * rng_uniform(K, c0, 2, (uint64_t)i) - 1.0f;
  for (int i = 0; i < NB; i++) b->rew[i] = rng_normal(K, c0, 3, (uint64_t)i);
  for (int i = 0; i < NB; i++) b->done[i] = (i % 5 == 2) ? 1.0f : 0.0f;
}

static dbatch upload_batch(const batch* b) {
  dbatch d = {up_bytes(b->obs, sizeof b->obs), up_bytes(b->act, sizeof b->act),
              up_bytes(b->rew, sizeof b->rew), up_bytes(b->next, sizeof b->next),
              up_bytes(b->done, sizeof b->done)};
  return d;
}

static void free_dbatch(dbatch* d) {
  dx_free(ctx(), d->obs), dx_free(ctx(), d->act), dx_free(ctx(), d->rew);
  dx_free(ctx(), d->next), dx_free(ctx(), d->done);
}

static sac_params params(void) {
  sac_params p = sac_params_default(A);
  p.hidden = H;
  p.batch = NB;
  p.target_entropy = -2.5f;
  p.reward_scale = 1.3f;
  p.act_chunk = 128; /* the host acts in chunks; the device in one pass */
  return p;
}

/* An agent away from its initial state. tie: critic member 1 (and its target) equal to member 0,
 * so that min_j Q ties exactly on every row. */
static sac* make_agent_with(uint32_t seed, int tie, const sac_params* sp, float log_alpha) {
  sac_params p = *sp;
  sac* s = sac_create(O, A, &p, (rng_key){seed, 0});
  s->log_alpha[0] = log_alpha;
  for (size_t i = 0; i < s->q.nparams; i++) s->qt_w[i] += 0.02f * rng_normal(K, 50, 0, i);
  for (int l = 0; l < s->q.nlayers; l++)
    for (int j = 0; j < 2 * s->q.dims[l + 1]; j++)
      s->q_w[s->q.b_off[l] + j] = 0.1f * rng_normal(K, 51, (uint32_t)l, (uint64_t)j);
  float* bias = s->pi_w + s->pi.b_off[s->pi.nlayers - 1];
  bias[A + 0] = SAC_LOG_STD_MAX; /* log sigma 0 around the upper clip, 1 around the lower */
  bias[A + 1] = SAC_LOG_STD_MIN;
  bias[0] = 0.2f, bias[1] = -0.1f;
  batch b;
  make_batch(&b, 900);
  for (uint64_t k = 0; k < 2; k++) sac_update(s, b.obs, b.act, b.rew, b.next, b.done, NB, 500 + k, NULL);
  if (tie) {
    for (int l = 0; l < s->q.nlayers; l++) {
      size_t nw = (size_t)s->q.dims[l] * s->q.dims[l + 1], nb = (size_t)s->q.dims[l + 1];
      memcpy(s->q_w + s->q.w_off[l] + nw, s->q_w + s->q.w_off[l], nw * sizeof(float));
      memcpy(s->q_w + s->q.b_off[l] + nb, s->q_w + s->q.b_off[l], nb * sizeof(float));
      memcpy(s->qt_w + s->q.w_off[l] + nw, s->qt_w + s->q.w_off[l], nw * sizeof(float));
      memcpy(s->qt_w + s->q.b_off[l] + nb, s->qt_w + s->q.b_off[l], nb * sizeof(float));
    }
  }
  return s;
}

static sac* make_agent(uint32_t seed, int tie) {
  sac_params p = params();
  return make_agent_with(seed, tie, &p, -0.3f);
}

static sac* blank_agent(void) {
  sac_params p = params();
  return sac_create(O, A, &p, (rng_key){7, 0});
}

/* Every tensor of an agent, concatenated (the state before an update, for its displacement). */
static float* snapshot(sac* s) {
  sac_tensor t[SAC_NTENSORS];
  sac_tensors(s, t);
  size_t n = 0;
  for (int i = 0; i < SAC_NTENSORS; i++) n += t[i].n;
  float* p = malloc(n * sizeof(float));
  for (int i = 0, o = 0; i < SAC_NTENSORS; o += (int)t[i].n, i++) memcpy(p + o, t[i].data, t[i].n * sizeof(float));
  return p;
}

/* The update's displacement error max |(got - before) - (ref - before)| / max |ref - before|: a
 * missing or partial update measures about 1, whatever the size of the weights. */
static double disp_err(const float* got, const float* ref, const float* before, size_t n) {
  double m = 0, d = 0;
  for (size_t i = 0; i < n; i++) {
    double r = (double)ref[i] - before[i], g = (double)got[i] - before[i];
    if (fabs(r) > m) m = fabs(r);
    double e = got[i] != got[i] ? INFINITY : fabs(g - r);
    if (e > d) d = e;
  }
  return d == 0 ? 0 : d / (m > 1e-30 ? m : 1e-30);
}

/* Every tensor of sac_tensors and the Adam counts: the error relative to the largest value within
 * t and, given the state before (may be NULL), the displacement error within td. Both are printed
 * on the GPU (so that a first GPU run sets the bounds from data) and with TEST_VERBOSE. */
static void compare_agents_d(sac* got, sac* ref, const float* before, double t, double td, const char* what) {
  sac_tensor tg[SAC_NTENSORS], tr[SAC_NTENSORS];
  sac_tensors(got, tg);
  sac_tensors(ref, tr);
  size_t o = 0;
  for (int i = 0; i < SAC_NTENSORS; o += tr[i].n, i++) {
    double e = rel_err(tg[i].data, tr[i].data, tr[i].n);
    double ed = before ? disp_err(tg[i].data, tr[i].data, before + o, tr[i].n) : 0;
    if (getenv("TEST_VERBOSE") || g_kind == DX_CUDA)
      printf("    %s (%s) %-14s error %.3g (bound %.3g), displacement error %.3g (bound %.3g)\n", what,
             g_kind == DX_CUDA ? "cuda" : "host", tr[i].name, e, t, ed, before ? td : 0.0);
    CHECK(e <= t, "%s: %s rel err %.3g > %.3g", what, tr[i].name, e, t);
    CHECK(!before || ed <= td, "%s: %s displacement error %.3g > %.3g", what, tr[i].name, ed, td);
  }
  CHECK(got->pi_adam->t == ref->pi_adam->t && got->q_adam->t == ref->q_adam->t &&
            got->alpha_adam->t == ref->alpha_adam->t,
        "%s: Adam counts %ld %ld %ld vs %ld %ld %ld", what, got->pi_adam->t, got->q_adam->t,
        got->alpha_adam->t, ref->pi_adam->t, ref->q_adam->t, ref->alpha_adam->t);
}

static void compare_agents(sac* got, sac* ref, double t, const char* what) { compare_agents_d(got, ref, NULL, t, 0, what); }

static void compare_stats(const float* dev, const sac_stats* ref, double t, const char* what) {
  sac_stats got;
  sacd_stats_to_host(dev, &got);
  const double g[SACD_NSTATS] = {got.q1_loss, got.q2_loss, got.pi_loss, got.alpha, got.alpha_loss,
                                 got.entropy, got.q_mean};
  const double r[SACD_NSTATS] = {ref->q1_loss, ref->q2_loss, ref->pi_loss, ref->alpha, ref->alpha_loss,
                                 ref->entropy, ref->q_mean};
  for (int k = 0; k < SACD_NSTATS; k++) {
    double e = fabs(g[k] - r[k]) / (fabs(r[k]) > 1e-30 ? fabs(r[k]) : 1e-30);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "    %s stat %d: %.9g vs %.9g (rel %.3g)\n", what, k, g[k], r[k], e);
    if (g_kind == DX_CUDA) printf("    %s (cuda) statistic %d: rel err %.3g (bound %.3g)\n", what, k, e, t);
    CHECK(e <= t, "%s: statistic %d = %.9g, reference %.9g (rel %.3g > %.3g)", what, k, g[k], r[k], e, t);
  }
}

/* ---- one update -------------------------------------------------------------------------- */

/* One update of B <= NB rows (the first B rows of the batch); stats NULL when !with_stats. */
static void one_update(int tie, int B, int with_stats) {
  NEED_KIND();
  sac* ref = make_agent(31, tie);
  sac_dev* d = sacd_create(ctx(), ref, 64);
  batch b;
  make_batch(&b, 1);
  dbatch db = upload_batch(&b);
  const uint64_t k = (3ull << 32) + 12345u; /* both counter words nonzero */
  uint64_t* ctr = up_bytes(&k, sizeof k);
  float* dstats = dx_allocf(ctx(), SACD_NSTATS);

  float* before = snapshot(ref);
  sacd_update(d, db.obs, db.act, db.rew, db.next, db.done, B, ctr, with_stats ? dstats : NULL);
  sac_stats st;
  sac_update(ref, b.obs, b.act, b.rew, b.next, b.done, B, k, &st);

  /* gradients first (taken before the Adam steps) */
  float* g = malloc(ref->q.nparams * sizeof(float));
  down_into(g, d->q_g, ref->q.nparams * sizeof(float));
  double e = rel_err(g, ref->q_g, ref->q.nparams);
  CHECK(e <= tol(1e-6, 1e-3), "critic gradient rel err %.3g", e);
  if (getenv("TEST_VERBOSE") || g_kind == DX_CUDA) printf("    q_g rel err %.3g (bound %.3g)\n", e, tol(1e-6, 1e-3));
  down_into(g, d->pi_g, ref->pi.nparams * sizeof(float));
  e = rel_err(g, ref->pi_g, ref->pi.nparams);
  CHECK(e <= tol(1e-6, 1e-3), "policy gradient rel err %.3g", e);
  if (getenv("TEST_VERBOSE") || g_kind == DX_CUDA) printf("    pi_g rel err %.3g (bound %.3g)\n", e, tol(1e-6, 1e-3));
  down_into(g, d->log_alpha_g, sizeof(float));
  CHECK_CLOSE(g[0], ref->log_alpha_g[0], tol(1e-6, 1e-4));
  free(g);

  sac* got = blank_agent();
  sacd_download(d, got);
  compare_agents_d(got, ref, before, tol(1e-6, 5e-3), tol(1e-5, 0.1), tie ? "tied update" : "update");
  free(before);
  if (with_stats) {
    float hs[SACD_NSTATS];
    down_into(hs, dstats, sizeof hs);
    compare_stats(hs, &st, tol(1e-6, 1e-3), tie ? "tied update" : "update");
  }
  uint64_t k2 = 0;
  down_into(&k2, ctr, sizeof k2);
  CHECK(k2 == k, "sacd_update changed the counter: %llu", (unsigned long long)k2);

  dx_free(ctx(), ctr);
  dx_free(ctx(), dstats);
  free_dbatch(&db);
  sacd_free(d);
  sac_free(got);
  sac_free(ref);
}

static void test_update(void) { one_update(0, NB, 1); }
static void test_update_tied(void) { one_update(1, NB, 1); }
static void test_update_small_batch(void) { one_update(0, 100, 0); }

/* ---- G updates in a graph, replayed ------------------------------------------------------ */

static void test_graph(void) {
  NEED_KIND();
  sac* ref = make_agent(32, 0);
  sac_dev* d = sacd_create(ctx(), ref, 64);
  static batch b[G];
  dbatch db[G];
  for (int g = 0; g < G; g++) {
    make_batch(&b[g], 10 + (uint32_t)g);
    db[g] = upload_batch(&b[g]);
  }
  const uint64_t k0 = (1ull << 32) - 7; /* the counter's high word changes during the replays */
  uint64_t* ctr = up_bytes(&k0, sizeof k0);
  float* dstats = dx_allocf(ctx(), (size_t)G * SACD_NSTATS);

  dx_capture_begin(ctx());
  for (int g = 0; g < G; g++) {
    sacd_update(d, db[g].obs, db[g].act, db[g].rew, db[g].next, db[g].done, NB, ctr,
                dstats + (size_t)g * SACD_NSTATS);
    nnd_ctr_add(ctx(), ctr, 1);
  }
  dx_graph* graph = dx_capture_end(ctx());
  sac_stats st[G];
  float* before = snapshot(ref);
  for (int r = 0; r < REPLAYS; r++) {
    dx_graph_launch(ctx(), graph);
    for (int g = 0; g < G; g++)
      sac_update(ref, b[g].obs, b[g].act, b[g].rew, b[g].next, b[g].done, NB,
                 k0 + (uint64_t)(r * G + g), &st[g]);
  }
  dx_sync(ctx());

  sac* got = blank_agent();
  sacd_download(d, got);
  compare_agents_d(got, ref, before, tol(1e-5, 1e-2), tol(1e-4, 0.2), "graph");
  free(before);
  float hs[G * SACD_NSTATS];
  down_into(hs, dstats, sizeof hs);
  for (int g = 0; g < G; g++) compare_stats(hs + g * SACD_NSTATS, &st[g], tol(1e-5, 1e-2), "graph");
  uint64_t k = 0;
  down_into(&k, ctr, sizeof k);
  CHECK(k == k0 + G * REPLAYS, "counter %llu, expected %llu", (unsigned long long)k,
        (unsigned long long)(k0 + G * REPLAYS));
  CHECK(ref->pi_adam->t == 2 + G * REPLAYS, "host Adam count %ld", ref->pi_adam->t);

  dx_graph_free(ctx(), graph);
  dx_free(ctx(), ctr);
  dx_free(ctx(), dstats);
  for (int g = 0; g < G; g++) free_dbatch(&db[g]);
  sacd_free(d);
  sac_free(got);
  sac_free(ref);
}

/* ---- acting ------------------------------------------------------------------------------ */

static void test_act(void) {
  NEED_KIND();
  sac* ref = make_agent(33, 0);
  sac_dev* d = sacd_create(ctx(), ref, NR);
  float* obs = malloc((size_t)NR * O * sizeof(float));
  for (int i = 0; i < NR * O; i++) obs[i] = rng_normal(K, 60, 0, (uint64_t)i);
  float* dobs = up_bytes(obs, (size_t)NR * O * sizeof(float));
  float* dact = dx_allocf(ctx(), (size_t)NR * A);
  float *got = malloc((size_t)NR * A * sizeof(float)), *want = malloc((size_t)NR * A * sizeof(float));
  const rng_key ak = {2024, RNG_ACT};
  const uint64_t c1 = 77;
  uint64_t* dc1 = up_bytes(&c1, sizeof c1);
  const int rows[2] = {NR, 100};
  for (int det = 0; det < 2; det++)
    for (int ri = 0; ri < 2; ri++) {
      const int B = rows[ri];
      sacd_act(d, dobs, B, det, ak, 3, det ? NULL : dc1, dact);
      down_into(got, dact, (size_t)B * A * sizeof(float));
      sac_act(ref, obs, B, det, ak, 3, (uint32_t)c1, want);
      double e = rel_err(got, want, (size_t)B * A);
      CHECK(e <= tol(1e-6, 1e-4), "act (deterministic %d, %d rows): rel err %.3g", det, B, e);
    }
  /* captured, with the env-step counter advanced on the device between replays */
  dx_capture_begin(ctx());
  sacd_act(d, dobs, NR, 0, ak, 3, dc1, dact);
  nnd_ctr_add(ctx(), dc1, 1);
  dx_graph* graph = dx_capture_end(ctx());
  for (int r = 0; r < 3; r++) {
    dx_graph_launch(ctx(), graph);
    down_into(got, dact, (size_t)NR * A * sizeof(float));
    sac_act(ref, obs, NR, 0, ak, 3, (uint32_t)(c1 + (uint64_t)r), want);
    double e = rel_err(got, want, (size_t)NR * A);
    CHECK(e <= tol(1e-6, 1e-4), "captured act, replay %d: rel err %.3g", r, e);
  }
  dx_graph_free(ctx(), graph);
  dx_free(ctx(), dc1);
  dx_free(ctx(), dobs);
  dx_free(ctx(), dact);
  free(obs), free(got), free(want);
  sacd_free(d);
  sac_free(ref);
}

/* ---- upload / download ------------------------------------------------------------------- */

static void check_exact(sac* got, sac* ref, const char* what) {
  sac_tensor tg[SAC_NTENSORS], tr[SAC_NTENSORS];
  sac_tensors(got, tg);
  sac_tensors(ref, tr);
  for (int i = 0; i < SAC_NTENSORS; i++)
    CHECK(tg[i].n == tr[i].n && memcmp(tg[i].data, tr[i].data, tr[i].n * sizeof(float)) == 0,
          "%s: %s differs", what, tr[i].name);
  CHECK(got->pi_adam->t == ref->pi_adam->t && got->q_adam->t == ref->q_adam->t &&
            got->alpha_adam->t == ref->alpha_adam->t,
        "%s: Adam counts differ", what);
}

static void test_roundtrip(void) {
  NEED_KIND();
  sac* a = make_agent(34, 0);
  sac* b = make_agent(35, 0);
  batch x;
  make_batch(&x, 70);
  sac_update(b, x.obs, x.act, x.rew, x.next, x.done, NB, 9, NULL); /* b's Adam count is 3 */
  sac_dev* d = sacd_create(ctx(), a, 8);
  sac* got = blank_agent();
  sacd_download(d, got);
  check_exact(got, a, "create + download");
  sacd_upload(d, b);
  sacd_download(d, got);
  check_exact(got, b, "upload + download");
  sacd_free(d);
  sac_free(got);
  sac_free(a);
  sac_free(b);
}

/* ---- populations ------------------------------------------------------------------------- */

enum { NP = 3 };

/* Three agents of different seeds and settings (every per-run setting differs), moved off their
 * initial states as make_agent does. */
static void make_population(sac* hosts[NP], uint32_t seed0) {
  const float lr[NP] = {3e-4f, 1e-3f, 5e-4f}, gamma[NP] = {0.99f, 0.95f, 0.9f};
  const float tau[NP] = {5e-3f, 2e-2f, 1e-2f}, ent[NP] = {-2.5f, -1.0f, -3.5f};
  const float rs[NP] = {1.3f, 0.5f, 2.0f}, la[NP] = {-0.3f, 0.2f, -1.1f};
  for (int q = 0; q < NP; q++) {
    sac_params p = params();
    p.lr = lr[q], p.gamma = gamma[q], p.tau = tau[q], p.target_entropy = ent[q], p.reward_scale = rs[q];
    hosts[q] = make_agent_with(seed0 + (uint32_t)q, 0, &p, la[q]);
  }
}

/* a equals b exactly on the host emulation, within t (compare_agents) on the GPU */
static void check_equal(sac* a, sac* b, double t, const char* what) {
  if (g_kind == DX_HOST) check_exact(a, b, what);
  else compare_agents(a, b, t, what);
}

/* Rows [NP][B][...] of a population's update: run q's rows are the first B of its batch. */
typedef struct pop_rows {
  float obs[NP * NB * O], act[NP * NB * A], rew[NP * NB], next[NP * NB * O], done[NP * NB];
} pop_rows;

static void pack_rows(pop_rows* r, const batch* b, int B) {
  for (int q = 0; q < NP; q++) {
    memcpy(r->obs + (size_t)q * B * O, b[q].obs, (size_t)B * O * sizeof(float));
    memcpy(r->act + (size_t)q * B * A, b[q].act, (size_t)B * A * sizeof(float));
    memcpy(r->rew + (size_t)q * B, b[q].rew, (size_t)B * sizeof(float));
    memcpy(r->next + (size_t)q * B * O, b[q].next, (size_t)B * O * sizeof(float));
    memcpy(r->done + (size_t)q * B, b[q].done, (size_t)B * sizeof(float));
  }
}

/* A population of NP runs takes UPD updates, the first MASKED with run 1 inactive, on rows [NP][B]
 * with per-run update numbers ctr_stride words apart (the words between hold decoys); three P = 1
 * agents take the same updates (agent 1 skips the masked ones) on their runs' rows with the same
 * update numbers. */
static void pop_update(long ctr_stride, int B) {
  NEED_KIND();
  enum { UPD = 5, MASKED = 3 };
  dx_ctx* c = ctx();
  sac* hosts[NP];
  make_population(hosts, 40);
  sac_dev* pd = sacd_create_runs(c, (const sac* const*)hosts, NP, 16);
  sac_dev* sd[NP];
  for (int q = 0; q < NP; q++) sd[q] = sacd_create(c, hosts[q], 16);

  static batch b[NP];
  static pop_rows rows;
  const size_t nrows = (size_t)NP * B;
  float *pobs = dx_allocf(c, nrows * O), *pact = dx_allocf(c, nrows * A), *prew = dx_allocf(c, nrows),
        *pnext = dx_allocf(c, nrows * O), *pdone = dx_allocf(c, nrows);
  uint64_t* pctr = dx_alloc(c, (size_t)NP * ctr_stride * sizeof(uint64_t));
  uint64_t* sctr = dx_alloc(c, sizeof(uint64_t));
  int* dact = dx_alloc(c, NP * sizeof(int));
  float *pstats = dx_allocf(c, (size_t)NP * SACD_NSTATS), *sstats = dx_allocf(c, SACD_NSTATS);
  /* run q's n-th update has number base[q] + n (both words nonzero for run 0, crossing 2^32 for
   * run 2) */
  const uint64_t base[NP] = {(7ull << 32) + 11u, 901, (1ull << 32) - 2};
  int taken[NP] = {0, 0, 0};

  for (int u = 0; u < UPD; u++) {
    const int active[NP] = {1, u >= MASKED, 1};
    for (int q = 0; q < NP; q++) make_batch(&b[q], 200 + (uint32_t)(u * NP + q));
    pack_rows(&rows, b, B);
    dx_upload(c, pobs, rows.obs, nrows * O * sizeof(float));
    dx_upload(c, pact, rows.act, nrows * A * sizeof(float));
    dx_upload(c, prew, rows.rew, nrows * sizeof(float));
    dx_upload(c, pnext, rows.next, nrows * O * sizeof(float));
    dx_upload(c, pdone, rows.done, nrows * sizeof(float));
    uint64_t ctr[NP * 2];
    for (long j = 0; j < NP * ctr_stride; j++) ctr[j] = 0xdecafbadull * (uint64_t)(j + 1); /* decoys */
    for (int q = 0; q < NP; q++) ctr[q * ctr_stride] = base[q] + (uint64_t)taken[q];
    dx_upload(c, pctr, ctr, (size_t)NP * ctr_stride * sizeof(uint64_t));
    dx_upload(c, dact, active, sizeof active);
    dx_sync(c);
    sacd_update_runs(pd, pobs, pact, prew, pnext, pdone, B, pctr, ctr_stride, dact, pstats);
    float ps[NP * SACD_NSTATS];
    down_into(ps, pstats, sizeof ps);
    for (int q = 0; q < NP; q++) {
      if (!active[q]) continue;
      const uint64_t k = base[q] + (uint64_t)taken[q];
      dx_upload(c, sctr, &k, sizeof k);
      dx_sync(c);
      const size_t o = (size_t)q * B;
      sacd_update(sd[q], pobs + o * O, pact + o * A, prew + o, pnext + o * O, pdone + o, B, sctr, sstats);
      float ss[SACD_NSTATS];
      down_into(ss, sstats, sizeof ss);
      char what[96];
      snprintf(what, sizeof what, "stride %ld B %d update %d run %d", ctr_stride, B, u, q);
      if (g_kind == DX_HOST) {
        CHECK(memcmp(ps + q * SACD_NSTATS, ss, sizeof ss) == 0, "%s: statistics differ from P = 1", what);
      } else {
        sac_stats st;
        sacd_stats_to_host(ss, &st);
        compare_stats(ps + q * SACD_NSTATS, &st, 1e-2, what);
      }
      taken[q]++;
    }
    uint64_t back[NP * 2];
    down_into(back, pctr, (size_t)NP * ctr_stride * sizeof(uint64_t));
    CHECK(memcmp(back, ctr, (size_t)NP * ctr_stride * sizeof(uint64_t)) == 0,
          "update %d: sacd_update_runs changed the counters", u);

    if (u == MASKED - 1) { /* the masked run is exactly as created */
      sac* got = blank_agent();
      sacd_download_run(pd, 1, got);
      check_exact(got, hosts[1], "masked run after 3 masked updates");
      sac_free(got);
    }
  }

  for (int q = 0; q < NP; q++) {
    sac *got = blank_agent(), *want = blank_agent();
    sacd_download_run(pd, q, got);
    sacd_download(sd[q], want);
    char what[64];
    snprintf(what, sizeof what, "stride %ld B %d run %d", ctr_stride, B, q);
    check_equal(got, want, 1e-2, what);
    const long t = 2 + (q == 1 ? UPD - MASKED : UPD);
    CHECK(got->pi_adam->t == t && got->q_adam->t == t && got->alpha_adam->t == t,
          "%s: Adam counts %ld %ld %ld, expected %ld", what, got->pi_adam->t, got->q_adam->t,
          got->alpha_adam->t, t);
    /* and it moved: the run is not its initial state */
    CHECK(memcmp(got->pi_w, hosts[q]->pi_w, hosts[q]->pi.nparams * sizeof(float)) != 0,
          "%s: policy did not change", what);
    sac_free(got);
    sac_free(want);
  }

  float* dev[] = {pobs, pact, prew, pnext, pdone, pstats, sstats};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) dx_free(c, dev[i]);
  dx_free(c, pctr);
  dx_free(c, sctr);
  dx_free(c, dact);
  sacd_free(pd);
  for (int q = 0; q < NP; q++) {
    sacd_free(sd[q]);
    sac_free(hosts[q]);
  }
}

static void test_update_runs(void) { pop_update(1, NB); }
static void test_update_runs_stride2(void) { pop_update(2, 100); }

/* Acting of a population vs the P = 1 agents, row by row: per-run keys and per-run counters
 * (ctr_stride 2, decoys between), B = act_rows and fewer. */
static void test_act_runs(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  sac* hosts[NP];
  make_population(hosts, 60);
  sac_dev* pd = sacd_create_runs(c, (const sac* const*)hosts, NP, NR);
  sac_dev* sd[NP];
  for (int q = 0; q < NP; q++) sd[q] = sacd_create(c, hosts[q], NR);
  const size_t n_obs = (size_t)NP * NR * O, n_act = (size_t)NP * NR * A;
  float* obs = malloc(n_obs * sizeof(float));
  for (size_t i = 0; i < n_obs; i++) obs[i] = rng_normal(K, 61, 0, (uint64_t)i);
  float* dobs = up_bytes(obs, n_obs * sizeof(float));
  float *pact = dx_allocf(c, n_act), *sact = dx_allocf(c, (size_t)NR * A);
  const rng_key keys[NP] = {{2024, RNG_ACT}, {77, RNG_ACT}, {2024, RNG_ACT + 1}};
  rng_key* dkeys = up_bytes(keys, sizeof keys);
  const uint64_t ctr[NP * 2] = {77, 0xdead, (1ull << 32) + 5, 0xbeef, 3, 0xf00d};
  uint64_t* dctr = up_bytes(ctr, sizeof ctr);
  uint64_t* sctr = dx_alloc(c, sizeof(uint64_t));
  float *got = malloc(n_act * sizeof(float)), *want = malloc((size_t)NR * A * sizeof(float));
  const int rows[2] = {NR, 100};
  for (int det = 0; det < 2; det++)
    for (int ri = 0; ri < 2; ri++) {
      const int B = rows[ri];
      sacd_act_runs(pd, dobs, B, det, dkeys, 3, det ? NULL : dctr, 2, pact);
      down_into(got, pact, (size_t)NP * B * A * sizeof(float));
      for (int q = 0; q < NP; q++) {
        dx_upload(c, sctr, &ctr[2 * q], sizeof(uint64_t));
        sacd_act(sd[q], dobs + (size_t)q * B * O, B, det, keys[q], 3, det ? NULL : sctr, sact);
        down_into(want, sact, (size_t)B * A * sizeof(float));
        const float* g = got + (size_t)q * B * A;
        if (g_kind == DX_HOST) {
          CHECK(memcmp(g, want, (size_t)B * A * sizeof(float)) == 0,
                "act runs (deterministic %d, %d rows) run %d differs from P = 1 (rel err %.3g)", det, B, q,
                rel_err(g, want, (size_t)B * A));
        } else {
          double e = rel_err(g, want, (size_t)B * A);
          CHECK(e <= 1e-4, "act runs (deterministic %d, %d rows) run %d: rel err %.3g", det, B, q, e);
        }
      }
    }
  /* the runs really differ (keys, counters, policies): run 0's stochastic actions are not run 2's */
  sacd_act_runs(pd, dobs, 100, 0, dkeys, 3, dctr, 2, pact);
  down_into(got, pact, (size_t)NP * 100 * A * sizeof(float));
  CHECK(memcmp(got, got + 2 * 100 * A, 100 * A * sizeof(float)) != 0, "runs 0 and 2 act alike");
  free(obs), free(got), free(want);
  dx_free(c, dobs), dx_free(c, pact), dx_free(c, sact), dx_free(c, dkeys), dx_free(c, dctr), dx_free(c, sctr);
  sacd_free(pd);
  for (int q = 0; q < NP; q++) {
    sacd_free(sd[q]);
    sac_free(hosts[q]);
  }
}

/* One update of P runs (uninitialised batches: only the graph's shape matters) captured on c,
 * with an active mask or without (NULL). The caller frees the graph. */
static dx_graph* capture_update(dx_ctx* c, const sac* const* hosts, int P, int with_active) {
  const size_t R = (size_t)P;
  sac_dev* d = sacd_create_runs(c, hosts, P, 1);
  float* obs = dx_allocf(c, R * NB * O);
  float* next = dx_allocf(c, R * NB * O);
  float* act = dx_allocf(c, R * NB * A);
  float* rew = dx_allocf(c, R * NB);
  float* done = dx_allocf(c, R * NB);
  float* stats = dx_allocf(c, R * SACD_NSTATS);
  uint64_t* ctr = dx_alloc(c, R * sizeof(uint64_t));
  int* active = with_active ? dx_alloc(c, R * sizeof(int)) : NULL;
  dx_capture_begin(c);
  sacd_update_runs(d, obs, act, rew, next, done, NB, ctr, 1, active, stats);
  dx_graph* g = dx_capture_end(c);
  void* bufs[] = {obs, next, act, rew, done, stats, ctr, active};
  for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
    if (bufs[k]) dx_free(c, bufs[k]);
  sacd_free(d);
  return g;
}

/* One launch per op for the whole population: the dx-level ops of a captured update are the same
 * for P = 1, 2 and 6 runs (a critic GEMM over P > 1 runs is one two-level GEMM, dx_gemm2, where
 * P = 1 makes a strided one: one op either way). CUDA's node count is reported only. */
static void test_update_runs_ops(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  sac* h = make_agent(5, 0);
  const sac* hosts[6] = {h, h, h, h, h, h};
  const int Ps[3] = {1, 2, 6};
  long ops[3], nodes[3];
  for (int i = 0; i < 3; i++) {
    dx_graph* g = capture_update(c, hosts, Ps[i], 1);
    ops[i] = dx_graph_ops(g);
    nodes[i] = dx_graph_nodes(g);
    dx_graph_free(c, g);
  }
  printf("  dx ops of one captured update (%s): P = 1: %ld, P = 2: %ld, P = 6: %ld; graph nodes %ld, %ld, %ld\n",
         g_kind == DX_CUDA ? "cuda" : "host", ops[0], ops[1], ops[2], nodes[0], nodes[1], nodes[2]);
  CHECK(ops[0] > 20 && ops[0] == ops[1] && ops[1] == ops[2], "dx ops change with P: %ld, %ld, %ld at P = 1, 2, 6",
        ops[0], ops[1], ops[2]);
  sac_free(h);
}

/* ---- lanes --------------------------------------------------------------------------------- */

/* The op count and critical path of one captured update, at P = 1 and 6. */
static void test_update_critical_path(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  sac* h = make_agent(5, 0);
  const sac* hosts[6] = {h, h, h, h, h, h};
  const int Ps[2] = {1, 6};
  for (int i = 0; i < 2; i++) {
    const int P = Ps[i];
    dx_graph* g = capture_update(c, hosts, P, 0);
    const long ops = dx_graph_ops(g), crit = dx_graph_critical_path(g);
    printf("  one captured update (%s, P = %d): %ld ops, critical path %ld\n", g_kind == DX_CUDA ? "cuda" : "host",
           P, ops, crit);
    /* issue 18's targets (the fused GEMMs, dx_gemm2_ep, brought 56 ops / 24 down to 40 / 17) */
    CHECK(crit <= 20 && ops <= 40 && crit < ops, "P = %d: critical path %ld of %ld ops (at most 20 of 40)", P, crit, ops);
    CHECK(dx_lane_get(c) == 0, "the update returned on lane %d", dx_lane_get(c));
    dx_graph_free(c, g);
  }
  sac_free(h);
}

/* Two updates captured, replayed twice in program order and in the two other orders the lanes
 * allow: the same state and statistics; the program-order graph advances the update counter with
 * nnd_ctr_add after each update, the others inside it (sacd_update_runs_advance). */
static void test_update_reorder(void) {
  NEED_KIND();
  dx_ctx* c = ctx();
  sac* ref = make_agent(34, 0);
  static batch b[2];
  dbatch db[2];
  for (int g = 0; g < 2; g++) {
    make_batch(&b[g], 40 + (uint32_t)g);
    db[g] = upload_batch(&b[g]);
  }
  sac* got[3];
  float st[3][2 * SACD_NSTATS];
  for (int mode = 0; mode < 3; mode++) {
    sac_dev* d = sacd_create(c, ref, 1);
    const uint64_t k0 = 900;
    uint64_t* ctr = up_bytes(&k0, sizeof k0);
    float* dstats = dx_allocf(c, 2 * SACD_NSTATS);
    dx_capture_begin(c);
    for (int g = 0; g < 2; g++) {
      float* st_g = dstats + g * SACD_NSTATS;
      if (mode == 0) { /* the counter advanced by its own op after the update */
        sacd_update(d, db[g].obs, db[g].act, db[g].rew, db[g].next, db[g].done, NB, ctr, st_g);
        nnd_ctr_add(c, ctr, 1);
      } else { /* ... or inside it */
        sacd_update_runs_advance(d, db[g].obs, db[g].act, db[g].rew, db[g].next, db[g].done, NB, ctr, 1, NULL, st_g);
      }
    }
    dx_graph* graph = dx_capture_end(c);
    dx_reorder(c, mode);
    for (int r = 0; r < 2; r++) dx_graph_launch(c, graph);
    dx_reorder(c, 0);
    dx_sync(c);
    uint64_t k = 0;
    down_into(&k, ctr, sizeof k);
    CHECK(k == k0 + 4, "order %d: counter %llu, expected %llu", mode, (unsigned long long)k, (unsigned long long)(k0 + 4));
    got[mode] = blank_agent();
    sacd_download(d, got[mode]);
    down_into(st[mode], dstats, sizeof st[mode]);
    dx_graph_free(c, graph);
    dx_free(c, ctr);
    dx_free(c, dstats);
    sacd_free(d);
  }
  float* s0 = snapshot(got[0]);
  sac_tensor t[SAC_NTENSORS];
  sac_tensors(got[0], t);
  size_t n = 0;
  for (int i = 0; i < SAC_NTENSORS; i++) n += t[i].n;
  for (int mode = 1; mode < 3; mode++) {
    float* sm = snapshot(got[mode]);
    if (g_kind == DX_HOST) {
      CHECK(!memcmp(sm, s0, n * sizeof(float)), "replayed in order %d: the agent differs from program order", mode);
      CHECK(!memcmp(st[mode], st[0], sizeof st[0]), "replayed in order %d: the statistics differ", mode);
    } else {
      double e = rel_err(sm, s0, n);
      CHECK(e <= 1e-2, "replayed in order %d: rel err %.3g", mode, e);
    }
    free(sm);
    sac_free(got[mode]);
  }
  free(s0);
  sac_free(got[0]);
  for (int g = 0; g < 2; g++) free_dbatch(&db[g]);
  sac_free(ref);
}

int main(void) {
  const int kinds[2] = {DX_HOST, DX_CUDA};
  for (int i = 0; i < 2; i++) {
    g_kind = kinds[i];
    RUN(test_roundtrip);
    RUN(test_update);
    RUN(test_update_tied);
    RUN(test_update_small_batch);
    RUN(test_graph);
    RUN(test_act);
    RUN(test_update_runs);
    RUN(test_update_runs_stride2);
    RUN(test_act_runs);
    RUN(test_update_runs_ops);
    RUN(test_update_critical_path);
    RUN(test_update_reorder);
  }
  dxt_destroy_all();
  return test_done();
}
