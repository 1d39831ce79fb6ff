#!/usr/bin/env python3
"""test_real_data.py: what a training run stores and keeps, read back from its checkpoints.

One tiny Hopper run (device=cpu; 3 actions; episodes cut at max_path_length = 20 steps, so that both
ends of an episode occur: termination and the cut) is trained through $MBPO_BIN, and its final
checkpoint (.npz: the real pool D_env as "real/obs", "real/act", "real/rew", "real/next_obs",
"real/done" in physical order, the unfinished episode as "path/...", see include/checkpoint.h) is
read with numpy:

  - how real transitions are stored (docs/algorithm.md, the sampler): done = 1 exactly on the
    transitions that terminate (Hopper's rule on the next observation: torso z > 0.7,
    |pitch| < 0.2, |s[1:]| < 100), never on the cut at max_path_length, which is a truncation
    (done = 0) followed by a reset; within an episode each row continues the previous one
    (obs = the previous next_obs); an episode is flushed into D_env whole when it ends, so the
    pool holds complete episodes and the running one waits in path/ (shorter than the cut, no done,
    starting at a reset state); pool rows + running rows = every env step taken;
  - the uniform exploration policy: the first rows, until D_env holds init_steps, have actions
    drawn uniformly from [-1, 1]^3 (the env rescales them to the control range): every value in
    [-1, 1], a Kolmogorov-Smirnov distance to U(-1, 1) below the 1 % critical value 1.63 / sqrt(n),
    means and correlations near 0; exploration stops at the first episode end with D_env >= init_steps;
  - checkpoint.keep rotation (checkpoint.every = 2, checkpoint.keep = 2, 7 epochs): epoch-end
    checkpoints after epochs 1, 3, 5 and the final one after epoch 6; each removes the one
    keep * every epochs back, so ckpt-e000003, ckpt-e000005 and ckpt-e000006 remain, with
    ckpt-best.npz (the best evaluation's epoch checkpoint, a hard link while that file exists) and
    checkpoint.latest naming ckpt-e000006.npz.
Prints "N passed, N failed, N skipped" (tests/testlib.py); exits non-zero on failure.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import case, check, counts, done, skip_all  # noqa: E402

try:
    import numpy as np
except ImportError as e:
    skip_all("test_real_data", f"numpy not importable ({e.__class__.__name__}: {e})")

ROOT = os.environ.get("MBPO_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MBPO_BIN") or os.path.join(ROOT, "build", "mbpo")
CUT, INIT, EVERY, KEEP, EPOCHS = 20, 200, 2, 2, 7
ARGS = (f"hopper device=cpu steps={EPOCHS * 100} epoch_length=100 init_steps={INIT} min_pool=250 "
        f"max_path_length={CUT} model.train_freq=50 rollout.batch=200 model.hidden=16 sac.hidden=16 "
        f"sac.updates=1 model.max_epochs=2 eval.episodes=1 checkpoint.every={EVERY} checkpoint.keep={KEEP} "
        "rollout.min_epoch=0 rollout.max_epoch=2 rollout.max_length=2 real_pool_size=1000").split()
# Hopper's reset: init_qpos + U(-0.005, 0.005), qvel U(-0.005, 0.005) (envs/hopper.c); obs[0] is the
# torso height 1.25
RESET = np.array([1.25] + [0.0] * 10)


def hopper_done(s):
    """Hopper's termination on observations (rows): not healthy (envs/hopper.c, termination.h)."""
    s = s.astype(np.float64)
    ok = np.isfinite(s).all(1) & (s[:, 0] > 0.7) & (np.abs(s[:, 1]) < 0.2) & (np.abs(s[:, 1:]) < 100).all(1)
    return ~ok


def is_reset(o):
    return bool(np.all(np.abs(o.astype(np.float64) - RESET) <= 0.005 + 1e-6))


def progress(run):
    lines = open(os.path.join(run, "progress.csv")).read().split("\n")
    head = lines[0].split(",")
    rows = [dict(zip(head, (float(v) if v else float("nan") for v in ln.split(",")))) for ln in lines[1:] if ln]
    return rows


