/* test_analyze.c: `mbpo analyze` (include/analyze*.h) and the §6.2 ablation settings.
 *
 * The formulas are checked against values computed by hand (each case's comment shows the
 * arithmetic). The analyses run through the binary (MBPO_BIN) on a tiny InvertedPendulum run with a
 * checkpoint every epoch, and their CSVs are checked for what they claim to measure: ε_π = 0 exactly
 * for i = j and > 0 for i < j, every value finite, and one pair recomputed here from the checkpoints
 * with the model's predictions and the Gaussians' parameters and formulas written out in this file;
 * the replay (Figure 4a/b) replays the exploitation's episode.
 * The no-model run (sac.real_ratio = 1) must fit no model; a fixed rollout length must be used by
 * every fit; a model pool that cannot fit in memory is refused. Bad input exits non-zero and says
 * what is wrong. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze_bound.h"
#include "analyze_ckpt.h"
#include "analyze_generalization.h"
#include "log.h"
#include "sac.h"
#include "sh_capture.h"
#include "test.h"

#define TINY                                                                                          \
  "inverted_pendulum device=cpu steps=400 epoch_length=100 init_steps=100 min_pool=250 "             \
  "model.train_freq=50 rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 "              \
  "model.max_epochs=5 eval.episodes=1 max_path_length=100 checkpoint.every=1 checkpoint.keep=100 " \
  "threads=1"

static char g_dir[] = "/tmp/mbpo-analyze-XXXXXX";
static char g_run[700];
static char g_out[1 << 17];
static const char* g_bin;

/* Run a command line (printf format) with stdout and stderr into g_out; its exit status. */
#define sh(...) run_shf(g_out, sizeof g_out, __VA_ARGS__)

/* ---- formulas ----------------------------------------------------------------------------- */

/* γ = 0.99, r_max = 1, ε_π = 0.1, ε_m = 0.01, slope 0 (ε_m' = 0.01); 1-γ = 0.01, (1-γ)² = 1e-4:
 *   4.1    2·0.99·(0.01 + 0.2)/1e-4 + 4·0.1/0.01           = 4158 + 40            = 4198
 *   4.2(0) 2[0.99·0.1/1e-4 + (1 + 2)·0.1/0.01 + 0]          = 2[990 + 30]          = 2040
 *   4.2(1) 2[0.9801·0.1/1e-4 + 2.99·0.1/0.01 + 0.21/0.01]   = 2[980.1 + 29.9 + 21] = 2062
 *   4.3(0) 2[990 + 1·0.1/0.01 + 0]                          = 2[990 + 10]          = 2000
 *   4.3(1) 2[980.1 + 0.99·0.1/0.01 + 0.01/0.01]             = 2[980.1 + 9.9 + 1]   = 1982
 * γ = 0.9, r_max = 2, ε_π = 1, ε_m = 0.3, slope 0.2 (ε_m' = 0.3 + 1·0.2 = 0.5):
 *   4.1    2·0.9·2·(0.3 + 2)/0.01 + 4·2·1/0.1              = 828 + 80             = 908
 *   4.2(0) 4[0.9/0.01 + 3/0.1 + 0]                          = 4[90 + 30]           = 480
 *   4.2(1) 4[0.81/0.01 + 2.9/0.1 + 2.3/0.1]                 = 4[81 + 29 + 23]      = 532
 *   4.3(k) 4[0.9^(k+1)/0.01 + 0.9^k/0.1 + 5k]               = 4[100·0.9^k + 5k]
 *   4.3(6) 4[53.1441 + 30] = 332.5764, 4.3(7) 4[47.82969 + 35] = 331.31876,
 *   4.3(8) 4[43.046721 + 40] = 332.186884. */
