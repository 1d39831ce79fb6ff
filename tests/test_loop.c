/* test_loop.c: the MBPO loop end to end on the CPU backend, through the real binary (MBPO_BIN;
 * skipped when unset): a tiny InvertedPendulum configuration that still runs every phase
 * (exploration, a first epoch that runs past epoch_length until the real pool holds min_pool rows,
 * model fits every F steps, rollouts whose length grows 1 -> 2 -> 3 and so resizes the model pool,
 * SAC updates, evaluation).
 *  - Determinism: two runs with one seed (tag=a, tag=b) write identical progress.csv and
 *    model_train.csv, every column by name but the timing ones (csv_read.h); a run with another
 *    seed differs.
 *  - Bookkeeping: one progress row per epoch; env_steps grows by >= epoch_length per epoch; one
 *    model_train.csv row per fit, at t mod F == 0 within each epoch (ceil(steps of the epoch / F)
 *    fits); the rollout length and model-pool capacity follow the schedule (§4, §5); the epoch's
 *    rollout rows are the sum of its fits'; the model pool's size follows the FIFO rule; G SAC
 *    updates per step once the real pool holds min_pool rows; the evaluation columns agree with one
 *    another (InvertedPendulum: return = length, 1 per step).
 * Every run says device=cpu: this is the CPU reference (test_loop_dev has the device path). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv_read.h"
#include "test.h"

/* The tiny run: 3 epochs of 100 steps, F = 50, rollouts of 500 rows, k = 1, 2, 3. */
enum { E_LEN = 100, F = 50, NEPOCH = 3, G = 2, RB = 500, MIN_POOL = 250 };
static const char* const ARGS =
    "steps=300 epoch_length=100 init_steps=100 min_pool=250 max_path_length=100 "
    "model.train_freq=50 model.hidden=32 model.max_epochs=5 "
    "rollout.batch=500 rollout.min_epoch=0 rollout.max_epoch=2 rollout.min_length=1 rollout.max_length=3 "
    "sac.hidden=32 sac.updates=2 eval.episodes=2 threads=2 device=cpu";

static char g_tmp[] = "/tmp/mbpo_test_loop_XXXXXX";
static int g_have_tmp;

/* ---- running the binary ------------------------------------------------------------------- */

/* Train tag/seed into g_tmp; 0 on success. */
static int train(const char* tag, int seed) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=passive '%s' train inverted_pendulum run_dir='%s' tag=%s seed=%d %s "
           ">'%s/%s.log' 2>&1",
           getenv("MBPO_BIN"), g_tmp, tag, seed, ARGS, g_tmp, tag);
  int rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "  command failed (status %d): %s\n", rc, cmd);
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s/%s.log' >&2", g_tmp, tag);
    if (system(cmd) != 0) fprintf(stderr, "  (no log)\n");
  }
  return rc;
}

static int load(const char* tag, int seed, const char* file, csv* t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/inverted_pendulum-%s-s%d/%s", g_tmp, tag, seed, file);
  int rc = csv_read(path, t);
  if (rc != 0) fprintf(stderr, "  cannot read %s\n", path);
  return rc;
}

static int g_ran; /* 1 when the three runs succeeded */

