// model.cu: the CUDA kernels of the device dynamics model's element ops (kernels/model_k.h,
// model_dev.h).
#include <cuda_runtime.h>

#include "model_k.h"

DX_CUDA_OP(modelk_keys, modelk_keys_args)
DX_CUDA_OP(modelk_split_rows, modelk_split_rows_args)
DX_CUDA_OP(modelk_norm_part, modelk_norm_part_args)
DX_CUDA_OP(modelk_norm_fin, modelk_norm_fin_args)
DX_CUDA_OP(modelk_boot, modelk_boot_args)
DX_CUDA_OP(modelk_normalize, modelk_normalize_args)
DX_CUDA_OP(modelk_norm_rows, modelk_norm_rows_args)
DX_CUDA_OP(modelk_gather, modelk_gather_args)
DX_CUDA_OP(modelk_nll, modelk_nll_args)
DX_CUDA_OP(modelk_partials, modelk_partials_args)
DX_CUDA_OP(modelk_finish, modelk_finish_args)
DX_CUDA_OP(modelk_wd, modelk_wd_args)
DX_CUDA_OP(modelk_mean, modelk_mean_args)
DX_CUDA_OP(modelk_mse_rows, modelk_mse_rows_args)
DX_CUDA_OP(modelk_mse_acc, modelk_mse_acc_args)
DX_CUDA_OP(modelk_split_out, modelk_split_out_args)
DX_CUDA_OP(modelk_loss_acc, modelk_loss_acc_args)
DX_CUDA_OP(modelk_epoch_loss, modelk_epoch_loss_args)
DX_CUDA_OP(modelk_copy_lists, modelk_copy_lists_args)
DX_CUDA_OP(modelk_snap, modelk_snap_args)
