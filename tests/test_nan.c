/* test_nan.c: a non-finite number stops its run, names the phase and keeps the last checkpoint,
 * through the real binary (MBPO_BIN; skipped when unset).
 *
 * MBPO_TEST_NAN=WHERE:SEED:STEP (host/mbpo_run.c) hands the check at WHERE a non-finite number once
 * the run of seed SEED has taken STEP env steps: the observation after an env step (obs), the
 * model's training loss (fit), a model prediction in the rollout (rollout) or in the value
 * expansion (vexp, a sac.value_expansion run), the SAC losses (sac).
 * For each: the run exits 1 with one error line naming that phase, writes no checkpoint after the
 * failure (checkpoint.latest names an epoch-end checkpoint from before it, which exists), and its
 * progress.csv stops short of the full run's. In a population only the failing run stops: the other
 * trains to its end, the exit status is 1 and the population says one of its runs failed. The
 * device path (on its host emulation) goes through the same checks.
 *
 * Devices: every command names device=cpu (the emulated device runs say MBPO_DEVICE_EMULATE=1 as
 * well). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "csv_read.h"
#include "test.h"
#include "tmp_files.h"

#define ARGS                                                                                      \
  "inverted_pendulum steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 " \
  "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "             \
  "eval.episodes=2 max_path_length=100 checkpoint.every=1 device=cpu threads=1"

/* Env steps before the NaN, inside epoch 1 for every phase: with ARGS and seed 0 (or 1) epoch 0
 * ends at about 260 env steps (ckpt-e000000.npz), epoch 1 fits its model at about 260 and 310 and
 * ends at about 360; a NaN at 300 (the fit's: the one at about 310) comes before ckpt-e000001. */
#define NAN_STEP 300

static char g_dir[] = "/tmp/mbpo-nan-XXXXXX";
static int g_have_dir;

/* Run `mbpo train ARGS args` with env before it, stderr into g_dir/tag.err; its exit status. */
static int train(const char* env, const char* tag, const char* args) {
  if (!g_have_dir && mkdtemp(g_dir)) g_have_dir = 1;
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=passive %s '%s' train " ARGS " run_dir='%s' tag=%s %s > /dev/null 2> '%s/%s.err'", env,
           getenv("MBPO_BIN"), g_dir, tag, args, g_dir, tag);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* The error lines ("mbpo: error: ") of tag's stderr, joined, and their count. */
static int errors(const char* tag, char* out, size_t n) {
  char p[700], line[2048];
  snprintf(p, sizeof p, "%s/%s.err", g_dir, tag);
  FILE* f = fopen(p, "r");
  int k = 0;
  out[0] = '\0';
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "mbpo: error: ")) {
      k++;
      strncat(out, line, n - strlen(out) - 1);
    }
  if (f) fclose(f);
  return k;
}

/* Data rows of run folder run's progress.csv (-1 when unreadable). */
static int progress_rows(const char* run) {
  char p[700];
  snprintf(p, sizeof p, "%s/progress.csv", run);
  csv t;
  if (csv_read(p, &t) != 0) return -1;
  int n = t.nrow;
  csv_free(&t);
  return n;
}

/* The run stopped by its check: an epoch-end checkpoint from before kept and named, no later one,
 * fewer progress rows than the full run's full_rows. */
static void stopped_with_checkpoint(const char* run, int full_rows) {
  char p[800], name[300] = "";
  snprintf(p, sizeof p, "%s/checkpoint.latest", run);
  FILE* f = fopen(p, "r");
  if (f) {
    if (!fgets(name, sizeof name, f)) name[0] = '\0';
    fclose(f);
  }
  name[strcspn(name, "\r\n")] = '\0';
  CHECK(strcmp(name, "ckpt-e000000.npz") == 0, "%s: checkpoint.latest names '%s', want ckpt-e000000.npz", run,
        name);
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", run, name);
  CHECK(name[0] && stat(p, &st) == 0 && st.st_size > 0, "%s: the kept checkpoint %s is missing", run, name);
  snprintf(p, sizeof p, "%s/ckpt-e000001.npz", run);
  CHECK(stat(p, &st) != 0, "%s: a checkpoint was written after the failure", run);
  int rows = progress_rows(run);
  CHECK(rows >= 0 && rows < full_rows, "%s: %d progress rows, the full run has %d", run, rows, full_rows);
}

static int g_full_rows = -1;

