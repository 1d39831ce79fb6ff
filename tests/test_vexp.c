/* test_vexp.c: the H-step model value expansion target (vexp.h), device=cpu (the only backend that
 * computes it), with a small model and a small SAC agent on InvertedPendulum's shapes:
 *  - H = 0 leaves the rows as they are, bit for bit;
 *  - H = 1 and H = 3 against the target assembled here from other paths: actions from sac_act,
 *    log pi from the policy's Gaussian (sac_policy_gaussian) and the log of 1 - tanh^2 in double,
 *    predictions of every member (model_predict) of which the documented draw picks one, the
 *    reward scale and temperature folded as vexp.h writes them;
 *  - a row done in the real env gets nothing from the model; a row the model ends at the first
 *    imagined step keeps that step's reward and its terminal state, and nothing after;
 *  - a non-finite prediction is reported. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "model.h"
#include "rng.h"
#include "sac.h"
#include "small_nets.h"
#include "termination.h"
#include "test.h"
#include "vexp.h"

enum { OD = 4, AD = 1, DD = OD + 1, NE = 7, NEL = 5, B = 48 };
static const int ELITES[NEL] = {6, 2, 4, 0, 5};

static dyn_model* small_model(uint32_t seed) {
  model_params p = small_model_params(NE, NEL, 20); /* several chunks in model_predict */
  dyn_model* m = model_create(OD, AD, &p, (rng_key){seed, RNG_INIT});
  for (int i = 0; i < NEL; i++) m->elites[i] = ELITES[i];
  /* a normaliser that is not the identity */
  float o[64 * OD], a[64 * AD];
  for (int i = 0; i < 64 * OD; i++) o[i] = 0.3f * sinf(0.7f * (float)i) + 0.05f * (float)(i % OD);
  for (int i = 0; i < 64 * AD; i++) a[i] = 0.8f * cosf(1.3f * (float)i);
  model_fit_normalizer(m, 64, o, a);
  return m;
}

static sac* small_agent(uint32_t seed, float alpha) {
  sac* s = small_agent_create(OD, AD, seed, 20); /* several chunks in sac_sample */
  s->log_alpha[0] = logf(alpha);
  return s;
}

/* A real batch: small pole angles (most imagined steps keep going), a few rows done. */
static void batch(float* rew, float* next, float* done) {
  for (int b = 0; b < B; b++) {
    rew[b] = 1.0f;
    done[b] = b % 11 == 5 ? 1.0f : 0.0f;
    for (int d = 0; d < OD; d++) next[b * OD + d] = 0.04f * sinf(0.9f * (float)(b * OD + d) + 0.3f);
  }
}

/* The expanded rows by hand (double where it matters), from other code paths than vexp.c. */
static void by_hand(dyn_model* m, const sac* ag, int H, float gamma, float rs, rng_key key, uint64_t u,
                    const float* rew0, const float* next0, const float* done0, double* rew, float* next,
                    double* done) {
  const uint32_t c0 = (uint32_t)u;
  const double alpha = exp((double)ag->log_alpha[0]);
  float S[B * OD], A[B * AD], mu[B * AD], ls[B * AD], mean[NE * B * DD], lv[NE * B * DD];
  double cont[B], logp[B];
  nn_cache* cache = nn_cache_alloc(&ag->pi, B);
  float* out = (float*)malloc(sizeof(float) * B * 2 * AD);
  memcpy(S, next0, sizeof S);
  for (int b = 0; b < B; b++) rew[b] = rew0[b], cont[b] = 1.0 - done0[b];
  double g = 1.0;
  for (int h = 1; h <= H; h++) {
    g *= gamma;
    uint32_t c1 = 4u * (uint32_t)(h - 1);
    sac_act(ag, S, B, 0, key, c0, c1, A);
    sac_policy_gaussian(&ag->pi, ag->pi_w, cache, out, S, B, mu, ls);
    for (int b = 0; b < B; b++) {
      logp[b] = 0.0;
      for (int i = 0; i < AD; i++) {
        double e = rng_normal(key, c0, c1, (uint64_t)b * AD + i);
        double t = tanh((double)mu[b * AD + i] + exp((double)ls[b * AD + i]) * e);
        logp[b] += -0.5 * e * e - 0.5 * log(2.0 * M_PI) - ls[b * AD + i] - log(1.0 - t * t);
      }
    }
    model_predict(m, S, A, B, mean, lv);
    for (int b = 0; b < B; b++) {
      if (cont[b] == 0.0) continue;
      int mem = ELITES[rng_index(key, c0, c1 + 1, (uint64_t)b, NEL)];
      const float* mm = mean + ((size_t)mem * B + b) * DD;
      const float* ll = lv + ((size_t)mem * B + b) * DD;
      float y[DD];
      for (int d = 0; d < DD; d++) y[d] = mm[d] + rng_normal(key, c0, c1 + 2, (uint64_t)b * DD + d) * expf(0.5f * ll[d]);
      rew[b] += g * cont[b] * ((double)y[0] - alpha * logp[b] / rs);
      for (int d = 0; d < OD; d++) S[b * OD + d] += y[1 + d];
      cont[b] *= 1.0 - term_done(TERM_INVERTED_PENDULUM, S + b * OD, OD);
    }
  }
  for (int b = 0; b < B; b++) done[b] = 1.0 - g * cont[b];
  memcpy(next, S, sizeof S);
  free(out);
  nn_cache_free(cache);
}

