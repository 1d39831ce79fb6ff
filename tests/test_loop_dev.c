/* test_loop_dev.c: the whole loop on the CUDA backend's path against the CPU backend, through the
 * real binary (MBPO_BIN; skipped when unset). The same tiny InvertedPendulum run as test_loop.c is
 * trained three ways: device=cpu (the reference), the device path on its host emulation
 * (MBPO_DEVICE_EMULATE=1), and device=cuda when a GPU is usable (else a visible skip).
 *
 * Exploration is identical on all paths; after it, every number differs only by float rounding
 * (summation orders of the GEMMs, libm on the GPU), which training amplifies step by step. So:
 *   every epoch: the schedule's bookkeeping (epoch, env steps, total env steps, real pool size,
 *     model pool capacity, rollout length, SAC updates) exactly equal, the same number of rows
 *     and columns, finite losses, and the evaluation return within a band of the CPU's,
 *     |x - cpu| <= 0.5 cpu + 5 (a policy that stopped learning or diverged falls out of it; set from
 *     the arithmetic, not measured: the GPU run prints every epoch's pair);
 *   epoch 0 (one model fit on identical data, the first SAC updates): also the rollout's rows,
 *     the model pool's size, the training episodes and the fit's epochs exactly equal, model loss
 *     and holdout MSE within 1e-3 relative, SAC losses, alpha, entropy and Q within 2e-2, the first
 *     fit's epochs and elites in model_train.csv equal.
 * The runs evaluate with eval.model_return = 1, so the model the device path brings back for the
 * evaluation is compared too (its eval_model_return columns).
 * On the host emulation every column of every epoch agrees within 1e-5 (measured: ~1e-8), and a
 * device-path run interrupted mid-epoch and resumed equals the uninterrupted one exactly.
 * Faults are named: on the emulated device path an injected fault (MBPO_DX_FAIL) in the model fit
 * is reported with MBPO_DX_SYNC=1 as the fit's epoch and the op; a GPU that is present but
 * unusable (MBPO_TEST_GPU_PRESENT pretends one, with an old driver) is named with the driver found
 * and the one needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "csv_read.h"
#include "test.h"

static const char* const ARGS =
    "steps=300 epoch_length=100 init_steps=100 min_pool=250 max_path_length=100 "
    "model.train_freq=50 model.hidden=32 model.max_epochs=5 "
    "rollout.batch=500 rollout.min_epoch=0 rollout.max_epoch=2 rollout.min_length=1 rollout.max_length=3 "
    "sac.hidden=32 sac.updates=2 eval.episodes=2 eval.model_return=1 eval.model_rollouts=3 threads=1";

static char g_tmp[] = "/tmp/mbpo_test_loop_dev_XXXXXX";

/* Train with tag; env and device as given; 0 on success. */
static int train(const char* tag, const char* env, const char* device) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=passive %s '%s' train inverted_pendulum run_dir='%s' tag=%s seed=0 device=%s %s "
           ">'%s/%s.log' 2>&1",
           env, getenv("MBPO_BIN"), g_tmp, tag, device, ARGS, g_tmp, tag);
  int rc = system(cmd);
  if (rc != 0) {
    fprintf(stderr, "  command failed (status %d): %s\n", rc, cmd);
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s/%s.log' >&2", g_tmp, tag);
    if (system(cmd) != 0) fprintf(stderr, "  (no log)\n");
  }
  return rc;
}

static int load(const char* tag, const char* file, csv* t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/inverted_pendulum-%s-s0/%s", g_tmp, tag, file);
  int rc = csv_read(path, t);
  if (rc != 0) fprintf(stderr, "  cannot read %s\n", path);
  return rc;
}

static double rel(double a, double b) {
  double s = fabs(b) > 1e-3 ? fabs(b) : 1e-3;
  return fabs(a - b) / s;
}

/* Every column before wall_time_s of every row of progress.csv within rel_tol of ref's (exact
 * when 0). */
static void compare_all(const char* ref, const char* tag, double rel_tol) {
  csv a, b;
  if (load(ref, "progress.csv", &a) || load(tag, "progress.csv", &b)) {
    CHECK(0, "%s: progress.csv missing", tag);
    return;
  }
  int tcol = col(&a, "wall_time_s");
  CHECK(a.nrow == b.nrow && a.ncol == b.ncol && tcol > 0, "%s: %d x %d vs %s's %d x %d", tag, b.nrow,
        b.ncol, ref, a.nrow, a.ncol);
  int shown = 0;
  for (int r = 0; r < a.nrow && r < b.nrow; r++)
    for (int k = 0; k < tcol && k < a.rcol[r] && k < b.rcol[r]; k++) {
      double x = atof(b.cell[r][k]), y = atof(a.cell[r][k]);
      int same = strcmp(a.cell[r][k], b.cell[r][k]) == 0 || (rel_tol > 0 && rel(x, y) <= rel_tol);
      CHECK(same || shown > 8, "%s row %d %s: %s vs %s's %s", tag, r, a.head[k], b.cell[r][k], ref, a.cell[r][k]);
      shown += !same;
    }
  csv_free(&a);
  csv_free(&b);
}

