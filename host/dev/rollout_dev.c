/* rollout_dev.c: branched model rollouts on a dx context (rollout_dev.h), for one run or the runs
 * of a population at once: the orchestration of nn_dev.h forwards over the runs, the element ops of
 * kernels/rollout_k.h, the device-side pool appends (pool_dev.h) and dx_select_flagged. The order
 * of the steps follows rollout_run (host/cpu/rollout.c). */
#include "rollout_dev.h"

#include <stdlib.h>
#include <string.h>

#include "nn_dev.h"
#include "log.h"
#include "rollout_k.h"

DX_OP(rolloutk_init, rolloutk_init_args)
DX_OP(rolloutk_iota, rolloutk_iota_args)
DX_OP(rolloutk_act, rolloutk_act_args)
DX_OP(rolloutk_step, rolloutk_step_args)
DX_OP(rolloutk_partial, rolloutk_partial_args)
DX_OP(rolloutk_total, rolloutk_total_args)
DX_OP(rolloutk_counts, rolloutk_counts_args)
DX_OP(rolloutk_compact, rolloutk_compact_args)
DX_OP(rolloutk_finish, rolloutk_finish_args)

struct rollout_dev {
  dx_ctx* c;
  int od, ad, D, in, P, Bmax, term_kind, chunk;
  nn_mlp model_net, pi;      /* the shapes the workspaces were made for */
  /* [P][Bmax] rows of every run; X chunked (rollout_k.h) */
  float *S, *S2, *A, *X;     /* [..][obs], [..][obs], [..][act], [..][in] */
  float *PO, *MO;            /* policy output [P][Bmax][2 act]; model output [P][E][chunk][2 D] */
  float *rew, *done;
  int *pick, *bad, *rows, *sel;
  uint8_t* keep;
  int *count, *next, *off, *total; /* [P] live rows, kept rows, selection offsets; [1] */
  double* part;              /* [P][ROLLOUTK_NSUM][ROLLOUTK_NCH] */
  rolloutk_stats* st;             /* [P] */
  rolloutk_run* tab;              /* [P] the runs' table */
  /* the runs' parameters, copied in: model [P][net nparams], bounds [P][2][D], normaliser
   * [P][2][in], policy [P][pi nparams] */
  float *mw, *bounds, *norm, *piw;
  void* hmem;                /* pinned: the table and the statistics on the host */
  rolloutk_run* tab_h;
  rolloutk_stats* st_h;
  int* order;                /* [P] slot -> job, longest rollout first */
  nnd_cache *pcache, *mcache;
};

static int same_shape(const nn_mlp* a, const nn_mlp* b) {
  if (a->E != b->E || a->nlayers != b->nlayers || a->act != b->act) return 0;
  for (int l = 0; l <= a->nlayers; l++)
    if (a->dims[l] != b->dims[l]) return 0;
  return 1;
}

