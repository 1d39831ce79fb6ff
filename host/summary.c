/* summary.c: `mbpo summary`: final and best returns per task and setting (summary.h). */
#include "summary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "log.h"
#include "plot.h"
#include "rng.h"
#include "run.h"

const char summary_help[] =
    "Summarise runs per task and setting. A RUN is a run folder or a folder of run folders, as for\n"
    "mbpo plot; runs form one setting when their config.ini settings are equal except seed, tag,\n"
    "run_dir and where they ran (device, threads). Per setting: the number of runs, the env steps\n"
    "every run reached, and two figures of the evaluation return (the progress.csv column --y,\n"
    "default eval_return_mean): final (each run's last value) and best (each run's highest). Each\n"
    "is given as mean ± std across runs (sample std, n - 1) and as the IQM (interquartile mean: the\n"
    "mean of the middle half of the runs, 25% trimmed from each end, as rliable computes it) with a\n"
    "95% percentile bootstrap confidence interval (runs resampled with replacement; the random key\n"
    "is fixed, so the same runs give the same interval). One Markdown table per task on stdout.\n"
    "\n"
    "  -o, --output DIR    also write DIR/summary.md (the tables), DIR/summary.csv (one row per\n"
    "                      setting: task, setting, n, steps, final_mean, final_std, final_iqm,\n"
    "                      final_ci_lo, final_ci_hi, best_... the same) and DIR/summary.png (the\n"
    "                      learning curves, mean ± std per setting) through gnuplot, or without\n"
    "                      gnuplot DIR/summary.txt (a text plot); DIR is created when missing\n"
    "  --boot N            bootstrap resamples (default 2000)\n"
    "  --y COLUMN          the progress.csv column summarised (default eval_return_mean)\n"
    "\n"
    "Exit status: 0 done; 1 a bad run folder or file, no data, a file not written or gnuplot\n"
    "failed; 2 bad arguments (no RUN, unknown option, a bad --boot).\n"
    "Example: mbpo summary runs/ -o runs/summary\n\n";

/* ---- statistics --------------------------------------------------------------------------- */

static int cmp_double(const void* a, const void* b) {
  double p = *(const double*)a, q = *(const double*)b;
  return p < q ? -1 : p > q;
}

/* IQM of x (sorted in place). */
static double iqm_sort(double* x, int n) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  int cut = n / 4; /* floor(0.25 n), as trim_mean's int(proportiontocut * nobs) */
  double sum = 0;
  for (int i = cut; i < n - cut; i++) sum += x[i];
  return sum / (n - 2 * cut);
}

double summary_iqm(const double* x, int n) {
  if (n <= 0) return NAN;
  double* t = (double*)malloc(sizeof(double) * (size_t)n);
  if (!t) mbpo_fatal("out of memory");
  memcpy(t, x, sizeof(double) * (size_t)n);
  double v = iqm_sort(t, n);
  free(t);
  return v;
}

/* The p-quantile of sorted a[0..n-1], linear between order statistics (numpy's default). */
static double quantile(const double* a, int n, double p) {
  double pos = p * (n - 1);
  int i = (int)floor(pos);
  if (i >= n - 1) return a[n - 1];
  return a[i] + (pos - i) * (a[i + 1] - a[i]);
}

void summary_stats(const double* x, int n, int nboot, summary_stat* st) {
  if (nboot <= 0) nboot = SUMMARY_BOOT_DEFAULT;
  double sum = 0, ss = 0;
  for (int i = 0; i < n; i++) sum += x[i];
  st->mean = sum / n;
  for (int i = 0; i < n; i++) ss += (x[i] - st->mean) * (x[i] - st->mean);
  st->std = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
  st->iqm = summary_iqm(x, n);
  double* t = (double*)malloc(sizeof(double) * (size_t)n);
  double* boot = (double*)malloc(sizeof(double) * (size_t)nboot);
  if (!t || !boot) mbpo_fatal("out of memory");
  const rng_key key = {SUMMARY_RNG_SEED, SUMMARY_RNG_STREAM};
  for (int b = 0; b < nboot; b++) {
    for (int i = 0; i < n; i++) t[i] = x[rng_index(key, (uint32_t)b, 0, (uint64_t)i, (uint32_t)n)];
    boot[b] = iqm_sort(t, n);
  }
  qsort(boot, (size_t)nboot, sizeof *boot, cmp_double);
  st->ci_lo = quantile(boot, nboot, 0.025);
  st->ci_hi = quantile(boot, nboot, 0.975);
  free(t);
  free(boot);
}

