/* mbpo_dev.c: the CUDA backend's phases of the MBPO loop (mbpo_dev.h): each run's model state and
 * pools, and the population's agents with the one step graph of all runs, its batched fits and
 * its batched rollouts. */
#include "mbpo_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dx.h"
#include "nn_dev.h"
#include "log.h"
#include "mbpo.h"
#include "model_dev.h"
#include "pool_dev.h"
#include "pool_k.h"
#include "rollout_dev.h"
#include "sac_dev.h"

/* ---- one run: model, pools, rollouts ---- */

struct mbpo_dev {
  dx_ctx* c;
  const mbpo_config* cfg;
  rng_key roll_key;
  model_dev* model;
  pool_dev *real, *mpool;
  float* stage;         /* pinned: an episode's rows on their way to the real pool */
  long stage_rows;
  struct mbpo_pdev* pd; /* the population device holding this run's agent ... */
  int q;                /* ... as its run q */
};

/* ---- the population: P agents and the step graphs ---- */

/* Pinned staging of one step, [P] each: what the graph reads at its start and writes at its end. */
typedef struct step_io {
  uint64_t* env_step;  /* [P] acting counters */
  int* active;         /* [P] 1: the run takes its G updates */
  float* obs;          /* [P][od] */
  float* act;          /* [P][ad] */
  float* stats;        /* [P][SACD_NSTATS] */
} step_io;