rollout_dev* rolloutd_create_runs(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                                  int act_dim, int P, int Bmax, int term_kind, int chunk) {
  const int D = obs_dim + 1, in = obs_dim + act_dim;
  if (Bmax < 1 || obs_dim < 1 || act_dim < 1 || P < 1)
    mbpo_fatal("rolloutd_create: Bmax %d, obs %d, act %d, %d runs", Bmax, obs_dim, act_dim, P);
  if ((long)P * Bmax > 0x7fffffffL / 2) mbpo_fatal("rolloutd_create: %d runs of %d rows are too many", P, Bmax);
  if (model_net->dims[0] != in || model_net->dims[model_net->nlayers] != 2 * D)
    mbpo_fatal("rolloutd_create: model %d -> %d for obs %d act %d", model_net->dims[0],
               model_net->dims[model_net->nlayers], obs_dim, act_dim);
  if (pi->E != 1 || pi->dims[0] != obs_dim || pi->dims[pi->nlayers] != 2 * act_dim)
    mbpo_fatal("rolloutd_create: policy of %d members %d -> %d for obs %d act %d", pi->E, pi->dims[0],
               pi->dims[pi->nlayers], obs_dim, act_dim);
  rollout_dev* r = calloc(1, sizeof *r);
  if (r) r->order = calloc((size_t)P, sizeof *r->order);
  if (!r || !r->order) mbpo_fatal("out of memory");
  r->c = c;
  r->od = obs_dim;
  r->ad = act_dim;
  r->D = D;
  r->in = in;
  r->P = P;
  r->Bmax = Bmax;
  r->term_kind = term_kind;
  r->chunk = chunk < 1 || chunk > Bmax ? Bmax : chunk;
  r->model_net = *model_net;
  r->pi = *pi;
  const size_t R = (size_t)P, B = R * (size_t)Bmax;
  r->S = dx_allocf(c, B * obs_dim);
  r->S2 = dx_allocf(c, B * obs_dim);
  r->A = dx_allocf(c, B * act_dim);
  r->X = dx_allocf(c, B * in);
  r->PO = dx_allocf(c, B * 2 * act_dim);
  r->MO = dx_allocf(c, R * (size_t)model_net->E * (size_t)r->chunk * 2 * D);
  r->rew = dx_allocf(c, B);
  r->done = dx_allocf(c, B);
  r->pick = (int*)dx_alloc(c, B * sizeof(int));
  r->bad = (int*)dx_alloc(c, B * sizeof(int));
  r->rows = (int*)dx_alloc(c, B * sizeof(int));
  r->sel = (int*)dx_alloc(c, B * sizeof(int));
  r->keep = (uint8_t*)dx_alloc(c, B);
  r->count = (int*)dx_alloc(c, R * sizeof(int));
  r->next = (int*)dx_alloc(c, R * sizeof(int));
  r->off = (int*)dx_alloc(c, R * sizeof(int));
  r->total = (int*)dx_alloc(c, sizeof(int));
  r->part = (double*)dx_alloc(c, R * ROLLOUTK_NSUM * ROLLOUTK_NCH * sizeof(double));
  r->st = (rolloutk_stats*)dx_alloc(c, R * sizeof(rolloutk_stats));
  r->tab = (rolloutk_run*)dx_alloc(c, R * sizeof(rolloutk_run));
  r->mw = dx_allocf(c, R * model_net->nparams);
  r->bounds = dx_allocf(c, R * 2 * (size_t)D);
  r->norm = dx_allocf(c, R * 2 * (size_t)in);
  r->piw = dx_allocf(c, R * pi->nparams);
  r->hmem = dx_alloc_pinned(c, R * (sizeof(rolloutk_run) + sizeof(rolloutk_stats)));
  r->st_h = (rolloutk_stats*)r->hmem; /* first: the larger alignment */
  r->tab_h = (rolloutk_run*)(r->st_h + R);
  r->pcache = nnd_cache_alloc_fwd(c, pi, P, Bmax);
  r->mcache = nnd_cache_alloc_fwd(c, model_net, P, r->chunk);
  dx_reserve_select(c, (long)B);
  rolloutk_iota_args io = {r->rows};
  DX_RUN(c, rolloutk_iota, io, (long)B);
  dx_sync(c);
  return r;
}

int rolloutd_chunk_rows(const dx_ctx* c, long setting) {
  if (setting > 0 && setting <= (1L << 30)) return (int)setting;
  return dx_kind(c) == DX_CUDA ? ROLLOUTD_CHUNK : ROLLOUTD_CHUNK_HOST;
}

rollout_dev* rolloutd_create(dx_ctx* c, const nn_mlp* model_net, const nn_mlp* pi, int obs_dim,
                             int act_dim, int Bmax, int term_kind) {
  return rolloutd_create_runs(c, model_net, pi, obs_dim, act_dim, 1, Bmax, term_kind, rolloutd_chunk_rows(c, 0));
}

void rolloutd_free(rollout_dev* r) {
  if (!r) return;
  dx_ctx* c = r->c;
  dx_sync(c);
  void* bufs[] = {r->S,    r->S2,   r->A,    r->X,     r->PO,   r->MO,     r->rew,  r->done,
                  r->pick, r->bad,  r->rows, r->sel,   r->keep, r->count,  r->next, r->off,
                  r->total, r->part, r->st,  r->tab,   r->mw,   r->bounds, r->norm, r->piw};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dx_free_pinned(c, r->hmem);
  nnd_cache_free(c, r->pcache);
  nnd_cache_free(c, r->mcache);
  free(r->order);
  free(r);
}

