/* analyze_generalization.c: model error under policy shift, Figure 1 (analyze_generalization.h). */
#include "analyze_generalization.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "log.h"
#include "threads.h"

void analyze_model_errors(dyn_model* m, const analyze_rows* r, float* mean, float* logvar, double* mse,
                          double* nll) {
  const int D = m->D, O = m->obs_dim, n = r->n;
  double per[MODEL_MAX_ENSEMBLE];
  int ne;
  const int* el = model_elites(m, &ne);
  /* the MSE exactly as a fit scores its holdout */
  model_holdout_mse(m, n, r->obs, r->act, r->rew, r->next_obs, per);
  *mse = 0.0;
  for (int i = 0; i < ne; i++) *mse += per[el[i]] / ne;
  model_predict(m, r->obs, r->act, n, mean, logvar);
  const double ln2pi = log(2.0 * M_PI);
  *nll = 0.0;
  for (int i = 0; i < ne; i++) {
    const size_t base = (size_t)el[i] * n * D;
    double s = 0.0;
    for (int b = 0; b < n; b++)
      for (int d = 0; d < D; d++) {
        const size_t at = base + (size_t)b * D + d;
        const size_t o = (size_t)b * O + d - 1;
        const double y = d == 0 ? r->rew[b] : (double)r->next_obs[o] - r->obs[o];
        const double df = mean[at] - y, lv = logvar[at];
        s += 0.5 * (df * df * exp(-lv) + lv + ln2pi);
      }
    *nll += s / ((double)n * D) / ne;
  }
}

double analyze_policy_kl(const nn_mlp* pi, const float* w_p, const float* w_q, const analyze_rows* r,
                         nn_cache* cache, float* out, float* mu_p, float* ls_p, float* mu_q, float* ls_q) {
  const int A = r->act_dim;
  sac_policy_gaussian(pi, w_p, cache, out, r->obs, r->n, mu_p, ls_p);
  sac_policy_gaussian(pi, w_q, cache, out, r->obs, r->n, mu_q, ls_q);
  double s = 0.0;
  for (int b = 0; b < r->n; b++) {
    const size_t o = (size_t)b * A;
    s += sac_gaussian_kl(mu_p + o, ls_p + o, mu_q + o, ls_q + o, A);
  }
  return r->n > 0 ? s / r->n : NAN;
}

