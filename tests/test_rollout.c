/* test_rollout.c: the rollout-length schedule and the model-pool capacity (docs/algorithm.md §4, §5, with the
 * reference's examples), and branched model rollouts (rollout.h, docs/algorithm.md §6) with a small model and
 * a small SAC agent:
 *  - a planted model (output layer = biases only, tiny noise) whose predicted next states end known
 *    groups of rows at known steps: rows leave on done, rows_added = B + (B - done_0) + ..., every
 *    appended row's next_obs = obs + the picked member's sample, done = term_done(next_obs), the
 *    next step starts from the surviving rows' next_obs in order, early stop when all are done;
 *  - the per-row elite pick: the documented draw, uniform over the elites (chi-square), never a
 *    non-elite member (members are told apart by their biases);
 *  - the picked-member path against model_predict (all members) and the same sampling done here;
 *  - determinism: same key and fit index give identical pool contents, another fit index or seed
 *    different ones; a non-finite prediction is reported. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "config.h"
#include "mbpo.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "rollout.h"
#include "sac.h"
#include "small_nets.h"
#include "termination.h"
#include "test.h"

/* ---- schedule and capacity ---------------------------------------------------------------- */

static mbpo_config sched_config(long e0, long e1, long k0, long k1) {
  mbpo_config c;
  cfg_defaults(&c);
  c.rollout_min_epoch = e0;
  c.rollout_max_epoch = e1;
  c.rollout_min_length = k0;
  c.rollout_max_length = k1;
  return c;
}

/* docs/algorithm.md §4 as the official code writes it: dx = min((e - e_min) / (e_max - e_min), 1);
 * int(dx * (k_max - k_min) + k_min). */
static int official_k(long e, long e0, long e1, long k0, long k1) {
  if (e <= e0) return (int)k0;
  double dx = (double)(e - e0) / (double)(e1 - e0);
  if (dx > 1) dx = 1;
  return (int)(dx * (double)(k1 - k0) + (double)k0);
}

static void test_schedule_examples(void) {
  mbpo_config hop = sched_config(20, 150, 1, 15), hum = sched_config(20, 300, 1, 25);
  mbpo_config ant = sched_config(20, 100, 1, 25), ip = sched_config(1, 15, 1, 1);
  CHECK(mbpo_rollout_length(&hop, 124) == 12, "Hopper epoch 124: %d", mbpo_rollout_length(&hop, 124));
  CHECK(mbpo_rollout_length(&hum, 299) == 24, "Humanoid epoch 299: %d", mbpo_rollout_length(&hum, 299));
  CHECK(mbpo_rollout_length(&hum, 300) == 25, "Humanoid epoch 300: %d", mbpo_rollout_length(&hum, 300));
  CHECK(mbpo_rollout_length(&ant, 100) == 25, "Ant epoch 100: %d", mbpo_rollout_length(&ant, 100));
  CHECK(mbpo_rollout_length(&ant, 99) == 24, "Ant epoch 99: %d", mbpo_rollout_length(&ant, 99));
  /* epoch <= e_min gives k_min */
  for (int e = 0; e <= 20; e++) {
    CHECK(mbpo_rollout_length(&hop, e) == 1, "Hopper epoch %d: %d", e, mbpo_rollout_length(&hop, e));
    CHECK(mbpo_rollout_length(&ant, e) == 1, "Ant epoch %d: %d", e, mbpo_rollout_length(&ant, e));
  }
  /* the first epochs after e_min, an exact integer point (65/130 * 14 = 7), the end, beyond */
  CHECK(mbpo_rollout_length(&hop, 21) == 1, "Hopper epoch 21: %d", mbpo_rollout_length(&hop, 21));
  CHECK(mbpo_rollout_length(&hop, 85) == 8, "Hopper epoch 85: %d", mbpo_rollout_length(&hop, 85));
  CHECK(mbpo_rollout_length(&hop, 150) == 15, "Hopper epoch 150: %d", mbpo_rollout_length(&hop, 150));
  CHECK(mbpo_rollout_length(&hop, 5000) == 15, "Hopper epoch 5000: %d", mbpo_rollout_length(&hop, 5000));
  for (int e = 0; e < 100; e++) CHECK(mbpo_rollout_length(&ip, e) == 1, "pendulum epoch %d", e);
  /* k_min > 1 and a schedule starting at epoch 0 */
  mbpo_config s2 = sched_config(0, 4, 3, 11);
  CHECK(mbpo_rollout_length(&s2, 0) == 3 && mbpo_rollout_length(&s2, 1) == 5 &&
            mbpo_rollout_length(&s2, 3) == 9 && mbpo_rollout_length(&s2, 4) == 11,
        "[0, 4, 3, 11]: %d %d %d %d", mbpo_rollout_length(&s2, 0), mbpo_rollout_length(&s2, 1),
        mbpo_rollout_length(&s2, 3), mbpo_rollout_length(&s2, 4));
  /* e_min = e_max: a step from k_min to k_max after e_min */
  mbpo_config s3 = sched_config(5, 5, 2, 7);
  CHECK(mbpo_rollout_length(&s3, 5) == 2 && mbpo_rollout_length(&s3, 6) == 7, "[5, 5, 2, 7]: %d %d",
        mbpo_rollout_length(&s3, 5), mbpo_rollout_length(&s3, 6));
}

