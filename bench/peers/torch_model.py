#!/usr/bin/env python3
"""torch_model.py: the work of bench/bench_model.c done in PyTorch on the CPU, the way PyTorch MBPO
ports write the model (Xingyu-Lin/mbpo_pytorch's EnsembleModel: batched [E, in, out] weights with
torch.bmm, swish, learned max/min log-variance with the soft clamp, per-layer weight decay as a loss
term, torch.optim.Adam; predictions in chunks of 1024 rows repeated over the members).

    torch_model.py [--threads N] [--seconds S]

Measures, float32: minibatch steps per second (E 7, obs 11 + act 3 -> 4 x 200 -> 24, batch 256 per
member; forward, loss, backward, Adam step), best of 3 rounds of S seconds; prediction rows per
second for 100,000 rows (mean and clamped log-variance of all members), best of 3 calls. Prints
progress lines, then one JSON object on the last line. Without torch it prints a JSON object with
"skipped".
"""
import argparse
import json
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--seconds", type=float, default=2.0)
args = ap.parse_args()

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch not importable: {e.__class__.__name__}"}))
    sys.exit(0)

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)

OBS, ACT, E, H, LAYERS, B, ROWS = 11, 3, 7, 200, 4, 256, 100000
IN, D = OBS + ACT, OBS + 1
WD = [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]


class EnsembleFC(nn.Module):
    def __init__(self, fan_in, fan_out, wd):
        super().__init__()
        self.wd = wd
        self.weight = nn.Parameter(torch.empty(E, fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(E, fan_out))
        nn.init.trunc_normal_(self.weight, std=1 / (2 * fan_in ** 0.5), a=-1 / fan_in ** 0.5, b=1 / fan_in ** 0.5)

    def forward(self, x):
        return torch.baddbmm(self.bias[:, None, :], x, self.weight)


class EnsembleModel(nn.Module):
    def __init__(self):
        super().__init__()
        dims = [IN] + [H] * LAYERS + [2 * D]
        self.layers = nn.ModuleList(EnsembleFC(dims[i], dims[i + 1], WD[i]) for i in range(len(dims) - 1))
        self.max_logvar = nn.Parameter(torch.full((1, D), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, D), -10.0))

    def forward(self, x):
        for i, l in enumerate(self.layers):
            x = l(x)
            if i < len(self.layers) - 1:
                x = x * torch.sigmoid(x)
        mean, z = x[..., :D], x[..., D:]
        lv = self.max_logvar - F.softplus(self.max_logvar - z)
        lv = self.min_logvar + F.softplus(lv - self.min_logvar)
        return mean, lv

    def loss(self, x, y):
        mean, lv = self(x)
        inv = torch.exp(-lv)
        total = ((mean - y) ** 2 * inv).mean(dim=(1, 2)).sum() + lv.mean(dim=(1, 2)).sum()
        for l in self.layers:
            total = total + l.wd * 0.5 * (l.weight ** 2).sum()
        return total + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())


model = EnsembleModel()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(E, B, IN)
y = 0.1 * torch.randn(E, B, D)


def step():
    opt.zero_grad()
    loss = model.loss(x, y)
    loss.backward()
    opt.step()


for _ in range(5):
    step()
best_steps = 0.0
for _ in range(3):
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        t = time.perf_counter() - t0
        if t >= args.seconds:
            break
    best_steps = max(best_steps, n / t)
print(f"torch model step: {best_steps:.1f} steps/s ({1e3 / best_steps:.2f} ms/step), {torch.get_num_threads()} threads")

inputs = torch.randn(ROWS, IN)


@torch.no_grad()
def predict(inp, chunk=1024):
    means, lvs = [], []
    for i in range(0, inp.shape[0], chunk):
        xb = inp[None, i:i + chunk].repeat(E, 1, 1)
        m, lv = model(xb)
        means.append(m)
        lvs.append(lv)
    return torch.cat(means, 1), torch.cat(lvs, 1)


best_pred = 0.0
for _ in range(3):
    t0 = time.perf_counter()
    predict(inputs)
    best_pred = max(best_pred, ROWS / (time.perf_counter() - t0))
print(f"torch model predict: {best_pred:.0f} rows/s")
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "steps_per_s": best_steps,
                  "predict_rows_per_s": best_pred}))
