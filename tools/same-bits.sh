#!/bin/sh
# same-bits.sh OLD_MBPO NEW_MBPO [WORKDIR]: train the same short runs with two binaries and compare
# every progress.csv and model_train.csv as text, column by column (by name: the columns both write,
# all but the timing ones).
# For changes that must not change results (refactors, build flags): both binaries must give the
# same bits. Covers the CPU backend alone, in a population, interrupted and resumed, and the device
# path on its host emulation (also deferred, and interrupted and resumed), plus a short Hopper run
# at threads=2. Takes about 12 minutes per binary on 2 cores. Exit status 1 when a file differs.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD_MBPO NEW_MBPO [WORKDIR]" >&2; exit 2; }
old=$1; new=$2; work=${3:-$(mktemp -d /tmp/same-bits.XXXXXX)}
export OMP_WAIT_POLICY=passive
A="steps=300 epoch_length=100 init_steps=100 min_pool=250 max_path_length=100 model.train_freq=50 \
model.hidden=32 model.max_epochs=5 rollout.batch=500 sac.hidden=32 sac.updates=2 eval.episodes=2 \
checkpoint.every=1 device=cpu threads=1"
S="'sweep.seed=0,1' 'sweep.rollout_schedule=0:2:1:3;0:2:1:1'"
S2="rollout.min_epoch=0 rollout.max_epoch=2 rollout.min_length=1 'sweep.seed=0,1' \
'sweep.sac.real_ratio=0.05,0.5' 'sweep.rollout.max_length=1,3' 'sweep.model.patience=5,0' \
sweep.zip=seed,sac.real_ratio,rollout.max_length,model.patience"
runs() { # $1 = binary, $2 = folder
  B=$1; O=$2; rm -rf "$O"; mkdir -p "$O"
  r() { echo "== $*" >> "$O/log"; sh -c "$*" >> "$O/log" 2>&1 || echo "FAILED: $*" | tee -a "$O/log" >&2; }
  r "$B train inverted_pendulum $A run_dir=$O/cpu1"
  r "$B train inverted_pendulum $A run_dir=$O/cpupop $S"
  r "MBPO_TEST_INTERRUPT_STEP=130 $B train inverted_pendulum $A run_dir=$O/cpuint $S"
  r "$B train --resume $O/cpuint/*"
  r "MBPO_DEVICE_EMULATE=1 $B train inverted_pendulum $A run_dir=$O/emu1 rollout.max_length=3"
  r "MBPO_DEVICE_EMULATE=1 $B train inverted_pendulum $A run_dir=$O/emupop $S2"
  r "MBPO_DX_DEFER=1 MBPO_DEVICE_EMULATE=1 $B train inverted_pendulum $A run_dir=$O/deferpop $S2"
  r "MBPO_DEVICE_EMULATE=1 MBPO_TEST_INTERRUPT_STEP=160 $B train inverted_pendulum $A run_dir=$O/emuint $S2"
  r "MBPO_DEVICE_EMULATE=1 $B train --resume $O/emuint/*"
  r "$B train hopper device=cpu threads=2 steps=2000 epoch_length=1000 init_steps=1000 min_pool=1000 \
model.train_freq=250 model.max_epochs=20 rollout.batch=2000 eval.episodes=2 run_dir=$O/hopper seed=3"
}
runs "$old" "$work/old"
runs "$new" "$work/new"
python3 - "$work/old" "$work/new" <<'PY'
import csv, os, sys
a, b = sys.argv[1], sys.argv[2]
TIMING = {"wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s", "env_steps_per_s", "seconds"}
def cut(path, keep):
    rows = list(csv.reader(open(path)))
    h = rows[0]
    ks = [i for i, c in enumerate(h) if c in keep and c not in TIMING]
    return [[r[i] for i in ks] for r in rows]
def header(path):
    return next(csv.reader(open(path)))
files = sorted(os.path.relpath(os.path.join(d, f), a) for d, _, fs in os.walk(a) for f in fs
               if f in ("progress.csv", "model_train.csv"))
bad = 0
for f in files:
    fa, fb = os.path.join(a, f), os.path.join(b, f)
    same = os.path.exists(fb)
    if same:  # the columns both binaries write, by name (a new column is not a difference)
        ha, hb = header(fa), header(fb)
        keep = set(ha) & set(hb)
        same = cut(fa, keep) == cut(fb, keep)
        extra = sorted((set(ha) ^ set(hb)) - TIMING)
        if extra: print("      (columns in one binary only, not compared: " + ", ".join(extra) + ")")
    bad += not same
    print("same " if same else "DIFF ", f)
print(f"{len(files)} files, {bad} differ")
sys.exit(1 if bad or not files else 0)
PY
