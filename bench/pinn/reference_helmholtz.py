"""
An independent check of bench:pinn's Helmholtz numbers: the authors' Helmholtz set-up, models M1 (equal
weights) and M2 (learning-rate annealing as their code does it), written for PyTorch from their
TensorFlow 1 code (github.com/PredictiveIntelligenceLab/GradientPathologiesPINNs, commit 93e752b,
Helmholtz/Helmholtz2D.py and Helmholtz2D_model_tf.py). It shares no code with bench/pinn.ts: autograd
second derivatives instead of forward-mode jets, NumPy sampling, torch's Adam.

What it follows from the code: u = sin(πx)·sin(4πy) on [-1, 1]², λ = 1; MLP [2, 50, 50, 50, 1], tanh,
Xavier-normal weights (std 1/√((in + out)/2)), zero biases; inputs normalised by the mean and std of
10⁵ uniform samples; Adam, learning rate 1e-3·0.9^(it/1000); each iteration 128 residual points and
128 points on each of the 4 sides, fresh; loss = L_r + λ_b·(sum of the 4 sides' MSEs); M2 refreshes
λ_b after the optimiser step of every 10th iteration from max|∇_W L_r| / mean|∇_W (λ_b·L_b)| over the
weight matrices (max of the per-layer maxima, mean of the per-layer means), smoothed 0.9·old + 0.1·new;
40,001 iterations; relative L2 error of u on the 100×100 grid of linspace(-1, 1, 100)².

Run with Debian's python3 (python3-torch):
  /usr/bin/python3 bench/pinn/reference_helmholtz.py --mode M1 --seeds 0,1,2 --iters 40001
One JSON line per run on stdout: {"mode", "seed", "iters", "error", "lambda_b", "seconds"}.
"""
import argparse
import json
import math
import time

import numpy as np
import torch

A1, A2, LAM = 1.0, 4.0, 1.0


def u_exact(x):
    return np.sin(A1 * math.pi * x[:, 0:1]) * np.sin(A2 * math.pi * x[:, 1:2])


def forcing(x):
    u = u_exact(x)
    return -((A1 * math.pi) ** 2) * u - ((A2 * math.pi) ** 2) * u + LAM * u


SIDES = [((-1.0, -1.0), (1.0, -1.0)), ((1.0, -1.0), (1.0, 1.0)), ((1.0, 1.0), (-1.0, 1.0)), ((-1.0, 1.0), (-1.0, -1.0))]


def sample(rng, lo, hi, n):
    lo, hi = np.array(lo), np.array(hi)
    return lo + (hi - lo) * rng.random((n, 2))


def run(mode, seed, iters, batch=128, log_every=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = sample(rng, (-1.0, -1.0), (1.0, 1.0), 100000)
    mu, sigma = X.mean(0), X.std(0)
    sizes = [2, 50, 50, 50, 1]
    Ws, bs = [], []
    for i in range(len(sizes) - 1):
        std = 1.0 / math.sqrt((sizes[i] + sizes[i + 1]) / 2.0)
        Ws.append((torch.randn(sizes[i], sizes[i + 1]) * std).requires_grad_())
        bs.append(torch.zeros(1, sizes[i + 1], requires_grad=True))
    params = Ws + bs
    opt = torch.optim.Adam(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.9 ** (it / 1000.0))
    mu_t, sig_t = torch.tensor(mu, dtype=torch.float32), torch.tensor(sigma, dtype=torch.float32)

    def net(h):
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = torch.tanh(h @ W + b)
        return h @ Ws[-1] + bs[-1]

    def norm(x):
        return (torch.tensor(x, dtype=torch.float32) - mu_t) / sig_t

    def draw():
        return [sample(rng, lo, hi, batch) for lo, hi in SIDES], sample(rng, (-1.0, -1.0), (1.0, 1.0), batch)

    def losses(lam_b, pts):
        xbs, xr = pts
        bc = 0.0
        for xb in xbs:
            bc = bc + torch.mean((torch.tensor(u_exact(xb), dtype=torch.float32) - net(norm(xb))) ** 2)
        z = norm(xr).requires_grad_()
        u = net(z)
        g = torch.autograd.grad(u.sum(), z, create_graph=True)[0]
        u_x, u_y = g[:, 0:1] / sig_t[0], g[:, 1:2] / sig_t[1]
        u_xx = torch.autograd.grad(u_x.sum(), z, create_graph=True)[0][:, 0:1] / sig_t[0]
        u_yy = torch.autograd.grad(u_y.sum(), z, create_graph=True)[0][:, 1:2] / sig_t[1]
        r = u_xx + u_yy + LAM * u
        res = torch.mean((torch.tensor(forcing(xr), dtype=torch.float32) - r) ** 2)
        return res, lam_b * bc

    lam_b = 1.0
    t0 = time.time()
    for it in range(iters):
        pts = draw()
        res, bcs = losses(lam_b, pts)
        opt.zero_grad()
        (res + bcs).backward()
        opt.step()
        sched.step()
        if mode == 'M2' and it % 10 == 0:
            # as the code: the statistic of the updated weights on the same batch
            res, bcs = losses(lam_b, pts)
            gr = torch.autograd.grad(res, Ws, retain_graph=True)
            gb = torch.autograd.grad(bcs, Ws)
            max_r = max(float(g.abs().max()) for g in gr)
            mean_b = float(np.mean([float(g.abs().mean()) for g in gb]))
            lam_b = 0.1 * (max_r / mean_b) + 0.9 * lam_b
        if log_every and it % log_every == 0:
            print(json.dumps({'mode': mode, 'seed': seed, 'it': it, 'error': error(net, mu_t, sig_t), 'lambda_b': lam_b}), flush=True)
    return {'mode': mode, 'seed': seed, 'iters': iters, 'error': error(net, mu_t, sig_t), 'lambda_b': lam_b, 'seconds': round(time.time() - t0, 1)}


def error(net, mu_t, sig_t):
    g = np.linspace(-1.0, 1.0, 100)
    x1, x2 = np.meshgrid(g, g)
    xs = np.hstack([x1.reshape(-1, 1), x2.reshape(-1, 1)])
    with torch.no_grad():
        u = net((torch.tensor(xs, dtype=torch.float32) - mu_t) / sig_t).numpy()
    ue = u_exact(xs)
    return float(np.linalg.norm(ue - u) / np.linalg.norm(ue))


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--mode', choices=['M1', 'M2'], default='M1')
    p.add_argument('--seeds', default='0')
    p.add_argument('--iters', type=int, default=40001)
    p.add_argument('--log-every', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    for s in a.seeds.split(','):
        print(json.dumps(run(a.mode, int(s), a.iters, log_every=a.log_every)), flush=True)