static void test_schedule_formula(void) {
  static const long sch[][4] = {{20, 150, 1, 15}, {20, 300, 1, 25}, {20, 100, 1, 25}, {20, 150, 1, 1},
                                {1, 15, 1, 1},    {20, 100, 1, 15}, {0, 7, 1, 4},     {3, 1000, 2, 999}};
  for (int s = 0; s < 8; s++) {
    mbpo_config c = sched_config(sch[s][0], sch[s][1], sch[s][2], sch[s][3]);
    int bad = -1, prev = 0, mono = 1;
    for (int e = 0; e <= 1500; e++) {
      int k = mbpo_rollout_length(&c, e);
      if (k != official_k(e, sch[s][0], sch[s][1], sch[s][2], sch[s][3]) && bad < 0) bad = e;
      if (k < prev || k < sch[s][2] || k > sch[s][3]) mono = 0;
      prev = k;
    }
    CHECK(bad < 0, "schedule [%ld %ld %ld %ld] epoch %d: %d, official %d", sch[s][0], sch[s][1],
          sch[s][2], sch[s][3], bad, mbpo_rollout_length(&c, bad < 0 ? 0 : bad),
          official_k(bad < 0 ? 0 : bad, sch[s][0], sch[s][1], sch[s][2], sch[s][3]));
    CHECK(mono, "schedule [%ld %ld %ld %ld] is not non-decreasing within [k_min, k_max]", sch[s][0],
          sch[s][1], sch[s][2], sch[s][3]);
  }
}

static mbpo_config cap_config(long batch, long E, long F, long retain) {
  mbpo_config c;
  cfg_defaults(&c);
  c.rollout_batch = batch;
  c.epoch_length = E;
  c.model_train_freq = F;
  c.model_retain_epochs = retain;
  return c;
}

static void test_pool_capacity(void) {
  mbpo_config hop = cap_config(100000, 1000, 250, 1), hum = cap_config(100000, 1000, 1000, 5);
  mbpo_config ip = cap_config(100000, 250, 250, 1);
  CHECK(mbpo_model_pool_capacity(&hop, 15) == 6000000, "Hopper k 15: %ld", mbpo_model_pool_capacity(&hop, 15));
  CHECK(mbpo_model_pool_capacity(&hop, 12) == 4800000, "Hopper k 12: %ld", mbpo_model_pool_capacity(&hop, 12));
  CHECK(mbpo_model_pool_capacity(&hop, 1) == 400000, "Walker/Cheetah k 1: %ld", mbpo_model_pool_capacity(&hop, 1));
  CHECK(mbpo_model_pool_capacity(&hop, 25) == 10000000, "Ant k 25: %ld", mbpo_model_pool_capacity(&hop, 25));
  CHECK(mbpo_model_pool_capacity(&hum, 25) == 12500000, "Humanoid k 25: %ld", mbpo_model_pool_capacity(&hum, 25));
  CHECK(mbpo_model_pool_capacity(&hum, 24) == 12000000, "Humanoid k 24: %ld", mbpo_model_pool_capacity(&hum, 24));
  CHECK(mbpo_model_pool_capacity(&ip, 1) == 100000, "pendulum k 1: %ld", mbpo_model_pool_capacity(&ip, 1));
  /* a fractional rollouts-per-epoch, floored after multiplying by k (Python: int(k * (b E / F))) */
  mbpo_config fr = cap_config(1000, 100, 30, 1), fr2 = cap_config(1000, 100, 30, 2);
  CHECK(mbpo_model_pool_capacity(&fr, 1) == 3333, "1000*100/30: %ld", mbpo_model_pool_capacity(&fr, 1));
  CHECK(mbpo_model_pool_capacity(&fr, 3) == 10000, "3*1000*100/30: %ld", mbpo_model_pool_capacity(&fr, 3));
  CHECK(mbpo_model_pool_capacity(&fr, 7) == 23333, "7*1000*100/30: %ld", mbpo_model_pool_capacity(&fr, 7));
  CHECK(mbpo_model_pool_capacity(&fr2, 7) == 46666, "retain 2, 7*1000*100/30: %ld", mbpo_model_pool_capacity(&fr2, 7));
  /* the loop's numbers of epochs: ceil(steps / E) */
  mbpo_config c;
  cfg_defaults(&c);
  c.steps = 125000, c.epoch_length = 1000;
  CHECK(mbpo_epochs(&c) == 125, "epochs %ld", mbpo_epochs(&c));
  c.steps = 20001, c.epoch_length = 250;
  CHECK(mbpo_epochs(&c) == 81, "epochs %ld", mbpo_epochs(&c));
}

