/* mbpo_dev.c: the CUDA backend's phases of the MBPO loop (mbpo_dev.h). */
#include "mbpo_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dx.h"
#include "dxn.h"
#include "log.h"
#include "model_dev.h"
#include "pool_dev.h"
#include "rollout_dev.h"
#include "sac_dev.h"

/* Counters on the device, advanced by the graphs. */
enum { CTR_UPDATES = 0, CTR_ENV_STEP = 1, CTR_N };

/* Pinned staging of one step: what the graph reads at its start and writes at its end. */
typedef struct step_io {
  uint64_t env_step;
  float obs[ENV_MAX_OBS];
  float act[ENV_MAX_ACT];
  float stats[SACD_NSTATS];
} step_io;

struct mbpo_dev {
  dx_ctx* c;
  const mbpo_config* cfg;
  int od, ad, B, nreal, nmodel, G;
  rng_key batch_key, act_key, roll_key;
  sac_dev* agent;
  model_dev* model;
  pool_dev *real, *mpool;
  rollout_dev* ro;
  uint64_t* ctr;            /* device [CTR_N] */
  step_io* io;              /* pinned */
  float *d_obs, *d_act;     /* device obs [1][od] and action [1][ad] of the step */
  float *bobs, *bact, *brew, *bnext, *bdone; /* device minibatch */
  float* stats;             /* device [SACD_NSTATS] */
  dx_graph* g_step;         /* inputs, G updates, act, outputs */
  dx_graph* g_act;          /* inputs, act, outputs */
  const float* g_mpool_obs; /* the model pool's buffer when g_step was captured */
};

/* Enqueue: pinned obs and acting counter to the device. */
static void enq_inputs(struct mbpo_dev* d) {
  dx_upload(d->c, d->d_obs, d->io->obs, sizeof(float) * (size_t)d->od);
  dx_upload(d->c, &d->ctr[CTR_ENV_STEP], &d->io->env_step, sizeof(uint64_t));
}

/* Enqueue: the stochastic action for the device obs, and the outputs back to pinned memory. */
static void enq_act_outputs(struct mbpo_dev* d) {
  sacd_act(d->agent, d->d_obs, 1, 0, d->act_key, 0, &d->ctr[CTR_ENV_STEP], d->d_act);
  dx_download(d->c, d->io->act, d->d_act, sizeof(float) * (size_t)d->ad);
  dx_download(d->c, d->io->stats, d->stats, sizeof(float) * SACD_NSTATS);
}

/* Enqueue one SAC update: minibatch of nreal real + nmodel model rows drawn with the update
 * counter (pool_sample_indices' convention), the update, the counter advanced. */
static void enq_update(struct mbpo_dev* d) {
  const uint64_t* u = &d->ctr[CTR_UPDATES];
  poold_sample_gather(d->c, d->real, d->batch_key, u, 0, d->nreal, d->bobs, d->bact, d->brew, d->bnext,
                      d->bdone);
  if (d->nmodel > 0)
    poold_sample_gather(d->c, d->mpool, d->batch_key, u, (uint64_t)d->nreal, d->nmodel,
                        d->bobs + (size_t)d->nreal * d->od, d->bact + (size_t)d->nreal * d->ad,
                        d->brew + d->nreal, d->bnext + (size_t)d->nreal * d->od, d->bdone + d->nreal);
  sacd_update(d->agent, d->bobs, d->bact, d->brew, d->bnext, d->bdone, d->B, u, d->stats);
  dxn_ctr_add(d->c, &d->ctr[CTR_UPDATES], 1);
}

static void capture_graphs(struct mbpo_dev* d) {
  dx_graph_free(d->c, d->g_step);
  dx_graph_free(d->c, d->g_act);
  dx_capture_begin(d->c);
  enq_inputs(d);
  enq_act_outputs(d);
  d->g_act = dx_capture_end(d->c);
  dx_capture_begin(d->c);
  for (int g = 0; g < d->G; g++) enq_update(d);
  enq_inputs(d);
  enq_act_outputs(d);
  d->g_step = dx_capture_end(d->c);
  d->g_mpool_obs = d->mpool ? d->mpool->obs : NULL;
}

/* Re-capture when the model pool was reallocated (its pointers are frozen in the graph). */
static void ensure_graphs(struct mbpo_dev* d) {
  if (!d->g_step || (d->mpool ? d->mpool->obs : NULL) != d->g_mpool_obs) capture_graphs(d);
}

