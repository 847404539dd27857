/**
 * The PINN recipe (examples/pinn/jet.ts) and the PINN benchmark problems (bench/pinn/problems.ts):
 * forward-mode input derivatives checked against closed forms and central finite differences, weight
 * gradients through them against finite differences, and both trainer modes on the Helmholtz problem.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeJetMlp, secondDerivativesByNestedGrad } from '../examples/pinn/jet.js';
import { helmholtz, poisson1d } from '../bench/pinn/problems.js';
import { trainPoisson } from '../examples/pinn/poisson.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { useTestBackend } from './helpers.js';
import { gradMagnitude } from '../strategies/grad-magnitude.js';

beforeAll(() => useTestBackend());

const arr = (t: tf.Tensor) => Array.from(t.dataSync());

describe('forward-mode jet of a Dense/tanh MLP', () => {
  it('matches the closed form of a one-hidden-layer network (tanh and sin)', () => {
    for (const activation of ['tanh', 'sin'] as const) {
      const before = tf.memory().numTensors;
      const net = makeJetMlp([2, 3, 1], { seed: 3, activation, scale: [0.5, 2], shift: [0.1, -0.2] });
      const [W0, b0, W1, b1] = net.variables.map((v) => v.arraySync()) as [number[][], number[], number[][], number[]];
      const pts = [[0.3, -0.7], [-0.9, 0.25], [0.05, 0.6]];
      const x = tf.tensor2d(pts);
      const j = tf.tidy(() => net.jet(x) as unknown as tf.TensorContainer) as unknown as ReturnType<typeof net.jet>;
      const s = [0.5, 2];
      const c = [0.1, -0.2];
      const f = activation === 'tanh' ? Math.tanh : Math.sin;
      const f1 = activation === 'tanh' ? (a: number) => 1 - Math.tanh(a) ** 2 : Math.cos;
      const f2 = activation === 'tanh' ? (a: number) => -2 * Math.tanh(a) * (1 - Math.tanh(a) ** 2) : (a: number) => -Math.sin(a);
      pts.forEach((p, n) => {
        // u = Σ_j W1[j]·σ(a_j) + b1, a_j = Σ_k W0[k][j]·(x_k − c_k)/s_k + b0[j]
        const a = [0, 1, 2].map((jj) => W0[0][jj] * ((p[0] - c[0]) / s[0]) + W0[1][jj] * ((p[1] - c[1]) / s[1]) + b0[jj]);
        const u = a.reduce((acc, aj, jj) => acc + W1[jj][0] * f(aj), b1[0]);
        expect(arr(j.value)[n]).toBeCloseTo(u, 5);
        for (let k = 0; k < 2; k++) {
          const d1 = a.reduce((acc, aj, jj) => acc + W1[jj][0] * f1(aj) * (W0[k][jj] / s[k]), 0);
          const d2 = a.reduce((acc, aj, jj) => acc + W1[jj][0] * f2(aj) * (W0[k][jj] / s[k]) ** 2, 0);
          expect(arr(j.d1[k])[n]).toBeCloseTo(d1, 5);
          expect(arr(j.d2[k])[n]).toBeCloseTo(d2, 4);
        }
      });
      tf.dispose([x, j.value, ...j.d1, ...j.d2]);
      net.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('matches central finite differences on the [2, 50, 50, 50, 1] Helmholtz network, and value = predict()', () => {
    const net = makeJetMlp([2, 50, 50, 50, 1], { seed: 1, scale: [1 / Math.sqrt(3), 1 / Math.sqrt(3)] });
    const pts = [[0.3, -0.7], [-0.9, 0.25], [0.5, 0.5], [0.99, -0.99]];
    const x = tf.tensor2d(pts);
    const j = net.jet(x);
    const plain = arr(net.predict(x));
    arr(j.value).forEach((v, i) => expect(v).toBeCloseTo(plain[i], 5));
    const h = 1e-2;
    const at = (q: number[][]) => arr(tf.tidy(() => net.predict(tf.tensor2d(q))));
    const u0 = at(pts);
    for (let k = 0; k < 2; k++) {
      const plus = at(pts.map((p) => p.map((v, i) => (i === k ? v + h : v))));
      const minus = at(pts.map((p) => p.map((v, i) => (i === k ? v - h : v))));
      const d1 = arr(j.d1[k]);
      const d2 = arr(j.d2[k]);
      pts.forEach((_, n) => {
        const fd1 = (plus[n] - minus[n]) / (2 * h);
        const fd2 = (plus[n] - 2 * u0[n] + minus[n]) / (h * h);
        expect(Math.abs(d1[n] - fd1)).toBeLessThan(2e-3 * (1 + Math.abs(fd1)));
        expect(Math.abs(d2[n] - fd2)).toBeLessThan(3e-2 * (1 + Math.abs(fd2)));
      });
    }
    net.dispose();
  });

  it('gives weight gradients of a residual loss that match finite differences (reverse mode through the jet)', () => {
    const net = makeJetMlp([2, 6, 6, 1], { seed: 2 });
    const x = tf.tensor2d([[0.3, -0.7], [-0.4, 0.25], [0.1, 0.9]]);
    const loss = () => tf.tidy(() => {
      const j = net.jet(x);
      return tf.mean(tf.square(tf.add(tf.add(j.d2[0], j.d2[1]), j.value))) as tf.Scalar;
    });
    const { grads, value } = tf.variableGrads(loss, net.variables);
    const W1 = net.variables[2];
    const g = arr(grads[W1.name]);
    const base = W1.arraySync() as number[][];
    for (const [r, c] of [[0, 0], [3, 2], [5, 5]]) {
      const eps = 1e-2;
      const shifted = (d: number) => {
        const m = base.map((row) => [...row]);
        m[r][c] += d;
        W1.assign(tf.tensor2d(m));
        const v = loss().dataSync()[0];
        return v;
      };
      const fd = (shifted(eps) - shifted(-eps)) / (2 * eps);
      W1.assign(tf.tensor2d(base));
      expect(Math.abs(g[r * 6 + c] - fd)).toBeLessThan(2e-2 * (1 + Math.abs(fd)));
    }
    tf.dispose([x, value, ...Object.values(grads)]);
    net.dispose();
  });
});

describe('tfjs nested tf.grad (tfjs 4.22)', () => {
  it('throws on tf.tanh, is silently WRONG on tanh written with tf.exp, and is right on a sin network (= the jet)', () => {
    const W0 = tf.randomNormal([2, 5], 0, 1, 'float32', 4);
    const b0 = tf.randomNormal([5], 0, 0.1, 'float32', 5);
    const W1 = tf.randomNormal([5, 1], 0, 1, 'float32', 6);
    const x = tf.tensor2d([[0.2, -0.3], [0.7, 0.1]]);
    const net = (act: (a: tf.Tensor) => tf.Tensor) => (xx: tf.Tensor2D) => tf.matMul(act(tf.add(tf.matMul(xx, W0), b0)), W1) as tf.Tensor2D;
    expect(() => secondDerivativesByNestedGrad(net(tf.tanh), x)).toThrow(/Cannot compute gradient/);
    const jetOf = (activation: 'tanh' | 'sin') => {
      const m = makeJetMlp([2, 5, 1], { activation });
      m.variables[0].assign(W0);
      m.variables[1].assign(b0);
      m.variables[2].assign(W1);
      const j = tf.tidy(() => m.jet(x) as unknown as tf.TensorContainer) as unknown as ReturnType<typeof m.jet>;
      const d2 = j.d2.map(arr);
      tf.dispose([j.value, ...j.d1, ...j.d2]);
      m.dispose();
      return d2;
    };
    // tanh(a) = 2 / (1 + e^(−2a)) − 1: no error, but exp's gradient reuses its output and the outer tape misses it
    const tanhByExp = (a: tf.Tensor) => tf.sub(tf.div(2, tf.add(1, tf.exp(tf.mul(-2, a)))), 1);
    const wrong = secondDerivativesByNestedGrad(net(tanhByExp), x).map(arr);
    const jt = jetOf('tanh');
    expect(Math.max(...wrong[0].map((v, i) => Math.abs(v - jt[0][i])))).toBeGreaterThan(0.1);
    const right = secondDerivativesByNestedGrad(net(tf.sin), x).map(arr);
    const js = jetOf('sin');
    for (let k = 0; k < 2; k++) right[k].forEach((v, i) => expect(v).toBeCloseTo(js[k][i], 4));
    tf.dispose([W0, b0, W1, x]);
  });
});

describe('the PINN problems through BalancedTrainer', () => {
  it('the exact Helmholtz solution has zero residual under the problem\'s operator (closed-form check of q)', () => {
    // u = sin(πx) sin(4πy): u_xx + u_yy + u = (1 − 17π²) u = q
    const p = helmholtz().build(0, { batch: 8 });
    const b = p.sample();
    const xs = b.residual.arraySync();
    const qs = b.source.dataSync();
    xs.forEach(([x, y], i) => expect(qs[i]).toBeCloseTo((1 - 17 * Math.PI ** 2) * Math.sin(Math.PI * x) * Math.sin(4 * Math.PI * y), 3));
    expect(b.boundary).toHaveLength(4);
    b.boundaryValue.forEach((v) => arr(v).forEach((u) => expect(Math.abs(u)).toBeLessThan(1e-12 + 1e-6)));
    tf.dispose([b.residual, b.source, ...b.boundary, ...b.boundaryValue]);
    p.dispose();
  });

  it('trains in exact mode (per-term gradients) and representation mode (z = stacked jet of the last hidden layer), without leaks', () => {
    for (const mode of ['exact', 'representation'] as const) {
      for (const balancer of [{ name: 'grad-magnitude', alpha: 0.1, updateEvery: 2 }, 'mgda', 'fixed'] as const) {
        const before = tf.memory().numTensors;
        const p = helmholtz({ hidden: [8, 8] }).build(1, { batch: 16 });
        const opt = tf.train.adam(1e-3);
        let batch = p.sample();
        const trainer = new BalancedTrainer({
          optimizer: opt,
          balancer,
          variables: p.net.variables,
          warn: () => {},
          ...(mode === 'exact' ? { terms: () => p.terms(batch) } : { represent: { trunk: () => p.represent(batch).trunk(), heads: (z: tf.Tensor) => p.represent(batch).heads(z) } }),
        });
        const w0 = p.net.variables.map((v) => arr(v));
        for (let s = 0; s < 3; s++) {
          const r = trainer.step();
          expect(r.skipped).toBeUndefined();
          expect(Object.keys(r.losses)).toEqual(['residual', 'boundary']);
          for (const w of Object.values(r.weights)) expect(Number.isFinite(w)).toBe(true);
          tf.dispose([batch.residual, batch.source, ...batch.boundary, ...batch.boundaryValue]);
          batch = p.sample();
        }
        expect(p.net.variables.map((v) => arr(v))).not.toEqual(w0);
        if (balancer !== 'fixed' && typeof balancer !== 'string') {
          // grad-magnitude lifted the boundary weight: the residual's gradients are far larger
          expect(trainer.history.records.at(-1)!.weight.boundary).toBeGreaterThan(1);
        }
        expect(Number.isFinite(p.error())).toBe(true);
        tf.dispose([batch.residual, batch.source, ...batch.boundary, ...batch.boundaryValue]);
        opt.dispose();
        p.dispose();
        expect(tf.memory().numTensors).toBe(before);
      }
    }
  });

  it('poisson1d: exact u has residual 0 (f = 16π² sin 4πx) and equal weights lower the error', () => {
    const p = poisson1d({ hidden: [16] }).build(0, { batch: 32 });
    const b = p.sample();
    const xs = arr(b.residual);
    arr(b.source).forEach((f, i) => expect(f).toBeCloseTo(16 * Math.PI ** 2 * Math.sin(4 * Math.PI * xs[i]), 3));
    tf.dispose([b.residual, b.source, ...b.boundary, ...b.boundaryValue]);
    expect(p.error()).toBeGreaterThan(0.5);
    p.dispose();
  });
});

describe('examples/pinn/poisson.ts (the code of docs/guide-pinn.md)', () => {
  it('trains a few steps with grad-magnitude and returns a finite error, without leaks', () => {
    const before = tf.memory().numTensors;
    const e = trainPoisson(3);
    expect(Number.isFinite(e)).toBe(true);
    expect(e).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("grad-magnitude's `weighted` option (the authors' code: statistic of λ·∇L_b)", () => {
  it('divides the estimate by the current λ: worked by hand', () => {
    // stats: max|∇L_r| = 4, mean|∇L_b| = 0.5; λ_b = 2 now; α = 0.1.
    // unweighted: λ̂ = 4 / 0.5 = 8, λ = 0.9·2 + 0.1·8 = 2.6; weighted: λ̂ = 4 / (2·0.5) = 4, λ = 0.9·2 + 0.1·4 = 2.2
    const stats = { maxAbs: [4, 1], meanAbs: [1, 0.5] };
    const state = { reference: 0, lambda: [1, 2] };
    const run = (weighted: boolean) => {
      const o = gradMagnitude.options.parse({ alpha: 0.1, weighted });
      return gradMagnitude.update(o, state, { losses: [1, 1], step: 1, stats } as never).weights;
    };
    expect(run(false)[1]).toBeCloseTo(2.6, 12);
    expect(run(true)[1]).toBeCloseTo(2.2, 12);
    // fixed point of the weighted rule: λ = 4 / (λ·0.5) → λ = √8
    let st = { reference: 0, lambda: [1, 1] };
    const o = gradMagnitude.options.parse({ alpha: 0.5, weighted: true });
    for (let i = 0; i < 200; i++) st = gradMagnitude.update(o, st, { losses: [1, 1], step: i, stats } as never).state as typeof st;
    expect(st.lambda[1]).toBeCloseTo(Math.sqrt(8), 9);
  });
});