/* ---- rollouts ----------------------------------------------------------------------------- */

enum { OD = 4, AD = 1, DD = OD + 1, NE = 7, NEL = 5 };
static const int ELITES[NEL] = {6, 2, 4, 0, 5}; /* members 1 and 3 are not elites */

static sac* small_agent(uint32_t seed) { return small_agent_create(OD, AD, seed, 700); /* chunks in sac_act */ }

static dyn_model* small_model_create(uint32_t seed) {
  model_params p = small_model_params(NE, NEL, 300); /* several chunks in model_predict */
  dyn_model* m = model_create(OD, AD, &p, (rng_key){seed, RNG_INIT});
  for (int i = 0; i < NEL; i++) m->elites[i] = ELITES[i];
  return m;
}

/* The planted model (small_model_plant): member m predicts reward 10 (m + 1) and
 * Δs = [m, delta, 0, 0], with noise std about 4.5e-5. */
static void plant(dyn_model* m, float delta) {
  small_model_plant(m);
  for (int e = 0; e < NE; e++) {
    float* b = small_model_mean_bias(m, e);
    b[0] = 10.0f * (float)(e + 1);
    b[1] = (float)e;
    b[2] = delta;
  }
}

/* A real pool of n rows whose pole angles s[1] come from the list grp (row r: grp[r % ng]); the
 * other entries are distinct per row. */
static pool* real_pool(int n, const float* grp, int ng) {
  pool* p = pool_create(OD, AD, n);
  float s[OD], a[AD], r = 0.5f, s2[OD], d = 0;
  for (int i = 0; i < n; i++) {
    s[0] = 0.01f * (float)i;
    s[1] = grp[i % ng];
    s[2] = 0.3f * sinf((float)i);
    s[3] = 0.2f * cosf(1.7f * (float)i);
    a[0] = 0.1f;
    memcpy(s2, s, sizeof s);
    pool_add(p, 1, s, a, &r, s2, &d);
  }
  return p;
}

/* Row i (oldest first) of a pool. */
static void row_at(const pool* p, long i, const float** obs, const float** act, float* rew,
                   const float** next, float* done) {
  long s = pool_physical(p, i);
  *obs = p->obs + s * p->obs_dim;
  *act = p->act + s * p->act_dim;
  *rew = p->rew[s];
  *next = p->next_obs + s * p->obs_dim;
  *done = p->done[s];
}

/* The member a planted-model row came from (Δs[0] = m), -1 when none fits. */
static int member_of(const float* obs, const float* next, float rew) {
  float dm = next[0] - obs[0];
  int m = (int)lrintf(dm);
  if (m < 0 || m >= NE || fabsf(dm - (float)m) > 1e-3f || fabsf(rew - 10.0f * (float)(m + 1)) > 1e-3f) return -1;
  return m;
}

