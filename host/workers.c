/* workers.c: the population's host threads (workers.h): a barrier-synchronised pool whose items
 * are taken in order by whichever thread is free. */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "log.h"
#include "threads.h"

struct workers {
  int nthreads;          /* threads including the calling one */
  int per_run_threads;   /* OpenMP threads inside a run's phases */
  int kind;              /* backend: CUDA binds each thread to the GPU */
  pthread_t* th;
  pthread_barrier_t go, done;
  void (*fn)(void* ctx, int i);
  void* ctx;
  int n;                 /* items of the current call */
  int next;              /* next item to take (atomic) */
  int quit;
};

/* Take items until the current call has none left. */
static void take_items(workers* w) {
  for (;;) {
    int i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
    if (i >= w->n) return;
    w->fn(w->ctx, i);
  }
}

static void* worker_main(void* arg) {
  workers* w = (workers*)arg;
  backend_bind_thread(w->kind);
#ifdef _OPENMP
  omp_set_num_threads(w->per_run_threads); /* this thread's own ICV */
#endif
  for (;;) {
    pthread_barrier_wait(&w->go);
    if (__atomic_load_n(&w->quit, __ATOMIC_ACQUIRE)) return NULL;
    take_items(w);
    pthread_barrier_wait(&w->done);
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

workers* workers_start(int P, int threads_setting, int kind) {
  workers* w = (workers*)calloc(1, sizeof *w);
  if (!w) mbpo_fatal("out of memory");
  w->kind = kind;
  int cores = machine_cores();
  if (threads_setting > 0) {
    w->per_run_threads = threads_setting;
    w->nthreads = cores / threads_setting;
  } else {
    w->nthreads = P < cores ? P : cores;
    w->per_run_threads = cores / w->nthreads;
  }
  if (w->nthreads > P) w->nthreads = P;
  if (w->nthreads < 1) w->nthreads = 1;
  if (w->per_run_threads < 1) w->per_run_threads = 1;
  /* OpenBLAS's thread count is one for the whole process; OpenMP's is set per worker */
  threads_set(P > 1 ? w->per_run_threads : threads_setting);
  if (P > 1)
    mbpo_note("population of %d runs: %d at a time, %d thread%s each", P, w->nthreads, w->per_run_threads,
              w->per_run_threads > 1 ? "s" : "");
  if (w->nthreads <= 1) return w;
  pthread_barrier_init(&w->go, NULL, (unsigned)w->nthreads);
  pthread_barrier_init(&w->done, NULL, (unsigned)w->nthreads);
  w->th = (pthread_t*)calloc((size_t)w->nthreads, sizeof *w->th);
  if (!w->th) mbpo_fatal("out of memory");
  for (int i = 1; i < w->nthreads; i++)
    if (pthread_create(&w->th[i], NULL, worker_main, w) != 0) mbpo_fatal("cannot start a worker thread");
  return w;
}

void workers_for(workers* w, int n, void (*fn)(void* ctx, int i), void* ctx) {
  w->fn = fn;
  w->ctx = ctx;
  w->n = n;
  w->next = 0;
  if (w->nthreads <= 1 || n <= 1) {
    take_items(w);
    return;
  }
  pthread_barrier_wait(&w->go);
  take_items(w);
  pthread_barrier_wait(&w->done);
}

void workers_shape(const workers* w, int* per_run, int* at_once) {
  *per_run = w->per_run_threads;
  *at_once = w->nthreads;
}

void workers_stop(workers* w) {
  if (!w) return;
  if (w->nthreads > 1) {
    __atomic_store_n(&w->quit, 1, __ATOMIC_RELEASE);
    pthread_barrier_wait(&w->go);
    for (int i = 1; i < w->nthreads; i++) pthread_join(w->th[i], NULL);
    pthread_barrier_destroy(&w->go);
    pthread_barrier_destroy(&w->done);
    free(w->th);
  }
  free(w);
}
