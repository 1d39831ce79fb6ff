// sac.cu: the CUDA kernels of the device SAC agent's element ops (kernels/sac_k.h, sac_dev.h).
#include <cuda_runtime.h>

#include "sac_k.h"

DX_CUDA_OP(sack_sample, sack_sample_args)
DX_CUDA_OP(sack_target, sack_target_args)
DX_CUDA_OP(sack_critic_grad, sack_critic_grad_args)
DX_CUDA_OP(sack_pi_q_grad, sack_pi_q_grad_args)
DX_CUDA_OP(sack_pi_back, sack_pi_back_args)
DX_CUDA_OP(sack_alpha_stats, sack_alpha_stats_args)
DX_CUDA_OP(sack_act, sack_act_args)
DX_CUDA_OP(sack_apply_tick, sack_apply_tick_args)
DX_CUDA_OP(sack_apply, sack_apply_args)
