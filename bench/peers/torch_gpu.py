#!/usr/bin/env python3
"""torch_gpu.py: the three hot operations of the CUDA backend (bench/bench_gpu.c) in PyTorch on the
same GPU, for the ratios of bench_gpu: eager, with CUDA graphs, and with torch.compile where it works.

    torch_gpu.py [--device cuda|cpu] [--seconds S] [--rows N] [--graph-updates G] [--no-compile]

--device cpu is a smoke test on a machine without a GPU (the graphed and compiled variants are
reported as skipped there). Timing: CUDA-synchronised wall clock, best of 3 rounds of S/3 seconds
each (at least 3 calls per round), after warm-up.

(a) SAC update, Hopper dims (obs 11, act 3), policy obs -> 256 -> 256 -> 6 and twin critics
    (obs + act) -> 256 -> 256 -> 1 (ReLU, float32), batch 256: the same work as torch_sac.py (and
    sac_update): policy sample at s' + target critics -> Bellman target, critic losses, reparameterised
    policy loss with the pre-update critics, temperature loss, all gradients at the pre-update
    parameters, Adam on critics, policy and log alpha (lr 3e-4), Polyak 5e-3. Each update first draws
    its batch on the device as the training loop does: 12 rows from a real pool and 244 from a model
    pool (torch.randint + index_select + cat). Variants, microseconds per update:
      sac_eager_us     plain eager updates;
      sac_graph_us     G updates (default 20, the per-env-step graph of the C side) captured in one
                       torch.cuda.CUDAGraph with static pools, torch.optim.Adam(capturable=True),
                       replayed; time / G;
      sac_compile_us   torch.compile(update, mode="reduce-overhead") (its own CUDA graphs), or the
                       reason it could not be measured in sac_compile_error.
(b) Model minibatch step: E = 7 members as batched matmuls (torch.baddbmm on [E][B][in] with weights
    [E][in][out]), in 14 = 11 + 3 -> 4 x 200 swish -> 2 x 12 (mean, log-variance with the soft
    bounds max_lv - softplus(max_lv - z), min_lv + softplus(. - min_lv)); loss = Gaussian NLL
    (mean over rows and outputs, summed over members) + per-layer weight decay
    (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4; 0.5 sum W^2) + 0.01 (sum max_lv - sum min_lv); Adam lr 1e-3;
    batch 256 per member, one fixed minibatch. model_eager_us, and model_graph_us: G steps captured
    in one graph (an epoch's worth of steps is one graph on the C side), time / G.
(c) One rollout step at N = 100,000 rows (Hopper): normalised [s, a] after the policy forward and a
    tanh-Gaussian sample; ALL 7 members' forward on the same input (one baddbmm per layer over
    [7, N, in], the input expanded, not copied); per-row elite pick (5 elites, uniform); a Gaussian
    sample of the picked member's [reward, delta obs] (gathered first, then sampled: the same
    distribution as sampling all members and picking); s' = s + delta; the Hopper termination rule
    (include/termination.h: finite, s'[0] > 0.7, |s'[1]| < 0.2, |s'[1:]| < 100); all rows appended
    to a preallocated model pool (done flags included). Milliseconds per step:
      rollout_eager_ms  the step above plus the compaction of the surviving rows (boolean mask);
      rollout_graph_ms  the fixed-shape step (no compaction: the next step's rows are masked)
                        captured in one graph.
    And whole k-step rollouts (eager, compaction between steps, start states drawn from a real
    pool), rows x steps per second for k = 1 and 5: rollout_k1_rows_steps_per_s, ..._k5_... .
    The synthetic model is benign (small output weights, log-variance bounds -12 / -8) so that Hopper
    rows survive several steps, as with a trained model; done_frac_k5 says how many ended.

Prints progress lines on stderr and one JSON line on stdout, or {"skipped": reason} when torch (or,
for --device cuda, CUDA) is missing.
"""
import argparse
import json
import math
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--rows", type=int, default=100000)
ap.add_argument("--graph-updates", type=int, default=20)
ap.add_argument("--no-compile", action="store_true")
args = ap.parse_args()

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch not importable: {e.__class__.__name__}: {e}"}))
    sys.exit(0)

