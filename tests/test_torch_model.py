#!/usr/bin/env python3
"""test_torch_model.py: one Adam step of the CPU dynamics-model loss (host/cpu/model.c) against the
same step in PyTorch.

build/tests/tool_model_dump writes the model's state (default config with Hopper dims: E 7,
4 x 200 swish, B 256; bounds moved so both soft clamps matter; Adam t = 2 after warm-up steps), the
normaliser and the rows it was fitted on, one [E, B, in] batch, ONE model_step and the state after
(see the tool). This script rebuilds the model in PyTorch in float64 from the float32 dumps (so the
reference carries no float32 error of its own), recomputes the normaliser, the loss of docs/algorithm.md §7

    L = sum_m [mean_{b,d} (mu - y)^2 exp(-lv) + mean_{b,d} lv] + sum_l wd_l 1/2 sum W_l^2
        + coef (sum max_lv - sum min_lv),   lv = soft clamp of the raw output by max_lv, min_lv,

its gradient by autograd, one TF1-form Adam step (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); eps added
to sqrt(v)), and model_predict's mean and soft-clamped log-variance, and compares.

Tolerances (norm = Euclidean norm over the whole tensor):
  normaliser, normalised batch:   ||c - t|| <= 1e-6 ||t||
  loss:                           |c - t| <= 1e-5 |t|
  gradient, per tensor:           ||g_c - g_t|| <= 1e-5 ||g_t||
  parameters after, per tensor:   ||p_c - p_t|| <= 1e-5 ||p_t||       (and Adam m, v after)
  update displacement, per tensor ||(p_c - p0) - (p_t - p0)|| <= 1e-4 ||p_t - p0||
                                  (float32 storage of p limits it: ulp(p) / step ~ 6e-8 / 1e-3)
  prediction mean, log-variance:  ||c - t|| <= 1e-5 ||t||
Prints "N passed, N failed, N skipped"; exits non-zero on failure; skips if torch is missing.
"""
import os
import shutil
import subprocess
import tempfile

from testlib import case, check, done, rel, skip_all

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    skip_all("test_torch_model", f"torch/numpy not importable ({e.__class__.__name__}: {e})")


def split(flat, E, dims, D):
    """model.h layout: per layer W [E][in][out] then b [E][out]; then max_lv [D], min_lv [D]."""
    out, off = [], 0
    for l in range(len(dims) - 1):
        n = E * dims[l] * dims[l + 1]
        out.append((f"W{l}", flat[off:off + n].reshape(E, dims[l], dims[l + 1])))
        off += n
        n = E * dims[l + 1]
        out.append((f"b{l}", flat[off:off + n].reshape(E, dims[l + 1])))
        off += n
    out.append(("max_lv", flat[off:off + D]))
    off += D
    out.append(("min_lv", flat[off:off + D]))
    off += D
    assert off == flat.size, (off, flat.size)
    return out


def forward(T, x, L, D):
    """T: dict of float64 tensors; x [E, B, in] -> mean, soft-clamped log-variance [E, B, D]."""
    h = x
    for l in range(L):
        h = torch.baddbmm(T[f"b{l}"][:, None, :], h, T[f"W{l}"])
        if l < L - 1:
            h = h * torch.sigmoid(h)
    mu, z = h[..., :D], h[..., D:]
    lv = T["max_lv"] - F.softplus(T["max_lv"] - z)
    lv = T["min_lv"] + F.softplus(lv - T["min_lv"])
    return mu, lv


