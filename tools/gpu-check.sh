#!/bin/sh
# gpu-check.sh [--dry-run] [OUT_DIR]: the first-GPU-run check, in one go of at most 10 minutes.
#
# On a fresh GPU machine, from the repository root: builds (for the local GPU's architecture, as
# `make` detects it), prints the GPU and driver (`mbpo --version`: also an unusable GPU's reason),
# runs test_ops (every dx op against its host reference, then --perf), the device tests (test_dx,
# test_pool_dev, test_sac_dev, test_rollout_dev, test_model_dev, test_loop_dev: their GPU cases run
# instead of skipping, and print the errors they measure), test_ops once more under MBPO_DX_SYNC=1,
# bench_gpu (the GPU figures of `make bench`) and a short Hopper train on the GPU (device=cuda,
# stopped after TRAIN_S seconds by SIGINT, which checkpoints). It writes one report, report.md
# (per test pass/fail and its closing line, the measured errors, microseconds per op, the GPU and
# driver, each step's time), and every step's log into OUT_DIR ($OUT, else gpu-check-out/).
# Exit status: 0 when every step passed.
#
#   --dry-run (or GPU_CHECK_DEVICE=cpu)  on a machine without a GPU: the same steps on the host
#       emulation (the GPU cases skip visibly, bench_gpu says it skipped, the train runs device=cpu);
#       the report says DRY RUN at its top. This is how the script is tested.
#
# The machine this is prepared for (a lent GPU machine) has nvcc 13, an NVIDIA driver 580 and no
# package access: the Debian libraries the build needs are bundled beforehand into .deps (the
# project's bundle-debs tool, run where packages can be fetched), and every command there starts with
#     source .deps/use-debs.sh .deps && sh tools/gpu-check.sh
# Without a GPU lent, nothing here has run on one: docs/cuda.md says which results are measured.
# Limits: each step has its own timeout and the whole stays within BUDGET_S (default 570) seconds;
# a step that would start past the budget is skipped and reported as such.
set -u

dry=0
[ "${GPU_CHECK_DEVICE:-cuda}" = cpu ] && dry=1
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
out=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
export OMP_WAIT_POLICY=passive MBPO_BIN="$root/build/mbpo" MBPO_ROOT="$root"
budget=${BUDGET_S:-570}
train_s=${TRAIN_S:-90}
jobs=$(nproc 2> /dev/null || echo 2)
[ "$dry" = 1 ] && jobs=2 # the development machines are shared
device=cuda
train_extra=
# the dry run's CPU Hopper: a short exploration and fit, so that SIGINT finds it between steps soon
[ "$dry" = 1 ] && device=cpu && train_extra="init_steps=1000 model.max_epochs=2"
t_start=$(date +%s)
report="$out/report.md"
[ "$dry" = 1 ] && echo "gpu-check: DRY RUN on the CPU (host emulation; the GPU cases skip): report in $report"
fails=0

elapsed() { echo $(($(date +%s) - t_start)); }

{
  echo "# GPU check"
  echo
  [ "$dry" = 1 ] && echo "**DRY RUN on the CPU** (--dry-run / GPU_CHECK_DEVICE=cpu): the GPU cases skip; no GPU figure below is measured." && echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
  echo "- machine: $(uname -sm), $(nproc 2> /dev/null) cores"
  if command -v nvidia-smi > /dev/null 2>&1; then
    echo "- GPU (nvidia-smi): $(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1 | tr '\n' ';')"
  else
    echo "- GPU (nvidia-smi): none found"
  fi
  echo "- nvcc: $(nvcc --version 2> /dev/null | sed -n 's/.*release /release /p' || echo none)"
  echo
  echo "| step | result | seconds | closing line |"
  echo "| --- | --- | --- | --- |"
} > "$report"

