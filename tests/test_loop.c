/* test_loop.c: the MBPO loop end to end on the CPU backend, through the real binary (MBPO_BIN;
 * skipped when unset): a tiny InvertedPendulum configuration that still runs every phase
 * (exploration, a first epoch that runs past epoch_length until the real pool holds min_pool rows,
 * model fits every F steps, rollouts whose length grows 1 -> 2 -> 3 and so resizes the model pool,
 * SAC updates, evaluation).
 *  - Determinism: two runs with one seed (tag=a, tag=b) write identical progress.csv apart from the
 *    timing columns (wall_time_s and after) and identical model_train.csv apart from seconds; a
 *    run with another seed differs.
 *  - Bookkeeping: one progress row per epoch; env_steps grows by >= epoch_length per epoch; one
 *    model_train.csv row per fit, at t mod F == 0 within each epoch (ceil(steps of the epoch / F)
 *    fits); the rollout length and model-pool capacity follow the schedule (§4, §5); the epoch's
 *    rollout rows are the sum of its fits'; the model pool's size follows the FIFO rule; G SAC
 *    updates per step once the real pool holds min_pool rows. */
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
    "sac.hidden=32 sac.updates=2 eval.episodes=2 threads=2";

static char g_tmp[] = "/tmp/mbpo_test_loop_XXXXXX";
static int g_have_tmp;

/* Rows that differ between a and b in columns [0, upto) and in columns after skip (skip = -1: none);
 * -1 when the headers or shapes differ. */
static int rows_differing(const csv* a, const csv* b, int upto, int skip) {
  if (a->ncol != b->ncol || a->nrow != b->nrow) return -1;
  for (int c = 0; c < a->ncol; c++)
    if (strcmp(a->head[c], b->head[c]) != 0) return -1;
  int d = 0;
  for (int r = 0; r < a->nrow; r++) {
    if (a->rcol[r] != a->ncol || b->rcol[r] != b->ncol) return -1;
    int same = 1;
    for (int c = 0; c < a->ncol; c++) {
      if (c >= upto && (skip < 0 || c <= skip)) continue;
      if (strcmp(a->cell[r][c], b->cell[r][c]) != 0) same = 0;
    }
    d += !same;
  }
  return d;
}

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

static void test_same_seed_same_run(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  run_all();
  CHECK(g_ran == 1, "the training runs failed");
  if (g_ran != 1) return;
  csv a, b, c;
  if (load("a", 0, "progress.csv", &a) || load("b", 0, "progress.csv", &b) || load("c", 1, "progress.csv", &c)) {
    CHECK(0, "progress.csv missing");
    return;
  }
  int tcol = col(&a, "wall_time_s");
  CHECK(tcol > 0, "progress.csv has no wall_time_s column");
  /* every column from wall_time_s on is timing (host/mbpo.c: P_FIRST_TIME_COL) */
  static const char* const timing[] = {"wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s", "env_steps_per_s"};
  for (int i = 0; i < 5; i++)
    CHECK(col(&a, timing[i]) >= tcol, "timing column %s is before wall_time_s", timing[i]);
  CHECK(a.nrow == NEPOCH, "progress.csv has %d rows", a.nrow);
  int d = rows_differing(&a, &b, tcol, -1);
  CHECK(d == 0, "same seed: %d progress rows differ before wall_time_s (-1: shape)", d);
  int shown = 0; /* the first few differing cells */
  if (d != 0)
    for (int r = 0; r < a.nrow && r < b.nrow; r++)
      for (int k = 0; k < tcol && k < a.rcol[r] && k < b.rcol[r]; k++)
        if (strcmp(a.cell[r][k], b.cell[r][k]) != 0 && shown++ < 8)
          fprintf(stderr, "    row %d %s: %s vs %s\n", r, a.head[k], a.cell[r][k], b.cell[r][k]);
  /* a different seed: the runs differ (returns, losses, pool sizes, ...) */
  int dc = rows_differing(&a, &c, tcol, -1);
  CHECK(dc != 0, "seed 1 wrote the same progress.csv as seed 0");
  csv_free(&a);
  csv_free(&b);
  csv_free(&c);

  csv ma, mb, mc;
  if (load("a", 0, "model_train.csv", &ma) || load("b", 0, "model_train.csv", &mb) ||
      load("c", 1, "model_train.csv", &mc)) {
    CHECK(0, "model_train.csv missing");
    return;
  }
  int sc = col(&ma, "seconds");
  CHECK(sc >= 0, "model_train.csv has no seconds column");
  d = rows_differing(&ma, &mb, sc, sc);
  CHECK(d == 0, "same seed: %d model_train rows differ apart from seconds (-1: shape)", d);
  CHECK(rows_differing(&ma, &mc, sc, sc) != 0, "seed 1 wrote the same model_train.csv as seed 0");
  csv_free(&ma);
  csv_free(&mb);
  csv_free(&mc);
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
      CHECK(num(&p, e, "eval_return_mean") > 0, "seed %d epoch %d: eval return %g", seed, e,
            num(&p, e, "eval_return_mean"));
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
