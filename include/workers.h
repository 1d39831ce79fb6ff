/* workers.h: the host threads that step a population's runs side by side.
 *
 * The setting `threads` is the CPU threads of one run (0 = the machine's cores shared out). It is
 * what a run computes with: OpenBLAS sums a large GEMM in another order with another thread count,
 * so a run is reproduced bit for bit (alone or in a population) with the same `threads`. With
 * threads = T the workers take cores / T runs at a time; with 0, min(P, cores) runs at a time and
 * the cores are shared out among them. */
#ifndef MBPO_WORKERS_H
#define MBPO_WORKERS_H

/** A pool of host threads (the calling thread is one of them). */
typedef struct workers workers;

/** Start the threads for P runs with the `threads` setting threads_setting; kind (backend.h) binds
 *  each thread to the process's GPU when it is BACKEND_CUDA. Sets the OpenMP and OpenBLAS thread
 *  counts (threads.h) and, for P > 1, says how the population is spread. */
workers* workers_start(int P, int threads_setting, int kind);

/** Call fn(ctx, i) for i = 0..n-1, spread over the threads; returns when every call has returned.
 *  Calls for different i run concurrently. */
void workers_for(workers* w, int n, void (*fn)(void* ctx, int i), void* ctx);

/** The CPU threads each run computes with (OpenMP and OpenBLAS), and how many runs run at once. */
void workers_shape(const workers* w, int* per_run, int* at_once);

/** Stop and join the threads, free w (NULL is allowed). */
void workers_stop(workers* w);

#endif
