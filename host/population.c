/* population.c: P independent runs in one process (mbpo.h): seeds, or the members of a sweep.
 *
 * Each run is a whole MBPO run (host/mbpo.c: its own seed key, folder, logs, checkpoints and
 * evaluator). The runs advance in lockstep rounds: in each round every unfinished run takes one env
 * step (with its model phase and SAC updates when due), the runs spread over a pool of host threads
 * that also step their MuJoCo environments. Runs share nothing mutable, so a run inside a population
 * computes exactly what it computes alone (tests/test_population.c holds this on the CPU backend).
 *
 * On the CUDA backend the model phases of the runs whose phase came up in the round are one batched
 * fit and one batched rollout (host/dev/mbpo_dev.c, mbpo_pdev_model), after which those runs
 * finish their step; and after
 * the round's ticks one graph launch (mbpo_pdev_step) runs the SAC updates and next actions of all
 * runs at once: the agents of the population are one P-run device agent, every op and GEMM
 * covering all runs.
 *
 * Ctrl-C / SIGTERM: every run finishes its step and writes its mid-epoch checkpoint (runs still
 * exploring finish exploring first); a second Ctrl-C exits at once. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "log.h"
#include "mbpo.h"
#include "mbpo_state.h"
#include "dev/mbpo_dev.h"
#include "ranks.h"
#include "run.h"
#include "threads.h"

/* ---- interruption ---- */

static volatile sig_atomic_t g_stop;

/* First SIGINT/SIGTERM: finish the current step, checkpoint, exit 0. A second SIGINT: exit now. */
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

/* ---- the thread pool: one round = one tick of every unfinished run ---- */

typedef struct pop {
  int n;                 /* runs */
  mbpo_state** runs;
  int kind;              /* backend */
  struct mbpo_pdev* pd;  /* the runs' agents on the device (CUDA backend), else NULL */
  int nthreads;          /* workers including the main thread */
  int per_run_threads;   /* OpenMP threads inside a run's phases */
  pthread_t* th;
  pthread_barrier_t go, done;
  int next;              /* next run to tick in this round (atomic) */
  int resuming;          /* this pass ticks only the runs resuming after the population's rollout */
  int quit;
} pop;

/* Tick runs until this round has none left. */
static void pop_round_work(pop* p) {
  for (;;) {
    int i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
    if (i >= p->n) return;
    if (p->resuming && p->runs[i]->mstate != MBPO_MODEL_RESUME) continue;
    if (!p->resuming && p->runs[i]->mstate == MBPO_MODEL_ROLLOUT) continue; /* waiting (pop_round) */
    mbpo_run_tick(p->runs[i]); /* finished runs return at once */
  }
}

static void* pop_worker(void* arg) {
  pop* p = (pop*)arg;
  backend_bind_thread(p->kind);
#ifdef _OPENMP
  omp_set_num_threads(p->per_run_threads); /* this thread's own ICV */
#endif
  for (;;) {
    pthread_barrier_wait(&p->go);
    if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) return NULL;
    pop_round_work(p);
    pthread_barrier_wait(&p->done);
  }
}

/* CPU cores of this machine. */
static int machine_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef _OPENMP
  n = omp_get_num_procs();
#endif
  return n > 0 ? (int)n : 1;
}

/* The setting `threads` is the CPU threads of one run (0 = the machine's cores shared out). It is
 * what a run computes with: OpenBLAS sums a large GEMM in another order with another thread count,
 * so a run is reproduced bit for bit (alone or in a population) with the same `threads`. With
 * threads = T the population steps cores / T runs at a time; with 0, min(P, cores) runs at a time
 * and the cores are shared out among them. */
