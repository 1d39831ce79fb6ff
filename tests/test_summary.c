/* test_summary.c: `mbpo summary`: mean, sample std and IQM of the final and best returns against
 * hand-computed values (settings of 5, 4 and 1 runs), the bootstrap interval (brackets the IQM,
 * deterministic), the Markdown and CSV files, and the binary's exit statuses (MBPO_BIN). */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "plot.h"
#include "summary.h"
#include "test.h"
#include "run_fixture.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const char* const HEAD = "epoch,env_steps,total_env_steps,eval_return_mean,eval_return_std\n";

/* progress.csv of evaluations y[0..n-1] at env steps 1000, 2000, ...; NAN leaves y empty. */
static void progress(char* out, size_t len, int n, const double* y) {
  size_t u = (size_t)snprintf(out, len, "%s", HEAD);
  for (int i = 0; i < n && u < len; i++) {
    if (isnan(y[i]))
      u += (size_t)snprintf(out + u, len - u, "%d,%d,%d,,\n", i, 1000 * (i + 1), 6000 + 1000 * i);
    else
      u += (size_t)snprintf(out + u, len - u, "%d,%d,%d,%g,1\n", i, 1000 * (i + 1), 6000 + 1000 * i,
                            y[i]);
  }
}

/* The fixture, <g_tmp>/runs:
 *  hopper base (sac.lr 3e-4), seeds 0-4: final {100, 40, 10, 30, 35}: mean 43, std sqrt(1145),
 *    IQM (30 + 35 + 40) / 3 = 35; best {150, 40, 60, 30, 35}: mean 63, std sqrt(2495), IQM 45.
 *    Seed 4 has no evaluation in its last row: it reached 2000 steps, which is the group's steps.
 *  hopper lr (sac.lr 1e-4), seeds 0-3: final {1, 2, 3, 10}: mean 4, std sqrt(50/3), IQM 2.5;
 *    best {5, 2, 3, 10}: mean 5, std sqrt(38/3), IQM 4; steps 2000.
 *  walker2d base, seed 0: final 3, best 7 (std 0, IQM and its interval the value itself). */
static char g_runs[512];

static void make_fixture(void) {
  snprintf(g_runs, sizeof g_runs, "%s/runs", g_tmp);
  const double a[5][3] = {{50, 150, 100}, {10, 20, 40}, {5, 60, 10}, {30, 25, 30}, {0, 35, NAN}};
  const double b[4][2] = {{5, 1}, {2, 2}, {0, 3}, {4, 10}};
  char text[2048];
  for (int s = 0; s < 5; s++) {
    mbpo_config c = base_cfg("hopper", "base", s);
    c.threads = 1 + s; /* where it ran: not part of the setting */
    progress(text, sizeof text, 3, a[s]);
    make_run(g_runs, &c, text, NULL, 0);
  }
  for (int s = 0; s < 4; s++) {
    mbpo_config c = base_cfg("hopper", "lr", s);
    c.sac_lr = 1e-4;
    progress(text, sizeof text, 2, b[s]);
    make_run(g_runs, &c, text, NULL, 0);
  }
  mbpo_config c = base_cfg("walker2d", "base", 0);
  progress(text, sizeof text, 2, (const double[]){7, 3});
  make_run(g_runs, &c, text, NULL, 0);
}

/* `[env] $MBPO_BIN summary ARGS`, output in out. */
static int run_summary(const char* env, const char* args, char* out, size_t n) {
  return run_mbpo(env, "summary", args, out, n);
}

/* ---- statistics --------------------------------------------------------------------------- */

