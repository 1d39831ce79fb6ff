/* rollout_dev.c: branched model rollouts on a dx context (rollout_dev.h): the orchestration of
 * dxn forwards, the element ops of kernels/rollout_k.h, the device-side pool append (pool_dev.h)
 * and dx_select_flagged. The order of the steps follows rollout_run (host/rollout.c). */
#include "rollout_dev.h"

#include <stdlib.h>
#include <string.h>

#include "dxn.h"
#include "log.h"
#include "rollout_k.h"

DX_OP(rdk_init, rdk_init_args)
DX_OP(rdk_iota, rdk_iota_args)
DX_OP(rdk_act, rdk_act_args)
DX_OP(rdk_step, rdk_step_args)
DX_OP(rdk_partial, rdk_partial_args)
DX_OP(rdk_total, rdk_total_args)
DX_OP(rdk_compact, rdk_compact_args)
DX_OP(rdk_finish, rdk_finish_args)

struct rollout_dev {
  dx_ctx* c;
  int od, ad, D, in, Bmax, term_kind, chunk;
  nn_mlp model_net, pi;      /* the shapes the workspaces were made for */
  float *S, *S2, *A, *X;     /* [Bmax][obs], [Bmax][obs], [Bmax][act], [Bmax][in] */
  float *PO, *MO;            /* policy output [Bmax][2 act]; model output [E][chunk][2 D] */
  float *rew, *done;         /* [Bmax] */
  int *pick, *bad, *rows, *sel;
  uint8_t* keep;             /* [Bmax] */
  int* count;                /* [1] live rows */
  double* part;              /* [3][RDK_NCH] */
  rdk_stats* st;             /* [1] */
  dxn_cache *pcache, *mcache;
};

static int same_shape(const nn_mlp* a, const nn_mlp* b) {
  if (a->E != b->E || a->nlayers != b->nlayers || a->act != b->act) return 0;
  for (int l = 0; l <= a->nlayers; l++)
    if (a->dims[l] != b->dims[l]) return 0;
  return 1;
}

rollout_dev* rolloutd_create_chunked(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                                     int act_dim, int Bmax, int term_kind, int chunk) {
  const int D = obs_dim + 1, in = obs_dim + act_dim;
  if (Bmax < 1 || obs_dim < 1 || act_dim < 1) mbpo_fatal("rolloutd_create: Bmax %d, obs %d, act %d", Bmax, obs_dim, act_dim);
  if (model_net->dims[0] != in || model_net->dims[model_net->nlayers] != 2 * D)
    mbpo_fatal("rolloutd_create: model %d -> %d for obs %d act %d", model_net->dims[0],
               model_net->dims[model_net->nlayers], obs_dim, act_dim);
  if (pi->E != 1 || pi->dims[0] != obs_dim || pi->dims[pi->nlayers] != 2 * act_dim)
    mbpo_fatal("rolloutd_create: policy of %d members %d -> %d for obs %d act %d", pi->E, pi->dims[0],
               pi->dims[pi->nlayers], obs_dim, act_dim);
  rollout_dev* r = calloc(1, sizeof *r);
  if (!r) mbpo_fatal("out of memory");
  r->c = c;
  r->od = obs_dim;
  r->ad = act_dim;
  r->D = D;
  r->in = in;
  r->Bmax = Bmax;
  r->term_kind = term_kind;
  r->chunk = chunk < 1 || chunk > Bmax ? Bmax : chunk;
  r->model_net = *model_net;
  r->pi = *pi;
  size_t B = (size_t)Bmax;
  r->S = dx_allocf(c, B * obs_dim);
  r->S2 = dx_allocf(c, B * obs_dim);
  r->A = dx_allocf(c, B * act_dim);
  r->X = dx_allocf(c, B * in);
  r->PO = dx_allocf(c, B * 2 * act_dim);
  r->MO = dx_allocf(c, (size_t)model_net->E * (size_t)r->chunk * 2 * D);
  r->rew = dx_allocf(c, B);
  r->done = dx_allocf(c, B);
  r->pick = (int*)dx_alloc(c, B * sizeof(int));
  r->bad = (int*)dx_alloc(c, B * sizeof(int));
  r->rows = (int*)dx_alloc(c, B * sizeof(int));
  r->sel = (int*)dx_alloc(c, B * sizeof(int));
  r->keep = (uint8_t*)dx_alloc(c, B);
  r->count = (int*)dx_alloc(c, sizeof(int));
  r->part = (double*)dx_alloc(c, 3 * RDK_NCH * sizeof(double));
  r->st = (rdk_stats*)dx_alloc(c, sizeof(rdk_stats));
  r->pcache = dxn_cache_alloc(c, pi, Bmax);
  r->mcache = dxn_cache_alloc(c, model_net, r->chunk);
  dx_reserve_select(c, Bmax);
  rdk_iota_args io = {r->rows};
  DX_RUN(c, rdk_iota, io, Bmax);
  dx_sync(c);
  return r;
}

rollout_dev* rolloutd_create(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                             int act_dim, int Bmax, int term_kind) {
  return rolloutd_create_chunked(c, model_net, pi, obs_dim, act_dim, Bmax, term_kind, ROLLOUTD_CHUNK);
}

