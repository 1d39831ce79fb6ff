#!/bin/sh
# Run every benchmark program (BUILD_DIR/bench/bench_*); each writes bench/results/<name>.json
# (bench_envs -> bench/results/envs.json). Usage: sh bench/run.sh [BUILD_DIR]
# OpenMP threads must not spin while OpenBLAS works (see include/threads.h).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bench/results"
mkdir -p "$out" || exit 1
export MBPO_BIN="$root/$build/mbpo" MBPO_ROOT="$root"
failed=""; wrote=""
for b in "$root/$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  prog=$(basename "$b")
  name=${prog#bench_}
  json="$out/$name.json"
  echo "== $prog"
  if ( cd "$root" && "$b" "$json" ); then
    if [ -f "$json" ]; then wrote="$wrote bench/results/$name.json"; fi
  else
    failed="$failed $prog"
  fi
  echo
done
if [ -n "$wrote" ]; then
  echo "JSON written:"
  for j in $wrote; do echo "  $j"; done
else
  echo "no benchmark wrote JSON (none built under $build/bench?)"
fi
if [ -n "$failed" ]; then
  echo "failed:$failed"
  exit 1
fi