/* ---- rows --------------------------------------------------------------------------------- */

int summary_rows(const runset* s, int nboot, summary_row** rows) {
  *rows = (summary_row*)calloc((size_t)(s->ngroups ? s->ngroups : 1), sizeof(summary_row));
  int* done = (int*)calloc((size_t)(s->ngroups ? s->ngroups : 1), sizeof(int));
  double* fin = (double*)malloc(sizeof(double) * (size_t)(s->nruns ? s->nruns : 1));
  double* best = (double*)malloc(sizeof(double) * (size_t)(s->nruns ? s->nruns : 1));
  if (!*rows || !done || !fin || !best) mbpo_fatal("out of memory");
  int nr = 0;
  /* tasks in the order of their first group, then that task's groups in order */
  for (int first = 0; first < s->ngroups; first++) {
    if (done[first]) continue;
    const char* task = s->runs[s->groups[first].runs[0]].cfg.task;
    for (int g = first; g < s->ngroups; g++) {
      const runset_group* G = &s->groups[g];
      if (done[g] || strcmp(s->runs[G->runs[0]].cfg.task, task) != 0) continue;
      done[g] = 1;
      summary_row* r = &(*rows)[nr++];
      snprintf(r->task, sizeof r->task, "%s", task);
      snprintf(r->label, sizeof r->label, "%s", G->label);
      char count[64]; /* the group label ends with the run count; the table has its own column */
      snprintf(count, sizeof count, " (%d run%s)", G->nruns, G->nruns == 1 ? "" : "s");
      size_t l = strlen(r->label), c = strlen(count);
      if (l > c && strcmp(r->label + l - c, count) == 0) r->label[l - c] = '\0';
      r->n = G->nruns;
      r->steps = INFINITY;
      for (int k = 0; k < G->nruns; k++) {
        const runset_run* R = &s->runs[G->runs[k]];
        if (R->x[R->n - 1] < r->steps) r->steps = R->x[R->n - 1];
        fin[k] = R->y[R->n - 1];
        best[k] = R->y[0];
        for (int i = 1; i < R->n; i++)
          if (R->y[i] > best[k]) best[k] = R->y[i];
      }
      summary_stats(fin, G->nruns, nboot, &r->final);
      summary_stats(best, G->nruns, nboot, &r->best);
    }
  }
  free(done);
  free(fin);
  free(best);
  return nr;
}

/* ---- output ------------------------------------------------------------------------------- */

/* A return: one decimal from 1 on (and 0), else 3 significant digits (as mbpo plot). */
static void fmt_y(double v, char* buf, size_t n) {
  double a = fabs(v);
  if (a == 0 || (a >= 1 && a < 1e7)) snprintf(buf, n, "%.1f", v);
  else snprintf(buf, n, "%.3g", v);
}

/* text in a Markdown table cell: a '|' would end the cell. */
static void md_cell(const char* text, FILE* f) {
  for (const char* p = text; *p; p++) {
    if (*p == '|') fputc('\\', f);
    fputc(*p, f);
  }
}

static void md_stat(const summary_stat* st, FILE* f) {
  char m[64], s[64], q[64], lo[64], hi[64];
  fmt_y(st->mean, m, sizeof m);
  fmt_y(st->std, s, sizeof s);
  fmt_y(st->iqm, q, sizeof q);
  fmt_y(st->ci_lo, lo, sizeof lo);
  fmt_y(st->ci_hi, hi, sizeof hi);
  fprintf(f, " %s ± %s | %s [%s, %s] |", m, s, q, lo, hi);
}

