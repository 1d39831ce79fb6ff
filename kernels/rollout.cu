// rollout.cu: the CUDA kernels of the device rollouts' element ops (kernels/rollout_k.h,
// rollout_dev.h).
#include <cuda_runtime.h>

#include "rollout_k.h"

DX_CUDA_OP(rolloutk_init, rolloutk_init_args)
DX_CUDA_OP(rolloutk_iota, rolloutk_iota_args)
DX_CUDA_OP(rolloutk_act, rolloutk_act_args)
DX_CUDA_OP(rolloutk_step, rolloutk_step_args)
DX_CUDA_OP(rolloutk_partial, rolloutk_partial_args)
DX_CUDA_OP(rolloutk_total, rolloutk_total_args)
DX_CUDA_OP(rolloutk_counts, rolloutk_counts_args)
DX_CUDA_OP(rolloutk_compact, rolloutk_compact_args)
DX_CUDA_OP(rolloutk_finish, rolloutk_finish_args)