/* Compare run tag with the CPU reference (the GPU's tolerances). */
static void compare(const char* tag) {
  csv a, b, ma, mb;
  if (load("cpu", "progress.csv", &a) || load(tag, "progress.csv", &b) ||
      load("cpu", "model_train.csv", &ma) || load(tag, "model_train.csv", &mb)) {
    CHECK(0, "%s: a progress.csv or model_train.csv is missing", tag);
    return;
  }
  CHECK(a.nrow == b.nrow && a.ncol == b.ncol, "%s: %d x %d vs the CPU's %d x %d", tag, b.nrow, b.ncol,
        a.nrow, a.ncol);
  static const char* const exact[] = {"epoch", "env_steps", "total_env_steps", "rollout_length",
                                      "real_pool_size", "model_pool_capacity", "sac_updates"};
  for (int r = 0; r < a.nrow && r < b.nrow; r++)
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
      CHECK(num(&a, r, exact[i]) == num(&b, r, exact[i]), "%s epoch %d %s: %g vs the CPU's %g", tag, r, exact[i],
            num(&b, r, exact[i]), num(&a, r, exact[i]));
  static const char* const exact0[] = {"rollout_rows", "model_pool_size", "train_episodes", "model_epochs"};
  for (size_t i = 0; i < sizeof exact0 / sizeof *exact0; i++)
    CHECK(num(&a, 0, exact0[i]) == num(&b, 0, exact0[i]), "%s epoch 0 %s: %g vs the CPU's %g", tag, exact0[i],
          num(&b, 0, exact0[i]), num(&a, 0, exact0[i]));
  for (int r = 0; r < a.nrow && r < b.nrow; r++) {
    const double x = num(&b, r, "eval_return_mean"), y = num(&a, r, "eval_return_mean");
    printf("  %s epoch %d eval_return_mean %.6g, the CPU's %.6g (band +-%.3g)\n", tag, r, x, y, 0.5 * fabs(y) + 5);
    CHECK(fabs(x - y) <= 0.5 * fabs(y) + 5, "%s epoch %d eval_return_mean %.6g outside the band around the CPU's %.6g",
          tag, r, x, y);
  }
  static const char* const model_cols[] = {"model_train_loss", "model_holdout_mse_elites"};
  for (int i = 0; i < 2; i++) {
    double x = num(&b, 0, model_cols[i]), y = num(&a, 0, model_cols[i]);
    printf("  %s epoch 0 %s rel err %.3g (bound 1e-3)\n", tag, model_cols[i], rel(x, y));
    CHECK(rel(x, y) < 1e-3, "%s epoch 0 %s: %.9g vs the CPU's %.9g", tag, model_cols[i], x, y);
  }
  static const char* const sac_cols[] = {"q1_loss", "q2_loss", "policy_loss", "alpha", "entropy", "q_mean"};
  for (int i = 0; i < 6; i++) {
    double x = num(&b, 0, sac_cols[i]), y = num(&a, 0, sac_cols[i]);
    printf("  %s epoch 0 %s rel err %.3g (bound 2e-2)\n", tag, sac_cols[i], rel(x, y));
    CHECK(rel(x, y) < 2e-2, "%s epoch 0 %s: %.9g vs the CPU's %.9g", tag, sac_cols[i], x, y);
  }
  for (int r = 0; r < b.nrow; r++)
    for (int i = 0; i < 6; i++) CHECK(isfinite(num(&b, r, sac_cols[i])), "%s epoch %d: %s not finite", tag, r, sac_cols[i]);
  CHECK(num(&ma, 0, "epochs") == num(&mb, 0, "epochs"), "%s first fit: %g epochs vs the CPU's %g", tag,
        num(&mb, 0, "epochs"), num(&ma, 0, "epochs"));
  int ce = col(&ma, "elites"), de = col(&mb, "elites");
  CHECK(ce >= 0 && de >= 0 && strcmp(ma.cell[0][ce], mb.cell[0][de]) == 0, "%s first fit: elites %s vs the CPU's %s",
        tag, de >= 0 ? mb.cell[0][de] : "?", ce >= 0 ? ma.cell[0][ce] : "?");
  csv_free(&a);
  csv_free(&b);
  csv_free(&ma);
  csv_free(&mb);
}

static int g_cpu_ok = -1;

static void run_cpu(void) {
  if (g_cpu_ok < 0) g_cpu_ok = train("cpu", "", "cpu") == 0;
}