static void test_iqm(void) {
  /* scipy.stats.trim_mean(x, 0.25): floor(n / 4) cut from each end of the sorted values */
  const double x1[1] = {7}, x2[2] = {1, 5}, x3[3] = {9, 1, 5}, x4[4] = {10, 1, 3, 2};
  const double x5[5] = {100, 40, 10, 30, 35}, x6[6] = {6, 1, 5, 2, 4, 100};
  const double x8[8] = {8, 7, 6, 5, 4, 3, 2, 1000};
  CHECK_CLOSE(summary_iqm(x1, 1), 7, 1e-15);
  CHECK_CLOSE(summary_iqm(x2, 2), 3, 1e-15);
  CHECK_CLOSE(summary_iqm(x3, 3), 5, 1e-15);
  CHECK_CLOSE(summary_iqm(x4, 4), 2.5, 1e-15);
  CHECK_CLOSE(summary_iqm(x5, 5), 35, 1e-15);
  CHECK_CLOSE(summary_iqm(x6, 6), 17.0 / 4, 1e-15); /* drops 1 and 100 */
  CHECK_CLOSE(summary_iqm(x8, 8), 5.5, 1e-15);      /* drops 2, 3 and 8, 1000: mean of 4..7 */
  CHECK(x4[0] == 10 && x4[3] == 2, "the input is not changed");
  CHECK(isnan(summary_iqm(x1, 0)), "n = 0: NAN");
}

static void test_stats(void) {
  const double x5[5] = {100, 40, 10, 30, 35}, x4[4] = {1, 2, 3, 10}, x1[1] = {3};
  summary_stat s5, s4, s1, again;
  summary_stats(x5, 5, 0, &s5);
  CHECK_CLOSE(s5.mean, 43, 1e-14);
  CHECK_CLOSE(s5.std, sqrt(1145.0), 1e-14);
  CHECK_CLOSE(s5.iqm, 35, 1e-14);
  summary_stats(x4, 4, 0, &s4);
  CHECK_CLOSE(s4.mean, 4, 1e-14);
  CHECK_CLOSE(s4.std, sqrt(50.0 / 3), 1e-14);
  CHECK_CLOSE(s4.iqm, 2.5, 1e-14);
  summary_stats(x1, 1, 0, &s1);
  CHECK(s1.mean == 3 && s1.std == 0 && s1.iqm == 3 && s1.ci_lo == 3 && s1.ci_hi == 3,
        "one run: %g ± %g, IQM %g [%g, %g]", s1.mean, s1.std, s1.iqm, s1.ci_lo, s1.ci_hi);
  /* the interval brackets the IQM, lies within the data, is not a point, and is the same again */
  const summary_stat* st[2] = {&s5, &s4};
  const double lo[2] = {10, 1}, hi[2] = {100, 10};
  for (int k = 0; k < 2; k++) {
    CHECK(st[k]->ci_lo <= st[k]->iqm && st[k]->iqm <= st[k]->ci_hi, "IQM %g outside [%g, %g]",
          st[k]->iqm, st[k]->ci_lo, st[k]->ci_hi);
    CHECK(st[k]->ci_lo >= lo[k] && st[k]->ci_hi <= hi[k] && st[k]->ci_lo < st[k]->ci_hi,
          "interval [%g, %g] for data in [%g, %g]", st[k]->ci_lo, st[k]->ci_hi, lo[k], hi[k]);
  }
  summary_stats(x5, 5, SUMMARY_BOOT_DEFAULT, &again);
  CHECK(memcmp(&again, &s5, sizeof again) == 0, "second call: [%.17g, %.17g] vs [%.17g, %.17g]",
        again.ci_lo, again.ci_hi, s5.ci_lo, s5.ci_hi);
  /* a run's order does not matter for the mean, std and IQM; more resamples: a similar interval */
  const double x5r[5] = {35, 30, 10, 40, 100};
  summary_stats(x5r, 5, 20000, &again);
  CHECK(again.mean == s5.mean && again.iqm == s5.iqm, "order");
  CHECK(fabs(again.ci_lo - s5.ci_lo) < 5 && fabs(again.ci_hi - s5.ci_hi) < 10,
        "20000 resamples [%g, %g] vs 2000 [%g, %g]", again.ci_lo, again.ci_hi, s5.ci_lo, s5.ci_hi);
}

