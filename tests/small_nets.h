/* small_nets.h: the small dynamics model and SAC agent of the tests that roll a model out
 * (test_rollout.c, test_vexp.c): 16 wide, 2 hidden layers, the official loss settings, chunks
 * small enough that a test's batch spans several. */
#ifndef MBPO_TEST_SMALL_NETS_H
#define MBPO_TEST_SMALL_NETS_H

#include <string.h>

#include "model.h"
#include "rng.h"
#include "sac.h"

/** A model of E members (n_elites elites) whose predictions run in chunks of predict_chunk rows. */
static inline model_params small_model_params(int E, int n_elites, int predict_chunk) {
  model_params p;
  memset(&p, 0, sizeof p);
  p.ensemble = E;
  p.elites = n_elites;
  p.hidden = 16;
  p.layers = 2;
  p.batch = 32;
  p.lr = 1e-3f;
  p.n_weight_decay = 3;
  p.weight_decay[0] = 2.5e-5f, p.weight_decay[1] = 5e-5f, p.weight_decay[2] = 1e-4f;
  p.logvar_coef = 0.01f;
  p.holdout_ratio = 0.2;
  p.max_holdout = 5000;
  p.patience = 5;
  p.improvement = 0.01;
  p.predict_chunk = predict_chunk;
  return p;
}

/** A 16-wide agent for od observations and ad actions acting in chunks of act_chunk rows. */
static inline sac* small_agent_create(int od, int ad, uint32_t seed, int act_chunk) {
  sac_params p = sac_params_default(ad);
  p.hidden = 16;
  p.act_chunk = act_chunk;
  return sac_create(od, ad, &p, (rng_key){seed, RNG_INIT});
}

/** Plant model m's outputs: output-layer weights 0, so every member predicts its output biases
 *  whatever the input; those biases 0 for the mean (the caller sets them through
 *  small_model_mean_bias), raw log-variance -30 with bounds [-20, -19], so lv is about -20 and the
 *  noise std exp(-10), about 4.5e-5. */
static inline void small_model_plant(dyn_model* m) {
  const nn_mlp* net = &m->net;
  const int L = net->nlayers - 1, in = net->dims[L], out = net->dims[L + 1], D = out / 2;
  memset(m->params + net->w_off[L], 0, sizeof(float) * (size_t)net->E * in * out);
  for (int e = 0; e < net->E; e++) {
    float* b = m->params + net->b_off[L] + (size_t)e * out;
    for (int d = 0; d < D; d++) b[d] = 0.0f, b[D + d] = -30.0f;
  }
  for (int d = 0; d < D; d++) m->max_lv[d] = -19.0f, m->min_lv[d] = -20.0f;
}

/** Member e's planted mean [reward, Δobs] (its output biases, small_model_plant). */
static inline float* small_model_mean_bias(dyn_model* m, int e) {
  const nn_mlp* net = &m->net;
  const int L = net->nlayers - 1;
  return m->params + net->b_off[L] + (size_t)e * net->dims[L + 1];
}

#endif