static void test_bound_hand_values(void) {
  analyze_bound_in a = {0.99, 1.0, 0.1, 0.01, 0.0};
  CHECK_CLOSE(analyze_bound_41(&a), 4198.0, 1e-12);
  CHECK_CLOSE(analyze_bound_42(&a, 0), 2040.0, 1e-12);
  CHECK_CLOSE(analyze_bound_42(&a, 1), 2062.0, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&a, 0), 2000.0, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&a, 1), 1982.0, 1e-12);
  analyze_bound_in b = {0.9, 2.0, 1.0, 0.3, 0.2};
  CHECK_CLOSE(analyze_bound_eps_m_prime(&b), 0.5, 1e-15);
  CHECK_CLOSE(analyze_bound_41(&b), 908.0, 1e-12);
  CHECK_CLOSE(analyze_bound_42(&b, 0), 480.0, 1e-12);
  CHECK_CLOSE(analyze_bound_42(&b, 1), 532.0, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&b, 0), 400.0, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&b, 6), 332.5764, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&b, 7), 331.31876, 1e-12);
  CHECK_CLOSE(analyze_bound_43(&b, 8), 332.186884, 1e-12);
}

/* k* of the examples above: (b) the bracket is smallest at k = 7 (the three values above; closed
 * form ceil(ln 0.5 / ln 0.9) = ceil(6.579) = 7); (a) the smallest k with 0.99^k · 0.1 <= 0.01,
 * ceil(ln 0.1 / ln 0.99) = ceil(229.105) = 230. ε_π = 0: k* = 0; ε_m' = 0.1 - 1·0.2 < 0 < ε_π: the
 * bracket falls without end (-1). Theorem 4.2's argmin is 0 on a grid of inputs, as the paper says,
 * and the closed form equals the argmin wherever it lies inside the range. */
static void test_bound_kstar(void) {
  analyze_bound_in a = {0.99, 1.0, 0.1, 0.01, 0.0}, b = {0.9, 2.0, 1.0, 0.3, 0.2};
  CHECK(analyze_bound_kstar(&b) == 7, "k* %ld, by hand 7", analyze_bound_kstar(&b));
  CHECK(analyze_bound_argmin(&b, 43, 0, 50) == 7, "argmin %ld", analyze_bound_argmin(&b, 43, 0, 50));
  CHECK(analyze_bound_kstar(&a) == 230, "k* %ld, by hand 230", analyze_bound_kstar(&a));
  CHECK(analyze_bound_argmin(&a, 43, 0, 1000) == 230, "argmin %ld", analyze_bound_argmin(&a, 43, 0, 1000));
  CHECK(analyze_bound_argmin(&a, 43, 0, 100) == 100, "a range ending before k* ends at its edge");
  analyze_bound_in z = {0.99, 1.0, 0.0, 0.01, 0.0}, neg = {0.99, 1.0, 1.0, 0.1, -0.2};
  CHECK(analyze_bound_kstar(&z) == 0 && analyze_bound_argmin(&z, 43, 0, 50) == 0, "eps_pi = 0: k* = 0");
  CHECK(analyze_bound_kstar(&neg) == -1, "eps_m' < 0: k* %ld", analyze_bound_kstar(&neg));
  const double gs[] = {0.5, 0.9, 0.99, 0.999}, es[] = {0.001, 0.05, 0.3, 2.0};
  for (int g = 0; g < 4; g++)
    for (int p = 0; p < 4; p++)
      for (int m = 0; m < 4; m++) {
        analyze_bound_in c = {gs[g], 3.0, es[p], es[m], 0.5};
        long a42 = analyze_bound_argmin(&c, 42, 0, 3000), ks = analyze_bound_kstar(&c);
        CHECK(a42 == 0, "gamma %g eps_pi %g eps_m %g: thm 4.2 argmin %ld", gs[g], es[p], es[m], a42);
        CHECK(ks == analyze_bound_argmin(&c, 43, 0, 3000), "gamma %g eps_pi %g eps_m %g: closed %ld", gs[g], es[p],
              es[m], ks);
      }
}

/* KL(p || q), p = N(1, 1), q = N(0, 2²): ln 2 - 0 + (1 + 1²)/(2·4) - ½ = 0.693147 + 0.25 - 0.5
 * = 0.443147; the other way, ln ½ + (4 + 1)/2 - ½ = 1.306853; a second, equal dim adds 0; KL(p||p) = 0.
 * Least squares: (0,1), (1,2), (2,4): x̄ = 1, ȳ = 7/3, Σ(x-x̄)(y-ȳ) = 4/3 + 5/3 = 3, Σ(x-x̄)² = 2,
 * slope 1.5; one point or equal x: NaN. */
