#!/usr/bin/env python3
"""torch_rollout.py: the branched model rollout of bench/bench_rollout.c (docs/algorithm.md §6) in PyTorch on
the CPU, done the way the official code does it, for a side-by-side ratio.

    torch_rollout.py [--threads N] [--rows B] [--reps R] [--term hopper|halfcheetah] [--real N]

Hopper dims (obs 11, act 3), float32, random weights (the amount of work does not depend on them):
policy obs -> 256 -> 256 -> 6 (ReLU), model E 7 members, [s, a] (normalised) -> 4 x 200 swish ->
24, 5 elites. One rollout of B rows and k steps from a real pool of N synthetic rows into a
preallocated model pool of capacity B k:
  start states: B uniform indices into the real pool, gathered;
  per step: policy forward + tanh-Gaussian sample for the current rows; ALL 7 members' forward on
  the normalised [s, a] (one torch.baddbmm per layer over [7, rows, in], swish); soft-clamped
  log-variance; mean[..., 1:] += s; a Gaussian sample of every member (7 rows D normals); per-row
  elite pick (torch.gather); r, s' from the picked member; the termination rule on s'; all rows
  appended to the model pool; rows with done removed (boolean mask), stop when none remain.
The member forward is timed whole-batch (as the official TF code feeds the whole batch) and in
chunks of 1024 rows (as the PyTorch ports predict); the faster one is the headline figure.
"picked" figures: a second variant that runs only each row's picked member (rows grouped by member,
index_select, addmm per layer, scatter back) and samples only that member: the C engine's method.
Figures are rows*steps per second (rows appended / seconds), best of R rollouts, for k = 1 and 5.
Progress lines, then one JSON object on the last line; {"skipped": ...} when torch is missing.
"""
import argparse
import json
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--rows", type=int, default=100000)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--term", choices=["hopper", "halfcheetah"], default="halfcheetah")
ap.add_argument("--real", type=int, default=50000)
args = ap.parse_args()

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch not importable: {e.__class__.__name__}"}))
    sys.exit(0)

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)
torch.set_grad_enabled(False)

OBS, ACT, E, NE, H, LAYERS, PH = 11, 3, 7, 5, 200, 4, 256
IN, D = OBS + ACT, OBS + 1
B = args.rows

# policy (ReLU MLP, [mu | log sigma])
pdims = [OBS, PH, PH, 2 * ACT]
pW = [torch.randn(pdims[i], pdims[i + 1]) / pdims[i] ** 0.5 for i in range(3)]
pb = [torch.zeros(pdims[i + 1]) for i in range(3)]

# ensemble model, weights [E, in, out]
mdims = [IN] + [H] * LAYERS + [2 * D]
mW = [torch.randn(E, mdims[i], mdims[i + 1]) / (2 * mdims[i] ** 0.5) for i in range(LAYERS + 1)]
mb = [torch.zeros(E, 1, mdims[i + 1]) for i in range(LAYERS + 1)]
max_lv = torch.full((D,), 0.5)
min_lv = torch.full((D,), -10.0)
elites = torch.tensor([0, 1, 2, 3, 4])

# real pool: Hopper-like observations (torso height ~1.25, small pitch)
real_obs = 0.1 * torch.randn(args.real, OBS)
real_obs[:, 0] += 1.25
real_obs[:, 5:] *= 10.0
real_act = torch.rand(args.real, ACT) * 2 - 1
xin = torch.cat([real_obs, real_act], 1)
mu_in, sd_in = xin.mean(0), xin.std(0, unbiased=False).clamp_min(1e-12)


def policy_act(s):
    h = s
    for i in range(3):
        h = torch.addmm(pb[i], h, pW[i])
        if i < 2:
            h = F.relu(h)
    mu, ls = h[:, :ACT], h[:, ACT:].clamp(-20.0, 2.0)
    return torch.tanh(mu + ls.exp() * torch.randn_like(mu))


def soft_clamp(z):
    lv = max_lv - F.softplus(max_lv - z)
    return min_lv + F.softplus(lv - min_lv)


def members_forward(x, chunk):
    """All members on x [n, IN] (normalised): mean, logvar [E, n, D]."""
    n = x.shape[0]
    step = n if chunk <= 0 else chunk
    means, lvs = [], []
    for i in range(0, n, step):
        h = x[i:i + step].unsqueeze(0).expand(E, -1, -1)
        for l in range(LAYERS + 1):
            h = torch.baddbmm(mb[l], h, mW[l])
            if l < LAYERS:
                h = F.silu(h)
        means.append(h[..., :D])
        lvs.append(soft_clamp(h[..., D:]))
    if len(means) == 1:
        return means[0], lvs[0]
    return torch.cat(means, 1), torch.cat(lvs, 1)