/* The ops of rollout step i for the first n slots (the runs whose length exceeds i), B rows each. */
static void step(rollout_dev* r, const nn_mlp* pi, rolloutd_job* jobs, int n, int B, int i) {
  dx_ctx* c = r->c;
  const int od = r->od, ad = r->ad, in = r->in;
  const uint32_t c_pol = 4u * (uint32_t)i, c_pick = c_pol + 1, c_noise = c_pol + 2;
  nnd_cache_use_runs(r->pcache, n);
  nnd_forward(c, pi, r->piw, B, r->S, 1, r->pcache, r->PO);
  rolloutk_act_args a = {r->PO, r->S, r->A, r->X, r->pick, r->norm, r->count, r->tab, c_pol, c_pick,
                    od, ad, n, B, r->chunk};
  DX_RUN(c, rolloutk_act, a, (long)n * B * ad);
  const nn_mlp* net = &r->model_net;
  nnd_cache_use_runs(r->mcache, n);
  for (int r0 = 0; r0 < B; r0 += r->chunk) {
    const int nc = B - r0 < r->chunk ? B - r0 : r->chunk;
    nnd_forward(c, net, r->mw, nc, r->X + (size_t)r0 * n * in, 1, r->mcache, r->MO);
    rolloutk_step_args s = {r->MO, r->pick, r->S, r->S2, r->rew, r->done, r->keep, r->bad, r->bounds, r->count,
                       r->tab, c_noise, r0, nc, i, od, r->D, net->E, B, r->term_kind};
    DX_RUN(c, rolloutk_step, s, (long)n * nc);
  }
  rolloutk_partial_args pa = {r->rew, r->done, r->bad, r->keep, r->count, r->part, (B + ROLLOUTK_NCH - 1) / ROLLOUTK_NCH,
                         ROLLOUTK_NCH, B};
  DX_RUN(c, rolloutk_partial, pa, (long)n * ROLLOUTK_NCH);
  rolloutk_total_args t = {r->st, r->part, r->count, r->next, ROLLOUTK_NCH, i};
  DX_RUN(c, rolloutk_total, t, n);
  for (int q = 0; q < n; q++) {
    const size_t o = (size_t)q * B;
    poold_append_dev(c, jobs[r->order[q]].model_pool, r->count + q, B, r->S + o * od, r->A + o * ad,
                     r->rew + o, r->S2 + o * od, r->done + o);
  }
  dx_select_flagged(c, r->rows, r->keep, r->sel, r->total, (long)n * B);
  rolloutk_counts_args cn = {r->count, r->off, r->next, n};
  DX_RUN(c, rolloutk_counts, cn, 1);
  rolloutk_compact_args cp = {r->S, r->S2, r->sel, r->count, r->off, od, B};
  DX_RUN(c, rolloutk_compact, cp, (long)n * B * od);
}

/* Check job j against the rollout's shapes. */
static void check_job(const rollout_dev* r, const nn_mlp* pi, const rolloutd_job* j) {
  const rolloutd_model* m = &j->m;
  if (!same_shape(m->net, &r->model_net) || !same_shape(pi, &r->pi))
    mbpo_fatal("rolloutd_run: model or policy shape differs from rolloutd_create's");
  if (m->n_elites < 1 || m->n_elites > MODEL_MAX_ENSEMBLE)
    mbpo_fatal("rolloutd_run: %d elites", m->n_elites);
  for (int e = 0; e < m->n_elites; e++)
    if (m->elites[e] < 0 || m->elites[e] >= m->net->E)
      mbpo_fatal("rolloutd_run: elite %d is not a member of %d", m->elites[e], m->net->E);
  if (j->real->obs_dim != r->od || j->real->act_dim != r->ad || j->model_pool->obs_dim != r->od ||
      j->model_pool->act_dim != r->ad)
    mbpo_fatal("rolloutd_run: pool dimensions differ from the rollout's obs %d act %d", r->od, r->ad);
}