static void test_kl_and_slope(void) {
  const float mp[2] = {1.0f, 0.5f}, lp[2] = {0.0f, -1.0f}, mq[2] = {0.0f, 0.5f}, lq[2] = {(float)log(2.0), -1.0f};
  CHECK_CLOSE(sac_gaussian_kl(mp, lp, mq, lq, 1), log(2.0) - 0.25, 1e-7);
  CHECK_CLOSE(sac_gaussian_kl(mq, lq, mp, lp, 1), -log(2.0) + 2.0, 1e-7);
  CHECK_CLOSE(sac_gaussian_kl(mp, lp, mq, lq, 2), log(2.0) - 0.25, 1e-7);
  CHECK(sac_gaussian_kl(mp, lp, mp, lp, 2) == 0.0, "KL(p||p) = %g", sac_gaussian_kl(mp, lp, mp, lp, 2));
  const double x[3] = {0, 1, 2}, y[3] = {1, 2, 4}, same[3] = {1, 1, 1};
  CHECK_CLOSE(analyze_ls_slope(x, y, 3), 1.5, 1e-15);
  CHECK(isnan(analyze_ls_slope(x, y, 1)) && isnan(analyze_ls_slope(same, y, 3)), "degenerate slopes");
}

/* The command prints the hand values of example (a) and k*; bad input exits non-zero. */
static void test_bound_command(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  int rc = sh("%s analyze bound gamma=0.9 rmax=2 eps_pi=1 eps_m=0.3 slope=0.2 k_max=10", g_bin);
  CHECK(rc == 0, "exit %d: %s", rc, g_out);
  CHECK(strstr(g_out, "k_star=7 k_star_closed=7 argmin_42=0 thm41=908"), "k* line: %s", g_out);
  CHECK(strstr(g_out, "331.31876"), "4.3(7) = 331.31876 by hand: %s", g_out);
  rc = sh("%s analyze bound gamma=0.9 rmax=2 eps_pi=1 eps_m=0.3 k_min=5 k_max=4", g_bin);
  CHECK(rc != 0 && strstr(g_out, "empty"), "empty k range: exit %d: %s", rc, g_out);
  rc = sh("%s analyze bound gamma=0.9 rmax=2 eps_pi=1 eps_mm=0.3", g_bin);
  CHECK(rc != 0 && strstr(g_out, "did you mean 'eps_m'"), "unknown key: exit %d: %s", rc, g_out);
  rc = sh("%s analyze bound gamma=0.9 rmax=2", g_bin);
  CHECK(rc != 0 && strstr(g_out, "eps_pi, eps_m not given"), "missing: exit %d: %s", rc, g_out);
  rc = sh("%s analyze bound gamma=1.5 rmax=2 eps_pi=1 eps_m=0.3", g_bin);
  CHECK(rc != 0 && strstr(g_out, "gamma"), "gamma out of range: exit %d: %s", rc, g_out);
  rc = sh("%s analyze boundd", g_bin);
  CHECK(rc != 0 && strstr(g_out, "did you mean 'bound'"), "unknown analysis: exit %d: %s", rc, g_out);
}

/* ---- a tiny run --------------------------------------------------------------------------- */

/* The distinct values of CSV column col of path into g_out, each followed by a blank. */
static int column_values(const char* path, const char* col) {
  return sh("awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == \"%s\") c = i; next } { print $c }' %s | "
            "sort -u | tr '\\n' ' '", col, path);
}

/* Data rows of a CSV file (lines after the header), or -1 when it cannot be read. */
static int csv_rows(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, c, last = '\n';
  while ((c = fgetc(f)) != EOF) {
    if (c == '\n') n++;
    last = c;
  }
  fclose(f);
  if (last != '\n') n++;
  return n > 0 ? n - 1 : 0;
}

/* Training with a fixed rollout length (rollout.min_length = max_length = 2, the §6.2 sweep's
 * form): every fit's row says k = 2. */