static void test_rows_leave_on_done(void) {
  /* groups by pole angle, delta 0.06 per step, done when |s[1]| > 0.2 after the step:
   *   0.17 -> 0.23: done at step 0;  0.07 -> .13 .19 .25: step 2;  0.0 -> .06 .12 .18 .24: step 3;
   *   -0.2 -> -.14 ... .16 .22: step 6 */
  const float grp[4] = {0.17f, 0.07f, 0.0f, -0.2f};
  const int done_step[4] = {0, 2, 3, 6};
  const int N = 400, B = 1000, K = 5;
  pool* real = real_pool(N, grp, 4);
  dyn_model* m = small_model_create(1);
  plant(m, 0.06f);
  sac* ag = small_agent(2);
  rollout_ctx* r = rollout_create(m, B, TERM_INVERTED_PENDULUM);
  pool* mp = pool_create(OD, AD, 100000);
  const rng_key key = {17, RNG_ROLLOUT};
  const uint32_t fit = 3;
  rollout_stats st;
  int rc = rollout_run(r, m, ag, real, mp, B, K, key, fit, &st);
  CHECK(rc == 0, "rollout_run returned %d", rc);

  /* the start rows by the documented draw, and the expected batch size at each step */
  int* g = (int*)malloc(sizeof(int) * B);
  long cnt[4] = {0};
  for (int b = 0; b < B; b++) {
    uint32_t s = rng_index(key, fit, 3, (uint64_t)b, (uint32_t)N);
    g[b] = (int)(s % 4);
    cnt[g[b]]++;
  }
  long Bi[8], want_rows = 0, want_done = 0;
  for (int i = 0; i < K; i++) {
    Bi[i] = 0;
    for (int q = 0; q < 4; q++)
      if (done_step[q] >= i) Bi[i] += cnt[q];
    want_rows += Bi[i];
    for (int q = 0; q < 4; q++)
      if (done_step[q] == i) want_done += cnt[q];
  }
  CHECK(cnt[0] > 0 && cnt[1] > 0 && cnt[2] > 0 && cnt[3] > 0, "a group was not drawn");
  CHECK(st.rows_added == want_rows, "rows_added %ld, expected %ld = B + (B - done_0) + ...", st.rows_added, want_rows);
  CHECK(mp->size == want_rows, "model pool holds %ld rows, expected %ld", mp->size, want_rows);
  CHECK(st.steps_run == K, "steps_run %d", st.steps_run);
  CHECK_CLOSE(st.done_frac, (double)want_done / (double)want_rows, 1e-12);

  /* walk the pool step by step */
  long at = 0, bad_obs = 0, bad_next = 0, bad_done = 0, bad_member = 0, bad_act = 0, bad_start = 0;
  double rew_sum = 0;
  float* prevS2 = (float*)malloc(sizeof(float) * (size_t)B * OD);
  float* S = (float*)malloc(sizeof(float) * (size_t)B * OD);
  float* A = (float*)malloc(sizeof(float) * (size_t)B * AD);
  int* gi = (int*)malloc(sizeof(int) * B); /* the group of each current row */
  memcpy(gi, g, sizeof(int) * B);
  for (int i = 0; i < K && at < mp->size; i++) {
    long n = Bi[i], keep = 0;
    for (long b = 0; b < n; b++) {
      const float *obs, *act, *next;
      float rew, done;
      row_at(mp, at + b, &obs, &act, &rew, &next, &done);
      memcpy(S + b * OD, obs, sizeof(float) * OD);
      if (i == 0) {
        uint32_t s = rng_index(key, fit, 3, (uint64_t)b, (uint32_t)N);
        if (memcmp(obs, real->obs + (size_t)s * OD, sizeof(float) * OD) != 0) bad_start++;
      } else if (memcmp(obs, prevS2 + b * OD, sizeof(float) * OD) != 0) {
        bad_obs++; /* a step starts from the surviving rows' next_obs, in order */
      }
      int mem = member_of(obs, next, rew);
      int want_m = ELITES[rng_index(key, fit, 4u * (uint32_t)i + 1, (uint64_t)b, NEL)];
      if (mem != want_m) bad_member++;
      /* next_obs = obs + the member's mean + its (tiny) noise */
      float want1 = obs[1] + 0.06f;
      if (fabsf(next[1] - want1) > 1e-3f || fabsf(next[2] - obs[2]) > 1e-3f || fabsf(next[3] - obs[3]) > 1e-3f)
        bad_next++;
      int td = term_done(TERM_INVERTED_PENDULUM, next, OD);
      if ((float)td != done || td != (done_step[gi[b]] == i)) bad_done++;
      rew_sum += rew;
      if (done == 0.0f) {
        memcpy(prevS2 + keep * OD, next, sizeof(float) * OD);
        gi[keep] = gi[b];
        keep++;
      }
      (void)act;
    }
    /* the actions are the stochastic policy's, drawn with c1 = 4 i */
    sac_act(ag, S, (int)n, 0, key, fit, 4u * (uint32_t)i, A);
    for (long b = 0; b < n; b++) {
      const float *obs, *act, *next;
      float rew, done;
      row_at(mp, at + b, &obs, &act, &rew, &next, &done);
      if (act[0] != A[b] || !(act[0] >= -1.0f && act[0] <= 1.0f)) bad_act++;
    }
    CHECK(i + 1 >= K || keep == Bi[i + 1], "step %d keeps %ld rows, expected %ld", i, keep, Bi[i + 1]);
    at += n;
  }
  CHECK(bad_start == 0, "%ld start rows are not the documented draws from the real pool", bad_start);
  CHECK(bad_obs == 0, "%ld rows do not start from the previous step's surviving next_obs", bad_obs);
  CHECK(bad_member == 0, "%ld rows were not sampled from the documented elite pick", bad_member);
  CHECK(bad_next == 0, "%ld rows: next_obs is not obs + the sampled delta", bad_next);
  CHECK(bad_done == 0, "%ld rows: done flag differs from term_done / the planted step", bad_done);
  CHECK(bad_act == 0, "%ld rows: actions differ from sac_act with c1 = 4 i", bad_act);
  CHECK_CLOSE(st.mean_reward, rew_sum / (double)want_rows, 1e-9);

  /* early stop: with k = 20 every row is done after step 6 (7 steps run) */
  pool* mp2 = pool_create(OD, AD, 100000);
  rollout_stats st2;
  rollout_run(r, m, ag, real, mp2, B, 20, key, fit, &st2);
  long all = 0;
  for (int i = 0; i <= 6; i++)
    for (int q = 0; q < 4; q++)
      if (done_step[q] >= i) all += cnt[q];
  CHECK(st2.steps_run == 7, "steps_run %d with k = 20, expected the early stop after 7", st2.steps_run);
  CHECK(st2.rows_added == all && mp2->size == all, "rows %ld (pool %ld), expected %ld", st2.rows_added, mp2->size, all);
  CHECK_CLOSE(st2.done_frac, (double)B / (double)all, 1e-12);
  /* the first K steps are the same rows as the k = K rollout */
  int same = 1;
  for (long i = 0; i < want_rows && same; i++) {
    long s1 = pool_physical(mp, i), s2 = pool_physical(mp2, i);
    same = memcmp(mp->obs + s1 * OD, mp2->obs + s2 * OD, sizeof(float) * OD) == 0 &&
           memcmp(mp->next_obs + s1 * OD, mp2->next_obs + s2 * OD, sizeof(float) * OD) == 0 &&
           mp->rew[s1] == mp2->rew[s2] && mp->done[s1] == mp2->done[s2] && mp->act[s1] == mp2->act[s2];
  }
  CHECK(same, "a longer rollout changed its first %d steps", K);
  /* every row of the last step ended the rollout */
  long lastd = 0;
  for (long i = all - cnt[3]; i < all; i++) lastd += mp2->done[pool_physical(mp2, i)] != 0.0f;
  CHECK(lastd == cnt[3], "last step: %ld of %ld rows done", lastd, cnt[3]);

  /* k = 0 and B = 0 add nothing */
  rollout_stats st3;
  long before = mp2->size;
  rollout_run(r, m, ag, real, mp2, B, 0, key, fit, &st3);
  CHECK(st3.rows_added == 0 && st3.steps_run == 0 && mp2->size == before, "k = 0 added %ld rows", st3.rows_added);
  rollout_run(r, m, ag, real, mp2, 0, 3, key, fit, &st3);
  CHECK(st3.rows_added == 0 && mp2->size == before, "B = 0 added %ld rows", st3.rows_added);

  free(g);
  free(gi);
  free(prevS2);
  free(S);
  free(A);
  pool_free(mp);
  pool_free(mp2);
  pool_free(real);
  rollout_free(r);
  sac_free(ag);
  model_free(m);
}