struct mbpo_pdev {
  dx_ctx* c;
  int P, od, ad, B, G;
  sac_dev* agent;          /* the P runs' agents */
  modeld_fitter* fitter;   /* the fits of up to P runs' models at once */
  modeld_fit_job* fits;    /* [P] */
  rollout_dev* ro;         /* the rollouts of up to P runs at once */
  rolloutd_job* jobs;      /* [P] */
  struct mbpo_dev** runs;  /* [P] the runs' device sides (their pools) */
  uint64_t *upd, *env;     /* device [P]: update and acting counters */
  int* active;             /* device [P] */
  rng_key* act_keys;       /* device [P]: (seed, RNG_ACT) */
  poolk_batch_src* srcs;     /* device [P]: where each run's minibatch comes from */
  poolk_batch_src* srcs_h;   /* host copy (re-uploaded when a model pool moved) */
  void* io_mem;            /* pinned */
  step_io io;
  float *d_obs, *d_act;    /* device [P][od], [P][ad] */
  float *bobs, *bact, *brew, *bnext, *bdone; /* device minibatches [P][B][...] */
  float* stats;            /* device [P][SACD_NSTATS] */
  dx_graph* g_step;        /* inputs, G updates of the active runs, every run's action, outputs */
  dx_graph* g_act;         /* inputs, every run's action, outputs */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct mbpo_dev* mbpod_create(mbpo_state* s, int kind) {
  const mbpo_config* c = s->c;
  struct mbpo_dev* d = calloc(1, sizeof *d);
  if (!d) mbpo_fatal("out of memory");
  d->c = dx_create(kind);
  d->cfg = c;
  d->roll_key = (rng_key){(uint32_t)c->seed, RNG_ROLLOUT};
  d->model = modeld_create(d->c, s->model, 0); /* fitted by the population's fitter */
  d->real = poold_create(d->c, s->od, s->ad, s->real->cap);
  d->stage_rows = c->max_path_length;
  d->stage = dx_alloc_pinned(d->c, (size_t)d->stage_rows * (size_t)(2 * s->od + s->ad + 2) * sizeof(float));
  poold_upload(d->c, d->real, s->real);
  if (s->mpool) {
    d->mpool = poold_create(d->c, s->od, s->ad, s->mpool->cap);
    poold_upload(d->c, d->mpool, s->mpool);
  } else {
    /* the first model phase sizes it; until then a placeholder keeps the sampling's pointers valid */
    d->mpool = poold_create(d->c, s->od, s->ad, 1);
  }
  dx_sync(d->c);
  return d;
}

void mbpod_free(struct mbpo_dev* d) {
  if (!d) return;
  dx_sync(d->c);
  modeld_free(d->model);
  poold_free(d->c, d->real);
  poold_free(d->c, d->mpool);
  dx_free_pinned(d->c, d->stage);
  dx_destroy(d->c);
  free(d);
}

const char* mbpod_name(const struct mbpo_dev* d) {
  return dx_kind(d->c) == DX_CUDA ? "cuda" : "cuda-emulated (host)";
}

void mbpod_push_real(struct mbpo_dev* d, long n, const float* obs, const float* act, const float* rew,
                     const float* next_obs, const float* done) {
  const pool_dev* R = d->real;
  if (n > d->stage_rows) { /* not an episode: straight from the caller's memory */
    poold_add_host(d->c, d->real, n, obs, act, rew, next_obs, done);
    return;
  }
  /* through pinned memory, so that the copies run asynchronously; the previous episode's copies
   * are long done by now (the wait only keeps the stage from being overwritten early) */
  dx_sync(d->c);
  const size_t od = (size_t)R->obs_dim, ad = (size_t)R->act_dim, m = (size_t)n;
  float *so = d->stage, *sa = so + m * od, *sr = sa + m * ad, *sn = sr + m, *sd = sn + m * od;
  memcpy(so, obs, m * od * sizeof(float));
  memcpy(sa, act, m * ad * sizeof(float));
  memcpy(sr, rew, m * sizeof(float));
  memcpy(sn, next_obs, m * od * sizeof(float));
  memcpy(sd, done, m * sizeof(float));
  poold_add_host(d->c, d->real, n, so, sa, sr, sn, sd);
}

void mbpod_sync(struct mbpo_dev* d) { dx_sync(d->c); }

static sac_dev* agent_of(const struct mbpo_dev* d) {
  if (!d->pd) mbpo_fatal("mbpo_dev: the run has not joined a population device");
  return d->pd->agent;
}

void mbpod_model_pool_size(const struct mbpo_dev* d, long* size, long* cap) {
  *size = d->mpool->size;
  *cap = d->mpool->cap;
}

void mbpod_to_host(struct mbpo_dev* d, mbpo_state* s, int policy_only) {
  sac_dev* agent = agent_of(d);
  if (policy_only) {
    dx_download(agent->c, s->agent->pi_w, sacd_pi_params(agent, d->q), sizeof(float) * s->agent->pi.nparams);
    dx_sync(agent->c);
    return;
  }
  sacd_download_run(agent, d->q, s->agent);
  modeld_download(d->model, s->model);
  if (d->mpool->cap > 1 || s->mpool) {
    if (!s->mpool) s->mpool = pool_create(s->od, s->ad, d->mpool->cap);
    else if (s->mpool->cap != d->mpool->cap) pool_resize(s->mpool, d->mpool->cap);
    poold_download(d->c, d->mpool, s->mpool);
  }
  dx_sync(d->c);
}

/* ---- the population's step ---- */

/* Enqueue: the pinned inputs to the device (acting counters, observations; active flags when
 * updating). */
static void enq_inputs(struct mbpo_pdev* pd, int with_active) {
  const size_t P = (size_t)pd->P;
  if (with_active) dx_upload(pd->c, pd->active, pd->io.active, P * sizeof(int));
  dx_upload(pd->c, pd->env, pd->io.env_step, P * sizeof(uint64_t));
  dx_upload(pd->c, pd->d_obs, pd->io.obs, P * (size_t)pd->od * sizeof(float));
}

/* Enqueue: every run's stochastic action for its observation, and the outputs back to pinned
 * memory. */
static void enq_act_outputs(struct mbpo_pdev* pd, int with_stats) {
  const size_t P = (size_t)pd->P;
  sacd_act_runs(pd->agent, pd->d_obs, 1, 0, pd->act_keys, 0, pd->env, 1, pd->d_act);
  dx_download(pd->c, pd->io.act, pd->d_act, P * (size_t)pd->ad * sizeof(float));
  if (with_stats) dx_download(pd->c, pd->io.stats, pd->stats, P * SACD_NSTATS * sizeof(float));
}

/* Enqueue one SAC update of every active run: its minibatch drawn with its update counter
 * (sac_phase's draws), the update, the counter advanced. */
static void enq_update(struct mbpo_pdev* pd) {
  poold_sample_gather_runs(pd->c, pd->srcs, pd->P, pd->upd, 1, pd->B, pd->od, pd->ad, pd->bobs, pd->bact,
                           pd->brew, pd->bnext, pd->bdone);
  sacd_update_runs(pd->agent, pd->bobs, pd->bact, pd->brew, pd->bnext, pd->bdone, pd->B, pd->upd, 1, pd->active,
                   pd->stats);
  nnd_ctr_add_runs(pd->c, pd->upd, pd->P, 1, pd->active);
}

/* Run q's minibatch sources from its pools as they are now. */
static poolk_batch_src batch_src(const struct mbpo_dev* d, int nreal) {
  const pool_dev *r = d->real, *m = d->mpool;
  poolk_batch_src b;
  memset(&b, 0, sizeof b);
  b.real = (poolk_rows){{r->obs, r->act, r->rew, r->next_obs, r->done}};
  b.model = (poolk_rows){{m->obs, m->act, m->rew, m->next_obs, m->done}};
  b.real_state = r->state;
  b.model_state = m->state;
  b.key = (rng_key){(uint32_t)d->cfg->seed, RNG_SAC_BATCH};
  b.nreal = nreal;
  return b;
}

/* Re-upload the sources when a run's model pool was reallocated (outside any capture). */
static void refresh_sources(struct mbpo_pdev* pd) {
  int dirty = 0;
  for (int q = 0; q < pd->P; q++) {
    poolk_batch_src b = batch_src(pd->runs[q], pd->srcs_h[q].nreal);
    if (memcmp(&b, &pd->srcs_h[q], sizeof b) != 0) pd->srcs_h[q] = b, dirty = 1;
  }
  if (!dirty) return;
  dx_upload(pd->c, pd->srcs, pd->srcs_h, (size_t)pd->P * sizeof *pd->srcs_h);
  dx_sync(pd->c);
}

struct mbpo_pdev* mbpo_pdev_create(mbpo_state* const* runs, int P) {
  if (P < 1 || !runs[0]->dev) mbpo_fatal("mbpo_pdev_create: %d runs without device sides", P);
  const mbpo_state* s0 = runs[0];
  const mbpo_config* c0 = s0->c;
  struct mbpo_pdev* pd = calloc(1, sizeof *pd);
  const sac** hosts = calloc((size_t)P, sizeof *hosts);
  if (!pd || !hosts) mbpo_fatal("out of memory");
  pd->c = dx_create(dx_kind(s0->dev->c));
  pd->P = P;
  pd->od = s0->od;
  pd->ad = s0->ad;
  pd->B = (int)c0->sac_batch;
  pd->G = (int)c0->sac_updates;
  pd->runs = calloc((size_t)P, sizeof *pd->runs);
  pd->srcs_h = dx_alloc_pinned(pd->c, (size_t)P * sizeof *pd->srcs_h);
  rng_key* keys = calloc((size_t)P, sizeof *keys);
  uint64_t* upd = calloc((size_t)P, sizeof *upd);
  if (!pd->runs || !keys || !upd) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) {
    const mbpo_state* s = runs[q];
    if (!s->dev || s->od != pd->od || s->ad != pd->ad || (int)s->c->sac_batch != pd->B ||
        (int)s->c->sac_updates != pd->G)
      mbpo_fatal("mbpo_pdev_create: run %d differs in its shapes or its lockstep from run 0", q);
    hosts[q] = s->agent;
    pd->runs[q] = s->dev;
    s->dev->pd = pd;
    s->dev->q = q;
    keys[q] = (rng_key){(uint32_t)s->c->seed, RNG_ACT};
    upd[q] = s->updates;
    pd->srcs_h[q] = batch_src(s->dev, (int)(s->c->sac_batch * s->c->sac_real_ratio));
  }
  pd->agent = sacd_create_runs(pd->c, hosts, P, 1);
  pd->ro = rolloutd_create_runs(pd->c, &s0->model->net, &s0->agent->pi, pd->od, pd->ad, P, (int)c0->rollout_batch,
                                s0->task->term, ROLLOUTD_CHUNK);
  pd->jobs = calloc((size_t)P, sizeof *pd->jobs);
  pd->fits = calloc((size_t)P, sizeof *pd->fits);
  if (!pd->jobs || !pd->fits) mbpo_fatal("out of memory");
  long max_rows = 1;
  for (int q = 0; q < P; q++)
    if (runs[q]->real->cap > max_rows) max_rows = runs[q]->real->cap;
  pd->fitter = modeld_fitter_create(pd->c, s0->model, P, max_rows);
  const size_t R = (size_t)P, B = R * (size_t)pd->B;
  pd->upd = dx_alloc(pd->c, R * sizeof(uint64_t));
  pd->env = dx_alloc(pd->c, R * sizeof(uint64_t));
  pd->active = dx_alloc(pd->c, R * sizeof(int));
  pd->act_keys = dx_alloc(pd->c, R * sizeof(rng_key));
  pd->srcs = dx_alloc(pd->c, R * sizeof(poolk_batch_src));
  dx_upload(pd->c, pd->upd, upd, R * sizeof(uint64_t));
  dx_upload(pd->c, pd->act_keys, keys, R * sizeof(rng_key));
  dx_upload(pd->c, pd->srcs, pd->srcs_h, R * sizeof(poolk_batch_src));
  /* pinned staging, one block */
  size_t o_env = 0, o_act = o_env + R * sizeof(uint64_t), o_obs = o_act + R * sizeof(int);
  size_t o_a = o_obs + R * (size_t)pd->od * sizeof(float), o_st = o_a + R * (size_t)pd->ad * sizeof(float);
  pd->io_mem = dx_alloc_pinned(pd->c, o_st + R * SACD_NSTATS * sizeof(float));
  char* m = pd->io_mem;
  pd->io = (step_io){(uint64_t*)(m + o_env), (int*)(m + o_act), (float*)(m + o_obs), (float*)(m + o_a),
                     (float*)(m + o_st)};
  pd->d_obs = dx_allocf(pd->c, R * (size_t)pd->od);
  pd->d_act = dx_allocf(pd->c, R * (size_t)pd->ad);
  pd->bobs = dx_allocf(pd->c, B * (size_t)pd->od);
  pd->bact = dx_allocf(pd->c, B * (size_t)pd->ad);
  pd->brew = dx_allocf(pd->c, B);
  pd->bnext = dx_allocf(pd->c, B * (size_t)pd->od);
  pd->bdone = dx_allocf(pd->c, B);
  pd->stats = dx_allocf(pd->c, R * SACD_NSTATS);
  dx_sync(pd->c);
  free(keys);
  free(upd);
  free(hosts);
  /* the graphs, once: every pointer they hold stays (the pools are reached through srcs) */
  dx_capture_begin(pd->c);
  enq_inputs(pd, 0);
  enq_act_outputs(pd, 0);
  pd->g_act = dx_capture_end(pd->c);
  dx_capture_begin(pd->c);
  enq_inputs(pd, 1);
  for (int g = 0; g < pd->G; g++) enq_update(pd);
  enq_act_outputs(pd, 1);
  pd->g_step = dx_capture_end(pd->c);
  return pd;
}