static void test_tiny_run(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!mkdtemp(g_dir)) SKIP("cannot create a temporary folder");
  snprintf(g_run, sizeof g_run, "%s/inverted_pendulum-a-s0", g_dir);
  int rc = sh("%s train " TINY " rollout.min_length=2 rollout.max_length=2 run_dir=%s tag=a", g_bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  char path[800];
  snprintf(path, sizeof path, "%s/model_train.csv", g_run);
  rc = column_values(path, "rollout_length");
  CHECK(rc == 0 && strcmp(g_out, "2 ") == 0, "rollout lengths: %s", g_out);
}

/* One parsed row of generalization.csv. */
typedef struct gen_row {
  int i, j, steps;
  long ie, je, fit_rows;
  double eps_pi, mse, nll;
} gen_row;

static int read_gen(const char* path, gen_row* r, int max) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[1024];
  int n = 0;
  if (!fgets(line, sizeof line, f)) n = -1;
  while (n >= 0 && n < max && fgets(line, sizeof line, f)) {
    gen_row* x = &r[n];
    long ies, train, jes;
    if (sscanf(line, "%d,%ld,%ld,%ld,%ld,%d,%ld,%ld,%d,%lf,%lf,%lf", &x->i, &x->ie, &ies, &x->fit_rows, &train, &x->j,
               &x->je, &jes, &x->steps, &x->eps_pi, &x->mse, &x->nll) == 12)
      n++;
  }
  fclose(f);
  return n;
}

/* Recompute pair (i, j) of the CSV here: the same fresh transitions (analyze_collect, seed 0), then
 * the elites' MSE and Gaussian NLL from model_predict and the mean KL(π_j || π_i) from the
 * policies' means and log-sigmas, with the formulas written out below. */
static void recompute_pair(const analyze_ckpt* ci, const analyze_ckpt* cj, int N, double* kl, double* mse,
                           double* nll) {
  char err[4096];
  mjModel* mj = env_load_model(cj->p.task, "", err, sizeof err);
  analyze_rows r;
  analyze_rows_alloc(&r, N, cj->p.task->obs_dim, cj->p.task->act_dim);
  analyze_collect(cj, mj, 0, &r);
  const int O = r.obs_dim, A = r.act_dim, D = ci->model->D, E = ci->model->p.ensemble;
  float* mean = malloc(sizeof(float) * (size_t)E * N * D);
  float* lv = malloc(sizeof(float) * (size_t)E * N * D);
  model_predict(ci->model, r.obs, r.act, N, mean, lv);
  *mse = *nll = 0;
  int ne;
  const int* el = model_elites(ci->model, &ne);
  for (int k = 0; k < ne; k++)
    for (int b = 0; b < N; b++)
      for (int d = 0; d < D; d++) {
        double y = d == 0 ? r.rew[b] : (double)r.next_obs[b * O + d - 1] - r.obs[b * O + d - 1];
        double mu = mean[((size_t)el[k] * N + b) * D + d], l = lv[((size_t)el[k] * N + b) * D + d];
        *mse += (mu - y) * (mu - y) / ((double)N * D * ne);
        *nll += 0.5 * ((mu - y) * (mu - y) / exp(l) + l + log(2 * M_PI)) / ((double)N * D * ne);
      }
  const nn_mlp* pi = &ci->p.agent->pi;
  nn_cache* cache = nn_cache_alloc(pi, 64);
  float* out = malloc(sizeof(float) * 64 * 2 * A);
  float *mj_ = malloc(sizeof(float) * N * A), *sj = malloc(sizeof(float) * N * A);
  float *mi = malloc(sizeof(float) * N * A), *si = malloc(sizeof(float) * N * A);
  sac_policy_gaussian(pi, cj->p.agent->pi_w, cache, out, r.obs, N, mj_, sj);
  sac_policy_gaussian(pi, ci->p.agent->pi_w, cache, out, r.obs, N, mi, si);
  *kl = 0;
  for (int b = 0; b < N * A; b++) {
    double sp = exp(sj[b]), sq = exp(si[b]), dm = mj_[b] - mi[b];
    *kl += (log(sq / sp) + (sp * sp + dm * dm) / (2 * sq * sq) - 0.5) / N;
  }
  free(mean), free(lv), free(out), free(mj_), free(sj), free(mi), free(si);
  nn_cache_free(cache);
  analyze_rows_free(&r);
  mj_deleteModel(mj);
}

