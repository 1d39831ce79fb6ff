/* sac_dev.c: the SAC agent on a dx context (sac_dev.h), the device twin of host/cpu/sac.c.
 *
 * One update, B rows, O = obs, A = act, D = O + A (the steps of sac.c):
 *   1. policy at s' (pin_c) -> sack_sample: x_na = [s', a'], log pi'          (noise idx0 = 0)
 *   2. target critics at x_na (qt_c) -> sack_target: y
 *   3. critics at [s, a] (q_c) -> sack_critic_grad: dq -> backward into q_g
 *   4. policy at s (pi_c) -> sack_sample: x_sp = [s, a~], log pi, eps         (idx0 = B A)
 *   5. critics at x_sp (qp_c, its own forward cache) -> sack_pi_q_grad -> backward with
 *      grads = NULL into the twins' input gradients (qp_c's dxe)
 *   6. sack_pi_back: their sum's action columns through tanh and the clip -> dpi -> backward
 *      into pi_g
 *   7. sack_alpha_stats: log_alpha_g and the statistics (before any parameter moves)
 * then the three Adam steps (critics, policy, log alpha) and Polyak averaging of the targets:
 * every gradient is taken at the pre-update parameters, as the host agent does. Each step covers
 * the P runs of the agent in one op or GEMM (nn_dev.h's population layout).
 *
 * Lanes (dx.h): the independent branches run side by side, joined where one reads another's
 * result: lane 1 the target path (1-2), lane 0 the critics at [s, a] and their backward (3; its
 * weight GEMMs on lane 1 once the target is done), lane 2 the policy path (4-6; its weight GEMMs
 * on lane 3), lane 3 the Adam tick and the statistics (7). Every branch writes its own buffers; the
 * parameters change only in the last op, after every lane is joined into lane 0. The host
 * emulation runs the ops in program order, so the bits do not depend on the lanes.
 *
 * Fewer ops: each network's output bias is added by the op that reads the output (nnd_forward_head,
 * sac_k.h's heads), and sack_pi_back sums the twins' input gradients itself; the same expressions
 * in the same order as the separate ops, so the same bits. */
#include "sac_dev.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sac_k.h"

DX_OP(sack_sample, sack_sample_args)
DX_OP(sack_target, sack_target_args)
DX_OP(sack_critic_grad, sack_critic_grad_args)
DX_OP(sack_pi_q_grad, sack_pi_q_grad_args)
DX_OP(sack_pi_back, sack_pi_back_args)
DX_OP(sack_alpha_stats, sack_alpha_stats_args)
DX_OP(sack_act, sack_act_args)
DX_OP(sack_apply_tick, sack_apply_tick_args)
DX_OP(sack_apply, sack_apply_args)

struct sacd_work {
  int Bmax;
  nnd_cache *pi_c, *pin_c, *q_c, *qp_c, *qt_c, *act_c;
  float *x_sa, *x_na, *x_sp; /* critic inputs [B][D]: [s, a], [s', a'], [s, a~] */
  float *pi_out, *pin_out;   /* policy outputs [B][2A] at s and s' */
  float* eps;                /* noise [B][A] of a~ */
  float *logp, *logp_n;      /* [B] */
  float* y;                  /* [B] */
  float *qv, *qn, *qp;       /* critic outputs [2][B]: Q(s,a), Qt(s',a'), Q(s,a~) */
  float *dq, *dqp;           /* [2][B] */
  float* dpi;                /* [B][2A] */
  float* act_out;            /* [act_rows][2A] */
};

static void check_shapes(const sac_dev* d, const sac* h, const char* what) {
  if (h->obs_dim != d->obs_dim || h->act_dim != d->act_dim || h->pi.nparams != d->pi.nparams ||
      h->q.nparams != d->q.nparams || h->p.batch != d->p.batch)
    mbpo_fatal("%s: host agent (obs %d, act %d, %zu + %zu parameters, batch %d) differs from the device "
               "agent (obs %d, act %d, %zu + %zu, batch %d)", what, h->obs_dim, h->act_dim, h->pi.nparams,
               h->q.nparams, h->p.batch, d->obs_dim, d->act_dim, d->pi.nparams, d->q.nparams, d->p.batch);
}