struct mbpo_dev* mbpod_create(mbpo_state* s, int kind) {
  const mbpo_config* c = s->c;
  struct mbpo_dev* d = calloc(1, sizeof *d);
  if (!d) mbpo_fatal("out of memory");
  d->c = dx_create(kind);
  d->cfg = c;
  d->od = s->od;
  d->ad = s->ad;
  d->B = (int)c->sac_batch;
  d->nreal = (int)(c->sac_batch * c->sac_real_ratio);
  d->nmodel = d->B - d->nreal;
  d->G = (int)c->sac_updates;
  uint32_t seed = (uint32_t)c->seed;
  d->batch_key = (rng_key){seed, RNG_SAC_BATCH};
  d->act_key = (rng_key){seed, RNG_ACT};
  d->roll_key = (rng_key){seed, RNG_ROLLOUT};
  d->agent = sacd_create(d->c, s->agent, 1);
  d->model = modeld_create(d->c, s->model, c->real_pool_size);
  d->real = poold_create(d->c, s->od, s->ad, s->real->cap);
  poold_upload(d->c, d->real, s->real);
  if (s->mpool) {
    d->mpool = poold_create(d->c, s->od, s->ad, s->mpool->cap);
    poold_upload(d->c, d->mpool, s->mpool);
  } else {
    /* the first model phase sizes it; until then a placeholder keeps the graphs' pointers valid */
    d->mpool = poold_create(d->c, s->od, s->ad, 1);
  }
  d->ro = rolloutd_create(d->c, &s->model->net, &s->agent->pi, s->od, s->ad, (int)c->rollout_batch,
                          s->task->term);
  d->ctr = dx_alloc(d->c, CTR_N * sizeof(uint64_t));
  d->io = dx_alloc_pinned(d->c, sizeof *d->io);
  d->d_obs = dx_allocf(d->c, (size_t)s->od);
  d->d_act = dx_allocf(d->c, (size_t)s->ad);
  size_t B = (size_t)d->B;
  d->bobs = dx_allocf(d->c, B * (size_t)s->od);
  d->bact = dx_allocf(d->c, B * (size_t)s->ad);
  d->brew = dx_allocf(d->c, B);
  d->bnext = dx_allocf(d->c, B * (size_t)s->od);
  d->bdone = dx_allocf(d->c, B);
  d->stats = dx_allocf(d->c, SACD_NSTATS);
  uint64_t ctr[CTR_N] = {s->updates, s->env_steps};
  dx_upload(d->c, d->ctr, ctr, sizeof ctr);
  dx_sync(d->c);
  return d;
}

void mbpod_free(struct mbpo_dev* d) {
  if (!d) return;
  dx_sync(d->c);
  dx_graph_free(d->c, d->g_step);
  dx_graph_free(d->c, d->g_act);
  sacd_free(d->agent);
  modeld_free(d->model);
  poold_free(d->c, d->real);
  poold_free(d->c, d->mpool);
  rolloutd_free(d->ro);
  dx_free(d->c, d->ctr);
  dx_free_pinned(d->c, d->io);
  dx_free(d->c, d->d_obs);
  dx_free(d->c, d->d_act);
  dx_free(d->c, d->bobs);
  dx_free(d->c, d->bact);
  dx_free(d->c, d->brew);
  dx_free(d->c, d->bnext);
  dx_free(d->c, d->bdone);
  dx_free(d->c, d->stats);
  dx_destroy(d->c);
  free(d);
}

const char* mbpod_name(const struct mbpo_dev* d) {
  return dx_kind(d->c) == DX_CUDA ? "cuda" : "cuda-emulated (host)";
}

void mbpod_push_real(struct mbpo_dev* d, long n, const float* obs, const float* act, const float* rew,
                     const float* next_obs, const float* done) {
  poold_add_host(d->c, d->real, n, obs, act, rew, next_obs, done);
}

void mbpod_act(struct mbpo_dev* d, const float* obs, uint64_t env_step, float* a) {
  ensure_graphs(d);
  memcpy(d->io->obs, obs, sizeof(float) * (size_t)d->od);
  d->io->env_step = env_step;
  dx_graph_launch(d->c, d->g_act);
  dx_sync(d->c);
  memcpy(a, d->io->act, sizeof(float) * (size_t)d->ad);
}

int mbpod_updates_and_act(struct mbpo_dev* d, const float* next_obs, uint64_t env_step, float* a,
                          sac_stats* last) {
  ensure_graphs(d);
  memcpy(d->io->obs, next_obs, sizeof(float) * (size_t)d->od);
  d->io->env_step = env_step;
  dx_graph_launch(d->c, d->g_step);
  dx_sync(d->c);
  memcpy(a, d->io->act, sizeof(float) * (size_t)d->ad);
  sacd_stats_to_host(d->io->stats, last);
  return isfinite(last->q1_loss) && isfinite(last->q2_loss) && isfinite(last->pi_loss) &&
                 isfinite(last->alpha)
             ? 0
             : -1;
}

int mbpod_model_phase(struct mbpo_dev* d, uint32_t fit_index, int k, long cap, model_fit_stats* fs,
                      rollout_stats* rs) {
  pool_dev* R = d->real;
  int rc = modeld_train(d->model, (int)R->size, R->obs, R->act, R->rew, R->next_obs, fit_index, fs);
  if (rc == MODEL_NONFINITE) return rc;
  if (cap != d->mpool->cap) poold_resize(d->c, d->mpool, cap);
  model_dev* m = d->model;
  rolloutd_model rm = {&m->net, m->params, m->max_lv, m->min_lv, m->norm_mean, m->norm_std, m->elites,
                       m->p.elites};
  if (rolloutd_run(d->ro, &rm, &d->agent->pi, d->agent->pi_w, R, d->mpool, (int)d->cfg->rollout_batch, k,
                   d->roll_key, fit_index, rs) != 0)
    return -2;
  return 0;
}

void mbpod_model_pool_size(const struct mbpo_dev* d, long* size, long* cap) {
  *size = d->mpool->size;
  *cap = d->mpool->cap;
}

void mbpod_to_host(struct mbpo_dev* d, mbpo_state* s, int policy_only) {
  if (policy_only) {
    dx_download(d->c, s->agent->pi_w, d->agent->pi_w, sizeof(float) * s->agent->pi.nparams);
    dx_sync(d->c);
    return;
  }
  sacd_download(d->agent, s->agent);
  modeld_download(d->model, s->model);
  if (d->mpool->cap > 1 || s->mpool) {
    if (!s->mpool) s->mpool = pool_create(s->od, s->ad, d->mpool->cap);
    else if (s->mpool->cap != d->mpool->cap) pool_resize(s->mpool, d->mpool->cap);
    poold_download(d->c, d->mpool, s->mpool);
  }
  dx_sync(d->c);
}