double analyze_ls_slope(const double* x, const double* y, int n) {
  double mx = 0, my = 0;
  for (int i = 0; i < n; i++) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0;
  for (int i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return n >= 2 && sxx > 0 ? sxy / sxx : NAN;
}

void analyze_gen_paths(const char* run, const char* dir, char* pairs, int n1, char* slopes, int n2) {
  char d[4400];
  if (dir) mbpo_fmt(d, sizeof d, "%s", dir);
  else mbpo_fmt(d, sizeof d, "%s/analysis", run);
  if (pairs) mbpo_fmt(pairs, n1, "%s/generalization.csv", d);
  if (slopes) mbpo_fmt(slopes, n2, "%s/generalization-slope.csv", d);
}

/* ---- the command -------------------------------------------------------------------------- */

static const char g_usage[] =
    "mbpo analyze generalization RUN [steps=N] [checkpoints=E1,E2,...] [fit_points=P] [seed=S] [-o DIR]";

/* One (i, j) result. */
typedef struct gen_pair {
  double eps_pi, mse, nll;
} gen_pair;

/* An empty CSV field for NaN, else the number. */
static void num(FILE* f, double v) {
  if (isfinite(v)) fprintf(f, ",%.9g", v);
  else fputc(',', f);
}

int analyze_gen_cmd(int argc, char** argv) {
  long steps = 2000, fit_points = 3, seed = -1;
  const char *list = NULL, *dir = NULL, *run = NULL;
  int npos = 0;
  analyze_opt opts[] = {
      {"steps", ANALYZE_LONG, &steps, 2, 10000000, 0},
      {"checkpoints", ANALYZE_STRING, &list, 0, 0, 0},
      {"fit_points", ANALYZE_LONG, &fit_points, 2, 1000000, 0},
      {"seed", ANALYZE_LONG, &seed, 0, 2147483647.0, 0},
  };
  analyze_parse_opts("generalization", argc, argv, opts, 4, &dir, &run, 1, &npos, g_usage);
  if (!run) mbpo_fatal("generalization needs a run folder (usage: %s)", g_usage);
  analyze_ckpt* c;
  const int K = analyze_load_ckpts("generalization", run, list, 1, 2, &c);
  const mbpo_config* cfg = &c[0].p.cfg;
  threads_set((int)cfg->threads);
  if (seed < 0) seed = cfg->seed;
  char err[4600], outdir[4400], pairs_path[4600], slope_path[4600];
  mjModel* mj = env_load_model(c[0].p.task, cfg->model_dir, err, sizeof err);
  if (!mj) mbpo_fatal("cannot load the model of %s: %s", c[0].p.task->name, err);
  analyze_out_dir(run, dir, outdir, sizeof outdir);
  analyze_gen_paths(run, outdir, pairs_path, sizeof pairs_path, slope_path, sizeof slope_path);

  /* workspaces, allocated once */
  const int N = (int)steps, A = c[0].p.task->act_dim, E = c[0].model->p.ensemble, D = c[0].model->D;
  const nn_mlp* pi = &c[0].p.agent->pi;
  nn_cache* cache = nn_cache_alloc(pi, 1024);
  float* out = (float*)malloc((size_t)1024 * 2 * A * sizeof(float));
  float* gauss = (float*)malloc((size_t)4 * N * A * sizeof(float));
  float* mean = (float*)malloc((size_t)E * N * D * sizeof(float));
  float* logvar = (float*)malloc((size_t)E * N * D * sizeof(float));
  gen_pair* res = (gen_pair*)calloc((size_t)K * K, sizeof *res);
  analyze_rows rows;
  analyze_rows_alloc(&rows, N, c[0].p.task->obs_dim, A);
  if (!out || !gauss || !mean || !logvar || !res) mbpo_fatal("out of memory");

  mbpo_note("generalization: %d checkpoints of %s, %d real steps of each policy (seed %ld)", K, run, N, seed);
  for (int j = 0; j < K; j++) {
    analyze_collect(&c[j], mj, (uint32_t)seed, &rows);
    for (int i = 0; i <= j; i++) {
      gen_pair* g = &res[(size_t)i * K + j];
      g->eps_pi = i == j ? 0.0
                         : analyze_policy_kl(pi, c[j].p.agent->pi_w, c[i].p.agent->pi_w, &rows, cache, out, gauss,
                                             gauss + (size_t)N * A, gauss + (size_t)2 * N * A,
                                             gauss + (size_t)3 * N * A);
      analyze_model_errors(c[i].model, &rows, mean, logvar, &g->mse, &g->nll);
    }
  }

  FILE* f = fopen(pairs_path, "w");
  if (!f) mbpo_fatal("cannot write %s", pairs_path);
  fprintf(f, "i,i_epoch,i_total_env_steps,fit_rows,train_rows,j,j_epoch,j_total_env_steps,steps,eps_pi,eps_m_mse,"
             "eps_m_nll\n");
  for (int i = 0; i < K; i++)
    for (int j = i; j < K; j++) {
      const gen_pair* g = &res[(size_t)i * K + j];
      fprintf(f, "%d,%ld,%ld,%ld,%ld,%d,%ld,%ld,%d", i, c[i].epoch, c[i].p.env_steps, c[i].fit_rows, c[i].train_rows,
              j, c[j].epoch, c[j].p.env_steps, N);
      num(f, g->eps_pi), num(f, g->mse), num(f, g->nll);
      fputc('\n', f);
    }
  if (fclose(f) != 0) mbpo_fatal("cannot write %s", pairs_path);

  /* per model: its points sorted by ε_π (a few, so insertion order), the slope through the first */
  f = fopen(slope_path, "w");
  if (!f) mbpo_fatal("cannot write %s", slope_path);
  fprintf(f, "i,i_epoch,i_total_env_steps,fit_rows,train_rows,points,eps_m_mse,eps_m_nll,slope_mse,slope_nll,"
             "eps_pi_next\n");
  double* px = (double*)malloc((size_t)K * sizeof(double));
  double* pm = (double*)malloc((size_t)K * sizeof(double));
  double* pn = (double*)malloc((size_t)K * sizeof(double));
  double* sx = (double*)malloc((size_t)K * sizeof(double));
  double* sm = (double*)malloc((size_t)K * sizeof(double));
  double* sn = (double*)malloc((size_t)K * sizeof(double));
  double* xs = (double*)malloc((size_t)K * K * sizeof(double));
  double* ys = (double*)malloc((size_t)K * K * sizeof(double));
  analyze_curve* curves = (analyze_curve*)calloc((size_t)K, sizeof *curves);
  if (!px || !pm || !pn || !sx || !sm || !sn || !xs || !ys || !curves) mbpo_fatal("out of memory");
  int nslope = 0;
  for (int i = 0; i < K; i++) {
    int n = 0;
    for (int j = i; j < K; j++) {
      const gen_pair* g = &res[(size_t)i * K + j];
      int at = n++;
      while (at > 0 && px[at - 1] > g->eps_pi) {
        px[at] = px[at - 1], pm[at] = pm[at - 1], pn[at] = pn[at - 1];
        at--;
      }
      px[at] = g->eps_pi, pm[at] = g->mse, pn[at] = g->nll;
    }
    int P = n < fit_points ? n : (int)fit_points;
    double s_m = analyze_ls_slope(px, pm, P), s_n = analyze_ls_slope(px, pn, P);
    double next = i + 1 < K ? res[(size_t)i * K + i + 1].eps_pi : NAN;
    fprintf(f, "%d,%ld,%ld,%ld,%ld,%d", i, c[i].epoch, c[i].p.env_steps, c[i].fit_rows, c[i].train_rows, P);
    num(f, res[(size_t)i * K + i].mse), num(f, res[(size_t)i * K + i].nll), num(f, s_m), num(f, s_n), num(f, next);
    fputc('\n', f);
    if (isfinite(s_m)) sx[nslope] = (double)c[i].fit_rows, sm[nslope] = s_m, sn[nslope++] = s_n;
    memcpy(xs + (size_t)i * K, px, (size_t)n * sizeof(double));
    memcpy(ys + (size_t)i * K, pm, (size_t)n * sizeof(double));
    curves[i].n = n;
    curves[i].x = xs + (size_t)i * K;
    curves[i].y = ys + (size_t)i * K;
    mbpo_fmt(curves[i].label, sizeof curves[i].label, "model of epoch %ld (%ld rows)", c[i].epoch, c[i].fit_rows);
  }
  if (fclose(f) != 0) mbpo_fatal("cannot write %s", slope_path);

  /* Figure 1a: ε_m against ε_π, a curve per model (amount of data); 1b: the slope per amount */
  char png[4600], made[4600], title[CFG_STR_MAX];
  int rc = 0;
  mbpo_fmt(title, sizeof title, "%s: model error under policy shift", c[0].p.task->name);
  mbpo_fmt(png, sizeof png, "%s/generalization.png", outdir);
  if (analyze_plot(title, "policy shift eps_pi (mean KL)", "model error eps_m (MSE)", curves, K, png, made,
                   sizeof made, err, sizeof err) != 0)
    mbpo_warn("%s", err), rc = 1;
  else mbpo_note("wrote %s", made);
  analyze_curve sc = {"slope d eps_m / d eps_pi near 0 (MSE)", nslope, sx, sm, NULL};
  mbpo_fmt(title, sizeof title, "%s: model error slope per amount of data", c[0].p.task->name);
  mbpo_fmt(png, sizeof png, "%s/generalization-slope.png", outdir);
  if (nslope > 0 && analyze_plot(title, "rows of the model's training data", "d eps_m / d eps_pi", &sc, 1, png,
                                 made, sizeof made, err, sizeof err) != 0)
    mbpo_warn("%s", err), rc = 1;
  else if (nslope > 0) mbpo_note("wrote %s", made);

  /* the table on stdout */
  printf("%4s %6s %9s %4s %6s %12s %12s %12s\n", "i", "epoch", "fit_rows", "j", "epoch", "eps_pi", "eps_m_mse",
         "eps_m_nll");
  for (int i = 0; i < K; i++)
    for (int j = i; j < K; j++) {
      const gen_pair* g = &res[(size_t)i * K + j];
      printf("%4d %6ld %9ld %4d %6ld %12.6g %12.6g %12.6g\n", i, c[i].epoch, c[i].fit_rows, j, c[j].epoch, g->eps_pi,
             g->mse, g->nll);
    }
  mbpo_note("wrote %s and %s", pairs_path, slope_path);

  free(px), free(pm), free(pn), free(sx), free(sm), free(sn), free(xs), free(ys), free(curves);
  analyze_rows_free(&rows);
  free(res), free(mean), free(logvar), free(gauss), free(out);
  nn_cache_free(cache);
  mj_deleteModel(mj);
  analyze_free_ckpts(c, K);
  return rc;
}