/* Adam state of P runs shaped like the host agents' (which = 0 policy, 1 critics, 2 log alpha). */
static nnd_adam* adam_like(dx_ctx* c, const sac* const* hosts, int P, int which) {
  float* lrs = malloc((size_t)P * sizeof *lrs);
  if (!lrs) mbpo_fatal("out of memory");
  const nn_adam* h0 = which == 0 ? hosts[0]->pi_adam : which == 1 ? hosts[0]->q_adam : hosts[0]->alpha_adam;
  for (int q = 0; q < P; q++)
    lrs[q] = (which == 0 ? hosts[q]->pi_adam : which == 1 ? hosts[q]->q_adam : hosts[q]->alpha_adam)->lr;
  nnd_adam* a = nnd_adam_alloc_runs(c, h0->n, P, lrs);
  a->b1 = h0->b1, a->b2 = h0->b2, a->eps = h0->eps;
  free(lrs);
  return a;
}

sac_dev* sacd_create_runs(dx_ctx* c, const sac* const* hosts, int P, int act_rows) {
  if (act_rows < 1 || P < 1) mbpo_fatal("sacd_create: act_rows %d, P %d", act_rows, P);
  const sac* host = hosts[0];
  sac_dev* d = calloc(1, sizeof *d);
  struct sacd_work* w = calloc(1, sizeof *w);
  if (!d || !w) mbpo_fatal("out of memory");
  d->c = c;
  d->P = P;
  d->obs_dim = host->obs_dim;
  d->act_dim = host->act_dim;
  d->p = host->p;
  d->noise_key = host->noise_key;
  d->pi = host->pi;
  d->q = host->q;
  d->act_rows = act_rows;
  d->w = w;
  for (int q = 1; q < P; q++) check_shapes(d, hosts[q], "sacd_create");

  const size_t R = (size_t)P;
  d->pi_w = dx_allocf(c, R * d->pi.nparams);
  d->q_w = dx_allocf(c, R * d->q.nparams);
  d->qt_w = dx_allocf(c, R * d->q.nparams);
  d->log_alpha = dx_allocf(c, R);
  d->pi_g = dx_allocf(c, R * d->pi.nparams);
  d->q_g = dx_allocf(c, R * d->q.nparams);
  d->log_alpha_g = dx_allocf(c, R);
  d->pi_adam = adam_like(c, hosts, P, 0);
  d->q_adam = adam_like(c, hosts, P, 1);
  d->alpha_adam = adam_like(c, hosts, P, 2);
  d->runs = dx_alloc(c, R * sizeof(sack_run));
  d->taus = dx_allocf(c, R);
  sack_run* runs = calloc(R, sizeof *runs);
  float* taus = calloc(R, sizeof *taus);
  if (!runs || !taus) mbpo_fatal("out of memory");
  for (int q = 0; q < P; q++) {
    runs[q].noise_key = hosts[q]->noise_key;
    runs[q].reward_scale = hosts[q]->p.reward_scale;
    runs[q].gamma = hosts[q]->p.gamma;
    runs[q].target_entropy = hosts[q]->p.target_entropy;
    taus[q] = hosts[q]->p.tau;
  }
  dx_upload(c, d->runs, runs, R * sizeof *runs);
  dx_upload(c, d->taus, taus, R * sizeof *taus);
  dx_sync(c);
  free(runs);
  free(taus);

  const int A = d->act_dim, D = d->obs_dim + A, Bm = d->p.batch;
  const size_t B = R * (size_t)Bm; /* rows of all runs */
  w->Bmax = Bm;
  w->pi_c = nnd_cache_alloc_runs(c, &d->pi, P, Bm);
  w->pin_c = nnd_cache_alloc_fwd(c, &d->pi, P, Bm); /* forward only: no gradient through the target */
  w->q_c = nnd_cache_alloc_runs(c, &d->q, P, Bm);
  w->qp_c = nnd_cache_alloc_runs(c, &d->q, P, Bm);
  w->qt_c = nnd_cache_alloc_fwd(c, &d->q, P, Bm);
  w->act_c = nnd_cache_alloc_fwd(c, &d->pi, P, act_rows);
  w->x_sa = dx_allocf(c, B * D);
  w->x_na = dx_allocf(c, B * D);
  w->x_sp = dx_allocf(c, B * D);
  w->pi_out = dx_allocf(c, B * 2 * A);
  w->pin_out = dx_allocf(c, B * 2 * A);
  w->eps = dx_allocf(c, B * A);
  w->logp = dx_allocf(c, B);
  w->logp_n = dx_allocf(c, B);
  w->y = dx_allocf(c, B);
  w->qv = dx_allocf(c, 2 * B);
  w->qn = dx_allocf(c, 2 * B);
  w->qp = dx_allocf(c, 2 * B);
  w->dq = dx_allocf(c, 2 * B);
  w->dqp = dx_allocf(c, 2 * B);
  w->dpi = dx_allocf(c, B * 2 * A);
  w->act_out = dx_allocf(c, R * (size_t)act_rows * 2 * A);
  for (int q = 0; q < P; q++) sacd_upload_run(d, q, hosts[q]);
  return d;
}

