/* test_run.c: the run folder's CSV writers under a real write failure (run.h).
 *
 * A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG) stands for a full disk.
 * run_csv_row and run_csv_text must fail with errno set and leave the file cut back to whole lines;
 * once the limit is gone the next row is appended after them. A run folder whose CSV files hold
 * fewer rows than a checkpoint expects (rows lost that way) still reopens, with a warning. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "run.h"
#include "test.h"

static char g_dir[] = "/tmp/mbpo-test-run-XXXXXX";

/* Read a whole file; NULL when missing. */
static char* slurp(const char* path, long* n) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* b = (char*)calloc((size_t)*n + 1, 1);
  if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
  fclose(f);
  return b;
}

/* Every line complete: the file is empty or ends with '\n', and every line has ncomma commas. */
static int whole_lines(const char* text, long n, int ncomma) {
  if (n > 0 && text[n - 1] != '\n') return 0;
  int commas = 0;
  for (long i = 0; i < n; i++) {
    if (text[i] == ',') commas++;
    if (text[i] == '\n') {
      if (commas != ncomma) return 0;
      commas = 0;
    }
  }
  return 1;
}

/* In a child limited to 1000 bytes per file: rows until one fails. Exit 0 when the failure was EFBIG
 * and the file is cut back to whole rows; 1 otherwise. */
static int write_until_full(const char* path, int text_mode) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {1000, 1000};
  if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 2;
  FILE* f = fopen(path, "w");
  if (!f) return 3;
  double v[4] = {1, 0.123456789, 2.5e-7, 12345};
  for (int i = 0; i < 1000; i++) {
    v[0] = i;
    int rc = text_mode ? run_csv_text(f, "10,0.123456789,2.5e-07,12345\n11,0.5,1,2\n") : run_csv_row(f, 4, v);
    if (rc != 0) {
      int e = errno;
      fclose(f);
      return e == EFBIG ? 0 : 4;
    }
  }
  fclose(f);
  return 5; /* never failed */
}

static void check_cut_back(int text_mode) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s.csv", g_dir, text_mode ? "text" : "row");
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(write_until_full(path, text_mode));
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer's status %d (0 = EFBIG reported, 5 = never failed)",
        WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  long n = 0;
  char* t = slurp(path, &n);
  CHECK(t && n > 0 && n <= 1000, "file of %ld bytes", n);
  CHECK(t && whole_lines(t, n, 3), "the file does not end in whole rows: ...%s", t && n > 40 ? t + n - 40 : "");
  /* a text of two lines is never half there */
  if (text_mode && t) {
    long lines = 0;
    for (long i = 0; i < n; i++) lines += t[i] == '\n';
    CHECK(lines % 2 == 0, "%ld lines: a two-line text was cut in the middle", lines);
  }
  free(t);
  /* without the limit the next row follows the whole ones */
  FILE* f = fopen(path, "a");
  double v[4] = {7, 8, 9, 10};
  CHECK(f && run_csv_row(f, 4, v) == 0, "appending after the failure");
  if (f) fclose(f);
  long m = 0;
  t = slurp(path, &m);
  CHECK(t && m > n && whole_lines(t, m, 3) && strstr(t + n, "7,8,9,10\n") == t + n, "the row after");
  free(t);
}

static void test_row_cut_back(void) { check_cut_back(0); }

static void test_text_cut_back(void) { check_cut_back(1); }

/* progress.csv with 2 rows, model_train.csv with 1, a checkpoint that expects 3 and 2. */
static void test_reopen_fewer_rows(void) {
  char run[512], p[600];
  snprintf(run, sizeof run, "%s/run", g_dir);
  CHECK(mkdir(run, 0755) == 0, "mkdir %s", run);
  snprintf(p, sizeof p, "%s/progress.csv", run);
  FILE* f = fopen(p, "w");
  if (f) fputs("epoch,x\n0,1\n1,2\n", f), fclose(f);
  snprintf(p, sizeof p, "%s/model_train.csv", run);
  f = fopen(p, "w");
  if (f) fputs("fit,y\n0,5\n", f), fclose(f);
  long w0 = mbpo_warning_count();
  run_folder r;
  char err[4400];
  int rc = run_reopen(&r, run, 3, 2, err, sizeof err);
  CHECK(rc == 0, "run_reopen: %s", err);
  CHECK(mbpo_warning_count() == w0 + 2, "%ld warnings, expected 2", mbpo_warning_count() - w0);
  if (rc == 0) {
    double v[2] = {2, 3};
    CHECK(run_csv_row(r.progress, 2, v) == 0, "append");
    run_close(&r);
  }
  long n = 0;
  snprintf(p, sizeof p, "%s/progress.csv", run);
  char* t = slurp(p, &n);
  CHECK(t && strcmp(t, "epoch,x\n0,1\n1,2\n2,3\n") == 0, "progress.csv after the reopen: %s", t ? t : "(none)");
  free(t);
}

int main(void) {
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_row_cut_back);
  RUN(test_text_cut_back);
  RUN(test_reopen_fewer_rows);
  int rc = test_done();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (rc == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
  return rc;
}