static void test_elite_pick_uniform(void) {
  /* pole angle -0.2 everywhere: nothing is done in the first 6 steps */
  const float grp[1] = {-0.2f};
  const int N = 100, B = 20000, K = 2;
  pool* real = real_pool(N, grp, 1);
  dyn_model* m = small_model_create(5);
  plant(m, 0.06f);
  sac* ag = small_agent(6);
  rollout_ctx* r = rollout_create(m, B, TERM_INVERTED_PENDULUM);
  pool* mp = pool_create(OD, AD, (long)B * K);
  const rng_key key = {23, RNG_ROLLOUT};
  rollout_stats st;
  rollout_run(r, m, ag, real, mp, B, K, key, 11, &st);
  CHECK(st.rows_added == (long)B * K && st.done_frac == 0.0, "rows %ld, done %.3g", st.rows_added, st.done_frac);
  for (int i = 0; i < K; i++) {
    long cnt[NE] = {0}, unknown = 0, mism = 0;
    for (long b = 0; b < B; b++) {
      const float *obs, *act, *next;
      float rew, done;
      row_at(mp, (long)i * B + b, &obs, &act, &rew, &next, &done);
      int mem = member_of(obs, next, rew);
      if (mem < 0) unknown++;
      else cnt[mem]++;
      if (mem != ELITES[rng_index(key, 11, 4u * (uint32_t)i + 1, (uint64_t)b, NEL)]) mism++;
    }
    CHECK(unknown == 0, "step %d: %ld rows from no member", i, unknown);
    CHECK(cnt[1] == 0 && cnt[3] == 0, "step %d: non-elite members used: %ld, %ld rows", i, cnt[1], cnt[3]);
    CHECK(mism == 0, "step %d: %ld rows differ from the documented pick", i, mism);
    double e = (double)B / NEL, x = 0;
    for (int q = 0; q < NEL; q++) x += ((double)cnt[ELITES[q]] - e) * ((double)cnt[ELITES[q]] - e) / e;
    /* 4 degrees of freedom: P(chi2 > 18.47) = 0.001 */
    CHECK(x < 18.47, "step %d: chi-square %.2f over the 5 elites (counts %ld %ld %ld %ld %ld)", i, x,
          cnt[ELITES[0]], cnt[ELITES[1]], cnt[ELITES[2]], cnt[ELITES[3]], cnt[ELITES[4]]);
  }
  /* the picks of step 1 are drawn afresh, not step 0's again */
  long same = 0;
  for (long b = 0; b < B; b++) {
    const float *o0, *a0, *n0, *o1, *a1, *n1;
    float r0, d0, r1, d1;
    row_at(mp, b, &o0, &a0, &r0, &n0, &d0);
    row_at(mp, B + b, &o1, &a1, &r1, &n1, &d1);
    same += member_of(o0, n0, r0) == member_of(o1, n1, r1);
  }
  CHECK(fabs((double)same / B - 0.2) < 0.02, "step 0 and step 1 picks agree on %.3f of rows (0.2 expected)",
        (double)same / B);
  pool_free(mp);
  pool_free(real);
  rollout_free(r);
  sac_free(ag);
  model_free(m);
}

