/* test_resume.c: checkpoints and exact resume on the CPU backend, through the real binary.
 * A run interrupted mid-epoch (MBPO_TEST_INTERRUPT_STEP acts as a SIGINT after that training step:
 * finish the step, write a checkpoint, exit 0) and resumed with `mbpo train --resume` writes the
 * same progress.csv and model_train.csv as an uninterrupted run, apart from the time columns.
 * The TensorBoard event file is continued the same way: one file, no step written twice, the same
 * scalars as the uninterrupted run's (tboard_open_append cuts it back to the checkpoint's length).
 * A truncated or corrupt checkpoint is refused with a message and changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

#include "events_text.h"
#include "test.h"

#define ARGS                                                                                      \
  "inverted_pendulum steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 " \
  "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "             \
  "eval.episodes=2 max_path_length=100 checkpoint.every=1 rollout.min_epoch=0 "                   \
  "rollout.max_epoch=2 rollout.max_length=3"

static char g_dir[] = "/tmp/mbpo-resume-XXXXXX";

static int sh(const char* fmt, const char* a, const char* b) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* The file with its first ncol columns of every line (the columns before the timing ones). */
static char* read_cols(const char* path, int ncol) {
  FILE* f = fopen(path, "r");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char* out = (char*)malloc(cap);
  char line[8192];
  while (out && fgets(line, sizeof line, f)) {
    int c = 0;
    for (char* p = line; *p; p++) {
      if (*p == ',' && ++c == ncol) {
        *p++ = '\n';
        *p = '\0';
        break;
      }
    }
    size_t l = strlen(line);
    if (n + l + 1 > cap) out = (char*)realloc(out, cap *= 2);
    if (!out) break;
    memcpy(out + n, line, l + 1);
    n += l;
  }
  fclose(f);
  return out;
}

static void same_file(const char* name, int ncol) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/inverted_pendulum-full-s0/%s", g_dir, name);
  snprintf(b, sizeof b, "%s/inverted_pendulum-int-s0/%s", g_dir, name);
  char *x = read_cols(a, ncol), *y = read_cols(b, ncol);
  CHECK(x && y, "cannot read %s or %s", a, b);
  if (x && y) CHECK(strcmp(x, y) == 0, "%s differs after resume:\n--- uninterrupted\n%s--- resumed\n%s", name, x, y);
  free(x);
  free(y);
}

/* The resumed run's event data equals the uninterrupted run's (one file, no step twice, the same
 * values apart from the timing scalars), one event per progress.csv row plus the file header. */
static void same_events(void) {
  char a[512], b[512], pa[600];
  snprintf(a, sizeof a, "%s/inverted_pendulum-full-s0", g_dir);
  snprintf(b, sizeof b, "%s/inverted_pendulum-int-s0", g_dir);
  int fa, fb, ea, eb;
  char *x = read_events(a, &fa, &ea), *y = read_events(b, &fb, &eb);
  CHECK(x && y, "cannot read or decode the event files");
  CHECK(fa == 1 && fb == 1, "event files: %d uninterrupted, %d resumed (want 1 each)", fa, fb);
  snprintf(pa, sizeof pa, "%s/progress.csv", b);
  int rows = count_lines(pa) - 1;
  CHECK(eb == rows + 1, "resumed run: %d events for %d progress.csv rows (want rows + 1)", eb, rows);
  if (x && y) CHECK(strcmp(x, y) == 0, "event data differs after resume:\n--- uninterrupted\n%s--- resumed\n%s", x, y);
  free(x);
  free(y);
}

static void test_exact_resume(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!mkdtemp(g_dir)) SKIP("cannot create a temporary folder");
  CHECK(sh("%s train " ARGS " run_dir=%s tag=full > /dev/null 2>&1", bin, g_dir) == 0, "full run failed");
  /* interrupted in epoch 1 (after the epoch-0 checkpoint), resumed; then again in epoch 2 */
  CHECK(sh("MBPO_TEST_INTERRUPT_STEP=130 %s train " ARGS " run_dir=%s tag=int > /dev/null 2>&1", bin,
           g_dir) == 0, "interrupted run did not exit 0");
  char run[512];
  snprintf(run, sizeof run, "%s/inverted_pendulum-int-s0", g_dir);
  CHECK(sh("MBPO_TEST_INTERRUPT_STEP=230 %s train --resume %s > /dev/null 2>&1", bin, run) == 0,
        "first resume did not exit 0");
  CHECK(sh("%s train --resume %s > /dev/null 2>&1", bin, run) == 0, "second resume failed");
  /* the best evaluation's epoch-end checkpoint is kept as ckpt-best.npz (a hard link to it) */
  char best[600];
  struct stat bs;
  snprintf(best, sizeof best, "%s/inverted_pendulum-full-s0/ckpt-best.npz", g_dir);
  CHECK(stat(best, &bs) == 0 && bs.st_nlink == 2, "no ckpt-best.npz linked to an epoch checkpoint");
  same_file("progress.csv", 27);   /* the columns before wall_time_s */
  same_file("model_train.csv", 18); /* all but seconds */
  same_events();
}

static void test_corrupt_checkpoint(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char run[512], ck[600], latest[600], before[600];
  snprintf(run, sizeof run, "%s/inverted_pendulum-int-s0", g_dir);
  snprintf(latest, sizeof latest, "%s/checkpoint.latest", run);
  FILE* f = fopen(latest, "r");
  char name[256] = "";
  if (!f) SKIP("no checkpoint from the previous case");
  if (!fgets(name, sizeof name, f)) name[0] = '\0';
  fclose(f);
  name[strcspn(name, "\n")] = '\0';
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
  if (!tst_case_failed) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", g_dir);
  }
}

int main(void) {
  RUN(test_exact_resume);
  RUN(test_corrupt_checkpoint);
  return test_done();
}