void mbpo_pdev_free(struct mbpo_pdev* pd) {
  if (!pd) return;
  dx_sync(pd->c);
  dx_graph_free(pd->c, pd->g_step);
  dx_graph_free(pd->c, pd->g_act);
  sacd_free(pd->agent);
  rolloutd_free(pd->ro);
  modeld_fitter_free(pd->fitter);
  free(pd->jobs);
  free(pd->fits);
  void* bufs[] = {pd->upd, pd->env, pd->active, pd->act_keys, pd->srcs, pd->d_obs, pd->d_act, pd->bobs,
                  pd->bact, pd->brew, pd->bnext, pd->bdone, pd->stats};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(pd->c, bufs[i]);
  dx_free_pinned(pd->c, pd->io_mem);
  dx_free_pinned(pd->c, pd->srcs_h);
  dx_destroy(pd->c);
  free(pd->runs);
  free(pd);
}

/* The model phase waits for the population, and its fit went well (mbpo_pdev_model). */
static int rolls_out(const mbpo_state* s) {
  return s->mstate == MBPO_MODEL_ROLLOUT && s->phase != MBPO_PHASE_DONE && s->mfit.status != MODEL_NONFINITE;
}

double mbpo_pdev_model(struct mbpo_pdev* pd, mbpo_state* const* runs) {
  double t0 = now_s();
  /* 1. the fits, batched */
  int n = 0;
  for (int q = 0; q < pd->P; q++) {
    mbpo_state* s = runs[q];
    if (s->mstate != MBPO_MODEL_ROLLOUT || s->phase == MBPO_PHASE_DONE) continue;
    const pool_dev* R = s->dev->real;
    modeld_fit_job* j = &pd->fits[n++];
    memset(j, 0, sizeof *j);
    j->m = s->dev->model;
    j->N = (int)R->size;
    j->obs = R->obs;
    j->act = R->act;
    j->rew = R->rew;
    j->next_obs = R->next_obs;
    j->fit_index = s->fits;
  }
  if (!n) return 0;
  modeld_fit_runs(pd->fitter, pd->fits, n);
  for (int q = 0, i = 0; q < pd->P; q++) {
    mbpo_state* s = runs[q];
    if (s->mstate != MBPO_MODEL_ROLLOUT || s->phase == MBPO_PHASE_DONE) continue;
    s->mfit = pd->fits[i++].st;
    memset(&s->mroll, 0, sizeof s->mroll);
    s->mroll_rc = 0;
    /* 2. the model pool sized for this k (the population re-points its sampling) */
    const long cap = mbpo_model_pool_capacity(s->c, s->k);
    if (rolls_out(s) && cap != s->dev->mpool->cap) {
      poold_resize(s->dev->c, s->dev->mpool, cap);
      dx_sync(s->dev->c);
    }
  }
  /* 3. the rollouts, batched */
  n = 0;
  for (int q = 0; q < pd->P; q++) {
    const mbpo_state* s = runs[q];
    if (!rolls_out(s)) continue;
    const struct mbpo_dev* d = s->dev;
    const model_dev* m = d->model;
    rolloutd_job* j = &pd->jobs[n++];
    memset(j, 0, sizeof *j);
    j->m = (rolloutd_model){&m->net, m->params, m->max_lv, m->min_lv, m->norm_mean, m->norm_std, m->elites,
                            m->p.elites};
    j->pi_w = sacd_pi_params(pd->agent, q); /* idle while the runs take their steps */
    j->real = d->real;
    j->model_pool = d->mpool;
    j->k = s->k;
    j->key = d->roll_key;
    j->fit_index = s->fits;
  }
  if (n) rolloutd_run_runs(pd->ro, &pd->agent->pi, pd->jobs, n, (int)runs[0]->c->rollout_batch);
  for (int q = 0, i = 0; q < pd->P && n; q++) {
    mbpo_state* s = runs[q];
    if (!rolls_out(s)) continue;
    s->mroll = pd->jobs[i].st;
    s->mroll_rc = pd->jobs[i].rc;
    i++;
  }
  return now_s() - t0;
}

