/* plot.h: `mbpo plot`: learning curves of run folders, grouped by setting, mean ± std across seeds.
 *
 * Each RUN argument is a run folder (<run_dir>/<task>-<tag>-s<seed>/ holding config.ini and
 * progress.csv) or a folder whose immediate subfolders are run folders (such as run_dir itself).
 * Runs are grouped by (task, setting): two runs belong to one group when every config.ini setting
 * except seed, tag and run_dir is equal; device and threads (where a run ran, not what it ran) are
 * left out of the comparison as well.
 *
 * Per group the curves are put on one common grid: the sorted union of the x values of its runs,
 * restricted to the x range that every run covers (from the largest first x to the smallest last
 * x). Each run's y at a grid point is its own value where it logged that x and the linear
 * interpolation between its two neighbouring points otherwise. Runs of one setting log the same x
 * values (epoch ends), so in the usual case the grid is exactly the x values present in all runs
 * and nothing is interpolated; a run that is still going (fewer epochs) cuts the group's curve at
 * its last epoch. The std across runs is the population std (divisor n, numpy's default); a group
 * of one run has std 0.
 *
 * Output: gnuplot (PNG or SVG, one line per group with a shaded mean ± std band) when `gnuplot` is
 * on PATH; a plain-text plot on stdout otherwise or with --text. */
#ifndef MBPO_PLOT_H
#define MBPO_PLOT_H

#include <stdio.h>

#include "config.h"

/** One run: its folder, resolved settings and its (x, y) points (sorted by x, x unique, y finite;
 *  rows where either value is empty or not a number are left out; a repeated x keeps the last
 *  row). */
typedef struct plot_run {
  char path[4096];
  mbpo_config cfg;
  int n;
  double *x, *y;
} plot_run;

/** One group: runs with equal settings (all but seed, tag, run_dir, device, threads) and their curve across
 *  runs on the common grid (see the top of this file). */
typedef struct plot_group {
  char label[512]; /* legend: task + the settings that differ between that task's groups (at most
                      3), or the tag; then "(N runs)" */
  int nruns;
  int* runs;       /* indices into plot_set.runs */
  int n;           /* grid points (0: the runs share no x range) */
  double *x, *mean, *std;
} plot_group;

/** The runs of one `mbpo plot`, their groups and the columns plotted. */
typedef struct plot_set {
  char xcol[64], ycol[64];
  int nruns;
  plot_run* runs;
  int ngroups;
  plot_group* groups;
} plot_set;

/** The `mbpo plot --help` text (everything after the synopsis line). */
extern const char plot_help[];

/** 1 when dir holds config.ini and progress.csv (a run folder), else 0. */
int plot_is_run_folder(const char* dir);

/** Read columns xcol and ycol of a CSV file with a header line (commas; optional double quotes,
 *  surrounding blanks, CRLF line ends and a UTF-8 BOM are accepted). Rows whose x or y is empty or
 *  not a finite number are skipped; the points come back sorted by x, a repeated x keeping the last
 *  row. *x and *y are malloc'ed (NULL when *n = 0). Returns 0, or -1 with err (unreadable file, no
 *  header, missing column: the message lists the columns there are). */
int plot_read_csv(const char* path, const char* xcol, const char* ycol, double** x, double** y,
                  int* n, char* err, int errlen);

/** Load one run folder: config.ini (over the defaults) and the xcol/ycol points of progress.csv.
 *  Returns 0, or -1 with err (not a run folder, unreadable or bad file). */
int plot_load_run(const char* dir, const char* xcol, const char* ycol, plot_run* r, char* err,
                  int errlen);

/** 1 when a and b are the same setting: every setting equal except seed, tag, run_dir, device and
 *  threads. */
int plot_same_setting(const mbpo_config* a, const mbpo_config* b);

/** Load the runs named by paths (run folders, or folders of run folders, expanded in name order; a
 *  folder named twice counts once), group them and compute each group's mean and std (see the top
 *  of this file). Runs without any point are left out with a warning. Returns 0, or -1 with err
 *  (no paths, a path that is neither, an unreadable file, no run with data). On -1, s is freed. */
int plot_load(plot_set* s, int npaths, char* const* paths, const char* xcol, const char* ycol,
              char* err, int errlen);

/** Group s->runs and fill s->groups (mean, std, labels); replaces earlier groups. Used by plot_load;
 *  callable on a set whose runs were filled by hand. Returns the number of groups. */
int plot_group_runs(plot_set* s);

/** Free what plot_load or plot_group_runs allocated and zero s. */
void plot_free(plot_set* s);

/** Print a plain-text plot on f: a character grid (width x height cells, one symbol per group)
 *  with the min/max of both axes, then the legend and a table of each group's last x and mean ±
 *  std there. */
void plot_text(const plot_set* s, FILE* f, int width, int height);

/** Print only the legend and last-point table of plot_text. */
void plot_table(const plot_set* s, FILE* f);

/** 1 when an executable `gnuplot` is on PATH. */
int plot_have_gnuplot(void);

/** Write the plot to out (.png: the pngcairo terminal, else png; .svg: svg) through gnuplot: the
 *  data and a generated script go to a temporary folder, gnuplot runs through popen and its exit
 *  status is checked; the temporary files are removed. Returns 0, or -1 with err (gnuplot's
 *  messages included). */
int plot_gnuplot(const plot_set* s, const char* out, char* err, int errlen);

/** `mbpo plot RUN... [-o FILE] [--x COL] [--y COL] [--text]` (argv[0] = "plot"). Returns the exit
 *  status: 0, 1 (bad run, gnuplot failed, an image asked for without gnuplot) or 2 (usage). */
int cmd_plot(int argc, char** argv);

#endif