/* ---- rows, Markdown, CSV ------------------------------------------------------------------ */

static const summary_row* find_row(const summary_row* rows, int n, const char* label) {
  for (int i = 0; i < n; i++)
    if (strcmp(rows[i].label, label) == 0) return &rows[i];
  return NULL;
}

static void test_rows(void) {
  plot_set s;
  char err[1024] = "";
  char* paths[1] = {g_runs};
  int r = plot_load(&s, 1, paths, "env_steps", "eval_return_mean", err, sizeof err);
  CHECK(r == 0, "plot_load: %s", err);
  if (r != 0) return;
  summary_row* rows;
  int n = summary_rows(&s, 0, &rows);
  CHECK(n == 3, "%d rows", n);
  const summary_row* a = find_row(rows, n, "hopper sac.lr=0.0003");
  const summary_row* b = find_row(rows, n, "hopper sac.lr=0.0001");
  const summary_row* c = find_row(rows, n, "walker2d base");
  CHECK(a && b && c, "labels '%s', '%s', '%s'", n > 0 ? rows[0].label : "",
        n > 1 ? rows[1].label : "", n > 2 ? rows[2].label : "");
  if (a && b && c) {
    CHECK(a->n == 5 && a->steps == 2000 && strcmp(a->task, "hopper") == 0, "a: n %d steps %g", a->n,
          a->steps);
    CHECK_CLOSE(a->final.mean, 43, 1e-14);
    CHECK_CLOSE(a->final.std, sqrt(1145.0), 1e-14);
    CHECK_CLOSE(a->final.iqm, 35, 1e-14);
    CHECK_CLOSE(a->best.mean, 63, 1e-14);
    CHECK_CLOSE(a->best.std, sqrt(2495.0), 1e-14);
    CHECK_CLOSE(a->best.iqm, 45, 1e-14);
    CHECK(b->n == 4 && b->steps == 2000, "b: n %d steps %g", b->n, b->steps);
    CHECK_CLOSE(b->final.mean, 4, 1e-14);
    CHECK_CLOSE(b->final.std, sqrt(50.0 / 3), 1e-14);
    CHECK_CLOSE(b->final.iqm, 2.5, 1e-14);
    CHECK_CLOSE(b->best.mean, 5, 1e-14);
    CHECK_CLOSE(b->best.std, sqrt(38.0 / 3), 1e-14);
    CHECK_CLOSE(b->best.iqm, 4, 1e-14);
    CHECK(c->n == 1 && c->steps == 2000 && c->final.mean == 3 && c->final.std == 0 &&
              c->final.ci_lo == 3 && c->final.ci_hi == 3 && c->best.iqm == 7 && c->best.ci_lo == 7,
          "c: n %d, final %g ± %g [%g, %g], best IQM %g", c->n, c->final.mean, c->final.std,
          c->final.ci_lo, c->final.ci_hi, c->best.iqm);
    const summary_stat* st[4] = {&a->final, &a->best, &b->final, &b->best};
    for (int k = 0; k < 4; k++)
      CHECK(st[k]->ci_lo <= st[k]->iqm && st[k]->iqm <= st[k]->ci_hi, "IQM %g outside [%g, %g]",
            st[k]->iqm, st[k]->ci_lo, st[k]->ci_hi);
    /* a task's rows stay together: hopper, hopper, walker2d */
    CHECK(strcmp(rows[0].task, "hopper") == 0 && strcmp(rows[1].task, "hopper") == 0 &&
              strcmp(rows[2].task, "walker2d") == 0,
          "task order");
  }
  /* the same set again: the same numbers to the bit */
  summary_row* again;
  int n2 = summary_rows(&s, 0, &again);
  CHECK(n2 == n && memcmp(again, rows, sizeof(summary_row) * (size_t)n) == 0,
        "second call differs");
  free(again);
  /* Markdown: two task headings, the numbers as printed */
  char* md = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&md, &len);
  summary_markdown(rows, n, "eval_return_mean", 0, f);
  fclose(f);
  CHECK(strstr(md, "## hopper\n") && strstr(md, "## walker2d\n"), "headings:\n%s", md);
  CHECK(strstr(md, "| hopper sac.lr=0.0003 | 5 | 2000 | 43.0 ± 33.8 | 35.0 ["), "row a:\n%s", md);
  CHECK(strstr(md, "| 63.0 ± 49.9 | 45.0 ["), "row a best:\n%s", md);
  CHECK(strstr(md, "| hopper sac.lr=0.0001 | 4 | 2000 | 4.0 ± 4.1 | 2.5 ["), "row b:\n%s", md);
  CHECK(strstr(md, "| walker2d base | 1 | 2000 | 3.0 ± 0.0 | 3.0 [3.0, 3.0] | 7.0 ± 0.0 | 7.0 "
                   "[7.0, 7.0] |"),
        "row c:\n%s", md);
  CHECK(strstr(md, "2000 resamples"), "footnote:\n%s", md);
  free(md);
  free(rows);
  plot_free(&s);
}