static void pop_start(pop* p, int threads_setting) {
  int cores = machine_cores();
  if (threads_setting > 0) {
    p->per_run_threads = threads_setting;
    p->nthreads = cores / threads_setting;
  } else {
    p->nthreads = p->n < cores ? p->n : cores;
    p->per_run_threads = cores / p->nthreads;
  }
  if (p->nthreads > p->n) p->nthreads = p->n;
  if (p->nthreads < 1) p->nthreads = 1;
  if (p->per_run_threads < 1) p->per_run_threads = 1;
  /* OpenBLAS's thread count is one for the whole process; OpenMP's is set per worker */
  threads_set(p->n > 1 ? p->per_run_threads : threads_setting);
  if (p->n > 1)
    mbpo_note("population of %d runs: %d at a time, %d thread%s each", p->n, p->nthreads, p->per_run_threads,
              p->per_run_threads > 1 ? "s" : "");
  if (p->nthreads <= 1) return;
  pthread_barrier_init(&p->go, NULL, (unsigned)p->nthreads);
  pthread_barrier_init(&p->done, NULL, (unsigned)p->nthreads);
  p->th = (pthread_t*)calloc((size_t)p->nthreads, sizeof *p->th);
  if (!p->th) mbpo_fatal("out of memory");
  for (int i = 1; i < p->nthreads; i++)
    if (pthread_create(&p->th[i], NULL, pop_worker, p) != 0) mbpo_fatal("cannot start a worker thread");
}

/* One pass of ticks over the runs (all, or only those resuming), spread over the threads. */
static void pop_pass(pop* p, int resuming) {
  p->next = 0;
  p->resuming = resuming;
  if (p->nthreads <= 1) {
    pop_round_work(p);
  } else {
    pthread_barrier_wait(&p->go);
    pop_round_work(p);
    pthread_barrier_wait(&p->done);
  }
}

/* Runs waiting at their model phase (device). */
static int pop_waiting(const pop* p) {
  int n = 0;
  for (int i = 0; i < p->n; i++)
    n += p->runs[i]->mstate == MBPO_MODEL_ROLLOUT && p->runs[i]->phase != MBPO_PHASE_DONE;
  return n;
}

/* One round: every unfinished run takes one step. On the device: a run whose model phase comes up
 * stops in its tick and waits, taking no steps, until every unfinished run waits at its own (or
 * flush: a stop was requested); then their fits and rollouts run as one (mbpo_pdev_model) and
 * those runs finish their step; then the SAC updates and next actions of all stepping runs in one
 * launch. The waiting aligns the runs: their exploration ends with whole episodes, so their model
 * phases would otherwise fall a few env steps apart for the whole run and never share a fit or a
 * rollout; after one wait they come up in the same round from then on. It changes when a run's
 * steps are computed, not what they compute. */
static void pop_round(pop* p, int flush) {
  pop_pass(p, 0);
  if (!p->pd) return;
  int running = 0, waiting = pop_waiting(p);
  for (int i = 0; i < p->n; i++) running += p->runs[i]->phase != MBPO_PHASE_DONE;
  if (waiting && (waiting == running || flush)) {
    double dt = mbpo_pdev_model(p->pd, p->runs);
    for (int i = 0; i < p->n; i++) mbpo_run_after_rollout(p->runs[i], dt);
    pop_pass(p, 1);
  }
  double dt = mbpo_pdev_step(p->pd, p->runs);
  for (int i = 0; i < p->n; i++) mbpo_run_after_step(p->runs[i], dt);
}

