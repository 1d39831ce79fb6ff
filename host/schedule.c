/* schedule.c: rollout-length schedule and model-pool capacity (schedule.h). */
#include <math.h>

#include "schedule.h"

int mbpo_rollout_length(const mbpo_config* c, int epoch) {
  double e = epoch, e0 = (double)c->rollout_min_epoch, e1 = (double)c->rollout_max_epoch;
  double k0 = (double)c->rollout_min_length, k1 = (double)c->rollout_max_length;
  if (e <= e0) return (int)k0;
  double frac = e1 > e0 ? (e - e0) / (e1 - e0) : 1.0;
  if (frac > 1.0) frac = 1.0;
  return (int)floor(k0 + frac * (k1 - k0));
}

long mbpo_model_pool_capacity(const mbpo_config* c, int k) {
  /* rollouts_per_epoch = rollout_batch * E / F (a float in the official code) */
  double per_epoch = (double)c->rollout_batch * (double)c->epoch_length / (double)c->model_train_freq;
  return c->model_retain_epochs * (long)floor((double)k * per_epoch);
}

long mbpo_epochs(const mbpo_config* c) {
  return (c->steps + c->epoch_length - 1) / c->epoch_length;
}

int mbpo_rolls_out(const mbpo_config* c) { return c->sac_real_ratio < 1.0; }

int mbpo_fits_model(const mbpo_config* c) { return mbpo_rolls_out(c) || c->sac_value_expansion > 0; }

double mbpo_model_pool_peak_bytes(const mbpo_config* c, int od, int ad, long* rows, int* at_k) {
  double peak = 0.0;
  long prev = 0;
  *rows = 0;
  *at_k = 0;
  if (!mbpo_rolls_out(c)) return 0.0;
  const double row = (2.0 * od + ad + 2.0) * sizeof(float);
  for (long e = 0, ne = mbpo_epochs(c); e < ne; e++) {
    int k = mbpo_rollout_length(c, (int)e);
    long cap = mbpo_model_pool_capacity(c, k);
    double b = (double)cap * row + (cap != prev ? (double)prev * row : 0.0);
    if (b > peak) peak = b, *rows = cap, *at_k = k;
    prev = cap;
  }
  return peak;
}
