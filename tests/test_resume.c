/* test_resume.c: checkpoints and exact resume, through the real binary.
 * A run interrupted mid-epoch (MBPO_TEST_INTERRUPT_STEP=N acts as a SIGINT once the run has taken
 * training step N: finish the step, write a checkpoint, exit 0) and resumed with
 * `mbpo train --resume` writes the same progress.csv and model_train.csv as an uninterrupted run,
 * every column compared by header name except the timing ones (csv_read.h).
 * The interrupts are checked to have happened where asked: after each interrupted command
 * checkpoint.latest names the mid-epoch checkpoint ckpt-e<epoch>-t<step>.npz of training step N
 * (epoch and step found from the uninterrupted run's progress.csv), and the CSV files hold exactly
 * the rows written before it (the uninterrupted run's fits before step N, the epochs logged before
 * it), equal to the uninterrupted run's first rows. A `--resume` of a finished run would exit 0
 * with its files unchanged, so without these checks a broken interrupt hook would pass.
 * The TensorBoard event file is continued the same way: one file, no step written twice, the same
 * scalars as the uninterrupted run's (tboard_open_append cuts it back to the checkpoint's length).
 * The runs evaluate with eval.model_return = 1: an evaluation still pending at an interrupt runs,
 * after the resume, in the model snapshot its checkpoint kept (the run's model has been refitted
 * since), so its eval_model_return columns match too.
 * Once the resumed run has saved a later epoch end, its mid-epoch checkpoints are removed.
 * A truncated or corrupt checkpoint is refused with a message and changes nothing.
 *
 * Devices: every command names its device. device=cpu is the reference (exact). The twin on the GPU
 * (device=cuda) runs the same interrupts and resumes and holds them to the same exact comparison
 * (tolerance 0: the same GPU runs the same graphs, with the same shapes, before and after a
 * resume); it is skipped, saying why, where mbpo cannot use a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backend.h"
#include "csv_read.h"
#include "events_text.h"
#include "test.h"
#include "tmp_files.h"

#define ARGS                                                                                      \
  "inverted_pendulum steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 " \
  "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "             \
  "eval.episodes=2 max_path_length=100 checkpoint.every=1 rollout.min_epoch=0 "                   \
  "rollout.max_epoch=2 rollout.max_length=3 eval.model_return=1 eval.model_rollouts=3"

static char g_dir[] = "/tmp/mbpo-resume-XXXXXX";
static int g_have_dir;

static int sh(const char* fmt, const char* a, const char* b) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static int make_dir(void) {
  if (!g_have_dir && mkdtemp(g_dir)) g_have_dir = 1;
  return g_have_dir;
}

/* The run folder of a tag. */
static void run_path(const char* tag, char* out, size_t n) {
  snprintf(out, n, "%s/inverted_pendulum-%s-s0", g_dir, tag);
}

/* The name checkpoint.latest holds ("" when none). */
static void latest(const char* run, char* name, size_t n) {
  char p[700];
  snprintf(p, sizeof p, "%s/checkpoint.latest", run);
  FILE* f = fopen(p, "r");
  name[0] = '\0';
  if (!f) return;
  if (!fgets(name, (int)n, f)) name[0] = '\0';
  fclose(f);
  name[strcspn(name, "\r\n")] = '\0';
}

/* Where training step N falls in the uninterrupted run `full`: its epoch and the step within it
 * (progress.csv's env_steps counts the training steps up to each epoch's end); the number of
 * progress rows written by then (epochs before the running one, less the one whose row waits for
 * its evaluation, written at the next epoch's end); the number of model fits before step N
 * (model_train.csv's env_steps at a fit, less the exploration steps, is the step it precedes).
 * 0, or -1 when the files do not say. */
