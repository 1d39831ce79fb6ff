/* analyze_bound.c: the penalties of Theorems 4.1-4.3, k*, and `mbpo analyze bound`
 * (analyze_bound.h). */
#include "analyze_bound.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "analyze_generalization.h"
#include "config.h"
#include "csv.h"
#include "log.h"

double analyze_bound_41(const analyze_bound_in* b) {
  const double g = b->gamma, u = 1.0 - g;
  return 2.0 * g * b->rmax * (b->eps_m + 2.0 * b->eps_pi) / (u * u) + 4.0 * b->rmax * b->eps_pi / u;
}

double analyze_bound_42(const analyze_bound_in* b, long k) {
  const double g = b->gamma, u = 1.0 - g, gk = pow(g, (double)k);
  return 2.0 * b->rmax *
         (g * gk * b->eps_pi / (u * u) + (gk + 2.0) * b->eps_pi / u +
          (double)k * (b->eps_m + 2.0 * b->eps_pi) / u);
}

double analyze_bound_eps_m_prime(const analyze_bound_in* b) { return b->eps_m + b->eps_pi * b->slope; }

double analyze_bound_43(const analyze_bound_in* b, long k) {
  const double g = b->gamma, u = 1.0 - g, gk = pow(g, (double)k);
  return 2.0 * b->rmax *
         (g * gk * b->eps_pi / (u * u) + gk * b->eps_pi / u + (double)k * analyze_bound_eps_m_prime(b) / u);
}

long analyze_bound_argmin(const analyze_bound_in* b, int which, long k_min, long k_max) {
  long best = k_min;
  double bv = INFINITY;
  for (long k = k_min; k <= k_max; k++) {
    /* with r_max = 0 every penalty is 0: compare the brackets instead, which are what k changes */
    analyze_bound_in unit = *b;
    unit.rmax = 1.0;
    double v = which == 42 ? analyze_bound_42(&unit, k) : analyze_bound_43(&unit, k);
    if (v < bv) bv = v, best = k;
  }
  return best;
}

long analyze_bound_kstar(const analyze_bound_in* b) {
  const double em = analyze_bound_eps_m_prime(b);
  if (b->eps_pi <= 0) return 0;
  if (em <= 0) return -1;
  if (em >= b->eps_pi) return 0;
  /* the smallest k with γ^k ε_π <= ε_m'; the loop settles the rounding of the logarithms */
  long k = (long)ceil(log(em / b->eps_pi) / log(b->gamma));
  if (k < 0) k = 0;
  while (k > 0 && pow(b->gamma, (double)(k - 1)) * b->eps_pi <= em) k--;
  while (pow(b->gamma, (double)k) * b->eps_pi > em) k++;
  return k;
}

/* ---- the command -------------------------------------------------------------------------- */

static const char g_usage[] =
    "mbpo analyze bound gamma=G rmax=R eps_pi=E eps_m=M [slope=S] [k_min=A] [k_max=K] [-o FILE.csv]\n"
    "       mbpo analyze bound RUN [gamma=G] [rmax=R] [eps_pi=E] [metric=mse|nll] [k_min=A] [k_max=K] [-o DIR]";

/* "k* = 17" or "k* > 100 (the bracket still falls at k_max = 100: raise k_max)" */
static void kstar_text(const analyze_bound_in* b, long k_min, long k_max, char* out, int n) {
  long arg = analyze_bound_argmin(b, 43, k_min, k_max), closed = analyze_bound_kstar(b);
  char cl[64];
  if (closed < 0) snprintf(cl, sizeof cl, "unbounded: eps_m' <= 0");
  else snprintf(cl, sizeof cl, "%ld", closed);
  if (arg == k_max && (closed < 0 || closed > k_max))
    mbpo_fmt(out, n, "k* >= %ld (the bracket still falls at k_max = %ld: raise k_max; closed form %s)", arg,
             k_max, cl);
  else
    mbpo_fmt(out, n, "k* = %ld (closed form %s)", arg, cl);
}