static void run_all(void) {
  if (g_ran) return;
  if (!g_have_tmp) {
    if (!mkdtemp(g_tmp)) {
      perror("mkdtemp");
      return;
    }
    g_have_tmp = 1;
  }
  g_ran = train("a", 0) == 0 && train("b", 0) == 0 && train("c", 1) == 0 ? 1 : -1;
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* The same file of two runs: the number of differing cells (timing columns left out, csv_read.h). */
static int differing(const char* ta, int sa, const char* tb, int sb, const char* file, int quiet) {
  char pa[4096], pb[4096];
  snprintf(pa, sizeof pa, "%s/inverted_pendulum-%s-s%d/%s", g_tmp, ta, sa, file);
  snprintf(pb, sizeof pb, "%s/inverted_pendulum-%s-s%d/%s", g_tmp, tb, sb, file);
  return csv_compare(quiet ? NULL : file, pa, pb, -1, 0, NULL, NULL);
}

static void test_same_seed_same_run(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  run_all();
  CHECK(g_ran == 1, "the training runs failed");
  if (g_ran != 1) return;
  csv a;
  if (load("a", 0, "progress.csv", &a)) {
    CHECK(0, "progress.csv missing");
    return;
  }
  /* the timing columns csv_compare leaves out are there (host/mbpo_epoch.c's progress columns) */
  for (int i = 0; csv_timing_cols[i]; i++)
    if (strcmp(csv_timing_cols[i], "seconds") != 0)
      CHECK(col(&a, csv_timing_cols[i]) >= 0, "progress.csv has no timing column %s", csv_timing_cols[i]);
  CHECK(a.nrow == NEPOCH, "progress.csv has %d rows", a.nrow);
  csv_free(&a);
  int d = differing("a", 0, "b", 0, "progress.csv", 0);
  CHECK(d == 0, "same seed: %d progress.csv cells differ (-1: shape)", d);
  d = differing("a", 0, "b", 0, "model_train.csv", 0);
  CHECK(d == 0, "same seed: %d model_train.csv cells differ (-1: shape)", d);
  /* a different seed: the runs differ (returns, losses, pool sizes, ...; -1: in shape) */
  CHECK(differing("a", 0, "c", 1, "progress.csv", 1) != 0, "seed 1 wrote the same progress.csv as seed 0");
  CHECK(differing("a", 0, "c", 1, "model_train.csv", 1) != 0, "seed 1 wrote the same model_train.csv as seed 0");
}

static void test_progress_and_fits(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  run_all();
  if (g_ran != 1) SKIP("the training runs failed (see test_same_seed_same_run)");
  for (int seed = 0; seed <= 1; seed++) {
    const char* tag = seed ? "c" : "a";
    csv p, m;
    if (load(tag, seed, "progress.csv", &p) || load(tag, seed, "model_train.csv", &m)) {
      CHECK(0, "CSV files missing");
      return;
    }
    CHECK(p.nrow == NEPOCH, "seed %d: %d progress rows, expected one per epoch (%d)", seed, p.nrow, NEPOCH);
    double explore = num(&p, 0, "total_env_steps") - num(&p, 0, "env_steps");
    CHECK(explore >= 100, "seed %d: %.0f exploration steps (init_steps 100)", seed, explore);
    double prev_steps = 0, mpool = 0;
    int fit = 0;
    for (int e = 0; e < p.nrow; e++) {
      CHECK(num(&p, e, "epoch") == e, "seed %d: row %d has epoch %g", seed, e, num(&p, e, "epoch"));
      double steps = num(&p, e, "env_steps"), total = num(&p, e, "total_env_steps");
      double n = steps - prev_steps; /* steps of this epoch */
      CHECK(n >= E_LEN, "seed %d epoch %d: %.0f env steps (epoch_length %d)", seed, e, n, E_LEN);
      CHECK(total - steps == explore, "seed %d epoch %d: total_env_steps - env_steps = %.0f", seed, e, total - steps);
      /* the epoch ends at the first t >= E with the real pool at min_pool: only a short first
       * epoch runs long, by less than one episode's worth of steps beyond the pool's filling */
      if (e > 0) CHECK(n == E_LEN, "seed %d epoch %d: %.0f steps, expected exactly %d", seed, e, n, E_LEN);
      double real = num(&p, e, "real_pool_size");
      CHECK(real >= MIN_POOL && real <= total && real > total - 100,
            "seed %d epoch %d: real pool %.0f of %.0f steps", seed, e, real, total);
      /* fits of this epoch: at t = 0, F, 2F, ... < n */
      int want_fits = (int)((n + F - 1) / F), got = 0;
      double rows = 0;
      int k = e + 1; /* schedule [0, 2, 1, 3] */
      double cap = (double)k * RB * E_LEN / F;
      for (; fit < m.nrow && num(&m, fit, "epoch") == e; fit++, got++) {
        CHECK(num(&m, fit, "fit") == fit, "seed %d: fit column %g at row %d", seed, num(&m, fit, "fit"), fit);
        double t = num(&m, fit, "env_steps") - (total - n); /* steps already taken in the epoch */
        CHECK(t == (double)got * F, "seed %d epoch %d: fit %d at t = %.0f, expected %d", seed, e, got, t, got * F);
        CHECK(num(&m, fit, "rollout_length") == k, "seed %d epoch %d: rollout length %g, expected %d", seed, e,
              num(&m, fit, "rollout_length"), k);
        double rr = num(&m, fit, "rollout_rows");
        CHECK(rr >= RB && rr <= (double)k * RB, "seed %d fit %d: %.0f rollout rows", seed, fit, rr);
        rows += rr;
        if (mpool > cap) mpool = cap; /* the pool is rebuilt with the newest rows */
        mpool = mpool + rr < cap ? mpool + rr : cap;
      }
      CHECK(got == want_fits, "seed %d epoch %d: %d model fits, expected ceil(%.0f / %d) = %d", seed, e, got, n, F,
            want_fits);
      CHECK(num(&p, e, "rollout_length") == k, "seed %d epoch %d: rollout_length %g", seed, e,
            num(&p, e, "rollout_length"));
      CHECK(num(&p, e, "model_pool_capacity") == cap, "seed %d epoch %d: model pool capacity %g, expected %.0f", seed,
            e, num(&p, e, "model_pool_capacity"), cap);
      CHECK(num(&p, e, "rollout_rows") == rows, "seed %d epoch %d: rollout_rows %g, fits sum to %.0f", seed, e,
            num(&p, e, "rollout_rows"), rows);
      CHECK(num(&p, e, "model_pool_size") == mpool, "seed %d epoch %d: model pool size %g, expected %.0f", seed, e,
            num(&p, e, "model_pool_size"), mpool);
      /* G updates per step once the real pool holds min_pool rows (every step after epoch 0) */
      double upd = num(&p, e, "sac_updates");
      if (e > 0) CHECK(upd == G * n, "seed %d epoch %d: %g SAC updates, expected %.0f", seed, e, upd, G * n);
      else CHECK(upd >= G && upd <= G * n && (int)upd % G == 0, "seed %d epoch 0: %g SAC updates", seed, upd);
      /* InvertedPendulum's reward is 1 on every step, the terminating one included (docs/tasks.md):
       * an evaluation episode's return is its length, 1..max_path_length */
      double mean = num(&p, e, "eval_return_mean"), len = num(&p, e, "eval_length_mean");
      double lo = num(&p, e, "eval_return_min"), hi = num(&p, e, "eval_return_max");
      double first = num(&p, e, "eval_return_first"), sd = num(&p, e, "eval_return_std");
      CHECK(mean == len, "seed %d epoch %d: eval return %g, mean length %g (reward 1 per step)", seed, e, mean, len);
      CHECK(lo >= 1 && hi <= 100 && lo <= mean && mean <= hi && lo <= first && first <= hi && lo == floor(lo) &&
                hi == floor(hi) && sd >= 0 && sd <= (hi - lo) / 2,
            "seed %d epoch %d: eval mean %g std %g min %g max %g first %g", seed, e, mean, sd, lo, hi, first);
      double tr = num(&p, e, "train_return"), te = num(&p, e, "train_episodes");
      CHECK(te >= 1 && tr >= 1 && tr <= 100, "seed %d epoch %d: %g training episodes, mean return %g", seed, e, te,
            tr);
      prev_steps = steps;
    }
    CHECK(fit == m.nrow, "seed %d: %d model_train rows, %d accounted for by the epochs", seed, m.nrow, fit);
    csv_free(&p);
    csv_free(&m);
  }
}

int main(void) {
  RUN(test_same_seed_same_run);
  RUN(test_progress_and_fits);
  if (g_have_tmp && !getenv("TEST_KEEP")) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
  }
  return test_done();
}
