/* mbpo.c: the MBPO training loop, Algorithm 2 of Janner et al. (2019) as the official code runs it
 * (docs/algorithm.md §2), for a population of P independent runs in one process (P = 1: a single
 * run; P > 1: seeds, or the members of a sweep), on either backend (mbpo_backend.h).
 *
 *   explore:   act uniformly at random until the real pool D_env holds init_steps transitions
 *   for each epoch e:
 *     for t = 0, 1, ... until t >= E and |D_env| >= min_pool:
 *       if t mod F == 0:  fit the model on all of D_env; k = schedule(e); resize D_model;
 *                         branched rollout of k steps from rollout.batch real states into D_model
 *       take one env step with the stochastic policy (the episode enters D_env when it ends)
 *       if |D_env| >= min_pool:  G SAC updates, each on 12 real + 244 model rows
 *     evaluate the policy deterministically (worker thread) and log the epoch
 *
 * The runs advance in lockstep rounds; a round is one pass of that body for every run: each phase
 * is one call of the backend covering all the runs it concerns, the host work of the runs (MuJoCo,
 * episodes) is spread over the worker threads. The policy's action for step t + 1 is computed with
 * step t's updates, so a run's first training step waits one round for its action.
 *
 * A run whose model phase comes up waits, taking no steps, until every unfinished run that uses
 * the model waits at its own; then their fits and rollouts run as one. Exploration ends with whole
 * episodes, so the runs' model phases would otherwise fall a few env steps apart for the whole run
 * and never share a fit; after one wait they come up in the same round from then on. Waiting
 * changes when a run's steps are computed, never what they compute: each run's random draws are
 * functions of its own seed and counters, and a run inside a population gives exactly what it gives
 * alone (tests/test_population.c).
 *
 * Ctrl-C / SIGTERM: between rounds every run writes its mid-epoch checkpoint (runs still exploring
 * finish exploring first); a second Ctrl-C exits at once. */
#include "mbpo.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "clock.h"
#include "log.h"
#include "mbpo_backend.h"
#include "mbpo_run.h"
#include "ranks.h"
#include "run.h"
#include "threads.h"
#include "workers.h"

/* ---- interruption ---- */

static volatile sig_atomic_t g_stop;

/* First SIGINT/SIGTERM: finish the current round, checkpoint, exit 0. A second SIGINT: exit now. */
static void on_signal(int sig) {
  if (g_stop && sig == SIGINT) {
    static const char msg[] = "\nmbpo: interrupted again: exiting without a checkpoint\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) _exit(130);
    _exit(130);
  }
  g_stop = 1;
}

/* Test hook: MBPO_TEST_INTERRUPT_STEP=N acts as a SIGINT once a run has taken training step N. */
static long g_interrupt_step = -1;

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  const char* h = getenv("MBPO_TEST_INTERRUPT_STEP");
  if (h) g_interrupt_step = atol(h);
}

/* ---- the population ---- */

typedef struct loop {
  int P;
  mbpo_state** runs;
  mbpo_backend* be;
  workers* w;
  int* due;              /* [P] the runs of this round's model phase */
  int* ready;            /* [P] 1: run q's model phase of this round is done */
} loop;

static int active(const mbpo_state* s) { return s->phase != MBPO_PHASE_DONE; }

/* One env step of run q (a worker thread). */
static void env_step_one(void* ctx, int q) {
  loop* L = (loop*)ctx;
  mbpo_state* s = L->runs[q];
  if (mbpo_run_can_step(s, L->ready[q])) mbpo_run_env_step(s);
  mbpo_run_want_action(s);
}

/* One round: every unfinished run advances by one env step of Algorithm 2 (or waits). */
static void loop_round(loop* L) {
  /* Between steps: exploration's end, the epochs' ends (evaluation, log, checkpoint), the runs'. */
  for (int q = 0; q < L->P; q++) mbpo_run_between_steps(L->runs[q]);

  /* t mod F == 0: fit the model on D_env, k = schedule(epoch), resize D_model, k-step rollouts:
   * for all the runs whose phase is due, once every run that uses the model is due. */
  int n = 0, users = 0;
  for (int q = 0; q < L->P; q++) {
    mbpo_state* s = L->runs[q];
    L->ready[q] = 0;
    users += active(s) && mbpo_fits_model(s->c);
    if (mbpo_run_model_due(s)) L->due[n++] = q;
  }
  if (n > 0 && n == users) {
    double t0 = now_s();
    L->be->model(L->be, L->due, n);
    double dt = now_s() - t0;
    for (int i = 0; i < n; i++) {
      mbpo_run_model_done(L->runs[L->due[i]], dt);
      L->ready[L->due[i]] = 1;
    }
  }

  /* One env step with the stochastic policy (uniform while exploring); the episode enters D_env
   * when it ends. */
  workers_for(L->w, L->P, env_step_one, L);

  /* G SAC updates (once |D_env| >= min_pool), then the policy's action for the next step. */
  double t0 = now_s();
  L->be->step(L->be);
  double dt = now_s() - t0;
  for (int q = 0; q < L->P; q++) mbpo_run_step_done(L->runs[q], dt);
}

/* The population's live line on a terminal (its runs have none of their own), twice a second:
 * runs training, their epochs, env steps, the mean and best of their latest evaluations, ETA. */