static void test_emulated_device_path(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  run_cpu();
  CHECK(g_cpu_ok, "the CPU run failed");
  int ok = train("emu", "MBPO_DEVICE_EMULATE=1", "cpu") == 0;
  CHECK(ok, "the emulated device run failed");
  if (ok && g_cpu_ok) {
    compare("emu");
    /* on the host the only differences are summation orders: the whole run agrees closely */
    compare_all("cpu", "emu", 1e-5);
  }
}

/* The device path interrupted mid-epoch (its state downloaded into a checkpoint) and resumed (the
 * state uploaded again) gives the uninterrupted device run's progress.csv exactly. The resumed run
 * starts with a model fitter for 120 rows (MBPO_TEST_FIT_ROWS), so its fits must grow it (a new
 * fitter, its graphs captured again), with the same results. */
static void test_emulated_resume(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  int ok = train("emu-int", "MBPO_DEVICE_EMULATE=1 MBPO_TEST_INTERRUPT_STEP=160", "cpu") == 0;
  CHECK(ok, "the interrupted emulated run failed");
  if (!ok) return;
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=passive MBPO_DEVICE_EMULATE=1 MBPO_TEST_FIT_ROWS=120 '%s' train --resume "
           "'%s/inverted_pendulum-emu-int-s0' "
           ">'%s/emu-resume.log' 2>&1",
           getenv("MBPO_BIN"), g_tmp, g_tmp);
  int rc = system(cmd);
  CHECK(rc == 0, "resume failed (status %d): %s", rc, cmd);
  if (rc == 0) compare_all("emu", "emu-int", 0);
}

/* An injected fault in the model fit of the emulated device path, with MBPO_DX_SYNC=1: the
 * report names the fit, its epoch, the op and its place in the fit's block graph. */
static void test_fault_named(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char path[4096], line[2048] = "";
  snprintf(path, sizeof path,
           "OMP_WAIT_POLICY=passive MBPO_DEVICE_EMULATE=1 MBPO_DX_SYNC=1 MBPO_DX_FAIL=modelk_nll:3 '%s' train "
           "inverted_pendulum run_dir='%s' tag=fault seed=0 device=cpu %s >'%s/fault.log' 2>&1",
           getenv("MBPO_BIN"), g_tmp, ARGS, g_tmp);
  int rc = system(path); /* expected to fail: the report is what is checked */
  CHECK(rc != 0, "a run with an injected fault succeeded");
  snprintf(path, sizeof path, "%s/fault.log", g_tmp);
  FILE* f = fopen(path, "r");
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if ((found = strstr(line, "mbpo: error: ") != NULL)) break;
  if (f) fclose(f);
  printf("  %s", found ? line : "(no error line)\n");
  /* two steps per epoch in one block graph: the third step is the first of epoch 1 */
  CHECK(found && strstr(line, "training epoch 0, env step ") &&
            strstr(line, ": model fit (1 run, fit index 0), epoch 1: op modelk_nll (") &&
            strstr(line, "of the graph captured in \"model fit graph (1 run slot): 2 minibatch steps\": injected fault"),
        "the report does not name the loop's phase, the fit's epoch and the op: %s", line);
}

/* A GPU that is present but unusable is named with the driver found and the one needed, on every
 * run (mbpo --version here; device=auto warns likewise). */
static void test_old_driver_named(void) {
  char why[256];
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!backend_cuda_built()) SKIP("built without CUDA: no driver to name");
  if (backend_cuda_probe(why, sizeof why)) SKIP("the GPU is usable here: %s", why);
  char cmd[4096], out[2048] = "";
  snprintf(cmd, sizeof cmd, "MBPO_TEST_GPU_PRESENT=470.1.2 '%s' --version 2>&1", getenv("MBPO_BIN"));
  FILE* f = popen(cmd, "r");
  size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
  out[n] = 0;
  if (f) pclose(f);
  printf("  %s", out);
  CHECK(strstr(out, "WARNING: the GPU is not usable") && strstr(out, "driver 470.1.2") && strstr(out, "needs driver >= "),
        "no driver named: %s", out);
}

static void test_gpu_path(void) {
  char why[256];
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!backend_cuda_probe(why, sizeof why)) SKIP("no usable GPU: %s", why);
  run_cpu();
  CHECK(g_cpu_ok, "the CPU run failed");
  int ok = train("gpu", "", "cuda") == 0;
  CHECK(ok, "the GPU run failed");
  if (ok && g_cpu_ok) compare("gpu");
}

int main(void) {
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_emulated_device_path);
  RUN(test_emulated_resume);
  RUN(test_fault_named);
  RUN(test_old_driver_named);
  RUN(test_gpu_path);
  if (!getenv("MBPO_KEEP_TMP")) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_tmp);
  }
  return test_done();
}