static void pop_stop(pop* p) {
  if (p->nthreads <= 1) return;
  __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
  pthread_barrier_wait(&p->go);
  for (int i = 1; i < p->nthreads; i++) pthread_join(p->th[i], NULL);
  pthread_barrier_destroy(&p->go);
  pthread_barrier_destroy(&p->done);
  free(p->th);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The population's live line on a terminal (its runs have none of their own), twice a second:
 * runs training, their epochs, env steps, the mean and best of their latest evaluations, ETA. */
static void pop_live(const pop* p, double t0, double* last) {
  double now = now_s();
  if (p->n < 2 || now - *last < 0.5) return;
  *last = now;
  long emin = -1, emax = -1;
  double steps = 0, total = 0, sum = 0, best = -INFINITY;
  int active = 0, nev = 0;
  for (int i = 0; i < p->n; i++) {
    const mbpo_state* s = p->runs[i];
    total += (double)mbpo_epochs(s->c) * (double)s->c->epoch_length;
    steps += (double)s->train_steps;
    if (s->phase != MBPO_PHASE_DONE) {
      active++;
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
  run_live("population: %d of %d runs training  epoch %ld-%ld  env steps %.0f of %.0f%s  ETA %s", active, p->n,
           emin, emax, steps, total, ev, et);
}

/* Run the opened runs to their end (or an interruption); close them. Returns the exit status: the
 * largest of the runs'. */
static int pop_run(pop* p, int threads_setting) {
  install_signals();
  pop_start(p, threads_setting);
  double t0 = now_s(), last_live = t0;
  for (;;) {
    int active = 0, exploring = 0;
    for (int i = 0; i < p->n; i++) {
      mbpo_state* s = p->runs[i];
      active += s->phase != MBPO_PHASE_DONE;
      exploring += s->phase == MBPO_PHASE_EXPLORE;
      if (g_interrupt_step >= 0 && s->phase == MBPO_PHASE_TRAIN && (long)s->train_steps == g_interrupt_step)
        g_stop = 1;
    }
    if (!active) break;
    const int stop = g_stop;
    if (stop && !exploring && !pop_waiting(p)) { /* checkpoint every run where it stands */
      for (int i = 0; i < p->n; i++)
        if (p->runs[i]->phase == MBPO_PHASE_TRAIN) mbpo_run_interrupt(p->runs[i]);
      break;
    }
    pop_round(p, stop); /* a stop first completes the model phases of waiting runs */
    pop_live(p, t0, &last_live);
  }
  mbpo_live_clear();
  pop_stop(p);
  int rc = 0, failed = 0;
  for (int i = 0; i < p->n; i++) {
    if (p->runs[i]->rc > rc) rc = p->runs[i]->rc;
    failed += p->runs[i]->rc != 0;
    mbpo_run_close(p->runs[i]);
    free(p->runs[i]);
  }
  mbpo_pdev_free(p->pd);
  if (p->n > 1 && failed) mbpo_warn("%d of the population's %d runs failed (their messages are above)", failed, p->n);
  free(p->runs);
  return rc;
}

/* Train (paths = NULL) or resume (paths[i], cfgs read from their folders) the n runs cfgs. */
static int pop_main(const mbpo_config* cfgs, int n, char* const* paths) {
  int kind = backend_resolve((int)cfgs[0].device);
  pop p;
  memset(&p, 0, sizeof p);
  p.n = n;
  p.kind = kind;
  p.runs = (mbpo_state**)calloc((size_t)n, sizeof *p.runs);
  if (!p.runs) mbpo_fatal("out of memory");
  threads_set((int)cfgs[0].threads);
  int named = n > 1 || ranks_size() > 1; /* log lines name their run */
  for (int i = 0; i < n; i++) {
    if (!(p.runs[i] = (mbpo_state*)calloc(1, sizeof(mbpo_state)))) mbpo_fatal("out of memory");
    if (paths) mbpo_run_resume(p.runs[i], &cfgs[i], paths[i], kind, named);
    else mbpo_run_open(p.runs[i], &cfgs[i], kind, named);
  }
  if (p.runs[0]->dev) p.pd = mbpo_pdev_create(p.runs, n);
  return pop_run(&p, (int)cfgs[0].threads);
}

int mbpo_train_population(const mbpo_config* cfgs, int n) {
  if (n < 1) mbpo_fatal("a population needs at least one run");
  return pop_main(cfgs, n, NULL);
}

int mbpo_resume_population(int n, char* const* paths) {
  if (n < 1) mbpo_fatal("nothing to resume");
  mbpo_config* cfgs = (mbpo_config*)calloc((size_t)n, sizeof *cfgs);
  if (!cfgs) mbpo_fatal("out of memory");
  for (int i = 0; i < n; i++) mbpo_run_load_config(paths[i], &cfgs[i]);
  int rc = pop_main(cfgs, n, paths);
  free(cfgs);
  return rc;
}

int mbpo_train(const mbpo_config* c) { return mbpo_train_population(c, 1); }

int mbpo_resume(const char* run_path) {
  char* p = (char*)run_path;
  return mbpo_resume_population(1, &p);
}