/* summary_write: the files, atomically (no .tmp left), the same numbers as the API. */
static void test_write(void) {
  char out[600], p[700], err[1024] = "";
  char* paths[1] = {g_runs};
  snprintf(out, sizeof out, "%s/out/a/b", g_tmp); /* parents made as well */
  int r = summary_write(1, paths, out, 0, err, sizeof err);
  CHECK(r == 0, "summary_write: %s", err);
  snprintf(p, sizeof p, "%s/summary.md", out);
  char* md = read_text(p);
  CHECK(md && strstr(md, "| hopper sac.lr=0.0003 | 5 | 2000 | 43.0 ± 33.8 | 35.0 [") &&
            strstr(md, "## walker2d"),
        "summary.md:\n%s", md ? md : "(missing)");
  snprintf(p, sizeof p, "%s/summary.csv", out);
  char* csv = read_text(p);
  const char* head = "task,setting,n,steps,final_mean,final_std,final_iqm,final_ci_lo,final_ci_hi,"
                     "best_mean,best_std,best_iqm,best_ci_lo,best_ci_hi\n";
  CHECK(csv && strncmp(csv, head, strlen(head)) == 0, "summary.csv header:\n%s",
        csv ? csv : "(missing)");
  CHECK(csv && strstr(csv, "\"hopper\",\"hopper sac.lr=0.0003\",5,2000,43,33.83784863,35,"),
        "row a:\n%s", csv ? csv : "");
  CHECK(csv && strstr(csv, "\"hopper\",\"hopper sac.lr=0.0001\",4,2000,4,4.082482905,2.5,"),
        "row b:\n%s", csv ? csv : "");
  CHECK(csv && strstr(csv, "\"walker2d\",\"walker2d base\",1,2000,3,0,3,3,3,7,0,7,7,7\n"),
        "row c:\n%s", csv ? csv : "");
  int lines = 0;
  for (const char* c = csv; c && *c; c++) lines += *c == '\n';
  CHECK(lines == 4, "%d CSV lines", lines);
  /* best of row a: 63, sqrt(2495) = 49.94997497, 45 */
  CHECK(csv && strstr(csv, ",63,49.94997497,45,"), "row a best:\n%s", csv ? csv : "");
  /* the intervals as tests/ref/summary_bootstrap.py, an independent Python implementation of the
   * same procedure (Philox4x32-10 with the fixed key, trim_mean, numpy's linear percentile),
   * computes them (test_bootstrap_reference runs it) */
  CHECK(csv && strstr(csv, ",35,16.66666667,78.33333333,63,49.94997497,45,31.66666667,120\n"),
        "row a intervals:\n%s", csv ? csv : "");
  CHECK(csv && strstr(csv, ",2.5,1,10,5,"), "row b final interval:\n%s", csv ? csv : "");
  /* the interval in the CSV is the API's */
  plot_set s;
  if (plot_load(&s, 1, paths, "env_steps", "eval_return_mean", err, sizeof err) == 0) {
    summary_row* rows;
    int n = summary_rows(&s, 0, &rows);
    char want[256];
    snprintf(want, sizeof want, ",35,%.10g,%.10g,63,", rows[0].final.ci_lo, rows[0].final.ci_hi);
    CHECK(n == 3 && csv && strstr(csv, want), "'%s' in:\n%s", want, csv ? csv : "");
    free(rows);
    plot_free(&s);
  }
  free(md);
  free(csv);
  snprintf(p, sizeof p, "%s/summary.md.tmp", out);
  CHECK(file_size(p) < 0, "%s left behind", p);
  snprintf(p, sizeof p, "%s/summary.png", out);
  char t[700];
  snprintf(t, sizeof t, "%s/summary.txt", out);
  if (plot_have_gnuplot()) CHECK(file_size(p) > 1000, "summary.png: %ld bytes", file_size(p));
  else CHECK(file_size(t) > 0, "summary.txt: %ld bytes", file_size(t));
  /* errors: no runs, an output folder that cannot be made */
  r = summary_write(0, NULL, out, 0, err, sizeof err);
  CHECK(r != 0 && strstr(err, "no runs"), "no runs: %s", err);
  snprintf(p, sizeof p, "%s/summary.md/x", out); /* below a file */
  r = summary_write(1, paths, p, 0, err, sizeof err);
  CHECK(r != 0 && strstr(err, "cannot create"), "bad folder: %s", err);
}