static int interrupt_point(const char* full, long N, long* epoch, long* t, int* prows, int* mrows) {
  char pp[700], pm[700];
  snprintf(pp, sizeof pp, "%s/progress.csv", full);
  snprintf(pm, sizeof pm, "%s/model_train.csv", full);
  csv p, m;
  if (csv_read(pp, &p) != 0) return -1;
  if (csv_read(pm, &m) != 0) {
    csv_free(&p);
    return -1;
  }
  int rc = -1;
  double explore = num(&p, 0, "total_env_steps") - num(&p, 0, "env_steps");
  double before = 0;
  for (int e = 0; e < p.nrow; e++) {
    double end = num(&p, e, "env_steps");
    if (N < end) {
      *epoch = e;
      *t = N - (long)before;
      *prows = e > 0 ? e - 1 : 0;
      rc = 0;
      break;
    }
    before = end;
  }
  *mrows = 0;
  for (int r = 0; r < m.nrow; r++) *mrows += num(&m, r, "env_steps") - explore < N;
  csv_free(&p);
  csv_free(&m);
  return rc;
}

/* After an interrupted command: checkpoint.latest names step N's checkpoint and the CSV files hold
 * the uninterrupted run's rows before it, and no more. */
static void check_interrupted(const char* full, const char* run, long N) {
  long epoch = -1, t = -1;
  int prows = -1, mrows = -1;
  CHECK(interrupt_point(full, N, &epoch, &t, &prows, &mrows) == 0,
        "the uninterrupted run %s does not reach training step %ld", full, N);
  if (epoch < 0) return;
  char want[64], got[256], a[700], b[700];
  snprintf(want, sizeof want, "ckpt-e%06ld-t%06ld.npz", epoch, t);
  latest(run, got, sizeof got);
  CHECK(strcmp(got, want) == 0, "after the interrupt at step %ld checkpoint.latest names '%s', want '%s'", N, got,
        want);
  const char* files[2] = {"progress.csv", "model_train.csv"};
  int rows[2] = {prows, mrows};
  for (int i = 0; i < 2; i++) {
    snprintf(a, sizeof a, "%s/%s", run, files[i]);
    snprintf(b, sizeof b, "%s/%s", full, files[i]);
    csv x;
    int n = csv_read(a, &x) == 0 ? x.nrow : -1;
    if (n >= 0) csv_free(&x);
    CHECK(n == rows[i], "after the interrupt at step %ld (epoch %ld, t %ld) %s has %d rows, want %d", N, epoch, t,
          files[i], n, rows[i]);
    if (n == rows[i] && n > 0) {
      int d = csv_compare(files[i], a, b, n, 0, NULL, NULL);
      CHECK(d == 0, "the interrupted run's %s differs from the uninterrupted run's first %d rows (%d)", files[i], n, d);
    }
  }
}

/* The resumed run's event data equals the uninterrupted run's (one file, no step twice, the same
 * values apart from the timing scalars), one event per progress.csv row plus the file header. */
static void same_events(const char* full, const char* run) {
  char pa[700];
  int fa, fb, ea, eb;
  char *x = read_events(full, &fa, &ea), *y = read_events(run, &fb, &eb);
  CHECK(x && y, "cannot read or decode the event files");
  CHECK(fa == 1 && fb == 1, "event files: %d uninterrupted, %d resumed (want 1 each)", fa, fb);
  snprintf(pa, sizeof pa, "%s/progress.csv", run);
  int rows = count_lines(pa) - 1;
  CHECK(eb == rows + 1, "resumed run: %d events for %d progress.csv rows (want rows + 1)", eb, rows);
  if (x && y) CHECK(strcmp(x, y) == 0, "event data differs after resume:\n--- uninterrupted\n%s--- resumed\n%s", x, y);
  free(x);
  free(y);
}

/* An uninterrupted run and one interrupted in epoch 0 (which runs past epoch_length until the real
 * pool holds min_pool rows: step 130), resumed, interrupted again in epoch 1 (step 230), resumed to
 * the end; both on device dev, with tags <tag>full and <tag>int. */