/* The run without a NaN: how many progress rows a whole run writes. */
static void test_full_run(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set");
  CHECK(train("", "full", "seed=0") == 0, "the run without a NaN failed");
  char run[600];
  snprintf(run, sizeof run, "%s/inverted_pendulum-full-s0", g_dir);
  g_full_rows = progress_rows(run);
  CHECK(g_full_rows == 3, "%d progress rows (3 epochs expected)", g_full_rows);
}

/* One phase's check, on the CPU backend or the emulated device path, with settings extra. */
static void one_phase_with(const char* where, const char* want, int emulated, const char* extra) {
  if (g_full_rows < 0) SKIP("no full run to compare with");
  char env[200], tag[64], err[8192], run[700];
  snprintf(env, sizeof env, "%sMBPO_TEST_NAN=%s:0:%d", emulated ? "MBPO_DEVICE_EMULATE=1 " : "", where, NAN_STEP);
  snprintf(tag, sizeof tag, "%s%s", where, emulated ? "-emu" : "");
  int rc = train(env, tag, extra);
  CHECK(rc == 1, "%s: exit status %d, want 1", tag, rc);
  int n = errors(tag, err, sizeof err);
  CHECK(n == 1 && strstr(err, want) != NULL, "%s: %d error lines, want one naming '%s': %s", tag, n, want, err);
  snprintf(run, sizeof run, "%s/inverted_pendulum-%s-s0", g_dir, tag);
  stopped_with_checkpoint(run, g_full_rows);
}

static void one_phase(const char* where, const char* want, int emulated) {
  one_phase_with(where, want, emulated, "seed=0");
}

static void test_nan_observation(void) { one_phase("obs", "NaN/Inf in the observation (env step ", 0); }
static void test_nan_model_fit(void) { one_phase("fit", "NaN/Inf in the model training loss (model fit ", 0); }
static void test_nan_rollout(void) { one_phase("rollout", "NaN/Inf in a model prediction during the rollout", 0); }
static void test_nan_sac(void) { one_phase("sac", "NaN/Inf in the SAC losses (updates ", 0); }
static void test_nan_value_expansion(void) {
  one_phase_with("vexp", "NaN/Inf in a model prediction of the value expansion (updates ", 0,
                 "seed=0 sac.real_ratio=1 sac.value_expansion=1");
}
static void test_nan_sac_emulated(void) { one_phase("sac", "NaN/Inf in the SAC losses (updates ", 1); }

/* A population of seeds 0 and 1 where seed 1 fails: seed 0 trains to its end. */
static void test_nan_population(void) {
  if (g_full_rows < 0) SKIP("no full run to compare with");
  char env[100], err[8192], run[700];
  snprintf(env, sizeof env, "MBPO_TEST_NAN=sac:1:%d", NAN_STEP);
  int rc = train(env, "pop", "sweep.seed=0,1");
  CHECK(rc == 1, "exit status %d, want 1", rc);
  int n = errors("pop", err, sizeof err);
  CHECK(n == 1 && strstr(err, "inverted_pendulum-pop-s1: NaN/Inf in the SAC losses"),
        "%d error lines, want one naming run s1 and the SAC losses: %s", n, err);
  snprintf(run, sizeof run, "%s/inverted_pendulum-pop-s0", g_dir);
  CHECK(progress_rows(run) == g_full_rows, "the healthy run s0 wrote %d progress rows, want %d", progress_rows(run),
        g_full_rows);
  snprintf(run, sizeof run, "%s/inverted_pendulum-pop-s1", g_dir);
  stopped_with_checkpoint(run, g_full_rows);
  char p[700], line[1024];
  snprintf(p, sizeof p, "%s/pop.err", g_dir);
  FILE* f = fopen(p, "r");
  int said = 0;
  while (f && fgets(line, sizeof line, f)) said |= strstr(line, "1 of the population's 2 runs failed") != NULL;
  if (f) fclose(f);
  CHECK(said, "the population does not say that one of its runs failed");
}

int main(void) {
  RUN(test_full_run);
  RUN(test_nan_observation);
  RUN(test_nan_model_fit);
  RUN(test_nan_rollout);
  RUN(test_nan_sac);
  RUN(test_nan_value_expansion);
  RUN(test_nan_sac_emulated);
  RUN(test_nan_population);
  if (g_have_dir) tmp_dir_done(g_dir, tst_fail);
  return test_done();
}