static void test_generalization(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from test_tiny_run");
  int rc = sh("%s analyze generalization %s steps=300", g_bin, g_run);
  CHECK(rc == 0, "exit %d: %s", rc, g_out);
  char path[1000];
  snprintf(path, sizeof path, "%s/analysis/generalization.csv", g_run);
  gen_row r[64];
  int n = read_gen(path, r, 64), K = 0;
  while (K * (K + 1) / 2 < n) K++;
  CHECK(n >= 3 && K * (K + 1) / 2 == n, "%d rows: not one per pair i <= j", n);
  int diag = 0;
  for (int k = 0; k < n; k++) {
    CHECK(isfinite(r[k].eps_pi) && isfinite(r[k].mse) && isfinite(r[k].nll) && r[k].steps == 300,
          "row %d not finite", k);
    if (r[k].i == r[k].j) {
      CHECK(r[k].eps_pi == 0.0, "eps_pi(%d, %d) = %g", r[k].i, r[k].j, r[k].eps_pi);
      diag++;
    } else {
      CHECK(r[k].eps_pi > 0.0 && r[k].je > r[k].ie, "eps_pi(%d, %d) = %g", r[k].i, r[k].j, r[k].eps_pi);
    }
    CHECK(r[k].mse > 0.0 && r[k].fit_rows > 0, "row %d: mse %g, rows %ld", k, r[k].mse, r[k].fit_rows);
  }
  CHECK(diag == K, "%d rows with i = j of %d checkpoints", diag, K);
  snprintf(path, sizeof path, "%s/analysis/generalization-slope.csv", g_run);
  CHECK(csv_rows(path) == K, "slope rows %d, checkpoints %d", csv_rows(path), K);
  /* the pair (0, K-1), recomputed */
  analyze_ckpt* c;
  mbpo_set_quiet(1);
  int nc = analyze_load_ckpts("test", g_run, NULL, 1, 2, &c);
  CHECK(nc == K, "%d checkpoints loaded, %d in the CSV", nc, K);
  const gen_row* last = NULL;
  for (int k = 0; k < n; k++)
    if (r[k].i == 0 && r[k].j == K - 1) last = &r[k];
  if (nc == K && last) {
    double kl, mse, nll;
    recompute_pair(&c[0], &c[K - 1], 300, &kl, &mse, &nll);
    CHECK_CLOSE(last->eps_pi, kl, 1e-5);
    CHECK_CLOSE(last->mse, mse, 1e-5);
    CHECK_CLOSE(last->nll, nll, 1e-5);
  }
  analyze_free_ckpts(c, nc);
  /* the bound from these results: a k* row per checkpoint with a slope */
  rc = sh("%s analyze bound %s", g_bin, g_run);
  CHECK(rc == 0 && strstr(g_out, "empirical k* per checkpoint"), "bound RUN: exit %d: %s", rc, g_out);
}

/* Real and model returns: InvertedPendulum's reward is 1 per step, so a real return equals its
 * length; a model rollout is no longer than its real episode; the same command gives the same CSV. */
static void test_exploitation(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from test_tiny_run");
  int rc = sh("%s analyze exploitation %s episodes=3 rollouts=8 -o %s/x1", g_bin, g_run, g_dir);
  CHECK(rc == 0, "exit %d: %s", rc, g_out);
  char path[1000], line[1024];
  snprintf(path, sizeof path, "%s/x1/exploitation.csv", g_dir);
  FILE* f = fopen(path, "r");
  CHECK(f != NULL, "no %s", path);
  if (!f) return;
  int rows = 0;
  if (fgets(line, sizeof line, f))
    while (fgets(line, sizeof line, f)) {
      long epoch, steps, nonfin;
      int ep, len, M;
      double real, mm, ms, ml;
      if (sscanf(line, "%ld,%ld,%d,%lf,%d,%lf,%lf,%lf,%d,%ld", &epoch, &steps, &ep, &real, &len, &mm, &ms, &ml, &M,
                 &nonfin) != 10)
        continue;
      rows++;
      CHECK(real == (double)len && len >= 1 && len <= 100, "real return %g, length %d", real, len);
      CHECK(isfinite(mm) && isfinite(ms) && ml >= 1 && ml <= len && M == 8, "model: %g ± %g, length %g of %d", mm,
            ms, ml, len);
    }
  fclose(f);
  CHECK(rows >= 3 && rows % 3 == 0, "%d rows", rows);
  rc = sh("%s analyze exploitation %s episodes=3 rollouts=8 -o %s/x2 && cmp %s/x1/exploitation.csv "
          "%s/x2/exploitation.csv", g_bin, g_run, g_dir, g_dir, g_dir);
  CHECK(rc == 0, "not reproducible: %s", g_out);
}