static void test_h0_leaves_rows(void) {
  dyn_model* m = small_model(1);
  sac* ag = small_agent(2, 0.3f);
  vexp* v = vexp_create(m, B, 0, TERM_INVERTED_PENDULUM);
  float rew[B], next[B * OD], done[B], r0[B], n0[B * OD], d0[B];
  batch(rew, next, done);
  memcpy(r0, rew, sizeof r0), memcpy(n0, next, sizeof n0), memcpy(d0, done, sizeof d0);
  int rc = vexp_expand(v, m, ag, B, 0.99f, 1.0f, (rng_key){3, RNG_VALUE_EXPANSION}, 7, rew, next, done);
  CHECK(rc == 0, "rc %d", rc);
  CHECK(memcmp(rew, r0, sizeof r0) == 0 && memcmp(next, n0, sizeof n0) == 0 && memcmp(done, d0, sizeof d0) == 0,
        "H = 0 changed the rows");
  vexp_free(v);
  sac_free(ag);
  model_free(m);
}

static void test_expanded_rows_by_hand(void) {
  dyn_model* m = small_model(4);
  sac* ag = small_agent(5, 0.4f);
  const float gamma = 0.9f, rs = 2.0f;
  const rng_key key = {6, RNG_VALUE_EXPANSION};
  for (int H = 1; H <= 3; H += 2) {
    vexp* v = vexp_create(m, B, H, TERM_INVERTED_PENDULUM);
    float rew[B], next[B * OD], done[B], r0[B], n0[B * OD], d0[B], hn[B * OD];
    double hr[B], hd[B];
    batch(rew, next, done);
    memcpy(r0, rew, sizeof r0), memcpy(n0, next, sizeof n0), memcpy(d0, done, sizeof d0);
    const uint64_t u = 1000 + (uint64_t)H;
    int rc = vexp_expand(v, m, ag, B, gamma, rs, key, u, rew, next, done);
    by_hand(m, ag, H, gamma, rs, key, u, r0, n0, d0, hr, hn, hd);
    CHECK(rc == 0, "H %d: rc %d", H, rc);
    int ended = 0, moved = 0;
    for (int b = 0; b < B; b++) {
      CHECK_CLOSE(rew[b], hr[b], 1e-4);
      CHECK_CLOSE(done[b], hd[b], 1e-6);
      for (int d = 0; d < OD; d++) CHECK_CLOSE(next[b * OD + d], hn[b * OD + d], 1e-5);
      ended += d0[b] == 0.0f && done[b] > 1.0f - 1e-6f; /* ended by the model */
      moved += fabsf(rew[b] - r0[b]) > 1e-3f;
    }
    /* the batch exercises both kinds of rows */
    CHECK(moved > B / 2, "H %d: only %d rows got model terms", H, moved);
    if (H == 3) CHECK(ended > 0, "no row was ended by the model at H = 3");
    vexp_free(v);
  }
  sac_free(ag);
  model_free(m);
}

/* The planted model (small_model_plant): every member predicts reward 5 and Δs = [0, delta, 0, 0],
 * with noise std about 4.5e-5. */
static void plant(dyn_model* m, float delta) {
  small_model_plant(m);
  for (int e = 0; e < NE; e++) {
    float* b = small_model_mean_bias(m, e);
    b[0] = 5.0f;
    b[2] = delta;
  }
}

static void test_done_rows(void) {
  dyn_model* m = small_model(7);
  plant(m, 0.5f); /* every imagined step ends: |angle| > 0.2 after it */
  sac* ag = small_agent(8, 0.25f);
  const float gamma = 0.99f;
  vexp* v = vexp_create(m, B, 3, TERM_INVERTED_PENDULUM);
  float rew[B], next[B * OD], done[B], n0[B * OD], d0[B], A[B * AD], lp[B];
  batch(rew, next, done);
  memcpy(n0, next, sizeof n0), memcpy(d0, done, sizeof d0);
  const rng_key key = {9, RNG_VALUE_EXPANSION};
  sac_sample(ag, n0, B, key, 77, 0, A, lp); /* the first imagined step's log pi */
  int rc = vexp_expand(v, m, ag, B, gamma, 1.0f, key, 77, rew, next, done);
  CHECK(rc == 0, "rc %d", rc);
  for (int b = 0; b < B; b++) {
    CHECK(done[b] == 1.0f, "row %d: done %g", b, done[b]);
    if (d0[b] != 0.0f) {
      /* done in the real env: the model adds nothing */
      CHECK(rew[b] == 1.0f, "real-done row %d: rew %g", b, rew[b]);
      CHECK(memcmp(next + b * OD, n0 + b * OD, sizeof(float) * OD) == 0, "real-done row %d moved", b);
    } else {
      /* ended by the model at the first step: r0 + gamma (5 - alpha log pi_1), its terminal state */
      CHECK_CLOSE(rew[b], 1.0 + gamma * (5.0 - 0.25 * lp[b]), 1e-4);
      CHECK_CLOSE(next[b * OD + 1], n0[b * OD + 1] + 0.5, 1e-3);
    }
  }
  vexp_free(v);
  sac_free(ag);
  model_free(m);
}

static void test_nonfinite_reported(void) {
  dyn_model* m = small_model(10);
  plant(m, NAN);
  sac* ag = small_agent(11, 0.5f);
  vexp* v = vexp_create(m, B, 1, TERM_INVERTED_PENDULUM);
  float rew[B], next[B * OD], done[B];
  batch(rew, next, done);
  int rc = vexp_expand(v, m, ag, B, 0.99f, 1.0f, (rng_key){12, RNG_VALUE_EXPANSION}, 0, rew, next, done);
  CHECK(rc == -1, "a NaN prediction gave rc %d", rc);
  vexp_free(v);
  sac_free(ag);
  model_free(m);
}

int main(void) {
  RUN(test_h0_leaves_rows);
  RUN(test_expanded_rows_by_hand);
  RUN(test_done_rows);
  RUN(test_nonfinite_reported);
  return test_done();
}
