#!/usr/bin/env python3
"""PyTorch anchor for the overhead benchmark (bench/overhead.ts): the same model, batch and optimizer,
with per-term gradients read the way LibMTL reads them, timed as ratios to a plain step in one process.

Model: MLP trunk 64->256->256 (ReLU), T linear heads 256->1 with MSE, batch 128, Adam (lr 1e-4).
Configurations, interleaved in rounds (CPU time of this process per step, median over rounds; wall time
beside it under "wall"):
  plain           one forward, backward of the summed loss, Adam step
  representation  LibMTL's rep_grad: one forward; per-term dL_i/dz by torch.autograd.grad(...,
                  retain_graph=True); Gram over the flattened dL_i/dz; one backward of sum w_i L_i
  exact           LibMTL's default: one forward; per-term gradients over the trunk's parameters by
                  T backward passes (retain_graph=True), flattened into a T x P matrix; Gram G = M M^T;
                  the trunk takes sum w_i g_i, the heads their own gradients
  autojac         the Jacobian over the trunk in one batched backward pass (is_grads_batched=True, the
                  method of torchjd's autojac; torchjd itself is not installed here), Gram, sum w_i g_i
Single thread (torch.set_num_threads(1)), as tfjs-wasm runs here without threads.

Run with Debian's python3 (python3-torch):  /usr/bin/python3 bench/torch-anchor.py [--T 4,16] [--rounds 5]
Prints one JSON object: {"torch": version, "T": {"4": {"representation": r, "exact": r}, ...}}.
"""
import argparse
import json
import resource
import sys
import time

import torch


def cpu_time():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build(T, width=256, batch=128):
    g = torch.Generator().manual_seed(1)
    trunk = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU())
    heads = torch.nn.ModuleList([torch.nn.Linear(width, 1) for _ in range(T)])
    x = torch.randn(batch, 64, generator=g)
    ys = [torch.randn(batch, 1, generator=g) * (1 + i) for i in range(T)]
    params = list(trunk.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    return trunk, heads, x, ys, opt


def losses_of(heads, z, ys):
    return [torch.nn.functional.mse_loss(h(z), y) for h, y in zip(heads, ys)]


def make_steps(T):
    trunk, heads, x, ys, opt = build(T)
    shared = list(trunk.parameters())
    w = torch.ones(T)

    def read_and_combine(M):
        # the T x T Gram matrix a strategy reads, then sum_i w_i g_i into the shared parameters' .grad
        G = M @ M.T
        _ = G.tolist()
        combined = (w[:, None] * M).sum(0)
        off = 0
        for p in shared:
            n = p.numel()
            p.grad = combined[off:off + n].view_as(p).clone()
            off += n

    def plain():
        opt.zero_grad()
        z = trunk(x)
        sum(losses_of(heads, z, ys)).backward()
        opt.step()

    def representation():
        opt.zero_grad()
        z = trunk(x)
        zd = z.detach().requires_grad_(True)
        ls = losses_of(heads, zd, ys)
        rows = [torch.autograd.grad(l, zd, retain_graph=True)[0].reshape(-1) for l in ls]
        M = torch.stack(rows)
        G = M @ M.T
        _ = G.tolist()  # the T x T numbers a strategy reads
        total = sum(wi * l for wi, l in zip(w, ls))
        total.backward()
        z.backward(zd.grad)
        opt.step()

    def exact():
        opt.zero_grad()
        z = trunk(x)
        ls = losses_of(heads, z, ys)
        rows = []
        for i, l in enumerate(ls):
            gs = torch.autograd.grad(l, shared + list(heads[i].parameters()), retain_graph=(i < T - 1))
            rows.append(torch.cat([g.reshape(-1) for g in gs[: len(shared)]]))
            for p, gh in zip(heads[i].parameters(), gs[len(shared):]):
                p.grad = gh
        read_and_combine(torch.stack(rows))
        opt.step()

    head_params = [p for h in heads for p in h.parameters()]
    eye = torch.eye(T)

    def autojac():
        # torchjd's autojac reads the Jacobian of the T losses w.r.t. the shared parameters with one
        # batched backward (torch.autograd.grad(..., is_grads_batched=True), the identity as the T
        # upstream gradients); the heads take the ordinary gradient of the summed losses (mtl_backward).
        opt.zero_grad()
        z = trunk(x)
        ls = torch.stack(losses_of(heads, z, ys))
        jac = torch.autograd.grad(ls, shared, grad_outputs=eye, is_grads_batched=True, retain_graph=True)
        M = torch.cat([j.reshape(T, -1) for j in jac], dim=1)
        hg = torch.autograd.grad(ls.sum(), head_params)
        for p, g in zip(head_params, hg):
            p.grad = g
        read_and_combine(M)
        opt.step()

    return {"plain": plain, "representation": representation, "exact": exact, "autojac": autojac}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", default="4,16")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--block", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "T": {}}
    for T in [int(t) for t in a.T.split(",")]:
        steps = make_steps(T)
        for f in steps.values():  # warm-up
            for _ in range(3):
                f()
        times = {k: [] for k in steps}
        walls = {k: [] for k in steps}
        block = max(1, round(a.block * min(1, 8 / T)))
        for _ in range(a.rounds):
            for k, f in steps.items():
                c0 = cpu_time()
                w0 = time.perf_counter()
                for _ in range(block):
                    f()
                walls[k].append((time.perf_counter() - w0) / block * 1000)
                times[k].append((cpu_time() - c0) / block * 1000)
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        wmed = {k: sorted(v)[len(v) // 2] for k, v in walls.items()}
        out["T"][str(T)] = {
            "plain_ms": round(med["plain"], 3),
            "plain_wall_ms": round(wmed["plain"], 3),
            "representation": round(med["representation"] / med["plain"], 3),
            "exact": round(med["exact"] / med["plain"], 3),
            "autojac": round(med["autojac"] / med["plain"], 3),
            "wall": {k: round(wmed[k] / wmed["plain"], 3) for k in ("representation", "exact", "autojac")},
        }
        print(f"T={T}: plain {med['plain']:.2f} ms, representation {out['T'][str(T)]['representation']}x, exact {out['T'][str(T)]['exact']}x", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
