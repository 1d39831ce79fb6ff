#!/usr/bin/env python3
"""torch_sac.py: the SAC update of bench/bench_sac.c in PyTorch on the CPU, for a side-by-side ratio.

    python3 bench/peers/torch_sac.py [--threads N] [--seconds S]

Same work as the C side: Hopper dims (obs 11, act 3), policy obs -> 256 -> 256 -> 6 and twin
critics (obs + act) -> 256 -> 256 -> 1 (ReLU, float32), batch 256; one update = policy sample at s'
+ target critics -> Bellman target; critic losses (0.5 MSE each); reparameterised policy loss with
the pre-update critics and alpha; temperature loss on log alpha; gradients of all three taken at the
pre-update parameters (simultaneous); Adam steps (torch.optim.Adam, lr 3e-4) on critics, policy and
log alpha; Polyak (tau 5e-3) on the target critics. Noise from torch.randn (the generator differs
from the C side's Philox; the amount of work is the same). Also stochastic actions for 100,000 rows.

torch.set_num_threads(N) with N = the threads the C side uses (passed by bench_sac), for fairness.
Prints one JSON line: {"updates_per_s": ..., "act_rows_per_s": ..., "threads": N, "torch": version}
or {"skipped": "reason"} when torch is not importable.
"""
import argparse
import json
import math
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--seconds", type=float, default=3.0)
args = ap.parse_args()

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch not importable: {e.__class__.__name__}: {e}"}))
    sys.exit(0)

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)
O, A, H, B, ROWS = 11, 3, 256, 256, 100000
gamma, tau, lr, H_bar = 0.99, 5e-3, 3e-4, -1.0


def mlp(i, o):
    return nn.Sequential(nn.Linear(i, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, o))


pi = mlp(O, 2 * A)
q1, q2 = mlp(O + A, 1), mlp(O + A, 1)
t1, t2 = mlp(O + A, 1), mlp(O + A, 1)
t1.load_state_dict(q1.state_dict())
t2.load_state_dict(q2.state_dict())
for p in list(t1.parameters()) + list(t2.parameters()):
    p.requires_grad_(False)
log_alpha = torch.zeros(1, requires_grad=True)
q_params = list(q1.parameters()) + list(q2.parameters())
pi_params = list(pi.parameters())
q_opt = torch.optim.Adam(q_params, lr=lr)
pi_opt = torch.optim.Adam(pi_params, lr=lr)
a_opt = torch.optim.Adam([log_alpha], lr=lr)
LOG2 = math.log(2.0)


def sample(s):
    out = pi(s)
    mu, ls = out[:, :A], out[:, A:].clamp(-20.0, 2.0)
    std = ls.exp()
    eps = torch.randn_like(mu)
    u = mu + std * eps
    logp = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - ls).sum(-1)
    logp = logp - (2.0 * (LOG2 - u - F.softplus(-2.0 * u))).sum(-1)
    return torch.tanh(u), logp


def update(obs, act, rew, nxt, done):
    alpha = log_alpha.exp().detach()
    with torch.no_grad():
        an, lpn = sample(nxt)
        xn = torch.cat([nxt, an], 1)
        y = rew + gamma * (1 - done) * (torch.min(t1(xn), t2(xn)).squeeze(1) - alpha * lpn)
    x = torch.cat([obs, act], 1)
    q_loss = 0.5 * (q1(x).squeeze(1) - y).pow(2).mean() + 0.5 * (q2(x).squeeze(1) - y).pow(2).mean()
    ap_, lp = sample(obs)
    xp = torch.cat([obs, ap_], 1)
    pi_loss = (alpha * lp - torch.min(q1(xp), q2(xp)).squeeze(1)).mean()
    a_loss = -(log_alpha * (lp + H_bar).detach()).mean()
    gq = torch.autograd.grad(q_loss, q_params)
    gp = torch.autograd.grad(pi_loss, pi_params)
    ga = torch.autograd.grad(a_loss, [log_alpha])
    for p, g in zip(q_params, gq):
        p.grad = g
    for p, g in zip(pi_params, gp):
        p.grad = g
    log_alpha.grad = ga[0]
    q_opt.step()
    pi_opt.step()
    a_opt.step()
    with torch.no_grad():
        for t, q in ((t1, q1), (t2, q2)):
            for pt, pq in zip(t.parameters(), q.parameters()):
                pt.mul_(1 - tau).add_(pq, alpha=tau)


def act(s):
    out = pi(s)
    mu, ls = out[:, :A], out[:, A:].clamp(-20.0, 2.0)
    return torch.tanh(mu + ls.exp() * torch.randn_like(mu))


batches = [(torch.randn(B, O), torch.rand(B, A) * 2 - 1, torch.randn(B), torch.randn(B, O),
            (torch.rand(B) < 0.05).float()) for _ in range(8)]
for i in range(20):
    update(*batches[i % 8])
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < args.seconds:
    for _ in range(10):
        update(*batches[n % 8])
        n += 1
ups = n / (time.perf_counter() - t0)

obs = torch.randn(ROWS, O)
with torch.no_grad():
    act(obs)
    best, spent, calls = 1e30, 0.0, 0
    while spent < args.seconds / 2 or calls < 3:
        a0 = time.perf_counter()
        act(obs)
        d = time.perf_counter() - a0
        spent, calls, best = spent + d, calls + 1, min(best, d)

print(json.dumps({"updates_per_s": round(ups, 2), "act_rows_per_s": round(ROWS / best, 1),
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "note": "torch.optim.Adam (PyTorch eps placement), torch.randn noise"}))