CUDA = args.device == "cuda"
if CUDA and not torch.cuda.is_available():
    print(json.dumps({"skipped": f"torch {torch.__version__}: CUDA not available"}))
    sys.exit(0)
dev = torch.device(args.device)
torch.manual_seed(0)
if CUDA:
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 GEMMs, as the C side (TF32 off)
    torch.backends.cudnn.allow_tf32 = False
G = args.graph_updates
res = {"torch": torch.__version__, "device": args.device,
       "gpu": torch.cuda.get_device_name(0) if CUDA else None, "graph_updates": G}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sync():
    if CUDA:
        torch.cuda.synchronize()


def best_time(fn, per_call, seconds):
    """Best seconds per unit (one call = per_call units) over 3 rounds of seconds/3."""
    fn()
    sync()
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            if n >= 3:
                sync()
                t = time.perf_counter() - t0
                if t >= seconds / 3:
                    break
        best = min(best, t / (n * per_call))
    return best


def graph_of(fn, warm=3):
    """Capture fn() into a CUDA graph after warm-up on a side stream (PyTorch's recipe)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(warm):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g


# ---------------------------------------------------------------------------------------------
# (a) SAC update
O, A, H, B = 11, 3, 256, 256
NREAL, NMODEL = 12, 244
gamma, tau, lr, H_bar = 0.99, 5e-3, 3e-4, -1.0 * A
LOG2 = math.log(2.0)


def mlp(i, o, h=H):
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o)).to(dev)


class Pools:
    """A real and a model pool on the device, as the C side's (50,000 real rows, 400,000 model
    rows)."""

    def __init__(self, nreal=50000, nmodel=400000):
        self.r = [torch.randn(nreal, O, device=dev), torch.rand(nreal, A, device=dev) * 2 - 1,
                  torch.randn(nreal, device=dev), torch.randn(nreal, O, device=dev),
                  (torch.rand(nreal, device=dev) < 0.05).float()]
        self.m = [torch.randn(nmodel, O, device=dev), torch.rand(nmodel, A, device=dev) * 2 - 1,
                  torch.randn(nmodel, device=dev), torch.randn(nmodel, O, device=dev),
                  (torch.rand(nmodel, device=dev) < 0.05).float()]

    def batch(self):
        ir = torch.randint(0, self.r[0].shape[0], (NREAL,), device=dev)
        im = torch.randint(0, self.m[0].shape[0], (NMODEL,), device=dev)
        return [torch.cat([a.index_select(0, ir), b.index_select(0, im)], 0) for a, b in zip(self.r, self.m)]


class SAC:
    def __init__(self, capturable):
        self.pi = mlp(O, 2 * A)
        self.q1, self.q2 = mlp(O + A, 1), mlp(O + A, 1)
        self.t1, self.t2 = mlp(O + A, 1), mlp(O + A, 1)
        self.t1.load_state_dict(self.q1.state_dict())
        self.t2.load_state_dict(self.q2.state_dict())
        for p in list(self.t1.parameters()) + list(self.t2.parameters()):
            p.requires_grad_(False)
        self.log_alpha = torch.zeros(1, device=dev, requires_grad=True)
        self.qp = list(self.q1.parameters()) + list(self.q2.parameters())
        self.pp = list(self.pi.parameters())
        self.tp = list(self.t1.parameters()) + list(self.t2.parameters())
        kw = {"capturable": True} if capturable else {}
        self.q_opt = torch.optim.Adam(self.qp, lr=lr, **kw)
        self.pi_opt = torch.optim.Adam(self.pp, lr=lr, **kw)
        self.a_opt = torch.optim.Adam([self.log_alpha], lr=lr, **kw)

    def sample(self, s):
        out = self.pi(s)
        mu, ls = out[:, :A], out[:, A:].clamp(-20.0, 2.0)
        eps = torch.randn_like(mu)
        u = mu + ls.exp() * eps
        logp = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - ls).sum(-1)
        logp = logp - (2.0 * (LOG2 - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), logp

    def update(self, obs, act, rew, nxt, done):
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            an, lpn = self.sample(nxt)
            xn = torch.cat([nxt, an], 1)
            y = rew + gamma * (1 - done) * (torch.min(self.t1(xn), self.t2(xn)).squeeze(1) - alpha * lpn)
        x = torch.cat([obs, act], 1)
        q_loss = 0.5 * (self.q1(x).squeeze(1) - y).pow(2).mean() + 0.5 * (self.q2(x).squeeze(1) - y).pow(2).mean()
        ap_, lp = self.sample(obs)
        xp = torch.cat([obs, ap_], 1)
        pi_loss = (alpha * lp - torch.min(self.q1(xp), self.q2(xp)).squeeze(1)).mean()
        a_loss = -(self.log_alpha * (lp + H_bar).detach()).mean()
        gq = torch.autograd.grad(q_loss, self.qp)
        gp = torch.autograd.grad(pi_loss, self.pp)
        ga = torch.autograd.grad(a_loss, [self.log_alpha])
        for p, g in zip(self.qp, gq):
            p.grad = g
        for p, g in zip(self.pp, gp):
            p.grad = g
        self.log_alpha.grad = ga[0]
        self.q_opt.step()
        self.pi_opt.step()
        self.a_opt.step()
        with torch.no_grad():
            torch._foreach_mul_(self.tp, 1 - tau)
            torch._foreach_add_(self.tp, self.qp, alpha=tau)


pools = Pools()
S = SAC(capturable=False)


def sac_eager():
    S.update(*pools.batch())


res["sac_eager_us"] = round(1e6 * best_time(sac_eager, 1, args.seconds), 2)
log(f"torch SAC update, eager: {res['sac_eager_us']:.1f} us")

if CUDA:
    try:
        Sg = SAC(capturable=True)

        def sac_g():
            for _ in range(G):
                Sg.update(*pools.batch())

        g = graph_of(sac_g, warm=1)
        res["sac_graph_us"] = round(1e6 * best_time(g.replay, G, args.seconds), 2)
        log(f"torch SAC update, CUDA graph of {G}: {res['sac_graph_us']:.1f} us")
    except Exception as e:  # noqa: BLE001
        res["sac_graph_error"] = f"{e.__class__.__name__}: {e}"[:300]
        log(f"torch SAC CUDA graph failed: {res['sac_graph_error']}")
    if not args.no_compile:
        try:
            Sc = SAC(capturable=True)
            upd = torch.compile(Sc.update, mode="reduce-overhead")

            def sac_c():
                upd(*pools.batch())

            t0 = time.perf_counter()
            for _ in range(5):
                sac_c()
            sync()
            res["sac_compile_warmup_s"] = round(time.perf_counter() - t0, 1)
            res["sac_compile_us"] = round(1e6 * best_time(sac_c, 1, args.seconds), 2)
            log(f"torch SAC update, torch.compile reduce-overhead: {res['sac_compile_us']:.1f} us")
        except Exception as e:  # noqa: BLE001
            res["sac_compile_error"] = f"{e.__class__.__name__}: {e}"[:300]
            log(f"torch.compile of the SAC update failed: {res['sac_compile_error']}")
    else:
        res["sac_compile_error"] = "--no-compile"
else:
    res["sac_graph_error"] = res["sac_compile_error"] = "CUDA graphs need --device cuda"

# ---------------------------------------------------------------------------------------------
# (b) model minibatch step
E, NE, MH, ML, MB = 7, 5, 200, 4, 256
IN, D = O + A, O + 1
WD = [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]


class Ensemble(nn.Module):
    def __init__(self, out_scale=1.0, max_lv=0.5, min_lv=-10.0):
        super().__init__()
        dims = [IN] + [MH] * ML + [2 * D]
        self.W = nn.ParameterList()
        self.b = nn.ParameterList()
        for i in range(ML + 1):
            w = torch.empty(E, dims[i], dims[i + 1])
            nn.init.trunc_normal_(w, std=1 / (2 * dims[i] ** 0.5), a=-1 / dims[i] ** 0.5, b=1 / dims[i] ** 0.5)
            if i == ML:
                w *= out_scale
            self.W.append(nn.Parameter(w))
            self.b.append(nn.Parameter(torch.zeros(E, 1, dims[i + 1])))
        self.max_lv = nn.Parameter(torch.full((D,), max_lv))
        self.min_lv = nn.Parameter(torch.full((D,), min_lv))

    def forward(self, x):
        """x [E][n][in] (may be an expanded view of a shared input) -> mean, log-variance [E][n][D]."""
        for i in range(ML + 1):
            x = torch.baddbmm(self.b[i], x, self.W[i])
            if i < ML:
                x = x * torch.sigmoid(x)
        mean, z = x[..., :D], x[..., D:]
        lv = self.max_lv - F.softplus(self.max_lv - z)
        lv = self.min_lv + F.softplus(lv - self.min_lv)
        return mean, lv

    def loss(self, x, y):
        mean, lv = self(x)
        total = ((mean - y) ** 2 * torch.exp(-lv)).mean(dim=(1, 2)).sum() + lv.mean(dim=(1, 2)).sum()
        for w, wd in zip(self.W, WD):
            total = total + wd * 0.5 * (w ** 2).sum()
        return total + 0.01 * (self.max_lv.sum() - self.min_lv.sum())


def model_setup(capturable):
    m = Ensemble().to(dev)
    kw = {"capturable": True} if capturable else {}
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, **kw)
    x = torch.randn(E, MB, IN, device=dev)
    y = 0.1 * torch.randn(E, MB, D, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        m.loss(x, y).backward()
        opt.step()

    return step


step = model_setup(False)
res["model_eager_us"] = round(1e6 * best_time(step, 1, args.seconds), 2)
log(f"torch model step, eager: {res['model_eager_us']:.1f} us")
if CUDA:
    try:
        step_g = model_setup(True)

        def steps_g():
            for _ in range(G):
                step_g()

        g = graph_of(steps_g, warm=1)
        res["model_graph_us"] = round(1e6 * best_time(g.replay, G, args.seconds), 2)
        log(f"torch model step, CUDA graph of {G}: {res['model_graph_us']:.1f} us")
    except Exception as e:  # noqa: BLE001
        res["model_graph_error"] = f"{e.__class__.__name__}: {e}"[:300]
        log(f"torch model CUDA graph failed: {res['model_graph_error']}")
else:
    res["model_graph_error"] = "CUDA graphs need --device cuda"

# ---------------------------------------------------------------------------------------------
# (c) rollout step at N rows
N = args.rows
torch.set_grad_enabled(False)
pol = mlp(O, 2 * A)
ens = Ensemble(out_scale=0.01, max_lv=-8.0, min_lv=-12.0).to(dev)
elites = torch.arange(NE, device=dev)
REAL = 50000
real_obs = 0.05 * torch.randn(REAL, O, device=dev)
real_obs[:, 0] += 1.25
real_obs[:, 5:] *= 10.0
xin = torch.cat([real_obs, torch.rand(REAL, A, device=dev) * 2 - 1], 1)
mu_in, sd_in = xin.mean(0), xin.std(0, unbiased=False).clamp_min(1e-12)


class MPool:
    def __init__(self, cap):
        self.obs, self.act = torch.empty(cap, O, device=dev), torch.empty(cap, A, device=dev)
        self.rew, self.nxt = torch.empty(cap, device=dev), torch.empty(cap, O, device=dev)
        self.done = torch.empty(cap, device=dev)
        self.cap, self.ptr = cap, 0

    def add(self, s, a, r, s2, d, at=None):
        n, j = s.shape[0], (self.ptr if at is None else at)
        self.obs[j:j + n] = s
        self.act[j:j + n] = a
        self.rew[j:j + n] = r
        self.nxt[j:j + n] = s2
        self.done[j:j + n] = d
        if at is None:
            self.ptr = (j + n) % self.cap


def hopper_done(s):
    ok = torch.isfinite(s).all(1) & (s[:, 1:].abs() < 100).all(1) & (s[:, 0] > 0.7) & (s[:, 1].abs() < 0.2)
    return ~ok


def one_step(s):
    """One rollout step of rows s [n][O]: returns a, r, s', done (float)."""
    n = s.shape[0]
    out = pol(s)
    mu, ls = out[:, :A], out[:, A:].clamp(-20.0, 2.0)
    a = torch.tanh(mu + ls.exp() * torch.randn_like(mu))
    x = (torch.cat([s, a], 1) - mu_in) / sd_in
    mean, lv = ens(x.unsqueeze(0).expand(E, n, IN))
    pick = elites[torch.randint(0, NE, (n,), device=dev)].view(1, n, 1).expand(1, n, D)
    m1 = torch.gather(mean, 0, pick).squeeze(0)
    lv1 = torch.gather(lv, 0, pick).squeeze(0)
    y = m1 + torch.randn_like(m1) * torch.exp(0.5 * lv1)
    s2 = s + y[:, 1:]
    return a, y[:, 0], s2, hopper_done(s2).float()


