/* backend.h: which backend runs the algorithm (device = auto | cuda | cpu). */
#ifndef MBPO_BACKEND_H
#define MBPO_BACKEND_H

/** Backends. */
enum backend_kind { BACKEND_CPU = 0, BACKEND_CUDA = 1 };

/** 1 when this binary was built with the CUDA backend compiled in. */
int backend_cuda_built(void);

/** 1 when a CUDA GPU is usable; otherwise 0 with the reason in why. On success, why holds the
 *  device name, compute capability, memory and driver version. */
int backend_cuda_probe(char* why, int n);

/** 1 when an NVIDIA GPU is present on this machine (/proc/driver/nvidia/version, else nvidia-smi),
 *  usable or not, with the driver's version in driver ("unknown" if unread). For naming an old
 *  driver (backend_cuda_probe); the test hook MBPO_TEST_GPU_PRESENT=VERSION pretends one is. */
int backend_gpu_present(char* driver, int n);

/** The selected GPU's free and total memory in bytes (cudaMemGetInfo); 1 on success, 0 when no
 *  GPU is usable. The test hook MBPO_TEST_GPU_MEMORY=GB gives a size (free = total) without one. */
int backend_gpu_memory(double* free_b, double* total_b);

/** Resolve the device setting (enum cfg_device) to a backend: cpu → CPU; cuda → CUDA or a fatal
 *  error saying why the GPU is not usable; auto → CUDA when usable, else CPU with a notice, or with a
 *  warning on every run when a GPU is present but unusable (an old driver, no kernel image). */
int backend_resolve(int device_setting);

/** Use GPU number index (modulo the number of GPUs) for this process: MPI ranks pass their local
 *  rank so that the ranks on one machine spread over its GPUs. Call before anything else of CUDA. */
void backend_select_gpu(int index);

/** Make the selected GPU current for the calling thread (CUDA's current device is per host thread)
 *  when kind is BACKEND_CUDA; a no-op otherwise. Worker threads that drive runs call it first. */
void backend_bind_thread(int kind);

/** Name of a backend ("cpu", "cuda"). */
const char* backend_name(int kind);

#endif