static void exact_resume(const char* dev, const char* tag) {
  const char* bin = getenv("MBPO_BIN");
  char full[600], run[600], args[1200], ftag[64], itag[64];
  snprintf(ftag, sizeof ftag, "%sfull", tag);
  snprintf(itag, sizeof itag, "%sint", tag);
  run_path(ftag, full, sizeof full);
  run_path(itag, run, sizeof run);
  snprintf(args, sizeof args, ARGS " device=%s run_dir=%s", dev, g_dir);
  char cmd[2000];
  snprintf(cmd, sizeof cmd, "%%s train %s tag=%s > /dev/null 2>&1", args, ftag);
  CHECK(sh(cmd, bin, "") == 0, "full run failed: %s", cmd);
  snprintf(cmd, sizeof cmd, "MBPO_TEST_INTERRUPT_STEP=130 %%s train %s tag=%s > /dev/null 2>&1", args, itag);
  CHECK(sh(cmd, bin, "") == 0, "interrupted run did not exit 0: %s", cmd);
  check_interrupted(full, run, 130);
  CHECK(sh("MBPO_TEST_INTERRUPT_STEP=230 %s train --resume %s > /dev/null 2>&1", bin, run) == 0,
        "first resume did not exit 0");
  check_interrupted(full, run, 230);
  CHECK(sh("%s train --resume %s > /dev/null 2>&1", bin, run) == 0, "second resume failed");
  char got[256];
  latest(run, got, sizeof got);
  CHECK(strcmp(got, "ckpt-e000002.npz") == 0, "after the last resume checkpoint.latest names '%s'", got);
  /* the mid-epoch checkpoints went once epoch-end ones superseded them */
  char ls[700];
  snprintf(ls, sizeof ls, "ls %s/ckpt-e*-t*.npz > /dev/null 2>&1", run);
  CHECK(system(ls) != 0, "mid-epoch checkpoints are left in %s", run);
  /* the best evaluation's epoch-end checkpoint is kept as ckpt-best.npz (a hard link to it) */
  char best[700], a[700], b[700];
  struct stat bs;
  snprintf(best, sizeof best, "%s/ckpt-best.npz", full);
  CHECK(stat(best, &bs) == 0 && bs.st_nlink == 2, "no ckpt-best.npz linked to an epoch checkpoint");
  const char* files[2] = {"progress.csv", "model_train.csv"};
  for (int i = 0; i < 2; i++) {
    snprintf(a, sizeof a, "%s/%s", full, files[i]);
    snprintf(b, sizeof b, "%s/%s", run, files[i]);
    int d = csv_compare(files[i], a, b, -1, 0, NULL, NULL);
    CHECK(d == 0, "%s differs after resume (%d cells; -1: shape), device=%s", files[i], d, dev);
  }
  same_events(full, run);
}

static void test_exact_resume(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!make_dir()) SKIP("cannot create a temporary folder");
  exact_resume("cpu", "");
}

static void test_exact_resume_cuda(void) {
  char why[256];
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!backend_cuda_probe(why, sizeof why)) SKIP("no usable GPU (%s)", why);
  if (!make_dir()) SKIP("cannot create a temporary folder");
  exact_resume("cuda", "cuda");
}

static void test_corrupt_checkpoint(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char run[512], ck[800], before[600], name[256];
  run_path("int", run, sizeof run);
  latest(run, name, sizeof name);
  if (!name[0]) SKIP("no checkpoint from the previous case");
  snprintf(ck, sizeof ck, "%s/%s", run, name);
  snprintf(before, sizeof before, "%s/progress.csv", run);
  struct stat st0, st1;
  CHECK(stat(before, &st0) == 0, "no progress.csv");
  /* truncated */
  CHECK(sh("truncate -s 1000 %s%s", ck, "") == 0, "truncate failed");
  int rc = sh("%s train --resume %s > /dev/null 2>&1", bin, run);
  CHECK(rc != 0, "resuming from a truncated checkpoint exited 0");
  CHECK(stat(before, &st1) == 0 && st1.st_size == st0.st_size, "progress.csv changed");
  /* garbage */
  CHECK(sh("head -c 5000 /dev/urandom > %s%s", ck, "") == 0, "write failed");
  rc = sh("%s train --resume %s > /dev/null 2>&1", bin, run);
  CHECK(rc != 0, "resuming from a garbage checkpoint exited 0");
  CHECK(stat(before, &st1) == 0 && st1.st_size == st0.st_size, "progress.csv changed");
  /* no checkpoint at all */
  rc = sh("%s train --resume %s/nonexistent > /dev/null 2>&1", bin, g_dir);
  CHECK(rc != 0, "resuming a missing run exited 0");
}

int main(void) {
  RUN(test_exact_resume);
  RUN(test_exact_resume_cuda);
  RUN(test_corrupt_checkpoint);
  if (g_have_dir) tmp_dir_done(g_dir, tst_fail);
  return test_done();
}