void summary_markdown(const summary_row* rows, int nrows, const char* ycol, int nboot, FILE* f) {
  if (nboot <= 0) nboot = SUMMARY_BOOT_DEFAULT;
  for (int i = 0; i < nrows; i++) {
    if (i == 0 || strcmp(rows[i].task, rows[i - 1].task) != 0) {
      fprintf(f, "%s## ", i ? "\n" : "");
      md_cell(rows[i].task, f);
      fprintf(f, "\n\n| setting | runs | env steps | final mean ± std | final IQM [95%% CI] "
                 "| best mean ± std | best IQM [95%% CI] |\n"
                 "|:--|--:|--:|--:|--:|--:|--:|\n");
    }
    fputs("| ", f);
    md_cell(rows[i].label, f);
    fprintf(f, " | %d | %.0f |", rows[i].n, rows[i].steps);
    md_stat(&rows[i].final, f);
    md_stat(&rows[i].best, f);
    fputc('\n', f);
  }
  fprintf(f, "\nfinal: each run's last %s; best: its highest. mean ± std across runs (sample std); "
             "IQM: mean of the middle 50%% of runs; 95%% CI: percentile bootstrap over runs, %d "
             "resamples. env steps: reached by every run.\n", ycol, nboot);
}

/* text as a CSV field: double-quoted, quotes doubled. */
static void csv_text(const char* text, FILE* f) {
  fputc('"', f);
  for (const char* p = text; *p; p++) {
    if (*p == '"') fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

static void csv_stat(const summary_stat* st, FILE* f) {
  fprintf(f, ",%.10g,%.10g,%.10g,%.10g,%.10g", st->mean, st->std, st->iqm, st->ci_lo, st->ci_hi);
}

void summary_csv(const summary_row* rows, int nrows, FILE* f) {
  fprintf(f, "task,setting,n,steps,final_mean,final_std,final_iqm,final_ci_lo,final_ci_hi,"
             "best_mean,best_std,best_iqm,best_ci_lo,best_ci_hi\n");
  for (int i = 0; i < nrows; i++) {
    csv_text(rows[i].task, f);
    fputc(',', f);
    csv_text(rows[i].label, f);
    fprintf(f, ",%d,%.0f", rows[i].n, rows[i].steps);
    csv_stat(&rows[i].final, f);
    csv_stat(&rows[i].best, f);
    fputc('\n', f);
  }
}

/* ---- files -------------------------------------------------------------------------------- */

/* A memory stream (f, *buf) written to dir/name atomically. 0 or -1 with err. */
static int write_stream(const char* dir, const char* name, FILE* f, char** buf, size_t* len,
                        char* err, int errlen) {
  char p[4200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int bad = fclose(f) != 0;
  if (!bad && run_write_atomic(p, *buf, *len) != 0) bad = 1;
  if (bad) mbpo_fmt(err, errlen, "cannot write %s: %s", p, strerror(errno));
  free(*buf);
  *buf = NULL;
  return bad ? -1 : 0;
}

/* Write the files of summary_write for a loaded set. */
static int write_files(const runset* s, const summary_row* rows, int nrows, const char* outdir,
                       int nboot, char* err, int errlen) {
  if (run_mkdir_p(outdir) != 0) {
    mbpo_fmt(err, errlen, "cannot create %s: %s", outdir, strerror(errno));
    return -1;
  }
  char* buf = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  if (!f) mbpo_fatal("out of memory");
  summary_markdown(rows, nrows, s->ycol, nboot, f);
  if (write_stream(outdir, "summary.md", f, &buf, &len, err, errlen) != 0) return -1;
  f = open_memstream(&buf, &len);
  if (!f) mbpo_fatal("out of memory");
  summary_csv(rows, nrows, f);
  if (write_stream(outdir, "summary.csv", f, &buf, &len, err, errlen) != 0) return -1;
  char p[4200];
  if (plot_have_gnuplot()) {
    snprintf(p, sizeof p, "%s/summary.png", outdir);
    return plot_gnuplot(s, p, err, errlen); /* itself atomic: .tmp, then rename */
  }
  f = open_memstream(&buf, &len);
  if (!f) mbpo_fatal("out of memory");
  plot_text(s, f, 70, 20);
  if (write_stream(outdir, "summary.txt", f, &buf, &len, err, errlen) != 0) return -1;
  mbpo_note("gnuplot is not on PATH: the learning curves are a text plot in %s/summary.txt; "
            "install gnuplot (apt-get install gnuplot-nox) for summary.png", outdir);
  return 0;
}

/* Load, summarise, print the tables on out (NULL: not) and write the files into outdir (NULL:
 * none). 0 or -1 with err. */
static int summarise(int npaths, char* const* paths, const char* ycol, const char* outdir,
                     int nboot, FILE* out, char* err, int errlen) {
  if (nboot <= 0) nboot = SUMMARY_BOOT_DEFAULT;
  runset s;
  if (runset_load(&s, npaths, paths, "env_steps", ycol, err, errlen) != 0) return -1;
  summary_row* rows;
  int nrows = summary_rows(&s, nboot, &rows), rc = 0;
  if (out) {
    summary_markdown(rows, nrows, s.ycol, nboot, out);
    fflush(out);
  }
  if (outdir) rc = write_files(&s, rows, nrows, outdir, nboot, err, errlen);
  free(rows);
  runset_free(&s);
  return rc;
}

int summary_write(int npaths, char* const* paths, const char* outdir, int nboot, char* err,
                  int errlen) {
  if (!outdir || !outdir[0]) {
    mbpo_fmt(err, errlen, "summary_write needs an output folder");
    return -1;
  }
  return summarise(npaths, paths, "eval_return_mean", outdir, nboot, NULL, err, errlen);
}

/* ---- the command -------------------------------------------------------------------------- */

static void usage_line(FILE* f) {
  fprintf(f, "usage: mbpo summary RUN... [-o DIR] [--boot N] [--y COLUMN]\n"
             "`mbpo summary --help` explains them.\n");
}

int cmd_summary(int argc, char** argv) {
  const char *outdir = NULL, *ycol = "eval_return_mean", *boot = NULL;
  int n;
  char** runs;
  const cli_opt opts[] = {{"-o", "--output", &outdir, NULL},
                          {"--boot", NULL, &boot, NULL},
                          {"--y", NULL, &ycol, NULL}};
  const int nopts = (int)(sizeof opts / sizeof opts[0]);
  if (cli_parse_opts(argc, argv, opts, nopts, usage_line, &runs, &n) != 0) return 2;
  long nboot = SUMMARY_BOOT_DEFAULT;
  char bad[256] = "";
  if (boot) {
    char* e;
    errno = 0;
    nboot = strtol(boot, &e, 10);
    if (e == boot || *e || errno || nboot < 1 || nboot > SUMMARY_BOOT_MAX)
      mbpo_fmt(bad, sizeof bad, "--boot needs a whole number of resamples from 1 to %d, not '%s'",
               SUMMARY_BOOT_MAX, boot);
  }
  if (n == 0)
    mbpo_fmt(bad, sizeof bad, "summary needs at least one run folder (or a folder of run folders)");
  else if (!ycol[0] || strlen(ycol) >= 64)
    mbpo_fmt(bad, sizeof bad, "--y needs a column name (1 to 63 characters)");
  else if (outdir && !outdir[0])
    mbpo_fmt(bad, sizeof bad, "-o needs a folder name");
  if (bad[0]) {
    usage_line(stderr);
    fprintf(stderr, "mbpo: error: %s\n", bad);
    free(runs);
    return 2;
  }
  char err[4096];
  int rc = summarise(n, runs, ycol, outdir, (int)nboot, stdout, err, sizeof err);
  free(runs);
  if (rc != 0) {
    fprintf(stderr, "mbpo: error: %s\n", err);
    return 1;
  }
  if (outdir)
    mbpo_note("wrote %s/summary.md, summary.csv and %s", outdir,
              plot_have_gnuplot() ? "summary.png" : "summary.txt");
  return 0;
}