/* Figure 4a/b: the replayed episode is the exploitation's episode 0 of the same checkpoint (same
 * initial state, same length); step 0 is that state with no spread; later steps have a spread (the
 * rollouts draw their own noise); one row per step and dim. */
static void test_replay(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from test_tiny_run");
  int rc = sh("%s analyze replay %s checkpoint=2 rollouts=40 -o %s/r1", g_bin, g_run, g_dir);
  CHECK(rc == 0, "exit %d: %s", rc, g_out);
  rc = sh("%s analyze exploitation %s checkpoints=2 episodes=1 rollouts=2 -o %s/r1 >/dev/null && "
          "cut -d, -f5 %s/r1/exploitation.csv | tail -n 1", g_bin, g_run, g_dir, g_dir);
  int T = atoi(g_out);
  char path[900], line[512];
  snprintf(path, sizeof path, "%s/r1/replay.csv", g_dir);
  CHECK(T > 0 && csv_rows(path) == (T + 1) * 4, "%d rows for an episode of %d steps, 4 dims", csv_rows(path), T);
  FILE* f = fopen(path, "r");
  if (!f) return;
  int spread = 0;
  if (fgets(line, sizeof line, f))
    while (fgets(line, sizeof line, f)) {
      int t, d;
      double real, mean, sd;
      if (sscanf(line, "%d,%d,%lf,%lf,%lf", &t, &d, &real, &mean, &sd) != 5) continue;
      if (t == 0) CHECK(real == mean && sd == 0.0, "step 0, dim %d: %g vs %g ± %g", d, real, mean, sd);
      else spread += sd > 0.0;
    }
  fclose(f);
  CHECK(spread == 4 * T, "%d of %d later rows have a spread", spread, 4 * T);
}

static void test_bad_input(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from test_tiny_run");
  /* a run folder without checkpoints */
  sh("mkdir -p %s/nock && cp %s/config.ini %s/nock/", g_dir, g_run, g_dir);
  int rc = sh("%s analyze generalization %s/nock", g_bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "no epoch-end checkpoint") && strstr(g_out, "checkpoint.every"),
        "no checkpoints: exit %d: %s", rc, g_out);
  rc = sh("%s analyze exploitation %s checkpoints=99", g_bin, g_run);
  CHECK(rc != 0 && strstr(g_out, "no checkpoint of epoch 99") && strstr(g_out, "checkpoint.every"),
        "missing epoch: exit %d: %s", rc, g_out);
  rc = sh("%s analyze generalization %s checkpoints=1", g_bin, g_run);
  CHECK(rc != 0 && strstr(g_out, "at least 2"), "one checkpoint: exit %d: %s", rc, g_out);
  /* a checkpoint of another task */
  sh("mkdir -p %s/hop && %s config %s task=hopper --ini > %s/hop/config.ini", g_dir, g_bin, g_run, g_dir);
  rc = sh("%s analyze exploitation %s/hop checkpoints=%s/ckpt-e000001.npz", g_bin, g_dir, g_run);
  CHECK(rc != 0 && strstr(g_out, "task"), "other task: exit %d: %s", rc, g_out);
  rc = sh("%s analyze generalization %s stpes=10", g_bin, g_run);
  CHECK(rc != 0 && strstr(g_out, "did you mean 'steps'"), "unknown key: exit %d: %s", rc, g_out);
  rc = sh("%s analyze bound %s/nock", g_bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "analyze generalization"), "bound without results: exit %d: %s", rc, g_out);
  rc = sh("%s analyze generalization %s/none", g_bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "not a run folder"), "no folder: exit %d: %s", rc, g_out);
}

