/* threads.h: CPU thread set-up shared by the mbpo binary, the tests and the benchmarks. */
#ifndef MBPO_THREADS_H
#define MBPO_THREADS_H

/** OpenMP threads that spin while waiting starve OpenBLAS's own threads (a model step ran 10x
 *  slower on 2 cores). libgomp reads OMP_WAIT_POLICY when it loads, before main, so when the
 *  variable is unset this sets it to passive and re-executes the program (argv as given);
 *  it returns only when the policy is already set or the re-exec failed. */
void threads_init(int argc, char** argv);

/** Use n CPU threads for OpenMP and OpenBLAS (n <= 0: leave the defaults, all cores). */
void threads_set(int n);

/** What the CPU's sums depend on, as one line: the BLAS and the kernel set it picked for this CPU
 *  (OpenBLAS's openblas_get_config and openblas_get_corename), and the CPU model. */
void threads_describe(char* buf, int n);

#endif
