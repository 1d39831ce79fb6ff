#!/usr/bin/env python3
"""test_torch_sac.py: one CPU SAC update (host/cpu/sac.c) against the same update in PyTorch.

BUILD/tests/tool_sac_dump (BUILD = the folder of $MBPO_BIN, else $MBPO_ROOT/build) writes the agent's state (after 3 warm-up updates and perturbations: see
the tool), a batch of 256 rows, the two noise tensors, and the state after ONE sac_update. This
script builds the same networks in PyTorch (float32) from those weights, computes the three losses
with autograd (simultaneous: all at the pre-update parameters), takes a TF1-form Adam step written
here (eps added after the bias-corrected lr) and the Polyak step, and compares.

Tolerances (per tensor, float32 on both sides):
  gradients:            ||g_c - g_t||_2 <= 1e-5 ||g_t||_2
  parameters after:     ||p_c - p_t||_2 <= 1e-5 ||p_t||_2     (policy, q, q_target, log alpha, Adam m, v)
  update displacement:  ||(p_c - p0) - (p_t - p0)||_2 <= 1e-4 ||p_t - p0||_2   (the step itself)
  losses/statistics:    |s_c - s_t| <= 1e-5 max(1, |s_t|)
Prints "N passed, N failed, N skipped"; exits non-zero on failure.
"""
import math
import os
import shutil
import subprocess
import tempfile

from testlib import case, check, done, rel, skip_all

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001
    skip_all("test_torch_sac", f"torch/numpy not importable ({e.__class__.__name__}: {e})")


def unflatten(flat, E, dims):
    """nn.h layout: per layer W [E][in][out], then b [E][out]."""
    out, off = [], 0
    for i, o in zip(dims[:-1], dims[1:]):
        W = flat[off:off + E * i * o].reshape(E, i, o)
        off += E * i * o
        b = flat[off:off + E * o].reshape(E, o)
        off += E * o
        out += [W, b]
    assert off == flat.size, (off, flat.size)
    return out


def flatten(ts):
    return np.concatenate([t.detach().numpy().ravel() for t in ts])


def mlp(params, x, member):
    """ReLU MLP of one member; params = [W0, b0, W1, b1, ...] with a leading member axis."""
    n = len(params) // 2
    for l in range(n):
        x = x @ params[2 * l][member] + params[2 * l + 1][member]
        if l < n - 1:
            x = torch.relu(x)
    return x


def main():
    root = os.environ.get("MBPO_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    # the build folder of the binaries under test: beside $MBPO_BIN (tests/run.sh sets it, e.g.
    # build-san/mbpo), else $MBPO_ROOT/build
    build = os.path.dirname(os.environ["MBPO_BIN"]) if os.environ.get("MBPO_BIN") else os.path.join(root, "build")
    tool = os.path.join(build, "tests", "tool_sac_dump")
    if not os.path.exists(tool):
        check("tool", False, f"{tool} not found (build first: make CUDA=0)")
        done()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="mbpo_sac_")
    r = subprocess.run([tool, tmp], capture_output=True, text=True)
    if r.returncode != 0:
        check("tool", False, f"exit {r.returncode}: {r.stderr.strip()}")
        done()
    ld = lambda n: np.load(os.path.join(tmp, n + ".npy"))  # noqa: E731
    h = ld("hyper")
    O, A, H, NL, B = (int(v) for v in h[:5])
    lr, gamma, tau, H_bar, rs = (float(np.float32(v)) for v in h[5:10])
    t0 = int(h[10])
    dims_pi = [O] + [H] * NL + [2 * A]
    dims_q = [O + A] + [H] * NL + [1]
    T = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731

    pi = [T(a).requires_grad_() for a in unflatten(ld("pi"), 1, dims_pi)]
    q = [T(a).requires_grad_() for a in unflatten(ld("q"), 2, dims_q)]
    qt = [T(a) for a in unflatten(ld("qt"), 2, dims_q)]
    log_alpha = T(ld("log_alpha")).requires_grad_()
    obs, act, next_obs = T(ld("obs")), T(ld("act")), T(ld("next_obs"))
    rew, dn = T(ld("rew")), T(ld("done"))
    eps_n, eps = T(ld("eps_next")), T(ld("eps"))

    with torch.no_grad():
        raw = mlp(pi, obs, 0)[:, A]
        n_above = int((raw > 2.0).sum())
    with case("the batch exercises the log sigma clip"):
        check("clip exercised", 0 < n_above < B, f"{n_above} of {B} rows above the log sigma clip")

    def sample(s, e):
        out = mlp(pi, s, 0)
        mu, ls = out[:, :A], torch.clamp(out[:, A:], -20.0, 2.0)
        std = torch.exp(ls)
        u = mu + std * e
        a = torch.tanh(u)
        logp = torch.distributions.Normal(mu, std).log_prob(u).sum(-1)
        logp = logp - (2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))).sum(-1)
        return a, logp

    alpha = torch.exp(log_alpha).detach()
    with torch.no_grad():
        a_n, logp_n = sample(next_obs, eps_n)
        xn = torch.cat([next_obs, a_n], 1)
        qmin_n = torch.min(mlp(qt, xn, 0), mlp(qt, xn, 1)).squeeze(1)
        y = rs * rew + gamma * (1.0 - dn) * (qmin_n - alpha * logp_n)
    xsa = torch.cat([obs, act], 1)
    q1, q2 = mlp(q, xsa, 0).squeeze(1), mlp(q, xsa, 1).squeeze(1)
    q1_loss = 0.5 * ((q1 - y) ** 2).mean()
    q2_loss = 0.5 * ((q2 - y) ** 2).mean()
    g_q = torch.autograd.grad(q1_loss + q2_loss, q)

    a_p, logp = sample(obs, eps)
    xsp = torch.cat([obs, a_p], 1)
    qmin_p = torch.min(mlp(q, xsp, 0), mlp(q, xsp, 1)).squeeze(1)
    pi_loss = (alpha * logp - qmin_p).mean()
    g_pi = torch.autograd.grad(pi_loss, pi, retain_graph=True)
    alpha_loss = -(log_alpha * (logp + H_bar).detach()).mean()
    g_alpha = torch.autograd.grad(alpha_loss, [log_alpha])

    # gradients and statistics
    with case("gradients vs torch autograd"):
        grads_vs_torch(ld, g_pi, g_q, g_alpha)
    st = ld("stats")
    want = [q1_loss.item(), q2_loss.item(), pi_loss.item(), alpha.item(), alpha_loss.item(),
            -logp.mean().item(), 0.5 * (q1.mean().item() + q2.mean().item())]
    names = ["q1_loss", "q2_loss", "pi_loss", "alpha", "alpha_loss", "entropy", "q_mean"]
    with case("update statistics vs torch"):
        for n, c, t in zip(names, st, want):
            check("stat " + n, abs(c - t) <= 1e-5 * max(1.0, abs(t)), f"C {c:.8g}, torch {t:.8g}")
    with case("Adam and Polyak step vs torch (parameters, displacement, moments)"):
        step_vs_torch(ld, pi, q, log_alpha, g_pi, g_q, g_alpha, lr, tau, t0, T)
    shutil.rmtree(tmp, ignore_errors=True)
    done()


