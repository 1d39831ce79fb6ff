#!/bin/sh
# Run every test program (build/tests/test_*) and every tests/test_*.py, then print one closing line
# "N passed, N failed, N skipped". Usage: tests/run.sh [BUILD_DIR]
# OpenMP threads must not spin while OpenBLAS works (see include/threads.h).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
export MBPO_BIN="$root/$build/mbpo" MBPO_ROOT="$root"
P=0; F=0; S=0; broken=""
log=$(mktemp)
# Sanitizer builds (make SAN=1): every ASan/LSan/UBSan report, also of programs a test runs with
# their output hidden, goes to a file in $san; a test that leaves one there fails.
san=$(mktemp -d)
chmod 1777 "$san" # test_faults runs the binary as user nobody when root
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$san/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$san/ubsan"
sanitizer_reports() { # $1 = name: print and remove the reports the program left; 1 if there were any
  set -- "$1" "$san"/*
  [ -e "$2" ] || return 0
  echo "  $1: sanitizer report:"; shift
  cat "$@" | sed 's/^/    /'; rm -f "$@"
  return 1
}
count() { # $1 = name; reads the program's output from $log, $2 = its exit status
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "  $1: no closing line (exit $2)"; F=$((F + 1)); broken="$broken $1"; return
  fi
  set -- "$1" "$2" $line
  P=$((P + $3)); F=$((F + $5)); S=$((S + $7))
  [ "$5" -gt 0 ] && broken="$broken $1"
  [ "$5" -eq 0 ] && [ "$2" -ne 0 ] && { F=$((F + 1)); broken="$broken $1(exit $2)"; }
  printf '  %-32s %s\n' "$1" "$line"
}
# test_ops (every device op against a host reference) first: on a GPU its failure names the op and
# shape that the later, larger tests would only show as a wrong number.
ran=""
for t in "$root/$build/tests/test_ops" "$root/$build"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case " $ran " in *" $name "*) continue ;; esac
  ran="$ran $name"
  ( cd "$root" && "$t" ) >"$log" 2>&1; rc=$?
  grep -vE '^[0-9]+ passed, ' "$log" | sed 's/^/    /'
  count "$name" $rc
  sanitizer_reports "$name" || { F=$((F + 1)); broken="$broken $name(sanitizer)"; }
done
# The device-path tests again with the host emulation run as a stream (MBPO_DX_DEFER=1, host/dev/dx.c):
# ops wait for a sync, so a read of a pinned download before dx_sync, or a pinned upload's source
# changed too early, fails here as it would on a GPU. Only what the mode can change runs again:
# NAME:CASE,CASE runs only those cases of NAME (TEST_ONLY, tests/test.h); the CPU backend's cases of
# test_population do not touch a dx context.
for spec in test_ops test_pool_dev test_sac_dev test_rollout_dev test_model_dev test_loop_dev \
            test_population:test_population_device_emulation; do
  name=${spec%%:*}
  only=""
  [ "$name" != "$spec" ] && only=${spec#*:}
  t="$root/$build/tests/$name"
  [ -x "$t" ] || continue
  ( cd "$root" && MBPO_DX_DEFER=1 TEST_ONLY="$only" "$t" ) >"$log" 2>&1; rc=$?
  grep -vE '^[0-9]+ passed, ' "$log" | sed 's/^/    /'
  count "$name(deferred)" $rc
  sanitizer_reports "$name(deferred)" || { F=$((F + 1)); broken="$broken $name(deferred,sanitizer)"; }
done
PY=/usr/bin/python3
for t in "$root"/tests/test_*.py; do
  [ -f "$t" ] || continue
  name=$(basename "$t")
  ( cd "$root" && "$PY" "$t" ) >"$log" 2>&1; rc=$?
  grep -vE '^[0-9]+ passed, ' "$log" | sed 's/^/    /'
  count "$name" $rc
  sanitizer_reports "$name" || { F=$((F + 1)); broken="$broken $name(sanitizer)"; }
done
rm -f "$log"
rm -rf "$san"
[ -n "$broken" ] && echo "failing:$broken"
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