void rolloutd_run_runs(rollout_dev* r, const nn_mlp* pi, rolloutd_job* jobs, int n, int B) {
  dx_ctx* c = r->c;
  if (n < 0 || n > r->P) mbpo_fatal("rolloutd_run_runs: %d runs for a rollout of %d", n, r->P);
  if (dx_capturing(c)) mbpo_fatal("rolloutd_run inside a capture");
  for (int j = 0; j < n; j++) {
    check_job(r, pi, &jobs[j]);
    memset(&jobs[j].st, 0, sizeof jobs[j].st);
    jobs[j].rc = 0;
  }
  if (B > r->Bmax) B = r->Bmax;
  if (B < 1) return;
  /* slots: the runs with steps to run, longest first (stable), so that step i covers a prefix */
  int ns = 0, kmax = 0;
  for (int j = 0; j < n; j++)
    if (jobs[j].k > 0 && jobs[j].real->size > 0) r->order[ns++] = j;
  for (int a = 1; a < ns; a++)
    for (int b = a; b > 0 && jobs[r->order[b]].k > jobs[r->order[b - 1]].k; b--) {
      int t = r->order[b];
      r->order[b] = r->order[b - 1];
      r->order[b - 1] = t;
    }
  if (ns == 0) return;
  /* phase labels: a fault report names the rollout's step (dx.h) */
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "model rollout (%d run%s, %d rows): start states", ns, ns == 1 ? "" : "s", B);
  const nn_mlp* net = &r->model_net;
  const size_t D = (size_t)r->D, in = (size_t)r->in;
  for (int q = 0; q < ns; q++) {
    const rolloutd_job* j = &jobs[r->order[q]];
    rolloutk_run* t = &r->tab_h[q];
    memset(t, 0, sizeof *t);
    t->key = j->key;
    t->c0 = j->fit_index;
    t->k = j->k;
    t->n_elites = j->m.n_elites;
    memcpy(t->elites, j->m.elites, (size_t)j->m.n_elites * sizeof(int));
    t->pool_state = j->model_pool->state;
    if (j->k > kmax) kmax = j->k;
    dx_copy(c, r->mw + (size_t)q * net->nparams, j->m.params, net->nparams * sizeof(float));
    dx_copy(c, r->bounds + (size_t)q * 2 * D, j->m.max_lv, D * sizeof(float));
    dx_copy(c, r->bounds + (size_t)q * 2 * D + D, j->m.min_lv, D * sizeof(float));
    dx_copy(c, r->norm + (size_t)q * 2 * in, j->m.norm_mean, in * sizeof(float));
    dx_copy(c, r->norm + (size_t)q * 2 * in + in, j->m.norm_std, in * sizeof(float));
    dx_copy(c, r->piw + (size_t)q * pi->nparams, j->pi_w, pi->nparams * sizeof(float));
  }
  dx_upload(c, r->tab, r->tab_h, (size_t)ns * sizeof(rolloutk_run));
  rolloutk_init_args init = {r->st, r->count, r->tab, B};
  DX_RUN(c, rolloutk_init, init, ns);
  for (int q = 0; q < ns; q++) {
    const rolloutd_job* j = &jobs[r->order[q]];
    poold_sample_gather_c(c, j->real, j->key, j->fit_index, 3, 0, B, r->S + (size_t)q * B * r->od, NULL,
                          NULL, NULL, NULL);
  }
  for (int i = 0; i < kmax; i++) {
    int n_i = 0; /* the runs whose length exceeds i: a prefix of the slots */
    while (n_i < ns && jobs[r->order[n_i]].k > i) n_i++;
    dx_phase_sub(c, outer, "model rollout (%d run%s, %d rows), step %d of %d", ns, ns == 1 ? "" : "s", B, i + 1, kmax);
    step(r, pi, jobs, n_i, B, i);
  }
  dx_phase_sub(c, outer, "model rollout (%d run%s, %d rows): statistics", ns, ns == 1 ? "" : "s", B);
  rolloutk_finish_args f = {r->st, r->tab};
  DX_RUN(c, rolloutk_finish, f, ns);
  dx_download(c, r->st_h, r->st, (size_t)ns * sizeof(rolloutk_stats));
  dx_sync(c);
  dx_phase(c, "%s", outer);
  for (int q = 0; q < ns; q++) {
    rolloutd_job* j = &jobs[r->order[q]];
    const rolloutk_stats* h = &r->st_h[q];
    j->model_pool->size = (long)h->pool_size;
    j->model_pool->next = (long)h->pool_next;
    j->st.rows_added = (long)h->rows_added;
    j->st.steps_run = (int)h->steps_run;
    if (h->rows_added > 0) {
      j->st.mean_reward = h->rew_sum / (double)h->rows_added;
      j->st.done_frac = h->done_sum / (double)h->rows_added;
    }
    j->rc = h->bad ? -1 : 0;
  }
}

int rolloutd_run(rollout_dev* r, const rolloutd_model* m, const nn_mlp* pi, const float* pi_w,
                 pool_dev* real, pool_dev* model_pool, int B, int k, rng_key key, uint32_t fit_index,
                 rollout_stats* st) {
  rolloutd_job j;
  memset(&j, 0, sizeof j);
  j.m = *m;
  j.pi_w = pi_w;
  j.real = real;
  j.model_pool = model_pool;
  j.k = k;
  j.key = key;
  j.fit_index = fit_index;
  rolloutd_run_runs(r, pi, &j, 1, B);
  *st = j.st;
  return j.rc;
}