# step NAME TIMEOUT COMMAND...: run with a timeout, log to $out/NAME.log, one row of the table
step() {
  name=$1 limit=$2
  shift 2
  left=$((budget - $(elapsed)))
  if [ "$left" -le 5 ]; then
    echo "| $name | skipped (budget of ${budget}s spent) | 0 | |" >> "$report"
    fails=$((fails + 1))
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  t0=$(date +%s)
  timeout -k 30 -s INT "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  secs=$(($(date +%s) - t0))
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$out/$name.log" | tail -n 1)
  case $rc in
    0) res=pass ;;
    124) res="timed out (${limit}s)" ;;
    *) res="FAIL (exit $rc)" ;;
  esac
  [ "$rc" -ne 0 ] && fails=$((fails + 1))
  echo "| $name | $res | $secs | $line |" >> "$report"
  echo "gpu-check: $name: $res in ${secs}s $line"
  return $rc
}

# 1. build (the Makefile picks the local GPU's architecture) and the GPU's state
step build 300 make -j"$jobs" || { tail -n 30 "$out/build.log"; }
step version 20 build/mbpo --version
# 2. the op table, its timings, and the debug mode
step test_ops 90 build/tests/test_ops
step test_ops_perf 90 build/tests/test_ops --perf
step test_ops_sync 90 env MBPO_DX_SYNC=1 build/tests/test_ops
# 3. the device tests (their GPU cases print the errors they measure)
for t in test_dx test_pool_dev test_sac_dev test_rollout_dev test_model_dev test_loop_dev; do
  step "$t" 150 "build/tests/$t"
done
# 4. the GPU figures of `make bench`
step bench_gpu 150 build/bench/bench_gpu "$out/gpu.json" 2
# 5. a short Hopper train on the GPU, stopped by SIGINT (it checkpoints; exit 0 or 124 is a pass)
rm -rf "$out/runs"
# shellcheck disable=SC2086
step train "$train_s" build/mbpo train configs/hopper.ini device=$device run_dir="$out/runs" threads=4 $train_extra
[ -f "$out/train.log" ] && grep -q "^| train | \(timed out\|FAIL (exit 130)\)" "$report" &&
  sed -i 's/^| train | [^|]* |/| train | pass (stopped by SIGINT after '"$train_s"'s as planned) |/' "$report" && fails=$((fails - 1))

{
  echo
  echo "## GPU and driver"
  echo
  echo '```'
  cat "$out/version.log" 2> /dev/null
  echo '```'
  echo
  echo "## Failures"
  echo
  echo '```'
  grep -h -E "^FAIL|^  .*: .*(err|error|bound|differ)" "$out"/*.log 2> /dev/null | grep -v "^    measured" | head -n 80
  echo '```'
  echo
  echo "## Measured errors (op table: max normalized error per op and context)"
  echo
  echo '```'
  sed -n '/^op (max error)/,/^[0-9]* passed/p' "$out/test_ops.log" 2> /dev/null
  echo '```'
  echo
  echo "## Measured errors (device tests)"
  echo
  echo '```'
  grep -h -E "measured \(cuda\)|\(cuda\)|rel err|displacement|eval_return_mean|\[cuda\]|\[host\]" "$out"/test_*.log 2> /dev/null | head -n 300
  echo '```'
  echo
  echo "## Microseconds per op (test_ops --perf, largest shape, eager)"
  echo
  echo '```'
  grep -h "^perf " "$out/test_ops_perf.log" 2> /dev/null
  echo '```'
  echo
  echo "## bench_gpu"
  echo
  echo '```'
  tail -n 40 "$out/bench_gpu.log" 2> /dev/null
  echo '```'
  echo
  echo "## Hopper train (${train_s}s, device=$device)"
  echo
  echo '```'
  tail -n 15 "$out/train.log" 2> /dev/null
  for f in "$out"/runs/*/progress.csv; do [ -f "$f" ] && cut -d, -f1-4,12,20-26 "$f" | head -n 12; done
  echo '```'
  echo
  echo "Total $(elapsed) s; $fails step(s) failed."
} >> "$report"
echo "gpu-check: report in $report ($(elapsed) s, $fails failed step(s))"
[ "$fails" -eq 0 ]
