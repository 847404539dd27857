/**
 * Issue 27: many terms (T = 64–128).
 * - The shared QP solver (src/core/qp.ts) at T = 64 on conflicting gradients: KKT conditions, any
 *   warm start gives the same minimiser, and the Cholesky updates (one bound released or hit at a
 *   time, several at once) agree with a fresh solve.
 * - GradVac's O(T³) update equals the direct O(T⁴) formula of LibMTL (reference written out below).
 * - The many-term attack: every registered strategy through BalancedTrainer at T = 64 and T = 128 on
 *   a small model whose Gram matrix is rank-deficient at T = 128 (P = 56 shared parameters): finite
 *   weights, no tensor leak, every step completes.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { create, list } from '../src/core/registry.js';
import { BoundedQP, kktResidual, minNormSimplex, projectDualCone, solveBoundedQP, solveSPD } from '../src/core/qp.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { gradvacStep } from '../strategies/gradvac.js';
import { nashResidual, solveNash } from '../strategies/nash-mtl.js';
import { upgradWeights } from '../strategies/upgrad.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

/** Seeded uniform numbers in [−0.5, 0.5) (an LCG, as bench/strategy-math.ts). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
}

/** G = J Jᵀ for T random gradients of P coordinates with a shared component of weight `common`. */
function randomGram(T: number, P: number, seed: number, common = 0.2): number[][] {
  const r = rng(seed);
  const shared = Array.from({ length: P }, r);
  const J = Array.from({ length: T }, (_, i) => shared.map((c) => (1 + (i % 5)) * (common * c + r())));
  return J.map((a) => J.map((b) => a.reduce((acc, x, k) => acc + x * b[k], 0)));
}

const ridge = (G: number[][], eps: number) => {
  const tr = G.reduce((a, row, i) => a + row[i], 0);
  return G.map((row, i) => row.map((v, j) => v / tr + (i === j ? eps : 0)));
};

describe('src/core/qp.ts at many terms', () => {
  it('solveBoundedQP at T = 64 meets the KKT conditions, bounds only and with Σx = 1, from any start', () => {
    for (const seed of [1, 2, 3]) {
      const Q = ridge(randomGram(64, 256, seed), 1e-4);
      const r = rng(seed + 10);
      const c = Q.map(() => r());
      const lb = Q.map(() => r() * 0.1);
      const a = solveBoundedQP(Q, c, lb);
      expect(a.converged).toBe(true);
      expect(kktResidual(Q, c, lb, a.x)).toBeLessThan(1e-10);
      // warm starts: nothing free, everything free, a random half: the same minimiser
      for (const start of [[], Q.map((_, i) => i), Q.map((_, i) => i).filter(() => r() > 0)]) {
        const b = solveBoundedQP(Q, c, lb, undefined, undefined, start);
        expect(b.converged).toBe(true);
        expect(Math.max(...b.x.map((v, i) => Math.abs(v - a.x[i])))).toBeLessThan(1e-9);
      }
      const zero = Q.map(() => 0);
      const s = solveBoundedQP(Q, c, zero, 1);
      expect(s.converged).toBe(true);
      expect(kktResidual(Q, c, zero, s.x, 1)).toBeLessThan(1e-10);
      const s2 = solveBoundedQP(Q, c, zero, 1, undefined, [0, 5, 9]);
      expect(Math.max(...s2.x.map((v, i) => Math.abs(v - s.x[i])))).toBeLessThan(1e-9);
    }
  });

  it('projectDualCone at T = 64: each of UPGrad\'s projections is a KKT point, and upgradWeights sums them', () => {
    const G = randomGram(64, 256, 4, 0);
    const Gp = ridge(G, 1e-4);
    const w = new Array(64).fill(0);
    let freed = 0;
    for (let i = 0; i < 64; i++) {
      const u = Gp.map((_, k) => (k === i ? 1 : 0));
      const { x, converged } = projectDualCone(Gp, u);
      expect(converged).toBe(true);
      expect(kktResidual(Gp, u.map(() => 0), u, x)).toBeLessThan(1e-10);
      freed += x.filter((v, k) => v > u[k]).length;
      x.forEach((v, k) => (w[k] += Math.max(v, u[k])));
    }
    // the gradients conflict: about half of each projection's bounds are released
    expect(freed / 64).toBeGreaterThan(10);
    const got = upgradWeights(G);
    expect(Math.max(...got.map((v, k) => Math.abs(v - w[k]) / Math.abs(w[k])))).toBeLessThan(1e-12);
  });

  it('BoundedQP solves several problems with one Q as separate solves do', () => {
    const Q = ridge(randomGram(20, 40, 5), 1e-3);
    const qp = new BoundedQP(Q);
    const r = rng(6);
    for (let k = 0; k < 5; k++) {
      const c = Q.map(() => r());
      const lb = Q.map(() => r());
      expect(qp.solve(c, lb).x).toEqual(solveBoundedQP(Q, c, lb).x);
    }
  });

  it('solveSPD solves a positive definite system and refuses an indefinite one', () => {
    const Q = ridge(randomGram(30, 60, 7), 1e-3);
    const b = Q.map((_, i) => Math.sin(i));
    const x = solveSPD(Q, b)!;
    const res = Q.map((row, i) => row.reduce((a, q, j) => a + q * x[j], 0) - b[i]);
    expect(Math.max(...res.map(Math.abs))).toBeLessThan(1e-10);
    expect(solveSPD([[1, 2], [2, 1]], [1, 1])).toBeNull();
  });

  it('minNormSimplex at T = 128 on a rank-deficient G (P = 40): a KKT point of the simplex QP', () => {
    const G = randomGram(128, 40, 8, 0);
    const { x, converged } = minNormSimplex(G);
    expect(converged).toBe(true);
    const s = G.reduce((a, row, i) => a + row[i], 0) / 128;
    const Q = G.map((row, i) => row.map((v, j) => v / s + (i === j ? 1e-10 : 0)));
    expect(kktResidual(Q, Q.map(() => 0), Q.map(() => 0), x, 1)).toBeLessThan(1e-8);
  });

  it('solveNash at T = 64 (full rank) meets Gα = 1/α to 1e-12, cold and warm-started', () => {
    const G = randomGram(64, 256, 9, 0.8);
    const fro = Math.sqrt(G.flat().reduce((a, g) => a + g * g, 0));
    const Gh = G.map((row) => row.map((g) => g / fro));
    const a = solveNash(Gh)!;
    expect(nashResidual(Gh, a)).toBeLessThan(1e-12);
    const b = solveNash(Gh, a.map((v) => v * 1.3))!;
    expect(nashResidual(Gh, b)).toBeLessThan(1e-12);
  });
});

