// pool.cu: the CUDA kernels of the device replay pools' element ops (kernels/pool_k.h, pool_dev.h).
#include <cuda_runtime.h>

#include "pool_k.h"

DX_CUDA_OP(pdk_gather, pdk_gather_args)
DX_CUDA_OP(pdk_gather_runs, pdk_gather_runs_args)
DX_CUDA_OP(pdk_set_state, pdk_set_state_args)
DX_CUDA_OP(pdk_append, pdk_append_args)
DX_CUDA_OP(pdk_advance, pdk_advance_args)
