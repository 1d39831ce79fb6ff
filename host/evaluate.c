/* evaluate.c: deterministic evaluation in a worker thread (evaluate.h). */
#include "evaluate.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_return.h"

struct evaluator {
  env* e;
  sac* pol; /* private copy: only pi_w is used */
  int episodes, max_steps;
  uint32_t epoch;
  pthread_t th;
  int running;
  eval_result res;
  void (*observe)(void* ctx, env* e);
  void* observe_ctx;
  /* eval.model_return: a snapshot of the model taken with the policy's, and the rollouts' state */
  uint32_t seed;
  int rollouts, model_ok;
  dyn_model* model;
  rollout_ctx* ro;
  double* mret;
  int* mlen;
};

void eval_set_observer(evaluator* ev, void (*fn)(void* ctx, env* e), void* ctx) {
  ev->observe = fn;
  ev->observe_ctx = ctx;
}

evaluator* eval_create(const env_task* task, const mjModel* model, const sac* agent, uint32_t seed,
                       int episodes, int max_steps) {
  evaluator* ev = (evaluator*)calloc(1, sizeof *ev);
  if (!ev) mbpo_fatal("out of memory");
  rng_key k = {seed, RNG_EVAL_RESET};
  ev->e = env_create(task, model, k, 0);
  sac_params p = agent->p;
  p.act_chunk = 1; /* acts one row at a time */
  ev->pol = sac_create(agent->obs_dim, agent->act_dim, &p, (rng_key){seed, RNG_INIT});
  ev->episodes = episodes;
  ev->max_steps = max_steps;
  ev->seed = seed;
  return ev;
}

void eval_free(evaluator* ev) {
  if (!ev) return;
  eval_wait(ev);
  env_destroy(ev->e);
  sac_free(ev->pol);
  model_free(ev->model);
  rollout_free(ev->ro);
  free(ev->mret);
  free(ev->mlen);
  free(ev);
}

eval_result eval_run(evaluator* ev, uint32_t epoch) {
  eval_result r;
  memset(&r, 0, sizeof r);
  float obs[ENV_MAX_OBS], act[ENV_MAX_ACT], s0[ENV_MAX_OBS];
  double sum = 0, sum2 = 0, len = 0, msum = 0, msum2 = 0;
  long mn = 0;
  const int with_model = ev->model && ev->model_ok && ev->rollouts > 0;
  ev->e->index = epoch; /* reset noise depends on (epoch, episode) only */
  ev->e->episode = 0;
  for (int i = 0; i < ev->episodes; i++) {
    env_reset(ev->e, obs);
    memcpy(s0, obs, sizeof s0);
    if (ev->observe) ev->observe(ev->observe_ctx, ev->e);
    double ret = 0;
    int t = 0;
    for (; t < ev->max_steps; t++) {
      double rew;
      int term, trunc;
      sac_act(ev->pol, obs, 1, 1, (rng_key){0, 0}, 0, 0, act);
      env_step(ev->e, act, obs, &rew, &term, &trunc);
      if (ev->observe) ev->observe(ev->observe_ctx, ev->e);
      ret += rew;
      if (term) {
        t++;
        break;
      }
    }
    if (i == 0) r.first = ret, r.min = ret, r.max = ret;
    if (ret < r.min) r.min = ret;
    if (ret > r.max) r.max = ret;
    sum += ret;
    sum2 += ret * ret;
    len += t;
    if (with_model) { /* the same policy from the same initial state, in the model, as long as it lasted */
      int M = ev->rollouts;
      model_return_rollouts(ev->pol, ev->model, ev->ro, (rng_key){ev->seed, RNG_EVAL_MODEL}, 2u * epoch,
                            2u * epoch + 1u, (uint64_t)i * (uint64_t)M, s0, t, M, ev->mret, ev->mlen);
      for (int j = 0; j < M; j++) msum += ev->mret[j], msum2 += ev->mret[j] * ev->mret[j], mn++;
    }
  }
  r.model_mean = r.model_std = NAN;
  if (mn > 0) {
    r.model_mean = msum / (double)mn;
    double var = msum2 / (double)mn - r.model_mean * r.model_mean;
    r.model_std = var > 0 ? sqrt(var) : 0;
  }
  r.episodes = ev->episodes;
  if (ev->episodes > 0) {
    r.mean = sum / ev->episodes;
    double var = sum2 / ev->episodes - r.mean * r.mean;
    r.std = var > 0 ? sqrt(var) : 0;
    r.mean_length = len / ev->episodes;
  }
  return r;
}

static void* worker(void* arg) {
  evaluator* ev = (evaluator*)arg;
  ev->res = eval_run(ev, ev->epoch);
  return NULL;
}

float* eval_snapshot(evaluator* ev) { return ev->pol->pi_w; }

/* Copy model src's parameters, normaliser, log-variance bounds and elites (not its Adam state). */
static void copy_model(dyn_model* dst, dyn_model* src) {
  model_tensor a[MODEL_MAX_TENSORS], b[MODEL_MAX_TENSORS];
  int n = model_tensors(src, a);
  model_tensors(dst, b);
  for (int i = 0; i < n; i++) {
    if (strncmp(a[i].name, "adam_", 5) == 0) continue;
    size_t cnt = 1;
    for (int d = 0; d < a[i].ndim; d++) cnt *= (size_t)a[i].shape[d];
    memcpy(b[i].data, a[i].data, cnt * sizeof(float));
  }
  memcpy(dst->elites, src->elites, sizeof(int) * (size_t)src->p.elites);
}

void eval_enable_model(evaluator* ev, const dyn_model* like, int term_kind, int rollouts) {
  if (ev->model || rollouts < 1) return;
  ev->model = model_create(like->obs_dim, like->act_dim, &like->p, (rng_key){ev->seed, RNG_INIT});
  ev->ro = rollout_create(ev->model, rollouts, term_kind);
  ev->rollouts = rollouts;
  ev->mret = (double*)malloc(sizeof(double) * (size_t)rollouts);
  ev->mlen = (int*)malloc(sizeof(int) * (size_t)rollouts);
  if (!ev->mret || !ev->mlen) mbpo_fatal("out of memory");
}

dyn_model* eval_model_snapshot(evaluator* ev, int** valid) {
  if (valid) *valid = &ev->model_ok;
  return ev->model;
}

void eval_set_model(evaluator* ev, dyn_model* model) {
  if (!ev->model) return;
  ev->model_ok = model != NULL;
  if (model) copy_model(ev->model, model);
}

void eval_start(evaluator* ev, const sac* agent, dyn_model* model, uint32_t epoch) {
  eval_wait(ev);
  memcpy(ev->pol->pi_w, agent->pi_w, agent->pi.nparams * sizeof(float));
  eval_set_model(ev, model);
  eval_start_snapshot(ev, epoch);
}

void eval_start_snapshot(evaluator* ev, uint32_t epoch) {
  eval_wait(ev);
  ev->epoch = epoch;
  if (pthread_create(&ev->th, NULL, worker, ev) != 0) {
    mbpo_warn("cannot start the evaluation thread; evaluating in the training thread");
    ev->res = eval_run(ev, epoch);
    ev->running = 0;
    return;
  }
  ev->running = 1;
}

eval_result eval_wait(evaluator* ev) {
  if (ev->running) {
    pthread_join(ev->th, NULL);
    ev->running = 0;
  }
  return ev->res;
}