/** LibMTL's GradVac step written out directly: g_i^V's coefficients c, G c recomputed for every pair. */
function gradvacDirect(G: number[][], targets: number[][], orders: number[][], beta: number, eps: number) {
  const T = G.length;
  const phi = targets.map((r) => [...r]);
  const w = new Array<number>(T).fill(0);
  for (let i = 0; i < T; i++) {
    const c = new Array<number>(T).fill(0);
    c[i] = 1;
    for (const j of orders[i]) {
      if (j === i) continue;
      const Gc = G.map((row) => row.reduce((a, g, k) => a + g * c[k], 0));
      const normI = Math.sqrt(Math.max(0, Gc.reduce((a, v, k) => a + v * c[k], 0)));
      const normJ = Math.sqrt(Math.max(0, G[j][j]));
      const rho = Gc[j] / (normI * normJ + eps);
      const t = phi[i][j];
      if (rho < t) {
        c[j] += (normI * (t * Math.sqrt(Math.max(0, 1 - rho * rho)) - rho * Math.sqrt(Math.max(0, 1 - t * t)))) / (normJ * Math.sqrt(Math.max(0, 1 - t * t)) + eps);
      }
      phi[i][j] = (1 - beta) * t + beta * rho;
    }
    c.forEach((v, k) => (w[k] += v));
  }
  return { weights: w, targets: phi };
}

describe('gradvac at many terms', () => {
  it('the O(T³) update equals the direct formula (T = 24, three steps, random orders and targets)', () => {
    const T = 24;
    const r = rng(11);
    let targets = Array.from({ length: T }, () => Array.from({ length: T }, () => r() * 0.6));
    let direct = targets.map((row) => [...row]);
    for (let step = 0; step < 3; step++) {
      const G = randomGram(T, 48, 20 + step, 0);
      const orders = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, k) => k).filter((k) => k !== i).sort(() => r()));
      const a = gradvacStep(G, targets, orders, 0.5, 1e-8);
      const b = gradvacDirect(G, direct, orders, 0.5, 1e-8);
      const scale = Math.max(...b.weights.map(Math.abs));
      expect(Math.max(...a.weights.map((v, k) => Math.abs(v - b.weights[k])))).toBeLessThan(1e-10 * scale);
      expect(Math.max(...a.targets.flatMap((row, i) => row.map((v, j) => Math.abs(v - b.targets[i][j]))))).toBeLessThan(1e-10);
      targets = a.targets;
      direct = b.targets;
    }
  });
});

