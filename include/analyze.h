/* analyze.h: `mbpo analyze`, the paper's own experiments (Janner et al. 2019, "When to Trust Your
 * Model", §4 and §6) on a run folder and its checkpoints, CPU backend (docs/analysis.md):
 *
 *   bound           the penalty terms of Theorems 4.1-4.3 against the rollout length k, and k*
 *                   (analyze_bound.h)
 *   generalization  model error under policy shift, Figure 1 (analyze_generalization.h)
 *   exploitation    the policy's return in the real env and in its model, Figure 4c
 *                   (analyze_exploitation.h)
 *   replay          a real episode's actions replayed open-loop in the model, Figure 4a/b
 *                   (analyze_exploitation.h)
 *
 * What the subcommands share lives here: their key=value options (an unknown key names the closest
 * valid one, as the configuration does) and their plots (curves of (x, y ± std) points drawn with
 * plot.h's machinery: gnuplot when it is on PATH, else a text plot).
 *
 * Random draws of the analyses use their own stream, key (seed, RNG_ANALYZE) with the seed of the
 * run (or seed=S), so they never repeat a draw of training; each analysis documents its counters. */
#ifndef MBPO_ANALYZE_H
#define MBPO_ANALYZE_H

#include <stdio.h>

/** Kinds of an analysis option's value. */
enum analyze_opt_kind { ANALYZE_DOUBLE, ANALYZE_LONG, ANALYZE_STRING };

/** One key=value option of an analysis: its key, kind, where the value goes, the allowed range
 *  (numbers; lo > hi: any finite number) and whether it was given (set by analyze_parse_opts). */
typedef struct analyze_opt {
  const char* key;
  int kind;          /* enum analyze_opt_kind */
  void* value;       /* double*, long* or const char** */
  double lo, hi;
  int given;
} analyze_opt;

/** Parse argv[1 .. argc-1] of subcommand cmd (argv[0]): key=value arguments go to opts (a bad
 *  value or an unknown key is fatal with a message; an unknown key names the closest option);
 *  "-o DIR" (or -o=DIR) goes to *out (out NULL: not allowed); at most max_pos other arguments
 *  (run folders) go in order to pos[] and their count to *npos. usage is printed in errors. */
void analyze_parse_opts(const char* cmd, int argc, char** argv, analyze_opt* opts, int nopts,
                        const char** out, const char** pos, int max_pos, int* npos,
                        const char* usage);

/** One curve of a plot: a legend label and n points (x sorted ascending), each with a std (0 for
 *  none). */
typedef struct analyze_curve {
  char label[256];
  int n;
  const double *x, *y, *std;
} analyze_curve;

/** Draw curves as `mbpo plot` draws learning curves (mean ± std band per curve): with gnuplot on
 *  PATH the image out_png (.png), otherwise a text plot into the same name ending .txt. title names
 *  the task; xname and yname the axes. Returns 0, or -1 with err (gnuplot failed, a file not
 *  written); made gets the path of the file written. */
int analyze_plot(const char* title, const char* xname, const char* yname, const analyze_curve* c,
                 int nc, const char* out_png, char* made, int madelen, char* err, int errlen);

/** `mbpo analyze <bound|generalization|exploitation|replay> ...` (argv[0] = "analyze"). Returns the
 *  exit status (bad input: a message and 1; usage errors 2). */
int cmd_analyze(int argc, char** argv);

/** Help text of `mbpo analyze` (for the command table). */
extern const char analyze_help[];

#endif