static int bound_table(const analyze_bound_in* b, long k_min, long k_max, const char* csv) {
  printf("Janner et al. 2019, Theorems 4.1-4.3: gamma %.6g, r_max %.6g, eps_pi %.6g, eps_m %.6g, slope %.6g "
         "-> eps_m' = eps_m + eps_pi slope = %.6g\n",
         b->gamma, b->rmax, b->eps_pi, b->eps_m, b->slope, analyze_bound_eps_m_prime(b));
  printf("Theorem 4.1 penalty (the whole horizon in the model): %.6g\n\n", analyze_bound_41(b));
  printf("%8s  %16s  %16s\n", "k", "thm4.2 penalty", "thm4.3 penalty");
  FILE* f = NULL;
  if (csv) {
    f = fopen(csv, "w");
    if (!f) mbpo_fatal("cannot write %s", csv);
    fprintf(f, "k,thm41,thm42,thm43\n");
  }
  for (long k = k_min; k <= k_max; k++) {
    double c42 = analyze_bound_42(b, k), c43 = analyze_bound_43(b, k);
    printf("%8ld  %16.8g  %16.8g\n", k, c42, c43);
    if (f) fprintf(f, "%ld,%.17g,%.17g,%.17g\n", k, analyze_bound_41(b), c42, c43);
  }
  if (f && fclose(f) != 0) mbpo_fatal("cannot write %s", csv);
  char ks[256];
  kstar_text(b, k_min, k_max, ks, sizeof ks);
  long a42 = analyze_bound_argmin(b, 42, k_min, k_max);
  printf("\nTheorem 4.3 (model error under the new policy): %s over k in [%ld, %ld]\n", ks, k_min, k_max);
  printf("Theorem 4.2 (model error under the data policy): minimum at k = %ld%s\n", a42,
         a42 == 0 ? " (its penalty grows with k: no model rollout is best, as the paper says)" : "");
  printf("k_star=%ld k_star_closed=%ld argmin_42=%ld thm41=%.17g\n", analyze_bound_argmin(b, 43, k_min, k_max),
         analyze_bound_kstar(b), a42, analyze_bound_41(b));
  if (csv) mbpo_note("wrote %s", csv);
  return 0;
}

/* Column col of the slope CSV, keyed by the checkpoint index i (rows with an empty value are
 * left out by csv_read_xy). */
static int read_col(const char* path, const char* col, double** i, double** v, int* n) {
  char err[4096];
  if (csv_read_xy(path, "i", col, i, v, n, err, sizeof err) != 0) mbpo_fatal("%s", err);
  return *n;
}

/* The value of column (ix, v, n) at checkpoint index i, or NAN. */
static double at(const double* ix, const double* v, int n, double i) {
  for (int r = 0; r < n; r++)
    if (ix[r] == i) return v[r];
  return NAN;
}

static int bound_run(const char* run, const char* dir, analyze_bound_in b, int gamma_given, int eps_pi_given,
                     const char* metric, long k_min, long k_max) {
  char path[4400], cfgp[4400], err[4600];
  mbpo_fmt(cfgp, sizeof cfgp, "%s/config.ini", run);
  mbpo_config cfg;
  cfg_defaults(&cfg);
  if (cfg_load_ini(&cfg, cfgp, err, sizeof err) != 0) mbpo_fatal("%s is not a run folder: %s", run, err);
  if (!gamma_given) b.gamma = cfg.sac_gamma;
  analyze_gen_paths(run, dir, NULL, 0, path, sizeof path);
  FILE* t = fopen(path, "r");
  if (!t)
    mbpo_fatal("%s has no generalization results (%s): run `mbpo analyze generalization %s` first", run, path,
               run);
  fclose(t);
  char col_m[32], col_s[32];
  snprintf(col_m, sizeof col_m, "eps_m_%s", metric);
  snprintf(col_s, sizeof col_s, "slope_%s", metric);
  double *xi, *ep, *xm, *em, *xs, *sl, *xr, *rows, *xn, *next;
  int ne, nm, ns, nr, nn;
  read_col(path, "i_epoch", &xi, &ep, &ne);
  read_col(path, col_m, &xm, &em, &nm);
  read_col(path, col_s, &xs, &sl, &ns);
  read_col(path, "fit_rows", &xr, &rows, &nr);
  read_col(path, "eps_pi_next", &xn, &next, &nn);
  if (ns == 0)
    mbpo_fatal("%s: no checkpoint has a slope (a slope needs a later checkpoint: train with a smaller "
               "checkpoint.every so that the run keeps at least 2)", path);
  printf("%s: empirical k* per checkpoint (Theorem 4.3, gamma %.6g, r_max %.6g, eps_m by %s; eps_pi %s)\n", run,
         b.gamma, b.rmax, metric, eps_pi_given ? "as given" : "to the next analysed checkpoint");
  printf("%6s %7s %10s %12s %12s %12s %12s %12s %8s %8s  %s\n", "i", "epoch", "fit_rows", "eps_pi", "eps_m", "slope",
         "eps_m'", "thm4.3(k*)", "k*", "closed", "note");
  int shown = 0;
  for (int r = 0; r < ns; r++) {
    analyze_bound_in c = b;
    double i = xs[r];
    c.slope = sl[r];
    c.eps_m = at(xm, em, nm, i);
    if (!eps_pi_given) c.eps_pi = at(xn, next, nn, i);
    if (!isfinite(c.eps_m) || !isfinite(c.eps_pi)) continue;
    long arg = analyze_bound_argmin(&c, 43, k_min, k_max), closed = analyze_bound_kstar(&c);
    const char* note = "";
    if (arg == k_max && (closed < 0 || closed > k_max)) note = "k* >= k_max: raise k_max";
    if (analyze_bound_eps_m_prime(&c) <= 0)
      note = c.eps_m > 0 ? "eps_m' <= 0 (a falling error): the bracket falls for every k"
                         : "eps_m <= 0 (an NLL can be): the bound needs an error >= 0";
    char cl[32];
    if (closed < 0) snprintf(cl, sizeof cl, "none");
    else snprintf(cl, sizeof cl, "%ld", closed);
    printf("%6.0f %7.0f %10.0f %12.6g %12.6g %12.6g %12.6g %12.6g %8ld %8s  %s\n", i, at(xi, ep, ne, i),
           at(xr, rows, nr, i), c.eps_pi, c.eps_m, c.slope, analyze_bound_eps_m_prime(&c), analyze_bound_43(&c, arg),
           arg, cl, note);
    shown++;
  }
  if (!shown) mbpo_fatal("%s: no checkpoint with eps_m, a slope and eps_pi to the next checkpoint", path);
  printf("(k* is the argmin over k in [%ld, %ld], closed the closed form without that range; eps_pi and eps_m are "
         "the measured mean KL and %s, used in place of the theorems' total variation distances)\n",
         k_min, k_max, strcmp(metric, "mse") == 0 ? "MSE" : "NLL");
  free(xi), free(ep), free(xm), free(em), free(xs), free(sl), free(xr), free(rows), free(xn), free(next);
  return 0;
}

