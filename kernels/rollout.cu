// rollout.cu: the CUDA kernels of the device rollouts' element ops (kernels/rollout_k.h,
// rollout_dev.h).
#include <cuda_runtime.h>

#include "rollout_k.h"

DX_CUDA_OP(rdk_init, rdk_init_args)
DX_CUDA_OP(rdk_iota, rdk_iota_args)
DX_CUDA_OP(rdk_act, rdk_act_args)
DX_CUDA_OP(rdk_step, rdk_step_args)
DX_CUDA_OP(rdk_partial, rdk_partial_args)
DX_CUDA_OP(rdk_total, rdk_total_args)
DX_CUDA_OP(rdk_counts, rdk_counts_args)
DX_CUDA_OP(rdk_compact, rdk_compact_args)
DX_CUDA_OP(rdk_finish, rdk_finish_args)
