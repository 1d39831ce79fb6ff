/* backend_cpu.c: the CPU reference backend (backend_cpu.h, mbpo_backend.h). The host components
 * of each run are its state of record; a phase runs each of its runs on one worker thread, with
 * the run's `threads` inside (OpenBLAS, OpenMP), so a run computes the same bits alone or in a
 * population. */
#include "backend_cpu.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mbpo_run.h"
#include "rng.h"
#include "schedule.h"
#include "vexp.h"
#include "workers.h"

/* A run's CPU working memory: its rollout buffers and one SAC minibatch. */
typedef struct cpu_run {
  rollout_ctx* ro;
  vexp* vx; /* sac.value_expansion > 0 */
  uint32_t* bidx;
  float *bobs, *bact, *brew, *bnext, *bdone;
} cpu_run;

typedef struct cpu_backend {
  mbpo_backend be;       /* first: the interface */
  mbpo_state* const* runs;
  int P;
  workers* w;
  cpu_run* cr;           /* [P] */
  const int* which;      /* the model phase's runs */
} cpu_backend;

static void cpu_push_real(mbpo_backend* be, int q, long n, const float* obs, const float* act, const float* rew,
                          const float* next_obs, const float* done) {
  /* the run's host real pool is the one the phases sample: nothing to copy */
  (void)be, (void)q, (void)n, (void)obs, (void)act, (void)rew, (void)next_obs, (void)done;
}

/* Run which[i]'s model phase: fit on all of D_env, D_model sized for k, the branched rollout. */
static void model_one(void* ctx, int i) {
  cpu_backend* b = (cpu_backend*)ctx;
  int q = b->which[i];
  mbpo_state* s = b->runs[q];
  const mbpo_config* c = s->c;
  memset(&s->mroll, 0, sizeof s->mroll);
  s->mroll_rc = 0;
  pool* R = s->real; /* rows 0..size-1 of the ring are all valid; their order does not matter */
  model_train(s->model, (int)R->size, R->obs, R->act, R->rew, R->next_obs, s->fits, &s->mfit);
  if (s->mfit.status == MODEL_NONFINITE || !mbpo_rolls_out(c)) return; /* value expansion: a fit only */
  long cap = mbpo_model_pool_capacity(c, s->k);
  if (!s->mpool) s->mpool = pool_create(s->od, s->ad, cap);
  else if (cap != s->mpool->cap) pool_resize(s->mpool, cap);
  rng_key rk = {(uint32_t)c->seed, RNG_ROLLOUT};
  s->mroll_rc = rollout_run(b->cr[q].ro, s->model, s->agent, s->real, s->mpool, (int)c->rollout_batch, s->k, rk,
                            s->fits, &s->mroll);
}

static void cpu_model(mbpo_backend* be, const int* which, int n) {
  cpu_backend* b = (cpu_backend*)be;
  b->which = which;
  workers_for(b->w, n, model_one, b);
}

/* Run q's step: G SAC updates (each on int(B * real_ratio) real rows and the rest model rows, the
 * minibatch drawn with the update counter), then its action for the next env step. */
