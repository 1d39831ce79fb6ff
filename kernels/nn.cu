// nn.cu: the CUDA kernels of the device MLP's element ops (kernels/nn_k.h, nn_dev.h).
#include <cuda_runtime.h>

#include "nn_k.h"

DX_CUDA_OP(nnk_bias_act, nnk_bias_act_args)
DX_CUDA_OP(nnk_act_back, nnk_act_back_args)
DX_CUDA_OP(nnk_colsum, nnk_colsum_args)
DX_CUDA_OP(nnk_act_back_colsum, nnk_act_back_colsum_args)
DX_CUDA_OP(nnk_sum_members, nnk_sum_members_args)
DX_CUDA_OP(nnk_adam_tick, nnk_adam_tick_args)
DX_CUDA_OP(nnk_adam, nnk_adam_args)
DX_CUDA_OP(nnk_polyak, nnk_polyak_args)
DX_CUDA_OP(nnk_concat, nnk_concat_args)
DX_CUDA_OP(nnk_fill, nnk_fill_args)
DX_CUDA_OP(nnk_ctr_add, nnk_ctr_add_args)
DX_CUDA_OP(nnk_rng, nnk_rng_args)
