#!/usr/bin/env python3
"""test_export.py: `mbpo export` and the README's NumPy snippet against the engine.

A tiny Hopper run (3 actions, so the [mu | log sigma] split matters) is trained through $MBPO_BIN,
exported with `mbpo export`, and loaded with numpy: names, dtypes, shapes, sizes, control range,
task and env-version string are checked. The README's "policy-snippet" code block is executed as
written (in a folder holding policy.npz) and its action(x) must equal the engine's deterministic
action, which BUILD/tests/tool_policy_act prints from the checkpoint (sac_act + env_rescale_action),
for a few observations (float32 sums differ in order: tolerance 1e-5). Errors: a folder that is not
a run folder and a corrupt checkpoint make `mbpo export` exit non-zero.
The training run says device=cpu (`mbpo export` itself has no device: it reads the checkpoint).
Prints "N passed, N failed, N skipped" (tests/testlib.py); exits non-zero on failure.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import counts, done, run_case  # noqa: E402

ROOT = os.environ.get("MBPO_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MBPO_BIN") or os.path.join(ROOT, "build", "mbpo")
TOOL = os.path.join(os.path.dirname(BIN), "tests", "tool_policy_act")
ARGS = ("hopper steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 "
        "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "
        "eval.episodes=1 max_path_length=100 checkpoint.every=1 rollout.min_epoch=0 "
        "rollout.max_epoch=2 rollout.max_length=3 device=cpu").split()  # the CPU reference

try:
    import numpy as np
except ImportError:
    np = None

tmp = tempfile.mkdtemp(prefix="mbpo-export-")
run = os.path.join(tmp, "hopper-x-s0")
state = {}


def run_cmd(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def t_train_export():
    if np is None:
        return "numpy is not installed"
    if not (os.access(BIN, os.X_OK) and os.access(TOOL, os.X_OK)):
        return f"{BIN} or {TOOL} is not built"
    r = run_cmd([BIN, "train"] + ARGS + [f"run_dir={tmp}", "tag=x"])
    assert r.returncode == 0, f"training failed: {r.stderr[-2000:]}"
    out = os.path.join(tmp, "snip", "policy.npz")
    os.makedirs(os.path.dirname(out))
    r = run_cmd([BIN, "export", run, "-o", out])
    assert r.returncode == 0, f"export failed: {r.stderr}"
    p = np.load(out)
    od, ad, H = 11, 3, 32
    want = {"W0": (od, H), "b0": (H,), "W1": (H, H), "b1": (H,), "W2": (H, 2 * ad), "b2": (2 * ad,)}
    for k, sh in want.items():
        assert p[k].dtype == np.float32 and p[k].shape == sh, f"{k}: {p[k].dtype} {p[k].shape}"
    assert int(p["obs_dim"]) == od and int(p["act_dim"]) == ad and int(p["hidden_layers"]) == 2
    assert p["action_low"].shape == (ad,) and np.all(p["action_low"] == -1) and np.all(p["action_high"] == 1)
    assert float(p["log_std_min"]) == -20 and float(p["log_std_max"]) == 2
    assert bytes(p["task"]).decode() == "hopper"
    ver = run_cmd([BIN, "--version"]).stdout
    assert bytes(p["env_version"]).decode() in ver, f"env_version {bytes(p['env_version'])} vs {ver}"
    # the weights are the checkpoint's policy vector, layer by layer (nn.h: W [in][out], then b)
    ck = open(os.path.join(run, "checkpoint.latest")).read().strip()
    flat = np.load(os.path.join(run, ck))["sac/policy"]
    mine = np.concatenate([p[k].ravel() for k in ("W0", "b0", "W1", "b1", "W2", "b2")])
    assert mine.shape == flat.shape and np.array_equal(mine, flat), "weights differ from sac/policy"
    state["npz"] = out


def t_readme_snippet():
    if "npz" not in state:
        return "no export from the previous case"
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- policy-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no policy-snippet block"
    ns = {}
    cwd = os.getcwd()
    os.chdir(os.path.dirname(state["npz"]))
    try:
        exec(compile(m.group(1), "README.md snippet", "exec"), ns)
    finally:
        os.chdir(cwd)
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, (6, 11)).astype(np.float32)
    obs[0] = 0
    obs[5] *= 20  # saturating tanh
    inp = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in obs) + "\n"
    r = run_cmd([TOOL, run], input=inp)
    assert r.returncode == 0, f"tool_policy_act failed: {r.stderr}"
    eng = np.array([[float(v) for v in line.split()] for line in r.stdout.strip().splitlines()])
    assert eng.shape == (6, 6), f"tool printed {eng.shape}"
    got = np.array([ns["action"](o) for o in obs])
    batch = ns["action"](obs)
    assert np.allclose(got, eng[:, 3:], rtol=0, atol=1e-5), f"snippet {got} vs engine {eng[:, 3:]}"
    assert np.allclose(batch, got, rtol=0, atol=1e-6), "batch and row-by-row actions differ"
    assert np.abs(got).max() > 1e-3, "actions are all zero: nothing was compared"


def t_errors():
    if np is None or not os.access(BIN, os.X_OK):
        return "numpy or the binary is missing"
    r = run_cmd([BIN, "export", tmp, "-o", os.path.join(tmp, "n.npz")])
    assert r.returncode != 0 and "run folder" in r.stderr, f"not a run folder: rc {r.returncode} {r.stderr}"
    if "npz" not in state:
        return "no run from the first case"
    bad = os.path.join(tmp, "bad.npz")
    with open(bad, "wb") as f:
        f.write(open(os.path.join(run, "ckpt-e000000.npz"), "rb").read()[:3000])
    r = run_cmd([BIN, "export", run, f"checkpoint={bad}", "-o", os.path.join(tmp, "n.npz")])
    assert r.returncode != 0 and r.stderr.strip(), f"truncated checkpoint: rc {r.returncode}"
    assert not os.path.exists(os.path.join(tmp, "n.npz")), "an output was written"


run_case("train_export", t_train_export)
run_case("readme_snippet", t_readme_snippet)
run_case("errors", t_errors)
if not counts["failed"]:  # kept for a look after a failure
    shutil.rmtree(tmp, ignore_errors=True)
done()