/* ---- the picked-member path against model_predict ------------------------------------------ */

/* A random model with a non-trivial normaliser, mean outputs scaled down and log-variance bounds
 * [-9, -4] so that rows survive several steps while some end at each. */
static dyn_model* random_model(uint32_t seed) {
  dyn_model* m = small_model_create(seed);
  const nn_mlp* net = &m->net;
  int L = net->nlayers - 1, in = net->dims[L], out = net->dims[L + 1];
  const rng_key k = {seed, RNG_TEST};
  for (int e = 0; e < NE; e++) {
    float* w = m->params + net->w_off[L] + (size_t)e * in * out;
    float* b = m->params + net->b_off[L] + (size_t)e * out;
    for (int i = 0; i < in; i++)
      for (int o = 0; o < DD; o++) w[i * out + o] *= 0.1f;
    for (int o = 0; o < out; o++) b[o] = 0.05f * rng_normal(k, 1, (uint32_t)e, (uint64_t)o);
  }
  for (int d = 0; d < DD; d++) m->max_lv[d] = -4.0f, m->min_lv[d] = -9.0f;
  for (int i = 0; i < OD + AD; i++) {
    m->norm_mean[i] = 0.1f * (float)(i + 1);
    m->norm_std[i] = 0.5f + 0.25f * (float)i;
  }
  return m;
}

static pool* random_real(uint32_t seed, int N) {
  pool* p = pool_create(OD, AD, N);
  const rng_key k = {seed, RNG_TEST};
  for (int i = 0; i < N + 37; i++) { /* wrapped: physical order differs from age */
    float s[OD], a[AD], r = 0, d = 0;
    for (int j = 0; j < OD; j++) s[j] = (j == 1 ? 0.1f : 1.0f) * rng_normal(k, 2, 0, (uint64_t)i * OD + j);
    a[0] = 0;
    pool_add(p, 1, s, a, &r, s, &d);
  }
  return p;
}

/* The rollout as docs/algorithm.md §6 states it, with every member evaluated by model_predict. Appends to
 * out (a pool); returns the rows added. */
static long reference_rollout(dyn_model* m, const sac* ag, const pool* real, pool* out, int B, int k,
                              rng_key key, uint32_t fit, int term) {
  float* S = (float*)malloc(sizeof(float) * (size_t)B * OD);
  float* S2 = (float*)malloc(sizeof(float) * (size_t)B * OD);
  float* A = (float*)malloc(sizeof(float) * (size_t)B * AD);
  float* R = (float*)malloc(sizeof(float) * (size_t)B);
  float* Dn = (float*)malloc(sizeof(float) * (size_t)B);
  float* mean = (float*)malloc(sizeof(float) * (size_t)NE * B * DD);
  float* lv = (float*)malloc(sizeof(float) * (size_t)NE * B * DD);
  int ne;
  const int* el = model_elites(m, &ne);
  for (int b = 0; b < B; b++) {
    uint32_t s = rng_index(key, fit, 3, (uint64_t)b, (uint32_t)real->size);
    memcpy(S + (size_t)b * OD, real->obs + (size_t)s * OD, sizeof(float) * OD);
  }
  long rows = 0;
  for (int i = 0; i < k && B > 0; i++) {
    sac_act(ag, S, B, 0, key, fit, 4u * (uint32_t)i, A);
    model_predict(m, S, A, B, mean, lv);
    for (int b = 0; b < B; b++) {
      int mem = el[rng_index(key, fit, 4u * (uint32_t)i + 1, (uint64_t)b, (uint32_t)ne)];
      const float* mu = mean + ((size_t)mem * B + b) * DD;
      const float* l = lv + ((size_t)mem * B + b) * DD;
      float y[DD];
      for (int d = 0; d < DD; d++)
        y[d] = mu[d] + rng_normal(key, fit, 4u * (uint32_t)i + 2, (uint64_t)b * DD + d) * expf(0.5f * l[d]);
      R[b] = y[0];
      for (int d = 0; d < OD; d++) S2[(size_t)b * OD + d] = S[(size_t)b * OD + d] + y[1 + d];
      Dn[b] = (float)term_done(term, S2 + (size_t)b * OD, OD);
    }
    pool_add(out, B, S, A, R, S2, Dn);
    rows += B;
    int keep = 0;
    for (int b = 0; b < B; b++)
      if (Dn[b] == 0.0f) memmove(S + (size_t)keep++ * OD, S2 + (size_t)b * OD, sizeof(float) * OD);
    B = keep;
  }
  free(S);
  free(S2);
  free(A);
  free(R);
  free(Dn);
  free(mean);
  free(lv);
  return rows;
}

