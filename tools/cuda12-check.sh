#!/bin/sh
# cuda12-check.sh [VENV]: compile-check the CUDA sources against a CUDA 12.x toolkit's headers, from
# NVIDIA's PyPI wheels in a throwaway virtual environment (VENV, default /tmp/mbpo-cu12; not a
# project dependency). The 12.x wheels (nvidia-cuda-nvcc-cu12 and the others below) ship the
# runtime, cuBLAS, cuRAND and CCCL/CUB headers and libraries but no nvcc driver or cicc, so the
# compiler is the installed nvcc (13) with the 12.x headers first on the include path: it checks
# that the host API this project calls (cudaGraphInstantiate's signature, cudaDeviceProp fields,
# cuBLAS math modes, CUB's interfaces) compiles against CUDA 12, not a CUDA 12 nvcc itself.
# Prints one line per source and "N compiled, N failed" (docs/cuda.md records the result).
set -u
venv=${1:-/tmp/mbpo-cu12}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" || exit 1
fi
"$venv/bin/pip" install -q nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-curand-cu12 nvidia-cuda-cccl-cu12 \
  nvidia-cuda-nvcc-cu12 || exit 1
nv=$(echo "$venv"/lib/python3*/site-packages/nvidia)
echo "CUDA headers: runtime $(sed -n 's/#define CUDART_VERSION *//p' "$nv/cuda_runtime/include/cuda_runtime_api.h"), CUB $(sed -n 's/^#define CUB_VERSION \([0-9]*\).*/\1/p' "$nv/cuda_cccl/include/cub/version.cuh"); compiler: $(nvcc --version | sed -n 's/.*release //p')"
tmp=$(mktemp -d)
ok=0 bad=0
cd "$root" || exit 1
for f in kernels/*.cu; do
  if nvcc -std=c++17 -Iinclude -Ienvs -Ikernels -DMBPO_CUDA=1 -I"$nv/cuda_runtime/include" -I"$nv/cublas/include" \
    -I"$nv/curand/include" -I"$nv/cuda_cccl/include" -gencode arch=compute_80,code=sm_80 -c "$f" -o "$tmp/x.o" \
    > "$tmp/log" 2>&1; then
    echo "compiled $f"
    ok=$((ok + 1))
  else
    echo "FAILED $f"
    sed 's/^/  /' "$tmp/log" | head -n 20
    bad=$((bad + 1))
  fi
done
rm -rf "$tmp"
echo "$ok compiled, $bad failed"
[ "$bad" -eq 0 ]