static void step_one(void* ctx, int q) {
  cpu_backend* b = (cpu_backend*)ctx;
  mbpo_state* s = b->runs[q];
  const mbpo_config* c = s->c;
  if (s->want == MBPO_WANT_NONE) return;
  cpu_run* r = &b->cr[q];
  if (s->want == MBPO_WANT_STEP) {
    int B = (int)c->sac_batch, nreal = (int)(c->sac_batch * c->sac_real_ratio), nmodel = B - nreal;
    rng_key bk = {(uint32_t)c->seed, RNG_SAC_BATCH};
    for (long g = 0; g < c->sac_updates; g++) {
      uint64_t u = s->updates + (uint64_t)g;
      uint32_t c0 = (uint32_t)u, c1 = (uint32_t)(u >> 32);
      pool_sample_indices(s->real, bk, c0, c1, 0, nreal, r->bidx);
      pool_gather(s->real, r->bidx, nreal, r->bobs, r->bact, r->brew, r->bnext, r->bdone);
      if (nmodel > 0) {
        pool_sample_indices(s->mpool, bk, c0, c1, (uint64_t)nreal, nmodel, r->bidx + nreal);
        pool_gather(s->mpool, r->bidx + nreal, nmodel, r->bobs + (size_t)nreal * s->od,
                    r->bact + (size_t)nreal * s->ad, r->brew + nreal, r->bnext + (size_t)nreal * s->od,
                    r->bdone + nreal);
      }
      if (r->vx) {
        if (s->fits == 0) mbpo_fatal("value expansion before the first model fit");
        rng_key vk = {(uint32_t)c->seed, RNG_VALUE_EXPANSION};
        if (vexp_expand(r->vx, s->model, s->agent, B, (float)c->sac_gamma, (float)c->sac_reward_scale, vk, u,
                        r->brew, r->bnext, r->bdone) != 0)
          s->vexp_rc = 1;
      }
      sac_update(s->agent, r->bobs, r->bact, r->brew, r->bnext, r->bdone, B, u, &s->last);
    }
  }
  sac_act(s->agent, s->obs, 1, 0, (rng_key){(uint32_t)c->seed, RNG_ACT}, 0, (uint32_t)s->env_steps, s->next_act);
}

static void cpu_step(mbpo_backend* be) {
  cpu_backend* b = (cpu_backend*)be;
  workers_for(b->w, b->P, step_one, b);
}

static void cpu_snapshot(mbpo_backend* be, int q, int policy_only) {
  (void)be, (void)q, (void)policy_only; /* the host components are the state */
}

static void cpu_model_pool(const mbpo_backend* be, int q, long* size, long* cap) {
  const pool* m = ((const cpu_backend*)be)->runs[q]->mpool;
  *size = m ? m->size : 0;
  *cap = m ? m->cap : 0;
}

static void cpu_close(mbpo_backend* be) {
  cpu_backend* b = (cpu_backend*)be;
  for (int q = 0; q < b->P; q++) {
    cpu_run* r = &b->cr[q];
    rollout_free(r->ro);
    vexp_free(r->vx);
    free(r->bidx);
    free(r->bobs);
    free(r->bact);
    free(r->brew);
    free(r->bnext);
    free(r->bdone);
  }
  free(b->cr);
  free(b);
}

mbpo_backend* backend_cpu_open(mbpo_state* const* runs, int P, workers* w) {
  cpu_backend* b = (cpu_backend*)calloc(1, sizeof *b);
  if (!b) mbpo_fatal("out of memory");
  b->be = (mbpo_backend){"cpu", cpu_push_real, cpu_model, cpu_step, cpu_snapshot, cpu_model_pool, cpu_close};
  b->runs = runs;
  b->P = P;
  b->w = w;
  b->cr = (cpu_run*)calloc((size_t)P, sizeof *b->cr);
  if (!b->cr) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) {
    const mbpo_state* s = runs[q];
    cpu_run* r = &b->cr[q];
    size_t B = (size_t)s->c->sac_batch;
    /* sac.real_ratio = 1 (the §6.2 "no model" ablation): no fit, no rollout, no rollout buffers */
    r->ro = !mbpo_rolls_out(s->c) ? NULL : rollout_create(s->model, (int)s->c->rollout_batch, s->task->term);
    if (s->c->sac_value_expansion > 0)
      r->vx = vexp_create(s->model, (int)B, (int)s->c->sac_value_expansion, s->task->term);
    r->bidx = (uint32_t*)malloc(B * sizeof(uint32_t));
    r->bobs = (float*)malloc(B * (size_t)s->od * sizeof(float));
    r->bact = (float*)malloc(B * (size_t)s->ad * sizeof(float));
    r->brew = (float*)malloc(B * sizeof(float));
    r->bnext = (float*)malloc(B * (size_t)s->od * sizeof(float));
    r->bdone = (float*)malloc(B * sizeof(float));
    if (!r->bidx || !r->bobs || !r->bact || !r->brew || !r->bnext || !r->bdone) mbpo_fatal("out of memory");
  }
  return &b->be;
}