/* Largest difference between two pools of equal size, row by row, relative to max(1, |ref|). */
static double pool_diff(const pool* a, const pool* b, long* done_diff) {
  double worst = 0;
  *done_diff = 0;
  for (long i = 0; i < a->size && i < b->size; i++) {
    long s = pool_physical(a, i), t = pool_physical(b, i);
    float va[2 * OD + AD + 1], vb[2 * OD + AD + 1];
    memcpy(va, a->obs + s * OD, sizeof(float) * OD);
    memcpy(va + OD, a->next_obs + s * OD, sizeof(float) * OD);
    memcpy(va + 2 * OD, a->act + s * AD, sizeof(float) * AD);
    va[2 * OD + AD] = a->rew[s];
    memcpy(vb, b->obs + t * OD, sizeof(float) * OD);
    memcpy(vb + OD, b->next_obs + t * OD, sizeof(float) * OD);
    memcpy(vb + 2 * OD, b->act + t * AD, sizeof(float) * AD);
    vb[2 * OD + AD] = b->rew[t];
    for (int j = 0; j < 2 * OD + AD + 1; j++) {
      double d = fabs((double)va[j] - (double)vb[j]) / fmax(1.0, fabs((double)vb[j]));
      if (!(d <= worst)) worst = d; /* NaN propagates */
    }
    *done_diff += a->done[s] != b->done[t];
  }
  return worst;
}

static void test_agrees_with_model_predict(void) {
  const int B = 3000;
  const int terms[2] = {TERM_INVERTED_PENDULUM, TERM_HALFCHEETAH};
  const int ks[2] = {4, 3};
  for (int t = 0; t < 2; t++) {
    dyn_model* m = random_model(31);
    sac* ag = small_agent(32);
    pool* real = random_real(33, 500);
    rollout_ctx* r = rollout_create(m, B, terms[t]);
    pool* got = pool_create(OD, AD, 20000);
    pool* want = pool_create(OD, AD, 20000);
    const rng_key key = {41, RNG_ROLLOUT};
    rollout_stats st;
    int rc = rollout_run(r, m, ag, real, got, B, ks[t], key, 7, &st);
    long rows = reference_rollout(m, ag, real, want, B, ks[t], key, 7, terms[t]);
    CHECK(rc == 0, "rollout_run returned %d", rc);
    CHECK(st.rows_added == rows && got->size == want->size, "term %d: rows %ld, reference %ld", terms[t],
          st.rows_added, rows);
    long dd;
    double diff = pool_diff(got, want, &dd);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  term %d: rows %ld, done frac %.3f, max rel diff %.3g\n", terms[t], rows, st.done_frac, diff);
    CHECK(diff <= 1e-5, "term %d: largest relative difference from the all-member path %.3g", terms[t], diff);
    CHECK(dd == 0, "term %d: %ld done flags differ", terms[t], dd);
    if (terms[t] == TERM_HALFCHEETAH) {
      CHECK(rows == (long)B * ks[t] && st.done_frac == 0.0, "never-done task: %ld rows", rows);
    } else {
      /* the setting is meant to end some rows at each step and keep others */
      CHECK(st.done_frac > 0.05 && st.done_frac < 0.95 && st.steps_run == ks[t] && rows > B + B / 2,
            "done fraction %.3f, %d steps, %ld rows: the test's model no longer ends rows gradually",
            st.done_frac, st.steps_run, rows);
    }
    pool_free(got);
    pool_free(want);
    pool_free(real);
    rollout_free(r);
    sac_free(ag);
    model_free(m);
  }
}

static int pools_equal(const pool* a, const pool* b) {
  if (a->size != b->size || a->next != b->next) return 0;
  size_t n = (size_t)a->size;
  return memcmp(a->obs, b->obs, sizeof(float) * n * OD) == 0 && memcmp(a->act, b->act, sizeof(float) * n * AD) == 0 &&
         memcmp(a->rew, b->rew, sizeof(float) * n) == 0 && memcmp(a->next_obs, b->next_obs, sizeof(float) * n * OD) == 0 &&
         memcmp(a->done, b->done, sizeof(float) * n) == 0;
}

/* Fraction of rows whose next_obs differ between two pools (over the shorter). */
static double frac_differ(const pool* a, const pool* b) {
  long n = a->size < b->size ? a->size : b->size, d = 0;
  for (long i = 0; i < n; i++)
    d += memcmp(a->next_obs + pool_physical(a, i) * OD, b->next_obs + pool_physical(b, i) * OD, sizeof(float) * OD) != 0;
  return n ? (double)d / (double)n : 0.0;
}

