/* plot.h: `mbpo plot`: learning curves of run folders, grouped by setting, mean ± std across seeds.
 *
 * Each RUN argument is a run folder or a folder whose immediate subfolders are run folders (such
 * as run_dir itself); runset.h loads them, groups them by setting and computes each group's curve.
 * This module draws those curves: through gnuplot (PNG or SVG, one line per group with a shaded
 * mean ± std band) when `gnuplot` is on PATH, as a plain-text plot on stdout otherwise or with
 * --text. */
#ifndef MBPO_PLOT_H
#define MBPO_PLOT_H

#include <stdio.h>

#include "csv.h"
#include "runset.h"

/** The `mbpo plot --help` text (everything after the synopsis line). */
extern const char plot_help[];

/** Print a plain-text plot on f: a character grid (width x height cells, one symbol per group)
 *  with the min/max of both axes, then the legend and a table of each group's last x and mean ±
 *  std there. */
void plot_text(const runset* s, FILE* f, int width, int height);

/** Print only the legend and last-point table of plot_text. */
void plot_table(const runset* s, FILE* f);

/** 1 when an executable `gnuplot` is on PATH. */
int plot_have_gnuplot(void);

/** Write the plot to out (.png: the pngcairo terminal, else png; .svg: svg) through gnuplot: the
 *  data and a generated script go to a temporary folder, gnuplot runs through popen and its exit
 *  status is checked; the temporary files are removed. Returns 0, or -1 with err (gnuplot's
 *  messages included). */
int plot_gnuplot(const runset* s, const char* out, char* err, int errlen);

/** `mbpo plot RUN... [-o FILE] [--x COL] [--y COL] [--text]` (argv[0] = "plot"). Returns the exit
 *  status: 0, 1 (bad run, gnuplot failed, an image asked for without gnuplot) or 2 (usage). */
int cmd_plot(int argc, char** argv);

/* ---- former names ----
 * The loading and grouping used to live here under plot_ names; tests/test_plot.c and
 * tests/test_summary.c still use them. Remove these once they use runset.h's and csv.h's names. */

/** Former name of runset_run. */
typedef runset_run plot_run;
/** Former name of runset_group. */
typedef runset_group plot_group;
/** Former name of runset. */
typedef runset plot_set;

/** Former name of csv_read_xy. */
static inline int plot_read_csv(const char* path, const char* xcol, const char* ycol, double** x,
                                double** y, int* n, char* err, int errlen) {
  return csv_read_xy(path, xcol, ycol, x, y, n, err, errlen);
}

/** Former name of runset_is_run_folder. */
static inline int plot_is_run_folder(const char* dir) { return runset_is_run_folder(dir); }

/** Former name of runset_load_run. */
static inline int plot_load_run(const char* dir, const char* xcol, const char* ycol, runset_run* r,
                                char* err, int errlen) {
  return runset_load_run(dir, xcol, ycol, r, err, errlen);
}

/** Former name of runset_same_setting. */
static inline int plot_same_setting(const mbpo_config* a, const mbpo_config* b) {
  return runset_same_setting(a, b);
}

/** Former name of runset_load. */
static inline int plot_load(runset* s, int npaths, char* const* paths, const char* xcol,
                            const char* ycol, char* err, int errlen) {
  return runset_load(s, npaths, paths, xcol, ycol, err, errlen);
}

/** Former name of runset_group_runs. */
static inline int plot_group_runs(runset* s) { return runset_group_runs(s); }

/** Former name of runset_free. */
static inline void plot_free(runset* s) { runset_free(s); }

#endif