def grads_vs_torch(ld, g_pi, g_q, g_alpha):
    check("grad_pi", rel(ld("grad_pi"), flatten(g_pi)) <= 1e-5, f"rel {rel(ld('grad_pi'), flatten(g_pi)):.2e}")
    check("grad_q", rel(ld("grad_q"), flatten(g_q)) <= 1e-5, f"rel {rel(ld('grad_q'), flatten(g_q)):.2e}")
    check("grad_alpha", rel(ld("grad_alpha"), flatten(g_alpha)) <= 1e-5,
          f"rel {rel(ld('grad_alpha'), flatten(g_alpha)):.2e}")


def step_vs_torch(ld, pi, q, log_alpha, g_pi, g_q, g_alpha, lr, tau, t0, T):
    # TF1 Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps)
    b1, b2, e = np.float32(0.9), np.float32(0.999), 1e-8
    t = t0 + 1
    lr_t = float(lr * math.sqrt(1.0 - float(b2) ** t) / (1.0 - float(b1) ** t))

    def adam(p, g, m, v):
        m = float(b1) * m + (1.0 - float(b1)) * g
        v = float(b2) * v + (1.0 - float(b2)) * g * g
        return p - lr_t * m / (torch.sqrt(v) + e), m, v

    new = {}
    for name, params, grads in (("pi", pi, g_pi), ("q", q, g_q), ("alpha", [log_alpha], g_alpha)):
        p0 = torch.tensor(np.concatenate([x.detach().numpy().ravel() for x in params]))
        g = torch.cat([x.reshape(-1) for x in grads])
        m0, v0 = T(ld(f"adam_{name}_m")), T(ld(f"adam_{name}_v"))
        new[name] = (p0,) + adam(p0, g, m0, v0)
    qt_new = tau * new["q"][1] + (1.0 - tau) * torch.tensor(ld("qt"))

    def compare(label, c_after, t_after, before):
        r1 = rel(c_after, t_after.numpy())
        check(label, r1 <= 1e-5, f"||C - torch|| / ||torch|| = {r1:.2e}")
        if before is not None:
            r2 = rel(c_after - before, (t_after - torch.tensor(before)).numpy())
            check(label + " step", r2 <= 1e-4, f"||dC - dtorch|| / ||dtorch|| = {r2:.2e}")

    compare("policy", ld("pi_after"), new["pi"][1], ld("pi"))
    compare("q", ld("q_after"), new["q"][1], ld("q"))
    compare("q_target", ld("qt_after"), qt_new, ld("qt"))
    compare("log_alpha", ld("log_alpha_after"), new["alpha"][1], ld("log_alpha"))
    for name in ("pi", "q", "alpha"):
        compare(f"adam_{name}_m", ld(f"adam_{name}_m_after"), new[name][2], None)
        compare(f"adam_{name}_v", ld(f"adam_{name}_v_after"), new[name][3], None)


main()