describe('the many-term attack: every strategy at T = 64 and 128', () => {
  /** 3 inputs → 14 tanh units (56 shared parameters), T linear heads, 8 samples. */
  function model(T: number) {
    const id = Math.random().toString(36).slice(2);
    const W = tf.variable(tf.randomNormal([3, 14], 0, 0.6, 'float32', 1), true, `mt_W_${id}`);
    const b = tf.variable(tf.zeros([14]), true, `mt_b_${id}`);
    const H = tf.variable(tf.randomNormal([14, T], 0, 0.4, 'float32', 2), true, `mt_H_${id}`);
    const x = tf.randomNormal([8, 3], 0, 1, 'float32', 3);
    const y = tf.randomNormal([8, T], 0, 1, 'float32', 4);
    const names = Array.from({ length: T }, (_, i) => `t${i}`);
    const trunk = () => tf.tanh(tf.add(tf.matMul(x, W), b));
    const heads = (z: tf.Tensor) => {
      const err = tf.square(tf.sub(tf.matMul(z as tf.Tensor2D, H), y));
      const per = tf.unstack(tf.mean(err, 0));
      return Object.fromEntries(names.map((n, i) => [n, per[i] as tf.Scalar]));
    };
    return { vars: [W, b, H], trunk, heads, terms: () => heads(trunk()), dispose: () => tf.dispose([W, b, H, x, y]) };
  }

  for (const T of [64, 128]) {
    it(`T = ${T}: finite weights, no leak, every step completes`, () => {
      const m = model(T);
      const failures: string[] = [];
      try {
        for (const s of list().filter((x) => x.kind !== 'selector')) {
          const optimizer = tf.train.sgd(1e-3);
          const warnings: string[] = [];
          try {
            const trainer = new BalancedTrainer({
              terms: m.terms,
              optimizer,
              balancer: create(s.name, { warn: (w) => warnings.push(w) }),
              variables: m.vars,
              shared: m.vars.slice(0, 2),
              warn: () => {},
              harm: false,
            });
            trainer.step();
            const before = tf.memory().numTensors;
            for (let k = 0; k < 2; k++) {
              const r = trainer.step();
              const w = Object.values(r.weights);
              if (w.length !== T || !w.every(Number.isFinite)) failures.push(`${s.name}: weights ${w.slice(0, 4)}`);
            }
            const leaked = tf.memory().numTensors - before;
            if (leaked !== 0) failures.push(`${s.name}: ${leaked} tensors leaked`);
            if (!m.vars.every((v) => Array.from(v.dataSync()).every(Number.isFinite))) failures.push(`${s.name}: variables not finite`);
          } catch (e) {
            failures.push(`${s.name}: ${(e as Error).message.slice(0, 200)}`);
          } finally {
            optimizer.dispose();
          }
        }
      } finally {
        m.dispose();
      }
      expect(failures).toEqual([]);
    }, 120_000);
  }
});

describe('bench/many-terms.ts --quick (the CI smoke run of the many-term benchmark)', () => {
  it('T = 2: fixed, probe steps in both modes and every strategy\'s math measured, finite ratios, no leak', async () => {
    const { main } = await import('../bench/many-terms.js');
    const log = console.log;
    console.log = () => {};
    let rs;
    let before = 0;
    try {
      await main(['--quick']); // first run: one-time tensors of the process (kernels' constants)
      before = tf.memory().numTensors;
      rs = await main(['--quick']);
    } finally {
      console.log = log;
    }
    expect(rs.map((r) => r.T)).toEqual([2]);
    for (const k of ['plain', 'fixed', 'exact', 'representation']) expect(Number.isFinite(rs[0].cells[k].wall)).toBe(true);
    expect(Object.keys(rs[0].math)).toContain('upgrad');
    expect(tf.memory().numTensors).toBe(before);
    await expect(main(['--quick', '--T', '2,x'])).rejects.toThrow(/--T got "2,x"; allowed: whole numbers ≥ 1/);
  }, 60_000);
});
