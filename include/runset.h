/* runset.h: run folders loaded for `mbpo plot` and `mbpo summary`, grouped by setting, with each
 * group's mean ± std curve across its runs.
 *
 * A run folder (<run_dir>/<task>-<tag>-s<seed>/) holds config.ini and progress.csv (run.h writes
 * them). Runs are grouped by (task, setting): two runs belong to one group when every config.ini
 * setting except seed, tag and run_dir is equal; device and threads (where a run ran, not what it
 * ran) are left out of the comparison as well.
 *
 * Per group the curves are put on one common grid: the sorted union of the x values of its runs,
 * restricted to the x range that every run covers (from the largest first x to the smallest last
 * x). Each run's y at a grid point is its own value where it logged that x and the linear
 * interpolation between its two neighbouring points otherwise. Runs of one setting log the same x
 * values (epoch ends), so in the usual case the grid is exactly the x values present in all runs
 * and nothing is interpolated; a run that is still going (fewer epochs) cuts the group's curve at
 * its last epoch. The std across runs is the population std (divisor n, numpy's default); a group
 * of one run has std 0. */
#ifndef MBPO_RUNSET_H
#define MBPO_RUNSET_H

#include "config.h"

/** One run: its folder, resolved settings and its (x, y) points (sorted by x, x unique, y finite;
 *  rows where either value is empty or not a number are left out; a repeated x keeps the last
 *  row). */
typedef struct runset_run {
  char path[4096];
  mbpo_config cfg;
  int n;
  double *x, *y;
} runset_run;

/** One group: runs with equal settings (all but seed, tag, run_dir, device, threads) and their
 *  curve across runs on the common grid (see the top of this file). */
typedef struct runset_group {
  char label[512]; /* legend: task + the settings that differ between that task's groups (at most
                      3), or the tag; then "(N runs)" */
  int nruns;
  int* runs;       /* indices into runset.runs */
  int n;           /* grid points (0: the runs share no x range) */
  double *x, *mean, *std;
} runset_group;

/** The runs of one `mbpo plot` or `mbpo summary`, their groups and the columns read. */
typedef struct runset {
  char xcol[64], ycol[64];
  int nruns;
  runset_run* runs;
  int ngroups;
  runset_group* groups;
} runset;

/** 1 when dir holds config.ini and progress.csv (a run folder), else 0. */
int runset_is_run_folder(const char* dir);

/** Load one run folder: config.ini (over the defaults) and the xcol/ycol points of progress.csv
 *  (csv_read_xy). Returns 0, or -1 with err (not a run folder, unreadable or bad file). */
int runset_load_run(const char* dir, const char* xcol, const char* ycol, runset_run* r, char* err,
                    int errlen);

/** 1 when a and b are the same setting: every setting equal except seed, tag, run_dir, device and
 *  threads. */
int runset_same_setting(const mbpo_config* a, const mbpo_config* b);

/** Load the runs named by paths (run folders, or folders of run folders, expanded in name order; a
 *  folder named twice counts once), group them and compute each group's mean and std (see the top
 *  of this file). Runs without any point are left out with a warning; a group whose runs share no
 *  x range is warned about and keeps n = 0. Returns 0, or -1 with err (no paths, a path that is
 *  neither, an unreadable file, no run or group with data). On -1, s is freed. */
int runset_load(runset* s, int npaths, char* const* paths, const char* xcol, const char* ycol,
                char* err, int errlen);

/** Group s->runs and fill s->groups (mean, std, labels); replaces earlier groups. Used by
 *  runset_load; callable on a set whose runs were filled by hand. Returns the number of groups. */
int runset_group_runs(runset* s);

/** Free what runset_load or runset_group_runs allocated and zero s. */
void runset_free(runset* s);

#endif