def main():
    root = os.environ.get("MBPO_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # the build folder of the binaries under test: beside $MBPO_BIN (tests/run.sh sets it), else root/build
    build = os.path.dirname(os.environ["MBPO_BIN"]) if os.environ.get("MBPO_BIN") else os.path.join(root, "build")
    tool = os.path.join(build, "tests", "tool_model_dump")
    if not os.access(tool, os.X_OK):
        check("tool", False, f"{tool} not built (make CUDA=0)")
        return
    tmp = tempfile.mkdtemp(prefix="mbpo_model_")
    try:
        r = subprocess.run([tool, tmp], capture_output=True, text=True)
        if r.returncode != 0:
            check("tool", False, f"exit {r.returncode}: {r.stderr.strip()}")
            return
        if os.environ.get("TEST_VERBOSE"):
            print(r.stdout.strip())
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(d):
    ld = lambda n: np.load(os.path.join(d, n + ".npy"))  # noqa: E731
    hyper = ld("hyper")
    obs, act, E, H, layers, B = (int(v) for v in hyper[:6])
    lr, coef, t0, b1, b2, eps = (float(v) for v in hyper[6:12])
    # the optimiser's constants are float32 in C
    b1, b2, eps, lr = (float(np.float32(v)) for v in (b1, b2, eps, lr))
    wd = ld("weight_decay")
    inp, D = obs + act, obs + 1
    dims = [inp] + [H] * layers + [2 * D]
    L = len(dims) - 1
    f64 = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731

    # normaliser: mean and population std (ddof 0) of the rows, std < 1e-12 -> 1
    rows = ld("norm_rows").astype(np.float64)
    mean_t = rows.mean(0)
    std_t = rows.std(0)
    std_t[std_t < 1e-12] = 1.0
    mean_c, std_c = ld("norm_mean").astype(np.float64), ld("norm_std").astype(np.float64)
    with case("normaliser and normalised batch"):
        check("normaliser mean", rel(ld("norm_mean"), mean_t) <= 1e-6, f"rel {rel(ld('norm_mean'), mean_t):.2e}")
        check("normaliser std", rel(ld("norm_std"), std_t) <= 1e-6, f"rel {rel(ld('norm_std'), std_t):.2e}")
        xn_t = (ld("x_raw").astype(np.float64) - mean_c) / std_c
        check("normalised batch", rel(ld("x"), xn_t) <= 1e-6, f"rel {rel(ld('x'), xn_t):.2e}")

    p0 = split(ld("params").astype(np.float64), E, dims, D)
    T = {k: f64(v).requires_grad_(True) for k, v in p0}
    x, y = f64(ld("x")), f64(ld("y"))
    mu, lv = forward(T, x, L, D)
    nll = (((mu - y) ** 2) * torch.exp(-lv)).mean(dim=(1, 2)) + lv.mean(dim=(1, 2))
    loss = nll.sum()
    for l in range(L):
        loss = loss + float(wd[l]) * 0.5 * (T[f"W{l}"] ** 2).sum()
    loss = loss + coef * (T["max_lv"].sum() - T["min_lv"].sum())
    loss.backward()
    lc, lt = float(ld("loss")[0]), float(loss.item())
    with case("loss vs torch"):
        check("loss", abs(lc - lt) <= 1e-5 * abs(lt), f"C {lc:.8f}, torch {lt:.8f}, rel {abs(lc - lt) / abs(lt):.2e}")

    grads_c = dict(split(ld("grads").astype(np.float64), E, dims, D))
    worst = 0.0
    with case("gradients vs torch autograd"):
        for k, _ in p0:
            e = rel(grads_c[k], T[k].grad.numpy())
            worst = max(worst, e)
            check(f"grad {k}", e <= 1e-5, f"rel {e:.2e}")

    # TF1 Adam, step t0 + 1, from the dumped moments
    t = t0 + 1
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    m0 = dict(split(ld("adam_m").astype(np.float64), E, dims, D))
    v0 = dict(split(ld("adam_v").astype(np.float64), E, dims, D))
    pa = dict(split(ld("params_after").astype(np.float64), E, dims, D))
    ma = dict(split(ld("adam_m_after").astype(np.float64), E, dims, D))
    va = dict(split(ld("adam_v_after").astype(np.float64), E, dims, D))
    wp = wd_ = 0.0
    with case("Adam step vs TF1 Adam (parameters, displacement, moments)"):
        for k, v in p0:
            g = T[k].grad.numpy()
            m1 = b1 * m0[k] + (1 - b1) * g
            v1 = b2 * v0[k] + (1 - b2) * g * g
            p1 = v - lr_t * m1 / (np.sqrt(v1) + eps)
            ep, ed = rel(pa[k], p1), rel(pa[k] - v, p1 - v)
            wp, wd_ = max(wp, ep), max(wd_, ed)
            check(f"param {k} after", ep <= 1e-5, f"rel {ep:.2e}")
            check(f"step {k}", ed <= 1e-4, f"rel {ed:.2e}")
            check(f"adam m {k}", rel(ma[k], m1) <= 1e-5, f"rel {rel(ma[k], m1):.2e}")
            check(f"adam v {k}", rel(va[k], v1) <= 1e-5, f"rel {rel(va[k], v1):.2e}")

    # model_predict with the parameters after the step, shared input [N, in]
    Ta = {k: f64(v) for k, v in pa.items()}
    xp = np.concatenate([ld("pred_obs"), ld("pred_act")], 1).astype(np.float64)
    xp = f64((xp - mean_c) / std_c)
    with torch.no_grad():
        mu_p, lv_p = forward(Ta, xp.unsqueeze(0).expand(E, -1, -1), L, D)
    em, el = rel(ld("pred_mean"), mu_p.numpy()), rel(ld("pred_logvar"), lv_p.numpy())
    with case("model_predict vs torch"):
        check("predict mean", em <= 1e-5, f"rel {em:.2e}")
        check("predict logvar", el <= 1e-5, f"rel {el:.2e}")
    print(f"model step vs torch (float64): loss rel {abs(lc - lt) / abs(lt):.1e}, worst tensor gradient rel "
          f"{worst:.1e}, parameters after {wp:.1e}, step {wd_:.1e}, predict {max(em, el):.1e}")


main()
done()
