/* summary.h: `mbpo summary`: the final and best evaluation returns of run folders, per task and
 * setting, as mean ± std and IQM with a bootstrap confidence interval; Markdown, CSV and the plot.
 *
 * Runs and settings are runset_load's (runset.h), with x = env_steps and y = eval_return_mean (or
 * the column --y names): a setting (group) is the runs whose config.ini settings are equal except
 * seed, tag, run_dir, device and threads; its label is the group's label without the "(N runs)"
 * count.
 *
 * Per setting, over its n runs (each run's points are the progress.csv rows with a y value):
 *  - steps: the smallest last env_steps over the runs (every run reached it);
 *  - final: each run's last y; best: each run's largest y (over its epochs);
 *  - of each: the mean, the sample std (divisor n - 1; 0 when n = 1), the IQM and its 95% CI.
 * The IQM is rliable's interquartile mean, scipy.stats.trim_mean(x, 0.25): sort, drop floor(n / 4)
 * values from each end, average the rest (n < 4 drops nothing). The CI is the percentile bootstrap:
 * nboot resamples of the n runs with replacement, the IQM of each, then their 2.5th and 97.5th
 * percentiles (linear between order statistics, numpy.percentile's default). Resample b draws its
 * run i as rng_index(key, b, 0, i, n) with the fixed key (SUMMARY_RNG_SEED, SUMMARY_RNG_STREAM),
 * so the same runs give the same interval every time; final and best use the same resamples. */
#ifndef MBPO_SUMMARY_H
#define MBPO_SUMMARY_H

#include <stdio.h>

#include "config.h"
#include "runset.h"
#include "rng.h"

/** Bootstrap resamples when none are asked for (rliable uses 2000 as well). */
#define SUMMARY_BOOT_DEFAULT 2000

/** The largest --boot accepted. */
#define SUMMARY_BOOT_MAX 10000000

/** The bootstrap's Philox key (seed "SUMM", stream "BOOT"): outside the training streams of
 *  rng.h, since these draws belong to no run. */
#define SUMMARY_RNG_SEED 0x53554D4Du
#define SUMMARY_RNG_STREAM ((uint32_t)RNG_SUMMARY)

/** One quantity across the runs of a setting. */
typedef struct summary_stat {
  double mean, std;    /* std: sample std (n - 1), 0 for one run */
  double iqm;          /* 25% trimmed mean */
  double ci_lo, ci_hi; /* 95% percentile bootstrap interval of the IQM */
} summary_stat;

/** One setting (a row of the tables). */
typedef struct summary_row {
  char task[CFG_STR_MAX];
  char label[512]; /* the group's label without " (N runs)" */
  int n;           /* runs */
  double steps;    /* min over runs of the last env_steps */
  summary_stat final, best;
} summary_row;

/** The `mbpo summary --help` text (everything after the synopsis line). */
extern const char summary_help[];

/** IQM of x[0..n-1] (x is not changed): scipy.stats.trim_mean(x, 0.25). NAN for n <= 0. */
double summary_iqm(const double* x, int n);

/** Mean, sample std, IQM and its bootstrap interval (nboot resamples; <= 0: the default) of
 *  x[0..n-1], n >= 1. */
void summary_stats(const double* x, int n, int nboot, summary_stat* st);

/** One row per group of s (groups in s's order; a task's rows together, tasks in the order of
 *  their first group). *rows is malloc'ed. Returns the number of rows. */
int summary_rows(const runset* s, int nboot, summary_row** rows);

/** Print the Markdown tables: a heading per task, one table row per setting, then what the
 *  columns mean (ycol: the column summarised; nboot: the resamples). */
void summary_markdown(const summary_row* rows, int nrows, const char* ycol, int nboot, FILE* f);

/** Print the CSV: a header line (task, setting, n, steps, final_mean, final_std, final_iqm,
 *  final_ci_lo, final_ci_hi, then best_... the same) and one line per row. */
void summary_csv(const summary_row* rows, int nrows, FILE* f);

/** Summarise the runs named by paths (run folders or folders of run folders, as mbpo plot) into
 *  outdir (created with its parents when missing): summary.md, summary.csv and summary.png
 *  (gnuplot on PATH) or else summary.txt (a text plot; a note on stderr). Every file is written
 *  atomically. nboot <= 0: SUMMARY_BOOT_DEFAULT. For MPI rank 0 after a sweep; prints nothing on
 *  stdout. Returns 0, or -1 with err (no runs, a bad run folder, no data, a file not written,
 *  gnuplot failed). */
int summary_write(int npaths, char* const* paths, const char* outdir, int nboot, char* err,
                  int errlen);

/** `mbpo summary RUN... [-o DIR] [--boot N] [--y COL]` (argv[0] = "summary"): the tables on stdout
 *  and, with -o, the files of summary_write. Returns the exit status: 0, 1 (bad run, no data, a
 *  file not written) or 2 (usage). */
int cmd_summary(int argc, char** argv);

#endif
