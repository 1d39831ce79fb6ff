/* rollout.c: branched model rollouts on the CPU backend (rollout.h). */
#include "rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "log.h"
#include "termination.h"

static void* xmalloc(size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) mbpo_fatal("out of memory allocating rollout buffers");
  return p;
}

rollout_ctx* rollout_create(const dyn_model* m, int Bmax, int term_kind) {
  rollout_ctx* r = (rollout_ctx*)calloc(1, sizeof *r);
  if (!r) mbpo_fatal("out of memory");
  r->obs_dim = m->obs_dim;
  r->act_dim = m->act_dim;
  r->D = m->D;
  r->in_dim = m->in_dim;
  r->Bmax = Bmax;
  r->term_kind = term_kind;
  size_t B = (size_t)Bmax, od = (size_t)r->obs_dim, ad = (size_t)r->act_dim, D = (size_t)r->D;
  size_t in = (size_t)r->in_dim;
  r->S = (float*)xmalloc(B * od * sizeof(float));
  r->S2 = (float*)xmalloc(B * od * sizeof(float));
  r->A = (float*)xmalloc(B * ad * sizeof(float));
  r->X = (float*)xmalloc(B * in * sizeof(float));
  r->XM = (float*)xmalloc(B * in * sizeof(float));
  r->OM = (float*)xmalloc(B * 2 * D * sizeof(float));
  r->mean = (float*)xmalloc(B * D * sizeof(float));
  r->lv = (float*)xmalloc(B * D * sizeof(float));
  r->rew = (float*)xmalloc(B * sizeof(float));
  r->done = (float*)xmalloc(B * sizeof(float));
  r->idx = (uint32_t*)xmalloc(B * sizeof(uint32_t));
  r->pick = (int*)xmalloc(B * sizeof(int));
  r->rows = (int*)xmalloc(B * sizeof(int));
  r->net1 = nn_mlp_make(1, m->net.nlayers, m->net.dims, m->net.act);
  r->member_w = nn_alloc(r->net1.nparams);
  r->cache = nn_cache_alloc(&r->net1, NN_CHUNK);
  return r;
}

void rollout_free(rollout_ctx* r) {
  if (!r) return;
  free(r->S);
  free(r->S2);
  free(r->A);
  free(r->X);
  free(r->XM);
  free(r->OM);
  free(r->mean);
  free(r->lv);
  free(r->rew);
  free(r->done);
  free(r->idx);
  free(r->pick);
  free(r->rows);
  free(r->member_w);
  nn_cache_free(r->cache);
  free(r);
}

/* Copy member m of the ensemble into the 1-member parameter layout. */
static void copy_member(const dyn_model* md, int m, const nn_mlp* one, float* w1) {
  const nn_mlp* net = &md->net;
  for (int l = 0; l < net->nlayers; l++) {
    size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1];
    memcpy(w1 + one->w_off[l], md->params + net->w_off[l] + (size_t)m * in * out, in * out * sizeof(float));
    memcpy(w1 + one->b_off[l], md->params + net->b_off[l] + (size_t)m * out, out * sizeof(float));
  }
}

/* Rows are grouped by member, gathered, run through that member alone, and scattered back. */
void rollout_predict_picked(rollout_ctx* r, const dyn_model* md, int B) {
  const int in = r->in_dim, D = r->D;
  const int* el;
  int ne;
  el = model_elites(md, &ne);
  for (int e = 0; e < ne; e++) {
    int m = el[e], n = 0;
    for (int b = 0; b < B; b++)
      if (r->pick[b] == m) r->rows[n++] = b;
    if (n == 0) continue;
    for (int j = 0; j < n; j++)
      memcpy(r->XM + (size_t)j * in, r->X + (size_t)r->rows[j] * in, (size_t)in * sizeof(float));
    copy_member(md, m, &r->net1, r->member_w);
    nn_forward_chunked(&r->net1, r->member_w, n, r->XM, 1, r->cache, r->OM);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
      const float* o = r->OM + (size_t)j * 2 * D;
      size_t b = (size_t)r->rows[j];
      for (int d = 0; d < D; d++) {
        r->mean[b * D + d] = o[d];
        r->lv[b * D + d] = model_soft_clamp(o[D + d], md->max_lv[d], md->min_lv[d]);
      }
    }
  }
}

int rollout_run(rollout_ctx* r, dyn_model* m, const sac* agent, const pool* real, pool* model_pool,
                int B, int k, rng_key key, uint32_t fit_index, rollout_stats* st) {
  const int od = r->obs_dim, D = r->D;
  int ne, bad = 0;
  const int* el = model_elites(m, &ne);
  if (B > r->Bmax) B = r->Bmax;
  memset(st, 0, sizeof *st);
  if (real->size < 1 || B < 1) return 0;
  pool_sample_indices(real, key, fit_index, 3, 0, B, r->idx);
  pool_gather(real, r->idx, B, r->S, NULL, NULL, NULL, NULL);
  double rew_sum = 0, done_sum = 0;
  for (int i = 0; i < k && B > 0; i++) {
    uint32_t c_pol = 4u * (uint32_t)i, c_pick = c_pol + 1, c_noise = c_pol + 2;
    sac_act(agent, r->S, B, 0, key, fit_index, c_pol, r->A);
    for (int b = 0; b < B; b++) r->pick[b] = el[rng_index(key, fit_index, c_pick, (uint64_t)b, (uint32_t)ne)];
    model_normalize(m, B, r->S, r->A, r->X);
    rollout_predict_picked(r, m, B);
#pragma omp parallel for schedule(static) reduction(+ : bad)
    for (int b = 0; b < B; b++) {
      const float* mu = r->mean + (size_t)b * D;
      const float* lv = r->lv + (size_t)b * D;
      float y[ENV_MAX_OBS + 1];
      for (int d = 0; d < D; d++)
        y[d] = mu[d] + rng_normal(key, fit_index, c_noise, (uint64_t)b * D + d) * expf(0.5f * lv[d]);
      r->rew[b] = y[0];
      float* s2 = r->S2 + (size_t)b * od;
      const float* s = r->S + (size_t)b * od;
      for (int d = 0; d < od; d++) s2[d] = s[d] + y[1 + d];
      r->done[b] = (float)term_done(r->term_kind, s2, od);
      for (int d = 0; d < D; d++) bad += !isfinite(y[d]);
    }
    pool_add(model_pool, B, r->S, r->A, r->rew, r->S2, r->done);
    st->rows_added += B;
    st->steps_run = i + 1;
    int keep = 0;
    for (int b = 0; b < B; b++) {
      rew_sum += r->rew[b];
      done_sum += r->done[b];
      if (r->done[b] == 0.0f) {
        memcpy(r->S + (size_t)keep * od, r->S2 + (size_t)b * od, (size_t)od * sizeof(float));
        keep++;
      }
    }
    B = keep;
  }
  if (st->rows_added > 0) {
    st->mean_reward = rew_sum / (double)st->rows_added;
    st->done_frac = done_sum / (double)st->rows_added;
  }
  return bad ? -1 : 0;
}