sac_dev* sacd_create(dx_ctx* c, const sac* host, int act_rows) { return sacd_create_runs(c, &host, 1, act_rows); }

void sacd_free(sac_dev* d) {
  if (!d) return;
  dx_ctx* c = d->c;
  struct sacd_work* w = d->w;
  nnd_cache* caches[] = {w->pi_c, w->pin_c, w->q_c, w->qp_c, w->qt_c, w->act_c};
  for (size_t i = 0; i < sizeof caches / sizeof caches[0]; i++) nnd_cache_free(c, caches[i]);
  float* bufs[] = {w->x_sa, w->x_na, w->x_sp, w->pi_out, w->pin_out, w->eps, w->logp, w->logp_n,
                   w->y, w->qv, w->qn, w->qp, w->dq, w->dqp, w->dpi, w->act_out,
                   d->pi_w, d->q_w, d->qt_w, d->log_alpha, d->pi_g, d->q_g, d->log_alpha_g, d->taus};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dx_free(c, bufs[i]);
  dx_free(c, d->runs);
  nnd_adam_free(c, d->pi_adam);
  nnd_adam_free(c, d->q_adam);
  nnd_adam_free(c, d->alpha_adam);
  free(w);
  free(d);
}

float* sacd_pi_params(const sac_dev* d, int q) { return d->pi_w + (size_t)q * d->pi.nparams; }

static void check_run(const sac_dev* d, int q, const char* what) {
  if (q < 0 || q >= d->P) mbpo_fatal("%s: run %d of %d", what, q, d->P);
}

void sacd_upload_run(sac_dev* d, int q, const sac* host) {
  check_shapes(d, host, "sacd_upload");
  check_run(d, q, "sacd_upload");
  dx_ctx* c = d->c;
  const size_t np = d->pi.nparams, nq = d->q.nparams;
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "SAC agent upload (run %d)", q);
  dx_upload(c, d->pi_w + q * np, host->pi_w, np * sizeof(float));
  dx_upload(c, d->q_w + q * nq, host->q_w, nq * sizeof(float));
  dx_upload(c, d->qt_w + q * nq, host->qt_w, nq * sizeof(float));
  dx_upload(c, d->log_alpha + q, host->log_alpha, sizeof(float));
  nnd_adam_upload_run(c, d->pi_adam, q, host->pi_adam); /* each syncs */
  nnd_adam_upload_run(c, d->q_adam, q, host->q_adam);
  nnd_adam_upload_run(c, d->alpha_adam, q, host->alpha_adam);
  dx_phase(c, "%s", outer);
}

