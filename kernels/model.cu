// model.cu: the CUDA kernels of the device dynamics model's element ops (kernels/model_k.h,
// model_dev.h).
#include <cuda_runtime.h>

#include "model_k.h"

DX_CUDA_OP(mdk_keys, mdk_keys_args)
DX_CUDA_OP(mdk_split_rows, mdk_split_rows_args)
DX_CUDA_OP(mdk_norm_part, mdk_norm_part_args)
DX_CUDA_OP(mdk_norm_fin, mdk_norm_fin_args)
DX_CUDA_OP(mdk_boot, mdk_boot_args)
DX_CUDA_OP(mdk_normalize, mdk_normalize_args)
DX_CUDA_OP(mdk_norm_rows, mdk_norm_rows_args)
DX_CUDA_OP(mdk_gather, mdk_gather_args)
DX_CUDA_OP(mdk_nll, mdk_nll_args)
DX_CUDA_OP(mdk_partials, mdk_partials_args)
DX_CUDA_OP(mdk_finish, mdk_finish_args)
DX_CUDA_OP(mdk_wd, mdk_wd_args)
DX_CUDA_OP(mdk_mean, mdk_mean_args)
DX_CUDA_OP(mdk_mse_rows, mdk_mse_rows_args)
DX_CUDA_OP(mdk_mse_acc, mdk_mse_acc_args)
DX_CUDA_OP(mdk_split_out, mdk_split_out_args)
DX_CUDA_OP(mdk_active, mdk_active_args)
DX_CUDA_OP(mdk_snap, mdk_snap_args)