def main():
    if not os.access(BIN, os.X_OK):
        skip_all("test_real_data", f"{BIN} is not built")
    tmp = tempfile.mkdtemp(prefix="mbpo-realdata-")
    run = os.path.join(tmp, "hopper-mbpo-s0")
    r = subprocess.run([BIN, "train"] + ARGS + [f"run_dir={tmp}"], capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        with case("training run"):
            check("mbpo train", False, f"exit {r.returncode}: {r.stderr[-2000:]}")
        done()
    rows = progress(run)
    latest = open(os.path.join(run, "checkpoint.latest")).read().strip()
    z = np.load(os.path.join(run, latest))
    obs, act, nxt = z["real/obs"], z["real/act"], z["real/next_obs"]
    rew, dn = z["real/rew"], z["real/done"]
    n = len(rew)
    total = int(rows[-1]["total_env_steps"])
    explore = int(rows[0]["total_env_steps"] - rows[0]["env_steps"])
    # the episodes, by the storage rule under test: one ends at done = 1 or after CUT steps
    starts, length = [], 0
    for i in range(n):
        if length == 0:
            starts.append(i)
        length = 0 if dn[i] == 1 or length + 1 == CUT else length + 1

    with case("real transitions: done on termination only, the cut a truncation, whole episodes"):
        check("pool shapes", obs.shape == (n, 11) and nxt.shape == (n, 11) and act.shape == (n, 3)
              and dn.shape == (n,), f"{obs.shape} {act.shape} {nxt.shape} {dn.shape}")
        check("pool not wrapped", int(z["real/next"]) == n and n < int(z["real/cap"]),
              f"next {z['real/next']}, rows {n}, cap {z['real/cap']}")
        check("done flags are 0 or 1", set(np.unique(dn).tolist()) <= {0.0, 1.0}, f"{np.unique(dn)}")
        term = hopper_done(nxt)
        check("done = Hopper's termination of next_obs", np.array_equal(dn == 1, term),
              f"{int(np.sum((dn == 1) != term))} of {n} rows differ")
        ends = cuts = length = 0
        bad = []
        for i in range(n):
            if length == 0 and not is_reset(obs[i]):
                bad.append(f"row {i} starts an episode at a non-reset state {obs[i][:3]}")
            length += 1
            if dn[i] == 1 or length == CUT:
                ends += dn[i] == 1
                cuts += dn[i] == 0
                length = 0
            elif i + 1 < n and not np.array_equal(obs[i + 1], nxt[i]):
                bad.append(f"row {i + 1} does not continue row {i} (episode step {length})")
            if len(bad) > 3:
                break
        check("episodes: reset starts, continuity, ends at done or the cut", not bad, "; ".join(bad))
        check("the pool ends with a whole episode", length == 0, f"{length} rows of an unfinished episode")
        check("both episode ends occur", ends > 0 and cuts > 0, f"{ends} terminations, {cuts} cuts")
        pn = len(z["path/rew"])
        check("the running episode waits in path/", pn < CUT and (pn == 0 or (is_reset(z["path/obs"][0])
              and not np.any(z["path/done"]))), f"{pn} rows")
        check("pool + running episode = every env step", n + pn == total, f"{n} + {pn} vs {total} env steps")
        print(f"  real pool: {n} rows, {ends} terminations, {cuts} cuts at {CUT}, {pn} running")

    with case("uniform exploration policy until D_env holds init_steps"):
        a = act[:explore].astype(np.float64)
        check("at least init_steps exploration steps", explore >= INIT, f"{explore}")
        last = max(i for i in starts if i < explore)
        check("exploration ends at an episode end, the first with D_env >= init_steps",
              (explore in starts or explore == n) and last < INIT, f"{explore} steps, last episode from row {last}")
        check("actions in [-1, 1]", a.min() >= -1 and a.max() <= 1, f"min {a.min()}, max {a.max()}")
        v = np.sort(a.ravel())
        m = len(v)
        cdf = (v + 1) / 2
        ks = max(np.max(np.arange(1, m + 1) / m - cdf), np.max(cdf - np.arange(m) / m))
        check("Kolmogorov-Smirnov distance to U(-1, 1)", ks < 1.63 / np.sqrt(m), f"D {ks:.4f}, n {m}")
        sd = np.sqrt(1 / 3 / explore)  # standard error of a mean of U(-1, 1)
        check("means near 0", np.all(np.abs(a.mean(0)) < 4 * sd), f"{a.mean(0)}, 4 sd {4 * sd:.3f}")
        c = np.corrcoef(a.T)[np.triu_indices(3, 1)]
        check("dimensions uncorrelated", np.all(np.abs(c) < 4 / np.sqrt(explore)), f"{c}")
        print(f"  exploration: {explore} steps, KS distance {ks:.4f} (1 % critical {1.63 / np.sqrt(m):.4f})")

    with case("checkpoint.keep rotation"):
        names = sorted(f for f in os.listdir(run) if re.fullmatch(r"ckpt-e\d{6}\.npz", f))
        want = ["ckpt-e000003.npz", "ckpt-e000005.npz", "ckpt-e000006.npz"]
        check("epoch checkpoints kept", names == want, f"{names}, want {want}")
        check("no mid-epoch checkpoints", not any("-t" in f for f in os.listdir(run) if f.startswith("ckpt-")))
        check("checkpoint.latest", latest == "ckpt-e000006.npz", latest)
        # ckpt-best.npz: the epoch-end checkpoint of the first epoch with the best evaluation so far
        best, best_e = -1e300, None
        saved = {e for e in range(EPOCHS) if (e + 1) % EVERY == 0} | {EPOCHS - 1}
        for row in rows:
            e = int(row["epoch"])
            if row["eval_return_mean"] > best:
                best = row["eval_return_mean"]
                if e in saved:
                    best_e = e
        bp = os.path.join(run, "ckpt-best.npz")
        check("ckpt-best.npz exists", os.path.exists(bp))
        if best_e is not None and os.path.exists(bp):
            pend = np.load(bp)["loop/pending"]
            check("ckpt-best.npz is the best epoch's checkpoint", int(pend[0]) == best_e,
                  f"its pending row is epoch {pend[0]}, want {best_e}")
            ep = os.path.join(run, f"ckpt-e{best_e:06d}.npz")
            if os.path.exists(ep):
                check("a hard link while that checkpoint exists", os.path.samefile(ep, bp))
    if not counts["failed"]:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  files kept in {tmp}")
    done()


if __name__ == "__main__":
    main()