void sacd_download_run(const sac_dev* d, int q, sac* host) {
  check_shapes(d, host, "sacd_download");
  check_run(d, q, "sacd_download");
  dx_ctx* c = d->c;
  const size_t np = d->pi.nparams, nq = d->q.nparams;
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
  dx_phase_sub(c, outer, "SAC agent download (run %d)", q);
  dx_download(c, host->pi_w, d->pi_w + q * np, np * sizeof(float));
  dx_download(c, host->q_w, d->q_w + q * nq, nq * sizeof(float));
  dx_download(c, host->qt_w, d->qt_w + q * nq, nq * sizeof(float));
  dx_download(c, host->log_alpha, d->log_alpha + q, sizeof(float));
  nnd_adam_download_run(c, d->pi_adam, q, host->pi_adam); /* each syncs */
  nnd_adam_download_run(c, d->q_adam, q, host->q_adam);
  nnd_adam_download_run(c, d->alpha_adam, q, host->alpha_adam);
  dx_phase(c, "%s", outer);
}

void sacd_upload(sac_dev* d, const sac* host) { sacd_upload_run(d, 0, host); }

void sacd_download(const sac_dev* d, sac* host) { sacd_download_run(d, 0, host); }

/* An Adam state with its parameters and gradients, as the fused apply ops take it. */
static sack_adam_set adam_set(nnd_adam* a, float* params, const float* grads) {
  sack_adam_set s = {params, grads, a->m, a->v, a->t, a->lr_t, a->lrs, (long)a->n, a->b1, a->b2, a->eps};
  return s;
}

/* advance: update_index (then not const) += 1 for the active runs, in the Adam tick's op, after
 * both samples have read it */