int analyze_bound_cmd(int argc, char** argv) {
  analyze_bound_in b = {0.99, 1.0, 0, 0, 0};
  long k_min = 0, k_max = 100;
  const char* metric = "mse";
  const char* out = NULL;
  const char* run = NULL;
  int npos = 0;
  analyze_opt opts[] = {
      {"gamma", ANALYZE_DOUBLE, &b.gamma, 1e-9, 1.0 - 1e-12, 0},
      {"rmax", ANALYZE_DOUBLE, &b.rmax, 0, 1e300, 0},
      {"eps_pi", ANALYZE_DOUBLE, &b.eps_pi, 0, 1e300, 0},
      {"eps_m", ANALYZE_DOUBLE, &b.eps_m, 0, 1e300, 0},
      {"slope", ANALYZE_DOUBLE, &b.slope, 1, 0, 0},
      {"k_min", ANALYZE_LONG, &k_min, 0, 1e9, 0},
      {"k_max", ANALYZE_LONG, &k_max, 0, 1e9, 0},
      {"metric", ANALYZE_STRING, &metric, 0, 0, 0},
  };
  enum { GAMMA, RMAX, EPS_PI, EPS_M, SLOPE, KMIN, KMAX, METRIC, NOPT };
  analyze_parse_opts("bound", argc, argv, opts, NOPT, &out, &run, 1, &npos, g_usage);
  if (k_min > k_max)
    mbpo_fatal("bound: the k range [k_min = %ld, k_max = %ld] is empty (usage: %s)", k_min, k_max, g_usage);
  if (strcmp(metric, "mse") != 0 && strcmp(metric, "nll") != 0)
    mbpo_fatal("bound: metric=%s: must be mse or nll (usage: %s)", metric, g_usage);
  if (npos == 1) {
    if (opts[EPS_M].given || opts[SLOPE].given)
      mbpo_fatal("bound %s: eps_m and slope come from the run's generalization results; leave them out "
                 "(or leave out the run folder to give them by hand)", run);
    return bound_run(run, out, b, opts[GAMMA].given, opts[EPS_PI].given, metric, k_min, k_max);
  }
  const char* missing[4];
  int nm = 0;
  for (int i = GAMMA; i <= EPS_M; i++)
    if (!opts[i].given) missing[nm++] = opts[i].key;
  if (nm) {
    char list[128] = "";
    for (int i = 0; i < nm; i++) {
      strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
      strncat(list, missing[i], sizeof list - strlen(list) - 1);
    }
    mbpo_fatal("bound: %s not given (usage: %s)", list, g_usage);
  }
  if (opts[METRIC].given) mbpo_fatal("bound: metric= is for a run folder's results (usage: %s)", g_usage);
  return bound_table(&b, k_min, k_max, out);
}
