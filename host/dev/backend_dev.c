/* backend_dev.c: the device backend of the loop (backend_dev.h, mbpo_backend.h): each run's model
 * state and pools, and the population's agents with the one step graph of all runs, its batched
 * fits and its batched rollouts. */
#include "backend_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dx.h"
#include "nn_dev.h"
#include "log.h"
#include "mbpo_run.h"
#include "model_dev.h"
#include "pool_dev.h"
#include "pool_k.h"
#include "rollout_dev.h"
#include "sac_dev.h"

/* ---- one run: model, pools, rollouts ---- */

struct run_dev {
  dx_ctx* c;
  const mbpo_config* cfg;
  rng_key roll_key;
  model_dev* model;
  pool_dev *real, *mpool;
  float* stage;         /* pinned: an episode's rows on their way to the real pool */
  long stage_rows;
  struct dev_backend* pd; /* the backend holding this run's agent ... */
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

struct dev_backend {
  mbpo_backend be;         /* first: the interface */
  dx_ctx* c;
  mbpo_state* const* states; /* [P] the runs */
  int P, od, ad, B, G;
  sac_dev* agent;          /* the P runs' agents */
  modeld_fitter* fitter;   /* the fits of up to P runs' models at once */
  modeld_fit_job* fits;    /* [P] */
  rollout_dev* ro;         /* the rollouts of up to P runs at once */
  rolloutd_job* jobs;      /* [P] */
  int* which;              /* [P] the runs of the rollout batch */
  struct run_dev** runs;  /* [P] the runs' device sides (their pools) */
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

static struct run_dev* run_dev_create(const mbpo_state* s, int kind) {
  const mbpo_config* c = s->c;
  struct run_dev* d = calloc(1, sizeof *d);
  if (!d) mbpo_fatal("out of memory");
  d->c = dx_create(kind);
  d->cfg = c;
  d->roll_key = (rng_key){(uint32_t)c->seed, RNG_ROLLOUT};
  d->model = modeld_create(d->c, s->model, 0); /* fitted by the population's fitter */
  d->real = poold_create(d->c, s->od, s->ad, s->real->cap);
  d->stage_rows = c->max_path_length;
  d->stage = dx_alloc_pinned(d->c, (size_t)d->stage_rows * (size_t)(2 * s->od + s->ad + 2) * sizeof(float));
  dx_phase(d->c, "%sresume or start: host state to the device", s->prefix);
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

static void run_dev_free(struct run_dev* d) {
  if (!d) return;
  dx_sync(d->c);
  modeld_free(d->model);
  poold_free(d->c, d->real);
  poold_free(d->c, d->mpool);
  dx_free_pinned(d->c, d->stage);
  dx_destroy(d->c);
  free(d);
}

const char* backendd_label(int kind) { return kind == DX_CUDA ? "cuda" : "cuda-emulated (host)"; }

static void run_dev_push_real(struct run_dev* d, long n, const float* obs, const float* act, const float* rew,
                              const float* next_obs, const float* done) {
  const pool_dev* R = d->real;
  dx_phase(d->c, "real pool push (%ld rows)", n);
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

static void dev_model_pool(const mbpo_backend* be, int q, long* size, long* cap) {
  const struct dev_backend* pd = (const struct dev_backend*)be;
  const pool_dev* m = pd->runs[q]->mpool;
  int fitted = pd->states[q]->fits > 0; /* until the first fit, a placeholder of one row */
  *size = fitted ? m->size : 0;
  *cap = fitted ? m->cap : 0;
}

static void dev_snapshot(mbpo_backend* be, int q, int policy_only) {
  struct dev_backend* pd = (struct dev_backend*)be;
  struct run_dev* d = pd->runs[q];
  mbpo_state* s = pd->states[q];
  sac_dev* agent = pd->agent;
  dx_phase(agent->c, "%straining epoch %ld: %s to the host", s->prefix, s->epoch,
           policy_only ? "the evaluation's policy snapshot" : "checkpoint: the device state");
  dx_phase(d->c, "%straining epoch %ld: %s to the host", s->prefix, s->epoch,
           policy_only ? "policy" : "checkpoint: the model");
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
static void enq_inputs(struct dev_backend* pd, int with_active) {
  const size_t P = (size_t)pd->P;
  if (with_active) dx_upload(pd->c, pd->active, pd->io.active, P * sizeof(int));
  dx_upload(pd->c, pd->env, pd->io.env_step, P * sizeof(uint64_t));
  dx_upload(pd->c, pd->d_obs, pd->io.obs, P * (size_t)pd->od * sizeof(float));
}

/* Enqueue: every run's stochastic action for its observation, and the outputs back to pinned
 * memory. */
static void enq_act_outputs(struct dev_backend* pd, int with_stats) {
  const size_t P = (size_t)pd->P;
  sacd_act_runs(pd->agent, pd->d_obs, 1, 0, pd->act_keys, 0, pd->env, 1, pd->d_act);
  dx_download(pd->c, pd->io.act, pd->d_act, P * (size_t)pd->ad * sizeof(float));
  if (with_stats) dx_download(pd->c, pd->io.stats, pd->stats, P * SACD_NSTATS * sizeof(float));
}

/* Enqueue one SAC update of every active run: its minibatch drawn with its update counter
 * (sac_phase's draws), the update, the counter advanced. */
static void enq_update(struct dev_backend* pd) {
  poold_sample_gather_runs(pd->c, pd->srcs, pd->P, pd->upd, 1, pd->B, pd->od, pd->ad, pd->bobs, pd->bact,
                           pd->brew, pd->bnext, pd->bdone);
  sacd_update_runs_advance(pd->agent, pd->bobs, pd->bact, pd->brew, pd->bnext, pd->bdone, pd->B, pd->upd, 1,
                           pd->active, pd->stats); /* the counter advanced inside */
}

/* Run q's minibatch sources from its pools as they are now. */
static poolk_batch_src batch_src(const struct run_dev* d, int nreal) {
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
static void refresh_sources(struct dev_backend* pd) {
  int dirty = 0;
  for (int q = 0; q < pd->P; q++) {
    poolk_batch_src b = batch_src(pd->runs[q], pd->srcs_h[q].nreal);
    if (memcmp(&b, &pd->srcs_h[q], sizeof b) != 0) pd->srcs_h[q] = b, dirty = 1;
  }
  if (!dirty) return;
  dx_upload(pd->c, pd->srcs, pd->srcs_h, (size_t)pd->P * sizeof *pd->srcs_h);
  dx_sync(pd->c);
}

/* The population's part: one P-run agent from the runs' host agents, the counters from their
 * states, the fit and rollout workspaces, the step graphs. The runs' own parts exist. */
static void pdev_create(struct dev_backend* pd, mbpo_state* const* runs, int P, int kind) {
  const mbpo_state* s0 = runs[0];
  const mbpo_config* c0 = s0->c;
  const sac** hosts = calloc((size_t)P, sizeof *hosts);
  if (!hosts) mbpo_fatal("out of memory");
  pd->c = dx_create(kind);
  pd->P = P;
  pd->od = s0->od;
  pd->ad = s0->ad;
  pd->B = (int)c0->sac_batch;
  pd->G = (int)c0->sac_updates;
  pd->srcs_h = dx_alloc_pinned(pd->c, (size_t)P * sizeof *pd->srcs_h);
  rng_key* keys = calloc((size_t)P, sizeof *keys);
  uint64_t* upd = calloc((size_t)P, sizeof *upd);
  if (!keys || !upd) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) {
    const mbpo_state* s = runs[q];
    if (s->od != pd->od || s->ad != pd->ad || (int)s->c->sac_batch != pd->B || (int)s->c->sac_updates != pd->G)
      mbpo_fatal("device backend: run %d differs in its shapes or its lockstep from run 0", q);
    hosts[q] = s->agent;
    pd->runs[q]->pd = pd;
    pd->runs[q]->q = q;
    keys[q] = (rng_key){(uint32_t)s->c->seed, RNG_ACT};
    upd[q] = s->updates;
    pd->srcs_h[q] = batch_src(pd->runs[q], (int)(s->c->sac_batch * s->c->sac_real_ratio));
  }
  pd->agent = sacd_create_runs(pd->c, hosts, P, 1);
  pd->ro = rolloutd_create_runs(pd->c, &s0->model->net, &s0->agent->pi, pd->od, pd->ad, P, (int)c0->rollout_batch,
                                s0->task->term, rolloutd_chunk_rows(pd->c, c0->rollout_chunk_rows));
  pd->jobs = calloc((size_t)P, sizeof *pd->jobs);
  pd->fits = calloc((size_t)P, sizeof *pd->fits);
  if (!pd->jobs || !pd->fits) mbpo_fatal("out of memory");
  /* the fitter's row capacity: what a real pool can hold within the run's env steps, exploration
   * and whole epochs (a fitter's workspaces and graphs are sized by it; dev_model makes a larger
   * one should a pool outgrow it) */
  long max_rows = 1;
  for (int q = 0; q < P; q++) {
    const mbpo_config* cq = runs[q]->c;
    const long steps = cq->init_steps + mbpo_epochs(cq) * cq->epoch_length;
    const long rows = runs[q]->real->cap < steps ? runs[q]->real->cap : steps;
    if (rows > max_rows) max_rows = rows;
  }
  const char* tr = getenv("MBPO_TEST_FIT_ROWS"); /* test hook: a fitter too small, to make dev_model grow it */
  if (tr && atol(tr) > 0) max_rows = atol(tr);
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
  dx_phase(pd->c, "env step graph (P = %d runs, acting only)", pd->P);
  dx_capture_begin(pd->c);
  enq_inputs(pd, 0);
  enq_act_outputs(pd, 0);
  pd->g_act = dx_capture_end(pd->c);
  dx_phase(pd->c, "env step graph (P = %d runs, %d SAC updates each)", pd->P, pd->G);
  dx_capture_begin(pd->c);
  enq_inputs(pd, 1);
  for (int g = 0; g < pd->G; g++) enq_update(pd);
  enq_act_outputs(pd, 1);
  pd->g_step = dx_capture_end(pd->c);
}

static void dev_close(mbpo_backend* be) {
  struct dev_backend* pd = (struct dev_backend*)be;
  for (int q = 0; q < pd->P; q++) run_dev_free(pd->runs[q]); /* their contexts first, as they were made */
  dx_sync(pd->c);
  dx_graph_free(pd->c, pd->g_step);
  dx_graph_free(pd->c, pd->g_act);
  sacd_free(pd->agent);
  rolloutd_free(pd->ro);
  modeld_fitter_free(pd->fitter);
  free(pd->jobs);
  free(pd->fits);
  free(pd->which);
  void* bufs[] = {pd->upd, pd->env, pd->active, pd->act_keys, pd->srcs, pd->d_obs, pd->d_act, pd->bobs,
                  pd->bact, pd->brew, pd->bnext, pd->bdone, pd->stats};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(pd->c, bufs[i]);
  dx_free_pinned(pd->c, pd->io_mem);
  dx_free_pinned(pd->c, pd->srcs_h);
  dx_destroy(pd->c);
  free(pd->runs);
  free(pd);
}

static void dev_push_real(mbpo_backend* be, int q, long n, const float* obs, const float* act, const float* rew,
                          const float* next_obs, const float* done) {
  run_dev_push_real(((struct dev_backend*)be)->runs[q], n, obs, act, rew, next_obs, done);
}

static void dev_model(mbpo_backend* be, const int* which, int n) {
  struct dev_backend* pd = (struct dev_backend*)be;
  if (n < 1) return;
  /* 1. the fits, batched (each run's real rows are on the device once its own stream is idle) */
  for (int i = 0; i < n; i++) {
    const int q = which[i];
    const struct run_dev* d = pd->runs[q];
    const pool_dev* R = d->real;
    dx_sync(d->c);
    modeld_fit_job* j = &pd->fits[i];
    memset(j, 0, sizeof *j);
    j->m = d->model;
    j->N = (int)R->size;
    j->obs = R->obs;
    j->act = R->act;
    j->rew = R->rew;
    j->next_obs = R->next_obs;
    j->fit_index = pd->states[q]->fits;
  }
  long rows = 0;
  for (int i = 0; i < n; i++) rows = pd->fits[i].N > rows ? pd->fits[i].N : rows;
  if (rows > modeld_fitter_rows(pd->fitter)) { /* a resumed run with more steps than at its start */
    long cap = 2 * modeld_fitter_rows(pd->fitter), most = rows; /* doubling, within the pools */
    for (int q = 0; q < pd->P; q++) most = pd->states[q]->real->cap > most ? pd->states[q]->real->cap : most;
    cap = cap > most ? most : cap < rows ? rows : cap;
    modeld_fitter_free(pd->fitter);
    pd->fitter = modeld_fitter_create(pd->c, pd->states[which[0]]->model, pd->P, cap);
  }
  const mbpo_state* s0 = pd->states[which[0]];
  /* the fit and the rollout add their own labels after this one */
  dx_phase(pd->c, "training epoch %ld, env step %llu", s0->epoch, (unsigned long long)s0->env_steps);
  modeld_fit_runs(pd->fitter, pd->fits, n);
  /* 2. each model pool sized for its k (the step re-points its sampling); a run whose fit turned
   *    non-finite is not rolled out */
  int nr = 0;
  for (int i = 0; i < n; i++) {
    const int q = which[i];
    mbpo_state* s = pd->states[q];
    struct run_dev* d = pd->runs[q];
    s->mfit = pd->fits[i].st;
    memset(&s->mroll, 0, sizeof s->mroll);
    s->mroll_rc = 0;
    if (s->mfit.status == MODEL_NONFINITE) continue;
    const long cap = mbpo_model_pool_capacity(s->c, s->k);
    if (cap != d->mpool->cap) {
      dx_phase(d->c, "%straining epoch %ld: model pool resize to %ld rows", s->prefix, s->epoch, cap);
      poold_resize(d->c, d->mpool, cap);
      dx_sync(d->c);
    }
    const model_dev* m = d->model;
    rolloutd_job* j = &pd->jobs[nr];
    memset(j, 0, sizeof *j);
    j->m = (rolloutd_model){&m->net, m->params, m->max_lv, m->min_lv, m->norm_mean, m->norm_std, m->elites,
                            m->p.elites};
    j->pi_w = sacd_pi_params(pd->agent, q); /* idle while the runs take their steps */
    j->real = d->real;
    j->model_pool = d->mpool;
    j->k = s->k;
    j->key = d->roll_key;
    j->fit_index = s->fits;
    pd->which[nr++] = q;
  }
  /* 3. the rollouts, batched */
  if (!nr) return;
  dx_phase(pd->c, "training epoch %ld, env step %llu", s0->epoch, (unsigned long long)s0->env_steps);
  rolloutd_run_runs(pd->ro, &pd->agent->pi, pd->jobs, nr, (int)pd->states[0]->c->rollout_batch);
  for (int i = 0; i < nr; i++) {
    mbpo_state* s = pd->states[pd->which[i]];
    s->mroll = pd->jobs[i].st;
    s->mroll_rc = pd->jobs[i].rc;
  }
}

static void dev_step(mbpo_backend* be) {
  struct dev_backend* pd = (struct dev_backend*)be;
  mbpo_state* const* runs = pd->states;
  int any = 0, update = 0;
  for (int q = 0; q < pd->P; q++) {
    const mbpo_state* s = runs[q];
    if (s->want == MBPO_WANT_NONE) continue;
    any = 1;
    update |= s->want == MBPO_WANT_STEP;
    dx_sync(pd->runs[q]->c); /* its real rows are on the device before the step samples them */
  }
  if (!any) return;
  if (update) refresh_sources(pd);
  for (int q = 0; q < pd->P; q++) {
    const mbpo_state* s = runs[q];
    pd->io.active[q] = s->want == MBPO_WANT_STEP;
    pd->io.env_step[q] = s->env_steps;
    memcpy(pd->io.obs + (size_t)q * pd->od, s->obs, sizeof(float) * (size_t)pd->od);
  }
  dx_phase(pd->c, "env step %llu of run 0: %s", (unsigned long long)runs[0]->env_steps,
           update ? "SAC updates and the next actions" : "the next actions");
  dx_graph_launch(pd->c, update ? pd->g_step : pd->g_act);
  dx_sync(pd->c);
  for (int q = 0; q < pd->P; q++) {
    mbpo_state* s = runs[q];
    if (s->want == MBPO_WANT_NONE) continue;
    memcpy(s->next_act, pd->io.act + (size_t)q * pd->ad, sizeof(float) * (size_t)pd->ad);
    if (s->want == MBPO_WANT_STEP) sacd_stats_to_host(pd->io.stats + (size_t)q * SACD_NSTATS, &s->last);
  }
}

mbpo_backend* backendd_open(mbpo_state* const* runs, int P, int kind) {
  if (P < 1) mbpo_fatal("device backend: no runs");
  struct dev_backend* pd = calloc(1, sizeof *pd);
  if (!pd) mbpo_fatal("out of memory");
  pd->be = (mbpo_backend){backendd_label(kind), dev_push_real, dev_model, dev_step, dev_snapshot, dev_model_pool,
                          dev_close};
  pd->states = runs;
  pd->runs = calloc((size_t)P, sizeof *pd->runs);
  pd->which = calloc((size_t)P, sizeof *pd->which);
  if (!pd->runs || !pd->which) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) pd->runs[q] = run_dev_create(runs[q], kind);
  pdev_create(pd, runs, P, kind);
  return &pd->be;
}