static void update_runs(sac_dev* d, const float* obs, const float* act, const float* rew, const float* next_obs,
                        const float* done, int B, uint64_t* update_index, long ctr_stride, const int* active,
                        float* stats, int advance) {
  struct sacd_work* w = d->w;
  dx_ctx* c = d->c;
  const int O = d->obs_dim, A = d->act_dim, P = d->P;
  if (B < 1 || B > w->Bmax) mbpo_fatal("sacd_update: batch of %d rows (1..%d)", B, w->Bmax);
  const float invB = 1.0f / (float)B;
  const long PB = (long)P * B;
  if (dx_lane_get(c) != 0) mbpo_fatal("sacd_update: entered on lane %d (lane 0 only)", dx_lane_get(c));
  enum { MAIN = 0, TGT = 1, POL = 2, AUX = 3 };
  w->q_c->dw_lane = TGT;  /* free once the target is joined */
  w->pi_c->dw_lane = AUX;
  w->qp_c->dw_lane = MAIN; /* input gradient only: no weight GEMMs */
  for (int l = 1; l < DX_LANES; l++) dx_wait(c, l, MAIN); /* the previous update's parameters */
  /* the output layers' biases, added by the ops that read the outputs (sac_k.h's heads) */
  const float* pi_hb = d->pi_w + d->pi.b_off[d->pi.nlayers - 1];
  const float* q_hb = d->q_w + d->q.b_off[d->q.nlayers - 1];
  const float* qt_hb = d->qt_w + d->q.b_off[d->q.nlayers - 1];
  const long pi_ps = (long)d->pi.nparams, q_ps = (long)d->q.nparams;
  /* phase labels: in a captured update (MBPO_DX_SYNC=1) a fault report names the step (dx.h) */
  char outer[DX_PHASE_MAX];
  snprintf(outer, sizeof outer, "%s", dx_phase_get(c));
#define SACD_STEP(what) dx_phase_sub(c, outer, "SAC update (%d run%s, %d rows): %s", P, P == 1 ? "" : "s", B, what)

  /* 1-2: the Bellman target from the target critics and a fresh a' ~ pi(.|s') */
  SACD_STEP("Bellman target");
  dx_lane(c, TGT);
  nnd_forward_head(c, &d->pi, d->pi_w, B, next_obs, 1, w->pin_c, w->pin_out);
  sack_sample_args sn = {w->pin_out, next_obs, w->x_na, w->logp_n, NULL, update_index, d->runs, 0,
                         ctr_stride, B, O, A, pi_hb, pi_ps};
  DX_RUN(c, sack_sample, sn, PB);
  nnd_forward_head(c, &d->q, d->qt_w, B, w->x_na, 1, w->qt_c, w->qn);
  sack_target_args ta = {w->qn, w->logp_n, rew, done, d->log_alpha, d->runs, w->y, B, qt_hb, q_ps};
  DX_RUN(c, sack_target, ta, PB);

  /* 3: critic loss gradients at [s, a] */
  SACD_STEP("critic gradients");
  dx_lane(c, MAIN);
  nnd_concat(c, obs, O, act, A, (int)PB, w->x_sa);
  nnd_forward_head(c, &d->q, d->q_w, B, w->x_sa, 1, w->q_c, w->qv);
  dx_wait(c, MAIN, TGT); /* y */
  sack_critic_grad_args cg = {w->qv, w->y, w->dq, B, invB, q_hb, q_ps};
  DX_RUN(c, sack_critic_grad, cg, 2 * PB);
  dx_wait(c, AUX, MAIN); /* qv with its bias, and y, for the statistics */
  nnd_backward_set(c, &d->q, d->q_w, w->q_c, w->dq, d->q_g, NULL);

  /* 4: a~ = tanh(mu + sigma eps) at s */
  SACD_STEP("policy gradients");
  dx_lane(c, POL);
  nnd_forward_head(c, &d->pi, d->pi_w, B, obs, 1, w->pi_c, w->pi_out);
  sack_sample_args sc = {w->pi_out, obs, w->x_sp, w->logp, w->eps, update_index, d->runs,
                         (uint64_t)B * (uint64_t)A, ctr_stride, B, O, A, pi_hb, pi_ps};
  DX_RUN(c, sack_sample, sc, PB);

  /* 5: dL/da~ through min_j Q_j(s, a~) (input gradient only, critics' own cache) */
  nnd_forward_head(c, &d->q, d->q_w, B, w->x_sp, 1, w->qp_c, w->qp);
  sack_pi_q_grad_args pq = {w->qp, w->dqp, B, invB, q_hb, q_ps};
  DX_RUN(c, sack_pi_q_grad, pq, PB);
  dx_wait(c, AUX, POL); /* qp and log pi, for the statistics */
  nnd_backward_members(c, &d->q, d->q_w, w->qp_c, w->dqp, NULL); /* summed over the twins by sack_pi_back */

  /* 6: into the policy */
  sack_pi_back_args pb = {w->x_sp, NULL, w->pi_out, w->eps, d->log_alpha, w->dpi, B, O, A, invB, w->qp_c->dxe,
                          d->q.E};
  DX_RUN(c, sack_pi_back, pb, PB * A);
  /* its backward into pi_g follows step 7's ops (issued first on lane 3, where its weight GEMMs go) */

  /* 7: temperature gradient and statistics, with the pre-update log alpha (lane 3 has waited for
   * qv, y, qp and log pi above; the policy's weight GEMMs come after it on the same lane) */
  SACD_STEP("temperature and statistics");
  dx_lane(c, AUX);
  sack_alpha_stats_args as = {w->qv, w->y, w->qp, w->logp, d->log_alpha, d->runs, d->log_alpha_g, stats,
                              B, SACD_NSTATS};
  DX_RUN(c, sack_alpha_stats, as, (long)P * (stats ? 1 + SACD_NSTATS : 1));

  /* apply: sac_apply_grads' arithmetic (critics, policy, log alpha, then Polyak) in two ops;
   * inactive runs keep their state. The tick touches only the Adam step counts and rates, read by
   * nothing before the apply. */
  sack_apply_tick_args at = {{adam_set(d->q_adam, d->q_w, d->q_g), adam_set(d->pi_adam, d->pi_w, d->pi_g),
                              adam_set(d->alpha_adam, d->log_alpha, d->log_alpha_g)}, active, P,
                             advance ? update_index : NULL, ctr_stride};
  /* lane 3 has waited for both samples (through the target and the policy's critic gradient) */
  DX_RUN(c, sack_apply_tick, at, (advance ? 4L : 3L) * P);
  dx_lane(c, POL);
  nnd_backward_set(c, &d->pi, d->pi_w, w->pi_c, w->dpi, d->pi_g, NULL);
  dx_lane(c, MAIN);
  for (int l = 1; l < DX_LANES; l++) dx_wait(c, MAIN, l);
  sack_apply_args ap = {{at.s[0], at.s[1], at.s[2]}, d->qt_w, d->taus, active, P};
  SACD_STEP("Adam and Polyak");
  DX_RUN(c, sack_apply, ap, (long)P * (long)(d->q.nparams + d->pi.nparams + 1));
#undef SACD_STEP
  dx_phase(c, "%s", outer);
}