static void test_determinism(void) {
  const int B = 2000, K = 3;
  dyn_model* m = random_model(51);
  sac* ag = small_agent(52);
  pool* real = random_real(53, 700);
  rollout_ctx* r = rollout_create(m, B, TERM_INVERTED_PENDULUM);
  rollout_ctx* r2 = rollout_create(m, B + 500, TERM_INVERTED_PENDULUM); /* another workspace */
  pool *p1 = pool_create(OD, AD, 10000), *p2 = pool_create(OD, AD, 10000), *p3 = pool_create(OD, AD, 10000);
  pool* p4 = pool_create(OD, AD, 10000);
  const rng_key key = {61, RNG_ROLLOUT};
  rollout_stats s1, s2, s3, s4;
  rollout_run(r, m, ag, real, p1, B, K, key, 9, &s1);
  rollout_run(r2, m, ag, real, p2, B, K, key, 9, &s2);
  CHECK(pools_equal(p1, p2), "same key and fit index gave different model pools");
  CHECK(s1.rows_added == s2.rows_added && s1.steps_run == s2.steps_run && s1.mean_reward == s2.mean_reward &&
            s1.done_frac == s2.done_frac,
        "same key and fit index gave different statistics");
  rollout_run(r, m, ag, real, p3, B, K, key, 10, &s3);
  rollout_run(r, m, ag, real, p4, B, K, (rng_key){62, RNG_ROLLOUT}, 9, &s4);
  CHECK(!pools_equal(p1, p3) && frac_differ(p1, p3) > 0.99, "fit index 10 vs 9: %.3f of rows differ",
        frac_differ(p1, p3));
  CHECK(!pools_equal(p1, p4) && frac_differ(p1, p4) > 0.99, "seed 62 vs 61: %.3f of rows differ", frac_differ(p1, p4));
  /* into a model pool smaller than one step's rows: the pool keeps the newest rows, the tail of
   * the same rollout into a large pool */
  pool* small = pool_create(OD, AD, 1500);
  rollout_stats s6;
  rollout_run(r, m, ag, real, small, B, K, key, 9, &s6);
  int tail_ok = small->size == 1500 && s6.rows_added == s1.rows_added;
  for (long i = 0; i < small->size && tail_ok; i++) {
    long a = pool_physical(small, i), b = pool_physical(p1, p1->size - small->size + i);
    tail_ok = memcmp(small->obs + a * OD, p1->obs + b * OD, sizeof(float) * OD) == 0 &&
              memcmp(small->next_obs + a * OD, p1->next_obs + b * OD, sizeof(float) * OD) == 0 &&
              small->rew[a] == p1->rew[b] && small->done[a] == p1->done[b] && small->act[a] == p1->act[b];
  }
  CHECK(tail_ok, "a 1500-row model pool does not hold the newest 1500 rows of the rollout");
  CHECK(small->next == s1.rows_added % 1500, "small pool next %ld, expected %ld", small->next, s1.rows_added % 1500);
  pool_free(small);
  /* the thread count does not change the result */
  int thr = 1;
#ifdef _OPENMP
  thr = omp_get_max_threads();
  omp_set_num_threads(1);
  pool* p5 = pool_create(OD, AD, 10000);
  rollout_stats s5;
  rollout_run(r, m, ag, real, p5, B, K, key, 9, &s5);
  CHECK(pools_equal(p1, p5), "one thread vs %d gave different model pools", thr);
  omp_set_num_threads(thr);
  pool_free(p5);
#endif
  (void)thr;
  pool_free(p1);
  pool_free(p2);
  pool_free(p3);
  pool_free(p4);
  pool_free(real);
  rollout_free(r);
  rollout_free(r2);
  sac_free(ag);
  model_free(m);
}

static void test_nonfinite(void) {
  dyn_model* m = random_model(71);
  sac* ag = small_agent(72);
  pool* real = random_real(73, 100);
  rollout_ctx* r = rollout_create(m, 64, TERM_HALFCHEETAH);
  pool* mp = pool_create(OD, AD, 1000);
  /* member ELITES[2]'s reward bias is NaN: some rows pick it */
  const nn_mlp* net = &m->net;
  int L = net->nlayers - 1, out = net->dims[L + 1];
  m->params[net->b_off[L] + (size_t)ELITES[2] * out] = NAN;
  rollout_stats st;
  int rc = rollout_run(r, m, ag, real, mp, 64, 2, (rng_key){1, RNG_ROLLOUT}, 0, &st);
  CHECK(rc == -1, "a NaN prediction returned %d", rc);
  CHECK(st.rows_added == 128, "statistics still filled: %ld rows", st.rows_added);
  /* B larger than the workspace is capped at Bmax */
  m->params[net->b_off[L] + (size_t)ELITES[2] * out] = 0.0f;
  rc = rollout_run(r, m, ag, real, mp, 1000, 1, (rng_key){1, RNG_ROLLOUT}, 0, &st);
  CHECK(rc == 0 && st.rows_added == 64, "B beyond Bmax: rc %d, %ld rows", rc, st.rows_added);
  pool_free(mp);
  pool_free(real);
  rollout_free(r);
  sac_free(ag);
  model_free(m);
}

int main(void) {
  RUN(test_schedule_examples);
  RUN(test_schedule_formula);
  RUN(test_pool_capacity);
  RUN(test_rows_leave_on_done);
  RUN(test_elite_pick_uniform);
  RUN(test_agrees_with_model_predict);
  RUN(test_determinism);
  RUN(test_nonfinite);
  return test_done();
}