/* The golden intervals above come from tests/ref/summary_bootstrap.py: run it on the fixture's
 * samples (in the runs' order) and require the API's intervals, printed as the CSV prints them. */
static void test_bootstrap_reference(void) {
  if (system("command -v python3 > /dev/null 2>&1") != 0) SKIP("python3 not found (the reference is Python)");
  const char* root = getenv("MBPO_ROOT") ? getenv("MBPO_ROOT") : ".";
  struct {
    const char* what;
    int n;
    double x[5];
    const char* golden; /* as test_write expects it in summary.csv, NULL: not there */
  } cases[] = {{"hopper base final", 5, {100, 40, 10, 30, 35}, "16.66666667 78.33333333"},
               {"hopper base best", 5, {150, 40, 60, 30, 35}, "31.66666667 120"},
               {"hopper lr final", 4, {1, 2, 3, 10}, "1 10"},
               {"hopper lr best", 4, {5, 2, 3, 10}, NULL}};
  for (int i = 0; i < 4; i++) {
    char cmd[1200], out[256] = "", api[256];
    int len = snprintf(cmd, sizeof cmd, "python3 '%s/tests/ref/summary_bootstrap.py' %d", root, SUMMARY_BOOT_DEFAULT);
    for (int j = 0; j < cases[i].n; j++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %g", cases[i].x[j]);
    int rc = run_sh(cmd, out, sizeof out);
    out[strcspn(out, "\n")] = '\0';
    CHECK(rc == 0, "%s: the reference failed (exit %d): %s", cases[i].what, rc, out);
    summary_stat st;
    summary_stats(cases[i].x, cases[i].n, 0, &st);
    snprintf(api, sizeof api, "%.10g %.10g", st.ci_lo, st.ci_hi);
    CHECK(strcmp(out, api) == 0, "%s: reference interval '%s', summary_stats '%s'", cases[i].what, out, api);
    CHECK(!cases[i].golden || strcmp(out, cases[i].golden) == 0, "%s: reference '%s', the golden value in this file '%s'",
          cases[i].what, out, cases[i].golden);
  }
}

/* ---- the command -------------------------------------------------------------------------- */

static void test_cli(void) {
  NEED_BIN();
  static char out[65536];
  char args[4096], dir[600], p[700];
  snprintf(args, sizeof args, "'%s'", g_runs);
  int rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 0, "exit %d:\n%s", rc, out);
  CHECK(strstr(out, "## hopper") &&
            strstr(out, "| hopper sac.lr=0.0003 | 5 | 2000 | 43.0 ± 33.8 |") &&
            strstr(out, "| walker2d base | 1 | 2000 | 3.0 ± 0.0 |"),
        "stdout:\n%s", out);
  /* the same output twice (fixed bootstrap key); --boot changes only the intervals' resamples */
  static char out2[65536];
  rc = run_summary(NULL, args, out2, sizeof out2);
  CHECK(rc == 0 && strcmp(out, out2) == 0, "second run differs:\n%s", out2);
  snprintf(args, sizeof args, "'%s' --boot 500", g_runs);
  rc = run_summary(NULL, args, out2, sizeof out2);
  CHECK(rc == 0 && strstr(out2, "500 resamples"), "--boot 500: exit %d:\n%s", rc, out2);
  /* -o without gnuplot: the files, summary.txt and a note */
  snprintf(dir, sizeof dir, "%s/cli-out", g_tmp);
  snprintf(args, sizeof args, "'%s' -o '%s'", g_runs, dir);
  rc = run_summary("PATH=/nonexistent", args, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "gnuplot-nox"), "no gnuplot: exit %d:\n%s", rc, out);
  snprintf(p, sizeof p, "%s/summary.txt", dir);
  char* txt = read_text(p);
  CHECK(txt && strstr(txt, "evaluation return"), "summary.txt:\n%s", txt ? txt : "(missing)");
  free(txt);
  snprintf(p, sizeof p, "%s/summary.csv", dir);
  CHECK(file_size(p) > 0, "no summary.csv");
  /* --y: another column (eval_return_std is 1 everywhere) */
  snprintf(args, sizeof args, "'%s' --y eval_return_std", g_runs);
  rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 0 && strstr(out, "| 5 | 2000 | 1.0 ± 0.0 | 1.0 [1.0, 1.0] |"), "--y: exit %d:\n%s",
        rc, out);
}

