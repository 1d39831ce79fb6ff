// pool.cu: the CUDA kernels of the device replay pools' element ops (kernels/pool_k.h, pool_dev.h).
#include <cuda_runtime.h>

#include "pool_k.h"

DX_CUDA_OP(poolk_gather, poolk_gather_args)
DX_CUDA_OP(poolk_gather_runs, poolk_gather_runs_args)
DX_CUDA_OP(poolk_set_state, poolk_set_state_args)
DX_CUDA_OP(poolk_append, poolk_append_args)
DX_CUDA_OP(poolk_advance, poolk_advance_args)
