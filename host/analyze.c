/* analyze.c: `mbpo analyze`: the subcommands' dispatch, their options and their plots
 * (analyze.h). */
#include "analyze.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_bound.h"
#include "analyze_exploitation.h"
#include "analyze_generalization.h"
#include "config.h"
#include "log.h"
#include "plot.h"
#include "runset.h"

const char analyze_help[] =
    "The paper's own experiments (Janner et al. 2019, \"When to Trust Your Model\") on a run folder\n"
    "and its checkpoints, on the CPU (docs/analysis.md has a worked example):\n\n"
    "  bound gamma=G rmax=R eps_pi=E eps_m=M [slope=S] [k_min=A] [k_max=K] [-o FILE.csv]\n"
    "      the penalties of Theorems 4.1, 4.2 and 4.3 against the rollout length k, k* (the argmin\n"
    "      of Theorem 4.3's bracket, with eps_m' = eps_m + eps_pi slope) and Theorem 4.2's argmin\n"
    "      (k = 0). With a run folder, `bound RUN [gamma=G] [rmax=R] [eps_pi=E] [metric=mse|nll]\n"
    "      [-o DIR]`, eps_m and the slope come from its generalization results (in DIR, default\n"
    "      RUN/analysis), eps_pi from the divergence to the next analysed checkpoint, and it prints\n"
    "      an empirical k* per checkpoint.\n"
    "  generalization RUN [steps=N] [checkpoints=E1,E2,...] [fit_points=P] [seed=S] [-o DIR]\n"
    "      Figure 1: the model of each checkpoint i (trained on the data of its policy) measured\n"
    "      without retraining on N fresh real transitions of each later checkpoint j's stochastic\n"
    "      policy, against eps_pi = mean KL(pi_j || pi_i) over those states; eps_m by the fit's\n"
    "      holdout metric (MSE on raw targets) and by the Gaussian NLL, both averaged over model i's\n"
    "      elites. Writes DIR/generalization.csv (one row per (i, j)), DIR/generalization-slope.csv\n"
    "      (d eps_m / d eps_pi near 0 per amount of training data: a least-squares line through\n"
    "      the first P points) and the plots generalization.png (1a) and generalization-slope.png\n"
    "      (1b). DIR defaults to RUN/analysis.\n"
    "  exploitation RUN [checkpoints=E1,E2,...] [episodes=N] [rollouts=M] [seed=S] [-o DIR]\n"
    "      Figure 4c: the deterministic policy's return in the real env and in its learned model\n"
    "      from the same initial states (M model rollouts per real episode, each as long as the\n"
    "      real episode at most, a member drawn per step as in rollouts, the task's termination\n"
    "      rule). Writes DIR/exploitation.csv and exploitation.png.\n"
    "  replay RUN [checkpoint=E] [rollouts=M] [steps=H] [episode=e] [seed=S] [-o DIR]\n"
    "      Figure 4a/b: one real episode's first H actions (default 100; deterministic policy of\n"
    "      checkpoint E, default the newest) replayed open-loop in its model by M rollouts\n"
    "      (default 1000): the predicted state's mean ± std per step against the real trajectory.\n"
    "      Writes DIR/replay.csv and a plot per observation dim, replay-s<d>.png.\n\n"
    "Checkpoints are the run's ckpt-e<epoch>.npz files (checkpoint.every sets how often training\n"
    "writes them, checkpoint.keep how many it keeps); an analysis names the checkpoints it lacks.\n"
    "Plots need gnuplot on PATH (apt-get install gnuplot-nox); without it they are text plots,\n"
    "written to the .txt beside the .png name.\n\n";

/* ---- options ------------------------------------------------------------------------------ */

static analyze_opt* find_opt(analyze_opt* opts, int n, const char* key) {
  for (int i = 0; i < n; i++)
    if (strcmp(opts[i].key, key) == 0) return &opts[i];
  return NULL;
}

static void set_opt(const char* cmd, analyze_opt* o, const char* v, const char* usage) {
  char* end;
  errno = 0;
  if (o->kind == ANALYZE_STRING) {
    if (!*v) mbpo_fatal("%s: %s= needs a value (usage: %s)", cmd, o->key, usage);
    *(const char**)o->value = v;
  } else if (o->kind == ANALYZE_DOUBLE) {
    double x = strtod(v, &end);
    int ranged = o->lo <= o->hi;
    if (errno || end == v || *end || !isfinite(x) || (ranged && (x < o->lo || x > o->hi))) {
      if (ranged && o->hi < 1e299)
        mbpo_fatal("%s: %s=%s: needs a number in [%g, %g] (usage: %s)", cmd, o->key, v, o->lo, o->hi, usage);
      mbpo_fatal("%s: %s=%s: needs a finite number%s (usage: %s)", cmd, o->key, v, ranged ? " >= 0" : "", usage);
    }
    *(double*)o->value = x;
  } else {
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < (long)o->lo || x > (long)o->hi)
      mbpo_fatal("%s: %s=%s: needs an integer in [%ld, %ld] (usage: %s)", cmd, o->key, v, (long)o->lo,
                 (long)o->hi, usage);
    *(long*)o->value = x;
  }
  o->given = 1;
}

