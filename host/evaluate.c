/* evaluate.c: deterministic evaluation in a worker thread (evaluate.h). */
#include "evaluate.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
  return ev;
}

void eval_free(evaluator* ev) {
  if (!ev) return;
  eval_wait(ev);
  env_destroy(ev->e);
  sac_free(ev->pol);
  free(ev);
}

eval_result eval_run(evaluator* ev, uint32_t epoch) {
  eval_result r;
  memset(&r, 0, sizeof r);
  float obs[ENV_MAX_OBS], act[ENV_MAX_ACT];
  double sum = 0, sum2 = 0, len = 0;
  ev->e->index = epoch; /* reset noise depends on (epoch, episode) only */
  ev->e->episode = 0;
  for (int i = 0; i < ev->episodes; i++) {
    env_reset(ev->e, obs);
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

void eval_start(evaluator* ev, const sac* agent, uint32_t epoch) {
  eval_wait(ev);
  memcpy(ev->pol->pi_w, agent->pi_w, agent->pi.nparams * sizeof(float));
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