static void test_cli_errors(void) {
  NEED_BIN();
  char out[16384], args[4096], p[600];
  snprintf(p, sizeof p, "%s/no_runs_here", g_tmp);
  mkdir(p, 0777);
  snprintf(args, sizeof args, "'%s'", p);
  int rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "no_runs_here") && strstr(out, "not a run folder"),
        "folder without runs: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s/nope'", g_tmp);
  rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "nope"), "missing folder: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' --y no_col", g_runs);
  rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "no_col"), "missing column: exit %d:\n%s", rc, out);
  snprintf(args, sizeof args, "'%s' --bogus", g_runs);
  rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 2 && strstr(out, "--bogus"), "unknown option: exit %d:\n%s", rc, out);
  rc = run_summary(NULL, "", out, sizeof out);
  CHECK(rc == 2 && strstr(out, "at least one run"), "no runs: exit %d:\n%s", rc, out);
  const char* boots[3] = {"0", "abc", "-5"};
  for (int i = 0; i < 3; i++) {
    snprintf(args, sizeof args, "'%s' --boot=%s", g_runs, boots[i]);
    rc = run_summary(NULL, args, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--boot"), "--boot=%s: exit %d:\n%s", boots[i], rc, out);
  }
  snprintf(args, sizeof args, "'%s' -o", g_runs);
  rc = run_summary(NULL, args, out, sizeof out);
  CHECK(rc == 2 && strstr(out, "needs a value"), "-o without a value: exit %d:\n%s", rc, out);
  rc = run_summary(NULL, "--help", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo summary") && strstr(out, "bootstrap"), "--help: exit %d",
        rc);
}

int main(void) {
  if (fixture_tmp_make("summary") != 0) return 2;
  make_fixture();
  RUN(test_iqm);
  RUN(test_stats);
  RUN(test_rows);
  RUN(test_write);
  RUN(test_bootstrap_reference);
  RUN(test_cli);
  RUN(test_cli_errors);
  fixture_tmp_remove();
  return test_done();
}