void analyze_parse_opts(const char* cmd, int argc, char** argv, analyze_opt* opts, int nopts,
                        const char** out, const char** pos, int max_pos, int* npos, const char* usage) {
  *npos = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* eq = strchr(a, '=');
    if (strcmp(a, "-o") == 0 || strncmp(a, "-o=", 3) == 0) {
      if (!out) mbpo_fatal("%s: -o is not an option of %s (usage: %s)", cmd, cmd, usage);
      if (a[2] == '=') *out = a + 3;
      else if (i + 1 < argc) *out = argv[++i];
      else mbpo_fatal("%s: -o needs a name (usage: %s)", cmd, usage);
    } else if (eq && eq != a && a[0] != '-') {
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)(eq - a < 127 ? eq - a : 127), a);
      analyze_opt* o = find_opt(opts, nopts, key);
      if (!o) {
        const char* best = NULL;
        int bd = INT_MAX;
        for (int k = 0; k < nopts; k++) {
          int d = cfg_edit_distance(key, opts[k].key);
          if (d < bd) bd = d, best = opts[k].key;
        }
        /* a training setting is the run's own (its config.ini), not an option of the analysis */
        if (cfg_find(key) && bd > 2)
          mbpo_fatal("%s: '%s' is a training setting: the analysis reads the run's own from its config.ini "
                     "(usage: %s)", cmd, a, usage);
        mbpo_fatal("%s: unknown option '%s' (did you mean '%s'?) (usage: %s)", cmd, key, best ? best : "",
                   usage);
      }
      set_opt(cmd, o, eq + 1, usage);
    } else if (a[0] == '-') {
      mbpo_fatal("%s: unknown option '%s' (usage: %s)", cmd, a, usage);
    } else {
      if (*npos >= max_pos)
        mbpo_fatal("%s: unexpected argument '%s' (usage: %s)", cmd, a, usage);
      pos[(*npos)++] = a;
    }
  }
}

/* ---- plots -------------------------------------------------------------------------------- */

static double* copy_or_zero(const double* v, int n) {
  double* o = (double*)calloc((size_t)(n > 0 ? n : 1), sizeof *o);
  if (!o) mbpo_fatal("out of memory");
  if (v) memcpy(o, v, (size_t)n * sizeof *o);
  return o;
}

int analyze_plot(const char* title, const char* xname, const char* yname, const analyze_curve* c,
                 int nc, const char* out_png, char* made, int madelen, char* err, int errlen) {
  /* the curves as a runset of one run per title, one group per curve: plot.h draws those */
  runset s;
  memset(&s, 0, sizeof s);
  snprintf(s.xcol, sizeof s.xcol, "%s", xname);
  snprintf(s.ycol, sizeof s.ycol, "%s", yname);
  s.nruns = 1;
  s.runs = (runset_run*)calloc(1, sizeof *s.runs);
  s.groups = (runset_group*)calloc((size_t)(nc > 0 ? nc : 1), sizeof *s.groups);
  if (!s.runs || !s.groups) mbpo_fatal("out of memory");
  snprintf(s.runs[0].cfg.task, sizeof s.runs[0].cfg.task, "%s", title);
  s.ngroups = nc;
  for (int g = 0; g < nc; g++) {
    runset_group* G = &s.groups[g];
    snprintf(G->label, sizeof G->label, "%s", c[g].label);
    G->nruns = 1;
    G->runs = (int*)calloc(1, sizeof(int));
    if (!G->runs) mbpo_fatal("out of memory");
    G->n = c[g].n;
    G->x = copy_or_zero(c[g].x, c[g].n);
    G->mean = copy_or_zero(c[g].y, c[g].n);
    G->std = copy_or_zero(c[g].std, c[g].n);
  }
  int rc = 0;
  if (plot_have_gnuplot()) {
    rc = plot_gnuplot(&s, out_png, err, errlen);
    mbpo_fmt(made, madelen, "%s", out_png);
  } else {
    char txt[4400];
    size_t l = strlen(out_png);
    mbpo_fmt(txt, sizeof txt, "%.*s.txt", (int)(l > 4 && strcmp(out_png + l - 4, ".png") == 0 ? l - 4 : l), out_png);
    FILE* f = fopen(txt, "w");
    if (!f) {
      mbpo_fmt(err, errlen, "cannot write %s: %s", txt, strerror(errno));
      rc = -1;
    } else {
      plot_text(&s, f, 70, 20);
      if (fclose(f) != 0) {
        mbpo_fmt(err, errlen, "cannot write %s: %s", txt, strerror(errno));
        rc = -1;
      }
    }
    mbpo_fmt(made, madelen, "%s", txt);
  }
  runset_free(&s);
  return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

int cmd_analyze(int argc, char** argv) {
  static const char* const subs[] = {"bound", "generalization", "exploitation", "replay"};
  if (argc < 2) {
    fprintf(stderr, "usage: mbpo analyze <bound|generalization|exploitation|replay> ...\n\n%s", analyze_help);
    return 2;
  }
  const char* sub = argv[1];
  if (strcmp(sub, "bound") == 0) return analyze_bound_cmd(argc - 1, argv + 1);
  if (strcmp(sub, "generalization") == 0) return analyze_gen_cmd(argc - 1, argv + 1);
  if (strcmp(sub, "exploitation") == 0) return analyze_exploit_cmd(argc - 1, argv + 1);
  if (strcmp(sub, "replay") == 0) return analyze_replay_cmd(argc - 1, argv + 1);
  const char* best = subs[0];
  int bd = INT_MAX;
  for (int i = 0; i < 4; i++) {
    int d = cfg_edit_distance(sub, subs[i]);
    if (d < bd) bd = d, best = subs[i];
  }
  fprintf(stderr, "usage: mbpo analyze <bound|generalization|exploitation|replay> ...\n");
  fprintf(stderr, "mbpo: error: unknown analysis '%s' (did you mean '%s'?)\n", sub, best);
  return 2;
}