/* §6.2 (a), no model: SAC on real data only fits no model (model_train.csv has no row, the model
 * columns of progress.csv stay 0) and there is no model to analyse. */
static void test_no_model_run(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no scratch folder");
  int rc = sh("%s train " TINY " sac.real_ratio=1 run_dir=%s tag=nomodel", g_bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  char run[800], path[900];
  snprintf(run, sizeof run, "%s/inverted_pendulum-nomodel-s0", g_dir);
  snprintf(path, sizeof path, "%s/model_train.csv", run);
  CHECK(csv_rows(path) == 0, "model_train.csv has %d rows", csv_rows(path));
  const char* cols[] = {"model_epochs", "rollout_rows", "model_pool_size", "model_pool_capacity"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/progress.csv", run);
    rc = column_values(path, cols[i]);
    CHECK(rc == 0 && strcmp(g_out, "0 ") == 0, "%s: %s", cols[i], g_out);
  }
  rc = sh("%s analyze exploitation %s", g_bin, run);
  CHECK(rc != 0 && strstr(g_out, "sac.real_ratio = 1"), "analysis of a no-model run: exit %d: %s", rc, g_out);
}

/* §6.2 (c), value expansion (device=cpu): the model is fitted on schedule and makes no rollout
 * (model_train.csv has rows with rollout_rows 0, the model pool stays empty); the critics' targets,
 * and so their values (q_mean), differ from the no-model run of the same seed; the device programs
 * and sac.real_ratio < 1 are refused before a run folder is made. */
static void test_value_expansion_run(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no scratch folder");
  int rc = sh("%s train " TINY " sac.real_ratio=1 sac.value_expansion=1 run_dir=%s tag=vexp", g_bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  char run[800], path[900], nom[900];
  snprintf(run, sizeof run, "%s/inverted_pendulum-vexp-s0", g_dir);
  snprintf(path, sizeof path, "%s/model_train.csv", run);
  CHECK(csv_rows(path) >= 4, "model_train.csv has %d rows", csv_rows(path));
  rc = column_values(path, "rollout_rows");
  CHECK(rc == 0 && strcmp(g_out, "0 ") == 0, "rollout_rows: %s", g_out);
  snprintf(path, sizeof path, "%s/progress.csv", run);
  rc = column_values(path, "model_pool_capacity");
  CHECK(rc == 0 && strcmp(g_out, "0 ") == 0, "model_pool_capacity: %s", g_out);
  rc = column_values(path, "model_epochs");
  CHECK(rc == 0 && strcmp(g_out, "0 ") != 0, "model_epochs: %s", g_out);
  /* the no-model run of test_no_model_run, same seed: same real data up to the first update */
  snprintf(nom, sizeof nom, "%s/inverted_pendulum-nomodel-s0/progress.csv", g_dir);
  static char qv[1 << 17], qn[1 << 17];
  qv[0] = qn[0] = 0;
  if (column_values(path, "q_mean") == 0) snprintf(qv, sizeof qv, "%s", g_out);
  if (column_values(nom, "q_mean") == 0) snprintf(qn, sizeof qn, "%s", g_out);
  CHECK(qv[0] && qn[0] && strcmp(qv, qn) != 0, "q_mean with and without expansion: %s / %s", qv, qn);
  rc = sh("MBPO_DEVICE_EMULATE=1 %s train " TINY " sac.real_ratio=1 sac.value_expansion=1 run_dir=%s tag=vexpdev",
          g_bin, g_dir);
  snprintf(path, sizeof path, "%s/inverted_pendulum-vexpdev-s0", g_dir);
  CHECK(rc != 0 && strstr(g_out, "CPU backend only") && access(path, F_OK) != 0, "device: exit %d: %s", rc,
        g_out);
  rc = sh("%s train " TINY " sac.value_expansion=1 run_dir=%s tag=vexpmix", g_bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "sac.real_ratio = 1"), "real_ratio < 1: exit %d: %s", rc, g_out);
}

/* eval.model_return (Figure 4c during training): every evaluation also runs its policy in the
 * model; InvertedPendulum's reward is at most 1 per step and the model rollouts last at most the
 * real episode's length, so the model return is finite and at most about eval_length_mean. Without
 * the setting the columns are empty. (tests/test_resume.c holds the columns across a resume.) */
static void test_eval_model_return(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no run from test_tiny_run");
  int rc = sh("%s train " TINY " eval.model_return=1 eval.model_rollouts=4 run_dir=%s tag=mret", g_bin, g_dir);
  CHECK(rc == 0, "training failed (%d): %s", rc, g_out);
  char path[900];
  snprintf(path, sizeof path, "%s/inverted_pendulum-mret-s0/progress.csv", g_dir);
  rc = sh("awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == \"eval_model_return_mean\") m = i; "
          "if ($i == \"eval_length_mean\") l = i }; next } { n++; if ($m == \"\" || $m + 0 != $m + 0 || "
          "$m > 1.2 * $l + 0.5) bad++ } END { print n + 0, bad + 0 }' %s", path);
  CHECK(rc == 0 && strcmp(g_out, "4 0\n") == 0, "rows, rows out of bounds: %s", g_out);
  snprintf(path, sizeof path, "%s/progress.csv", g_run);
  rc = column_values(path, "eval_model_return_mean");
  CHECK(rc == 0 && strcmp(g_out, " ") == 0, "without eval.model_return: '%s'", g_out);
}

/* §6.2 (b), long fixed rollouts: a model pool larger than memory is refused before training
 * (Humanoid, k = 500, 800,000 rollouts per fit, 1 fit per 1000-step epoch, 5 epochs kept:
 * 500 · 800,000 · 5 = 2·10^9 rows of (2·45 + 17 + 2)·4 = 436 bytes = 872 GB), before its run
 * folder is made; on the device programs the same check against the GPU's free memory. */
static void test_model_pool_too_big(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (!g_run[0]) SKIP("no scratch folder");
  int rc = sh("%s train humanoid device=cpu rollout.min_length=500 rollout.max_length=500 rollout.batch=800000 "
              "run_dir=%s tag=big", g_bin, g_dir);
  CHECK(rc != 0 && strstr(g_out, "872.0 GB") && strstr(g_out, "Lower rollout.batch"), "exit %d: %s", rc, g_out);
  char path[900];
  snprintf(path, sizeof path, "%s/humanoid-big-s0", g_dir);
  CHECK(access(path, F_OK) != 0, "the refused run left a folder %s", path);
  /* the device programs hold the pools in the GPU's memory: an 8 GB GPU (the test hook gives the
   * host emulation one) cannot hold k = 500 at 10,000 rollouts per fit (10.9 GB) */
  rc = sh("MBPO_DEVICE_EMULATE=1 MBPO_TEST_GPU_MEMORY=8 timeout 120 %s train humanoid device=cpu "
          "rollout.min_length=500 rollout.max_length=500 rollout.batch=10000 steps=1000 init_steps=100 "
          "min_pool=100 run_dir=%s tag=bigdev", g_bin, g_dir);
  snprintf(path, sizeof path, "%s/humanoid-bigdev-s0", g_dir);
  CHECK(rc != 0 && strstr(g_out, "10.9 GB") && strstr(g_out, "GPU's free 8.0 GB") && access(path, F_OK) != 0,
        "device: exit %d: %s", rc, g_out);
}

int main(void) {
  g_bin = getenv("MBPO_BIN");
  RUN(test_bound_hand_values);
  RUN(test_bound_kstar);
  RUN(test_kl_and_slope);
  RUN(test_bound_command);
  RUN(test_tiny_run);
  RUN(test_generalization);
  RUN(test_exploitation);
  RUN(test_replay);
  RUN(test_bad_input);
  RUN(test_no_model_run);
  RUN(test_value_expansion_run);
  RUN(test_eval_model_return);
  RUN(test_model_pool_too_big);
  /* the scratch runs go, unless asked to be kept for a look */
  if (g_run[0] && !getenv("MBPO_TEST_KEEP")) sh("rm -rf %s", g_dir);
  return test_done();
}