double mbpo_pdev_step(struct mbpo_pdev* pd, mbpo_state* const* runs) {
  int any = 0, update = 0;
  for (int q = 0; q < pd->P; q++) {
    const mbpo_state* s = runs[q];
    any |= s->want != MBPOD_WANT_NONE;
    update |= s->want == MBPOD_WANT_STEP;
  }
  if (!any) return 0;
  double t0 = now_s();
  if (update) refresh_sources(pd);
  for (int q = 0; q < pd->P; q++) {
    const mbpo_state* s = runs[q];
    pd->io.active[q] = s->want == MBPOD_WANT_STEP;
    pd->io.env_step[q] = s->env_steps;
    memcpy(pd->io.obs + (size_t)q * pd->od, s->obs, sizeof(float) * (size_t)pd->od);
  }
  dx_graph_launch(pd->c, update ? pd->g_step : pd->g_act);
  dx_sync(pd->c);
  for (int q = 0; q < pd->P; q++) {
    mbpo_state* s = runs[q];
    if (s->want == MBPOD_WANT_NONE) continue;
    memcpy(s->next_act, pd->io.act + (size_t)q * pd->ad, sizeof(float) * (size_t)pd->ad);
    if (s->want == MBPOD_WANT_STEP) sacd_stats_to_host(pd->io.stats + (size_t)q * SACD_NSTATS, &s->last);
  }
  return now_s() - t0;
}