mp = MPool(5 * N)
s0 = real_obs[torch.randint(0, REAL, (N,), device=dev)]


def step_eager():
    a, r, s2, d = one_step(s0)
    mp.add(s0, a, r, s2, d, at=0)
    return s2[d == 0]  # the rows that go on (compaction)


res["rollout_eager_ms"] = round(1e3 * best_time(step_eager, 1, args.seconds), 3)
log(f"torch rollout step at {N} rows, eager: {res['rollout_eager_ms']:.2f} ms")
if CUDA:
    try:
        s_static = s0.clone()

        def step_fixed():
            a, r, s2, d = one_step(s_static)
            mp.add(s_static, a, r, s2, d, at=0)

        g = graph_of(step_fixed)
        res["rollout_graph_ms"] = round(1e3 * best_time(g.replay, 1, args.seconds), 3)
        log(f"torch rollout step at {N} rows, CUDA graph: {res['rollout_graph_ms']:.2f} ms")
    except Exception as e:  # noqa: BLE001
        res["rollout_graph_error"] = f"{e.__class__.__name__}: {e}"[:300]
        log(f"torch rollout CUDA graph failed: {res['rollout_graph_error']}")
else:
    res["rollout_graph_error"] = "CUDA graphs need --device cuda"


def rollout(k):
    mp.ptr = 0
    s = real_obs[torch.randint(0, REAL, (N,), device=dev)]
    added = 0
    for _ in range(k):
        a, r, s2, d = one_step(s)
        mp.add(s, a, r, s2, d)
        added += s.shape[0]
        s = s2[d == 0]
        if s.shape[0] == 0:
            break
    return added


for k in (1, 5):
    best, added = 0.0, 0
    rollout(k)
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        added = rollout(k)
        sync()
        best = max(best, added / (time.perf_counter() - t0))
    res[f"rollout_k{k}_rows_steps_per_s"] = round(best, 1)
    res[f"rollout_k{k}_rows_added"] = added
    log(f"torch rollout k={k} at {N} rows: {best:.4g} rows*steps/s ({added} rows added)")
res["done_frac_k5"] = round(float(mp.done[:res["rollout_k5_rows_added"]].mean()), 4)
res["rollout_rows"] = N
print(json.dumps(res))