static void loop_live(const loop* L, double t0, double* last) {
  double now = now_s();
  if (L->P < 2 || now - *last < 0.5) return;
  *last = now;
  long emin = -1, emax = -1;
  double steps = 0, total = 0, sum = 0, best = -INFINITY;
  int nact = 0, nev = 0;
  for (int i = 0; i < L->P; i++) {
    const mbpo_state* s = L->runs[i];
    total += (double)mbpo_epochs(s->c) * (double)s->c->epoch_length;
    steps += (double)s->train_steps;
    if (active(s)) {
      nact++;
      if (emin < 0 || s->epoch < emin) emin = s->epoch;
      if (s->epoch > emax) emax = s->epoch;
    }
    if (isfinite(s->last_eval)) {
      sum += s->last_eval;
      nev++;
      if (s->last_eval > best) best = s->last_eval;
    }
  }
  double frac = total > 0 ? steps / total : 0, eta = frac > 0 ? (now - t0) * (1 - frac) / frac : 0;
  char ev[96] = "";
  if (nev) snprintf(ev, sizeof ev, "  eval mean %.1f best %.1f", sum / nev, best);
  char et[32];
  if (eta < 120) snprintf(et, sizeof et, "%.0f s", eta);
  else snprintf(et, sizeof et, "%.0f min", eta / 60);
  run_live("population: %d of %d runs training  epoch %ld-%ld  env steps %.0f of %.0f%s  ETA %s", nact, L->P,
           emin, emax, steps, total, ev, et);
}

/* Run the opened runs to their end (or an interruption); close them. Returns the exit status: the
 * largest of the runs'. */
static int loop_run(loop* L) {
  install_signals();
  double t0 = now_s(), last_live = t0;
  for (;;) {
    int nact = 0, exploring = 0;
    for (int q = 0; q < L->P; q++) {
      const mbpo_state* s = L->runs[q];
      nact += active(s);
      exploring += s->phase == MBPO_PHASE_EXPLORE;
      if (g_interrupt_step >= 0 && s->phase == MBPO_PHASE_TRAIN && (long)s->train_steps == g_interrupt_step)
        g_stop = 1;
    }
    if (!nact) break;
    if (g_stop && !exploring) { /* checkpoint every run where it stands */
      for (int q = 0; q < L->P; q++)
        if (L->runs[q]->phase == MBPO_PHASE_TRAIN) mbpo_run_interrupt(L->runs[q]);
      break;
    }
    loop_round(L);
    loop_live(L, t0, &last_live);
  }
  mbpo_live_clear();
  int rc = 0, failed = 0;
  for (int q = 0; q < L->P; q++) {
    if (L->runs[q]->rc > rc) rc = L->runs[q]->rc;
    failed += L->runs[q]->rc != 0;
  }
  if (L->P > 1 && failed) mbpo_warn("%d of the population's %d runs failed (their messages are above)", failed, L->P);
  return rc;
}

/* Train (paths = NULL) or resume (paths[i], cfgs read from their folders) the n runs cfgs. */
static int loop_main(const mbpo_config* cfgs, int n, char* const* paths) {
  int kind = backend_resolve((int)cfgs[0].device);
  mbpo_backend_check(kind, cfgs, n); /* before any run folder is made */
  loop L;
  memset(&L, 0, sizeof L);
  L.P = n;
  L.runs = (mbpo_state**)calloc((size_t)n, sizeof *L.runs);
  L.due = (int*)calloc((size_t)n, sizeof *L.due);
  L.ready = (int*)calloc((size_t)n, sizeof *L.ready);
  if (!L.runs || !L.due || !L.ready) mbpo_fatal("out of memory");
  threads_set((int)cfgs[0].threads);
  int named = n > 1 || ranks_size() > 1; /* log lines name their run */
  for (int q = 0; q < n; q++) {
    if (!(L.runs[q] = (mbpo_state*)calloc(1, sizeof(mbpo_state)))) mbpo_fatal("out of memory");
    if (paths) mbpo_run_resume(L.runs[q], &cfgs[q], paths[q], named);
    else mbpo_run_open(L.runs[q], &cfgs[q], mbpo_backend_label(kind), named);
  }
  L.w = workers_start(n, (int)cfgs[0].threads, kind);
  L.be = mbpo_backend_open(kind, L.runs, n, L.w);
  int per_run, at_once;
  workers_shape(L.w, &per_run, &at_once);
  for (int q = 0; q < n; q++) mbpo_run_record_machine(L.runs[q], paths != NULL, L.be->name, per_run, at_once);
  int rc = loop_run(&L);
  L.be->close(L.be);
  workers_stop(L.w);
  for (int q = 0; q < n; q++) {
    mbpo_run_close(L.runs[q]);
    free(L.runs[q]);
  }
  free(L.runs);
  free(L.due);
  free(L.ready);
  return rc;
}

int mbpo_train_population(const mbpo_config* cfgs, int n) {
  if (n < 1) mbpo_fatal("a population needs at least one run");
  return loop_main(cfgs, n, NULL);
}

int mbpo_resume_population(int n, char* const* paths) {
  if (n < 1) mbpo_fatal("nothing to resume");
  mbpo_config* cfgs = (mbpo_config*)calloc((size_t)n, sizeof *cfgs);
  if (!cfgs) mbpo_fatal("out of memory");
  for (int i = 0; i < n; i++) mbpo_run_load_config(paths[i], &cfgs[i]);
  int rc = loop_main(cfgs, n, paths);
  free(cfgs);
  return rc;
}

int mbpo_train(const mbpo_config* c) { return mbpo_train_population(c, 1); }

int mbpo_resume(const char* run_path) {
  char* p = (char*)run_path;
  return mbpo_resume_population(1, &p);
}