void rolloutd_free(rollout_dev* r) {
  if (!r) return;
  dx_ctx* c = r->c;
  dx_sync(c);
  void* bufs[] = {r->S, r->S2, r->A, r->X, r->PO, r->MO, r->rew, r->done, r->pick, r->bad,
                  r->rows, r->sel, r->keep, r->count, r->part, r->st};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dxn_cache_free(c, r->pcache);
  dxn_cache_free(c, r->mcache);
  free(r);
}

/* The ops of rollout step i for B0 launched rows. */
static void step(rollout_dev* r, const rolloutd_model* m, const nn_mlp* pi, const float* pi_w,
                 pool_dev* mp, int B0, int i, rng_key key, uint32_t fit) {
  dx_ctx* c = r->c;
  const uint32_t c_pol = 4u * (uint32_t)i, c_pick = c_pol + 1, c_noise = c_pol + 2;
  dxn_forward(c, pi, pi_w, B0, r->S, 1, r->pcache, r->PO);
  rdk_act_args a;
  memset(&a, 0, sizeof a);
  a.po = r->PO, a.S = r->S, a.A = r->A, a.X = r->X, a.pick = r->pick;
  a.mean = m->norm_mean, a.sd = m->norm_std, a.count = r->count;
  a.key = key, a.c0 = fit, a.c_pol = c_pol, a.c_pick = c_pick;
  a.od = r->od, a.ad = r->ad, a.n_elites = m->n_elites;
  memcpy(a.elites, m->elites, (size_t)m->n_elites * sizeof(int));
  DX_RUN(c, rdk_act, a, (long)B0 * r->ad);
  for (int r0 = 0; r0 < B0; r0 += r->chunk) {
    const int n = B0 - r0 < r->chunk ? B0 - r0 : r->chunk;
    dxn_forward(c, m->net, m->params, n, r->X + (size_t)r0 * r->in, 1, r->mcache, r->MO);
    rdk_step_args s = {r->MO, r->pick, r->S, r->S2, r->rew, r->done, r->keep, r->bad, m->max_lv,
                       m->min_lv, r->count, key, fit, c_noise, r0, n, r->od, r->D, r->term_kind};
    DX_RUN(c, rdk_step, s, n);
  }
  rdk_partial_args pa = {r->rew, r->done, r->bad, r->count, r->part, (B0 + RDK_NCH - 1) / RDK_NCH, RDK_NCH};
  DX_RUN(c, rdk_partial, pa, RDK_NCH);
  rdk_total_args t = {r->st, r->part, r->count, RDK_NCH, i};
  DX_RUN(c, rdk_total, t, 1);
  poold_append_dev(c, mp, r->count, B0, r->S, r->A, r->rew, r->S2, r->done);
  dx_select_flagged(c, r->rows, r->keep, r->sel, r->count, B0);
  rdk_compact_args cp = {r->S, r->S2, r->sel, r->count, r->od};
  DX_RUN(c, rdk_compact, cp, (long)B0 * r->od);
}

int rolloutd_run(rollout_dev* r, const rolloutd_model* m, const nn_mlp* pi, const float* pi_w,
                 pool_dev* real, pool_dev* model_pool, int B, int k, rng_key key, uint32_t fit_index,
                 rollout_stats* st) {
  dx_ctx* c = r->c;
  memset(st, 0, sizeof *st);
  if (!same_shape(m->net, &r->model_net) || !same_shape(pi, &r->pi))
    mbpo_fatal("rolloutd_run: model or policy shape differs from rolloutd_create's");
  if (m->n_elites < 1 || m->n_elites > MODEL_MAX_ENSEMBLE)
    mbpo_fatal("rolloutd_run: %d elites", m->n_elites);
  for (int e = 0; e < m->n_elites; e++)
    if (m->elites[e] < 0 || m->elites[e] >= m->net->E)
      mbpo_fatal("rolloutd_run: elite %d is not a member of %d", m->elites[e], m->net->E);
  if (real->obs_dim != r->od || real->act_dim != r->ad || model_pool->obs_dim != r->od ||
      model_pool->act_dim != r->ad)
    mbpo_fatal("rolloutd_run: pool dimensions differ from the rollout's obs %d act %d", r->od, r->ad);
  if (dx_capturing(c)) mbpo_fatal("rolloutd_run inside a capture");
  if (B > r->Bmax) B = r->Bmax;
  if (real->size < 1 || B < 1 || k < 1) return 0;
  rdk_init_args in = {r->st, r->count, B};
  DX_RUN(c, rdk_init, in, 1);
  poold_sample_gather_c(c, real, key, fit_index, 3, 0, B, r->S, NULL, NULL, NULL, NULL);
  for (int i = 0; i < k; i++) step(r, m, pi, pi_w, model_pool, B, i, key, fit_index);
  rdk_finish_args f = {r->st, model_pool->state};
  DX_RUN(c, rdk_finish, f, 1);
  rdk_stats h;
  dx_download(c, &h, r->st, sizeof h);
  dx_sync(c);
  model_pool->size = (long)h.pool_size;
  model_pool->next = (long)h.pool_next;
  st->rows_added = (long)h.rows_added;
  st->steps_run = (int)h.steps_run;
  if (h.rows_added > 0) {
    st->mean_reward = h.rew_sum / (double)h.rows_added;
    st->done_frac = h.done_sum / (double)h.rows_added;
  }
  return h.bad ? -1 : 0;
}