def picked_forward(x, pick):
    """Each row's picked member only: mean, logvar [n, D]."""
    n = x.shape[0]
    mean, lv = torch.empty(n, D), torch.empty(n, D)
    for m in elites.tolist():
        rows = (pick == m).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        h = x.index_select(0, rows)
        for l in range(LAYERS + 1):
            h = torch.addmm(mb[l][m], h, mW[l][m])
            if l < LAYERS:
                h = F.silu(h)
        mean.index_copy_(0, rows, h[:, :D])
        lv.index_copy_(0, rows, soft_clamp(h[:, D:]))
    return mean, lv


def termination(s):
    if args.term == "halfcheetah":
        return torch.zeros(s.shape[0], dtype=torch.bool)
    ok = torch.isfinite(s).all(1) & (s[:, 1:].abs() < 100).all(1) & (s[:, 0] > 0.7) & (s[:, 1].abs() < 0.2)
    return ~ok


class Pool:
    def __init__(self, cap):
        self.obs, self.act = torch.empty(cap, OBS), torch.empty(cap, ACT)
        self.rew, self.nxt, self.done = torch.empty(cap), torch.empty(cap, OBS), torch.empty(cap)
        self.cap, self.ptr = cap, 0

    def add(self, s, a, r, s2, d):
        n = s.shape[0]
        j = self.ptr
        self.obs[j:j + n] = s
        self.act[j:j + n] = a
        self.rew[j:j + n] = r
        self.nxt[j:j + n] = s2
        self.done[j:j + n] = d
        self.ptr = (j + n) % self.cap


def rollout(k, pool, mode, chunk=0):
    pool.ptr = 0
    s = real_obs[torch.randint(0, args.real, (B,))]
    added = 0
    for _ in range(k):
        n = s.shape[0]
        a = policy_act(s)
        x = (torch.cat([s, a], 1) - mu_in) / sd_in
        if mode == "all":
            mean, lv = members_forward(x, chunk)
            mean[:, :, 1:] += s
            y = mean + torch.randn(E, n, D) * torch.exp(0.5 * lv)
            pick = elites[torch.randint(0, NE, (n,))]
            y = torch.gather(y, 0, pick.view(1, n, 1).expand(1, n, D)).squeeze(0)
        else:
            pick = elites[torch.randint(0, NE, (n,))]
            mean, lv = picked_forward(x, pick)
            mean[:, 1:] += s
            y = mean + torch.randn(n, D) * torch.exp(0.5 * lv)
        r, s2 = y[:, 0], y[:, 1:]
        d = termination(s2)
        pool.add(s, a, r, s2, d.float())
        added += n
        keep = ~d
        if not bool(keep.any()):
            break
        s = s2[keep]
    return added


def best_rate(k, mode, chunk=0):
    pool = Pool(B * k)
    best = 0.0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        added = rollout(k, pool, mode, chunk)
        best = max(best, added / (time.perf_counter() - t0))
    return best


rollout(1, Pool(B), "all", 1024)  # warm-up
res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": B, "term": args.term,
       "reps": args.reps}
whole = best_rate(1, "all", 0)
chunked = best_rate(1, "all", 1024)
print(f"torch all members k=1: whole batch {whole:.0f}, chunks of 1024 {chunked:.0f} rows*steps/s", flush=True)
chunk = 0 if whole >= chunked else 1024
res["all_k1_whole_batch"] = round(whole, 1)
res["all_k1_chunk1024"] = round(chunked, 1)
res["chunk_used"] = chunk
res["all_k1"] = round(max(whole, chunked), 1)
res["all_k5"] = round(best_rate(5, "all", chunk), 1)
print(f"torch all members k=5: {res['all_k5']:.0f} rows*steps/s (chunk {chunk or 'whole'})", flush=True)
res["picked_k1"] = round(best_rate(1, "picked"), 1)
res["picked_k5"] = round(best_rate(5, "picked"), 1)
print(f"torch picked member only: k=1 {res['picked_k1']:.0f}, k=5 {res['picked_k5']:.0f} rows*steps/s", flush=True)
print(json.dumps(res))