void sacd_update_runs(sac_dev* d, const float* obs, const float* act, const float* rew,
                      const float* next_obs, const float* done, int B, const uint64_t* update_index,
                      long ctr_stride, const int* active, float* stats) {
  update_runs(d, obs, act, rew, next_obs, done, B, (uint64_t*)update_index, ctr_stride, active, stats, 0);
}

void sacd_update_runs_advance(sac_dev* d, const float* obs, const float* act, const float* rew,
                              const float* next_obs, const float* done, int B, uint64_t* update_index,
                              long ctr_stride, const int* active, float* stats) {
  update_runs(d, obs, act, rew, next_obs, done, B, update_index, ctr_stride, active, stats, 1);
}

void sacd_update(sac_dev* d, const float* obs, const float* act, const float* rew, const float* next_obs,
                 const float* done, int B, const uint64_t* update_index, float* stats) {
  sacd_update_runs(d, obs, act, rew, next_obs, done, B, update_index, 1, NULL, stats);
}

void sacd_stats_to_host(const float* s, sac_stats* st) {
  st->q1_loss = s[0];
  st->q2_loss = s[1];
  st->pi_loss = s[2];
  st->alpha = s[3];
  st->alpha_loss = s[4];
  st->entropy = s[5];
  st->q_mean = s[6];
}

static void act_common(sac_dev* d, const float* obs, int B, int deterministic, const rng_key* keys, rng_key key,
                       uint32_t c0, const uint64_t* c1_ctr, long ctr_stride, float* act) {
  struct sacd_work* w = d->w;
  if (B < 1 || B > d->act_rows) mbpo_fatal("sacd_act: %d rows (1..%d)", B, d->act_rows);
  if (!deterministic && !c1_ctr) mbpo_fatal("sacd_act: stochastic actions need the counter");
  nnd_forward(d->c, &d->pi, d->pi_w, B, obs, 1, w->act_c, w->act_out);
  sack_act_args a = {w->act_out, act, c1_ctr, keys, key, c0, ctr_stride, B, d->act_dim, deterministic};
  DX_RUN(d->c, sack_act, a, (long)d->P * B * d->act_dim);
}

void sacd_act(sac_dev* d, const float* obs, int B, int deterministic, rng_key key, uint32_t c0,
              const uint64_t* c1_ctr, float* act) {
  if (d->P != 1) mbpo_fatal("sacd_act on a population of %d runs: sacd_act_runs", d->P);
  act_common(d, obs, B, deterministic, NULL, key, c0, c1_ctr, 1, act);
}

void sacd_act_runs(sac_dev* d, const float* obs, int B, int deterministic, const rng_key* keys, uint32_t c0,
                   const uint64_t* c1_ctr, long ctr_stride, float* act) {
  act_common(d, obs, B, deterministic, keys, (rng_key){0, 0}, c0, c1_ctr, ctr_stride, act);
}
