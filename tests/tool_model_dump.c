/* tool_model_dump.c: one Adam step of the dynamics-model loss on the CPU (host/cpu/model.c), written
 * out as .npy files for tests/test_torch_model.py.
 *
 *   tool_model_dump DIR
 *
 * The model has the default configuration (model_params_from_config of the defaults: E 7, 4 x 200
 * swish, batch 256, the official decays and coefficient) with Hopper dims (obs 11, act 3). Its
 * normaliser is fitted on 2000 synthetic rows with different scales per column. The log-variance
 * bounds are moved near the raw outputs (near 0 at initialisation): max_lv in [-0.2, 0.2] and
 * min_lv -1 on even dims, min_lv in [-0.2, 0.2] and max_lv 1 on odd dims, so that both soft
 * clamps work in their curved regions, and 2 warm-up steps on other batches give the Adam state (t = 2,
 * nonzero moments). Then the state before, one batched [E][B][in] minibatch, ONE model_step and
 * the state after are written:
 *   hyper.npy           f64 [obs, act, E, hidden, layers, B, lr, logvar_coef, adam_t_before,
 *                            adam_b1, adam_b2, adam_eps]
 *   weight_decay.npy    f64 [layers + 1]
 *   params.npy          flat parameters before: per layer W [E][in][out] then b [E][out], then
 *                       max_lv [D], then min_lv [D]
 *   adam_m.npy, adam_v.npy          Adam moments before (same layout)
 *   norm_rows.npy       [2000][in] the rows the normaliser was fitted on
 *   norm_mean.npy, norm_std.npy     [in]
 *   x_raw.npy, x.npy    [E][B][in] the batch's inputs, raw and normalised
 *   y.npy               [E][B][D] its targets
 *   loss.npy            f64 [1] the loss before the step (model_step's return)
 *   grads.npy           the gradient of that loss (flat)
 *   params_after.npy, adam_m_after.npy, adam_v_after.npy
 *   pred_obs.npy, pred_act.npy      [64][obs], [64][act] raw rows for model_predict
 *   pred_mean.npy, pred_logvar.npy  [E][64][D] its outputs (with the parameters after the step) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "model.h"
#include "npy.h"

enum { OBS = 11, ACT = 3, IN = OBS + ACT, D = OBS + 1, NROWS = 2000, NPRED = 64 };
static const char* dir;

static void save_t(const char* name, const void* v, int type, int ndim, long n0, long n1, long n2) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  long shape[3] = {n0, n1, n2};
  if (npy_save(path, v, type, ndim, shape) != 0) {
    fprintf(stderr, "tool_model_dump: cannot write %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

static void save(const char* name, const float* v, int ndim, long n0, long n1, long n2) {
  save_t(name, v, NPY_F32, ndim, n0, n1, n2);
}

static float nrm(uint32_t c1, uint64_t n) { return rng_normal((rng_key){2024, RNG_TEST}, 0, c1, n); }
static float uni(uint32_t c1, uint64_t n) { return rng_uniform((rng_key){2024, RNG_TEST}, 1, c1, n); }

/* A batch: E x B rows drawn from the normaliser's rows, normalised; targets arbitrary. */
static void make_batch(const dyn_model* m, const float* rows, int B, uint32_t tag, float* xr, float* x,
                       float* y) {
  const int E = m->p.ensemble;
  for (int e = 0; e < E; e++)
    for (int b = 0; b < B; b++) {
      size_t r = (size_t)e * B + b;
      int g = (int)rng_index((rng_key){2024, RNG_TEST}, 2, tag, r, NROWS);
      memcpy(xr + r * IN, rows + (size_t)g * IN, sizeof(float) * IN);
      model_normalize(m, 1, xr + r * IN, xr + r * IN + OBS, x + r * IN);
      for (int d = 0; d < D; d++) y[r * D + d] = 0.3f * nrm(10 + tag, r * D + d);
    }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tool_model_dump DIR\n");
    return 2;
  }
  dir = argv[1];
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "tool_model_dump: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  mbpo_config c;
  cfg_defaults(&c);
  model_params p = model_params_from_config(&c);
  dyn_model* m = model_create(OBS, ACT, &p, (rng_key){17, 0});
  const int E = p.ensemble, B = p.batch, L = m->net.nlayers;

  /* normaliser rows: column j ~ offset_j + scale_j N(0, 1) */
  float* rows = malloc(sizeof(float) * NROWS * IN);
  float obs[NROWS * OBS], act[NROWS * ACT];
  for (int i = 0; i < NROWS; i++)
    for (int j = 0; j < IN; j++) {
      float v = (float)(j - 5) * 0.3f + (0.2f + 0.25f * j) * nrm(1, (uint64_t)i * IN + j);
      rows[(size_t)i * IN + j] = v;
      if (j < OBS) obs[i * OBS + j] = v;
      else act[i * ACT + j - OBS] = v;
    }
  model_fit_normalizer(m, NROWS, obs, act);
  /* the raw log-variances start near 0 (|z| < 0.02): even dims get max_lv near them, odd dims
   * min_lv near them, so that each clamp works in its curved region somewhere */
  for (int d = 0; d < D; d++) {
    float near = -0.2f + 0.4f * uni(3, (uint64_t)d);
    m->max_lv[d] = d % 2 == 0 ? near : 1.0f;
    m->min_lv[d] = d % 2 == 0 ? -1.0f : near;
  }

  const size_t nb = (size_t)E * B;
  float* xr = malloc(sizeof(float) * nb * IN);
  float* x = malloc(sizeof(float) * nb * IN);
  float* y = malloc(sizeof(float) * nb * D);
  for (uint32_t w = 0; w < 2; w++) { /* warm-up steps */
    make_batch(m, rows, B, 100 + w, xr, x, y);
    model_step(m, B, x, y);
  }
  make_batch(m, rows, B, 0, xr, x, y);

  /* how many raw log-variances fall in each clamp's soft region (reported, for the record) */
  model_loss(m, B, x, y, NULL);
  long near_hi = 0, near_lo = 0;
  for (size_t r = 0; r < nb; r++)
    for (int d = 0; d < D; d++) {
      float z = m->out[r * 2 * D + D + d];
      near_hi += z > m->max_lv[d] - 0.25f;
      near_lo += z < m->min_lv[d] + 0.25f;
    }

  double hyper[12] = {OBS, ACT, E, p.hidden, p.layers, B, p.lr, p.logvar_coef, (double)m->adam->t,
                      m->adam->b1, m->adam->b2, m->adam->eps};
  double wd[NN_MAX_LAYERS];
  for (int l = 0; l < L; l++) wd[l] = p.weight_decay[l];
  save_t("hyper", hyper, NPY_F64, 1, 12, 0, 0);
  save_t("weight_decay", wd, NPY_F64, 1, L, 0, 0);
  const long np = (long)m->nparams;
  save("params", m->params, 1, np, 0, 0);
  save("adam_m", m->adam->m, 1, np, 0, 0);
  save("adam_v", m->adam->v, 1, np, 0, 0);
  save("norm_rows", rows, 2, NROWS, IN, 0);
  save("norm_mean", m->norm_mean, 1, IN, 0, 0);
  save("norm_std", m->norm_std, 1, IN, 0, 0);
  save("x_raw", xr, 3, E, B, IN);
  save("x", x, 3, E, B, IN);
  save("y", y, 3, E, B, D);

  double loss = model_step(m, B, x, y);
  save_t("loss", &loss, NPY_F64, 1, 1, 0, 0);
  save("grads", m->grads, 1, np, 0, 0);
  save("params_after", m->params, 1, np, 0, 0);
  save("adam_m_after", m->adam->m, 1, np, 0, 0);
  save("adam_v_after", m->adam->v, 1, np, 0, 0);

  float pm[7 * NPRED * D], pl[7 * NPRED * D];
  if (E > 7) return 1;
  model_predict(m, obs, act, NPRED, pm, pl);
  save("pred_obs", obs, 2, NPRED, OBS, 0);
  save("pred_act", act, 2, NPRED, ACT, 0);
  save("pred_mean", pm, 3, E, NPRED, D);
  save("pred_logvar", pl, 3, E, NPRED, D);
  printf("tool_model_dump: %s: E %d, %d x %d, B %d, %ld parameters, loss %.6f; raw log-variances within 0.25 "
         "of max_lv %ld, of min_lv %ld (of %ld)\n",
         dir, E, p.layers, p.hidden, B, np, loss, near_hi, near_lo, (long)nb * D);
  free(rows);
  free(xr);
  free(x);
  free(y);
  model_free(m);
  return 0;
}
