#!/bin/sh
# gpu_session.sh STAGE [LIMIT]: what a session lent a GPU machine runs there, one stage per call of
# the device tool (each call at most 600 s; results under $OUT, or out/ without it). From the
# repository root, after `source .deps/use-debs.sh .deps` on a machine without package access.
#   test    make -j16, then make test (the GPU cases run instead of skipping); log in $OUT
#   bench   bench_gpu (gpu.json, with the PyTorch peers' ratios) into $OUT
#   pop     bench_population (population.json): Hopper populations P = 1, 2, 4, 8, 16 on the GPU,
#           POP_STEPS env steps after exploration each (default 2000; the CPU cases skipped)
#   train   Hopper on the GPU (configs/hopper.ini, device=cuda) for at most LIMIT s (default 540),
#           stopped with SIGINT, which checkpoints; the next call resumes it. The run folder is
#           runs-gpu/ on the machine, which keeps it while it stays warm between calls.
#   sweep   the paper's 5-seed x 2-schedule Hopper sweep as one population, the same way
# After each stage the run's progress.csv, model_train.csv and log go to $OUT; `mbpo summary`
# and `mbpo plot` turn them into the README's table and figure.
set -u
stage=${1:-}
limit=${2:-540}
out=${OUT:-out}
mkdir -p "$out" || exit 1
export OMP_WAIT_POLICY=passive
bin=${MBPO_BIN:-build/mbpo}
device=${GPU_SESSION_DEVICE:-cuda} # cpu: a dry run of the stages on a machine without a GPU

build() { make -j16 > "$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; exit 1; }; }

# Train (or resume) the runs of "$@" (mbpo train arguments) for at most $limit seconds.
train_runs() {
  name=$1
  shift
  dirs=$(ls -d runs-gpu/$name/*-s[0-9]* 2> /dev/null)
  if [ -n "$dirs" ]; then
    set -- --resume $dirs
  else
    set -- "$@" run_dir=runs-gpu/$name
  fi
  echo "mbpo train $*"
  timeout -s INT "$limit" "$bin" train "$@" > "$out/$name.log" 2>&1
  rc=$?
  [ $rc -eq 124 ] && echo "stopped after $limit s (checkpointed; call again to resume)"
  for d in runs-gpu/$name/*; do
    [ -d "$d" ] || continue
    mkdir -p "$out/$name/$(basename "$d")"
    cp "$d"/*.csv "$d"/*.md "$out/$name/$(basename "$d")/" 2> /dev/null
  done
  tail -n 5 "$out/$name.log"
  [ $rc -eq 0 ] || [ $rc -eq 124 ]
}

case "$stage" in
  test)
    build
    make test > "$out/test.log" 2>&1
    rc=$?
    grep -E "passed|FAIL|SKIP" "$out/test.log" | tail -n 60
    exit $rc
    ;;
  bench)
    build
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
    build/bench/bench_gpu "$out/gpu.json" | tail -n 40
    ;;
  pop)
    [ -x "$bin" ] || build
    MBPO_BIN=$PWD/$bin BENCH_POP_CPU_STEPS=0 BENCH_POP_GPU_STEPS=${POP_STEPS:-2000} BENCH_POP_TIMEOUT=$limit \
      build/bench/bench_population "$out/population.json" | tail -n 20
    ;;
  train)
    [ -x "$bin" ] || build
    train_runs hopper configs/hopper.ini device=$device
    ;;
  sweep)
    [ -x "$bin" ] || build
    train_runs hopper-sweep configs/hopper.ini device=$device sweep.seed=0,1,2,3,4 \
      'sweep.rollout_schedule=20:150:1:15;20:150:1:1'
    ;;
  *)
    echo "usage: sh bench/gpu_session.sh test|bench|pop|train|sweep [LIMIT seconds]" >&2
    exit 2
    ;;
esac
