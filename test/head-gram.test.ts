/**
 * Representation mode's layer-wise Gram matrix (src/train/head-gram.ts, issue 27): when every term
 * reads z through its own dense layer, G comes from the layers' inputs and output gradients. Checked
 * against the per-term path (representationReading with layerwise off: T backward passes and M Mᵀ)
 * and against an independent reference (one tf.grad per term over z, then M Mᵀ in float64 here).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { representationReading, setLayerwise, withTape, type ZGradients } from '../src/train/grads.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { headDenseLayers, withMatMulAttrs } from '../src/train/head-gram.js';
import type { GramReading } from '../src/train/grads.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

let uid = 0;
/**
 * z = tanh(x W) (B×d; at the default sizes the layer-wise Gram is the cheaper one: K²(B + d) = 2268
 * against T²·B·d = 4800). Terms: `a` a two-layer head (z → 3 → 1), `b` two dense layers on z summed,
 * `c` no path to z (a penalty on its own variable), `d` a linear head, `e` a linear head scaled 1e3.
 */
function problem(B = 16, d = 12) {
  const id = uid++;
  const v = (shape: number[], seed: number) => tf.variable(tf.randomNormal(shape, 0, 0.7, 'float32', seed), true, `hg${id}_${seed}`);
  const W = v([4, d], 1);
  const A1 = v([d, 3], 2);
  const A2 = v([3, 1], 3);
  const B1 = v([d, 2], 4);
  const B2 = v([d, 2], 5);
  const C = v([3], 6);
  const D = v([d, 1], 7);
  const E = v([d, 1], 8);
  const x = tf.randomNormal([B, 4], 0, 1, 'float32', 9);
  const y = tf.randomNormal([B, 1], 0, 1, 'float32', 10);
  const trunk = () => tf.tanh(tf.matMul(x, W));
  const heads = (z: tf.Tensor) => ({
    a: tf.mean(tf.square(tf.sub(tf.matMul(tf.relu(tf.matMul(z, A1)), A2), y))) as tf.Scalar,
    b: tf.mean(tf.abs(tf.add(tf.matMul(z, B1), tf.matMul(z, B2)))) as tf.Scalar,
    c: tf.sum(tf.square(C)) as tf.Scalar,
    d: tf.mean(tf.square(tf.sub(tf.matMul(z, D), y))) as tf.Scalar,
    e: tf.mul(tf.mean(tf.square(tf.matMul(z, E))), 1e3) as tf.Scalar,
  });
  const vars = [W, A1, A2, B1, B2, C, D, E];
  return { vars, trunk, heads, names: ['a', 'b', 'c', 'd', 'e'], dispose: () => tf.dispose([...vars, x, y]) };
}

/** One representation step's reading and combined gradients, with the layer-wise Gram on or off. */
function run(p: ReturnType<typeof problem>, layerwise: boolean, o: { stats?: boolean; w?: number[]; unit?: boolean } = {}) {
  let reading!: GramReading;
  let rows: number[][] = [];
  const out = tf.tidy(() => {
    const r = representationReading(p, p.names, p.vars, () => {}, (_l, zg: ZGradients) => {
      reading = zg.read(!!o.stats);
      rows = zg.matrix().arraySync() as number[][];
      return o.w ?? [1, 0.5, 2, 0.25, 1e-3];
    }, o.unit ? 'unit' : 'weighted', layerwise);
    return p.vars.map((v) => Array.from(r.grads[v.name].dataSync()));
  });
  return { reading, rows, out };
}

/** Independent reference: ∂L_i/∂z by tf.grad per term (z held fixed), G in float64. */
function reference(p: ReturnType<typeof problem>): number[][] {
  const rows = tf.tidy(() => {
    const z = p.trunk();
    // c has no path to z: its row is zero (tf.grad would throw)
    return p.names.map((n) => (n === 'c' ? new Array<number>(z.size).fill(0) : Array.from(tf.grad((zz: tf.Tensor) => p.heads(zz)[n as 'a'])(z).dataSync())));
  });
  return rows.map((a) => rows.map((b) => a.reduce((s, x, k) => s + x * b[k], 0)));
}

const close = (a: number, b: number, rel = 1e-4) => expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

describe('layer-wise Gram over z (heads read z through their own dense layers)', () => {
  it('finds the heads’ first dense layers on the tape, one term each', () => {
    const p = problem();
    tf.tidy(() => {
      withTape((tape) => {
        const { z, t } = withMatMulAttrs(() => {
          const z = p.trunk();
          return { z, t: p.heads(z) };
        });
        const ys = p.names.map((n) => t[n as 'a']);
        const h = headDenseLayers(tape.recorded(), z, ys);
        expect(h).not.toBeNull();
        // a: z A1, b: z B1 and z B2, d: z D, e: z E (c reads no z)
        expect(h!.termOf).toEqual([0, 1, 1, 3, 4]);
        expect(h!.K).toBe(3 + 2 + 2 + 1 + 1);
        return {};
      });
    });
    p.dispose();
  });

  it('gives the Gram matrix of the per-term path and of an independent reference, and the same gradients', () => {
    const p = problem();
    const want = reference(p);
    const lw = run(p, true);
    const pt = run(p, false);
    want.forEach((row, i) => row.forEach((x, j) => {
      close(lw.reading.gram[i][j], x);
      close(pt.reading.gram[i][j], x);
    }));
    // c has no path to z: a zero row and column, not an error
    expect(lw.reading.gram[2].every((x) => x === 0)).toBe(true);
    // M on request: the same rows as the per-term passes
    lw.rows.flat().forEach((x, k) => close(x, pt.rows.flat()[k], 1e-5));
    lw.out.flat().forEach((x, k) => close(x, pt.out.flat()[k], 1e-5));
    p.dispose();
  });

  it('the trainer says which reading it took (readingPath)', () => {
    const p = problem();
    const t = new BalancedTrainer({ optimizer: tf.train.sgd(0.01), balancer: 'mgda', variables: p.vars, represent: { trunk: p.trunk, heads: p.heads }, warn: () => {} });
    expect(t.readingPath).toBeNull();
    t.step();
    // heads a, b, d and e read z through dense layers (c not at all): the layer-wise form
    expect(t.readingPath).toBe('representation, layer-wise');
    setLayerwise(false);
    try {
      t.step();
      expect(t.readingPath).toBe('representation, per-term');
    } finally {
      setLayerwise(true);
    }
    p.dispose();
  });

  it('tfjs-layers Dense heads with a linear activation (a fused product over a [1, B, d] view of z), with and without bias: layer-wise, the per-term step', () => {
    // A new user's trial (2026-12-06): Dense(1) heads gave 'representation, per-term'
    const x = tf.randomNormal([16, 4], 0, 1, 'float32', 600);
    for (const useBias of [true, false]) {
      const trunk = tf.layers.dense({ units: 12, activation: 'tanh', inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 601 }) });
      const heads = Array.from({ length: 3 }, (_, i) => tf.layers.dense({ units: i === 2 ? 2 : 1, useBias, kernelInitializer: tf.initializers.glorotNormal({ seed: 610 + i }), biasInitializer: tf.initializers.randomNormal({ seed: 620 + i }) }));
      const z0 = trunk.apply(x) as tf.Tensor;
      heads.forEach((h) => tf.dispose(h.apply(z0) as tf.Tensor));
      z0.dispose();
      const vars = [trunk, ...heads].flatMap((l) => l.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
      const start = vars.map((v) => v.clone());
      const zf = () => trunk.apply(x) as tf.Tensor;
      const hf = (z: tf.Tensor) => Object.fromEntries(heads.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.sub(h.apply(z) as tf.Tensor, i))) as tf.Scalar]));
      const step = (layerwise: boolean) => {
        setLayerwise(layerwise);
        try {
          vars.forEach((v, k) => v.assign(start[k]));
          const t = new BalancedTrainer({ optimizer: tf.train.sgd(0.05), balancer: 'mgda', variables: vars, represent: { trunk: zf, heads: hf }, warn: () => {} });
          t.step();
          const before = tf.memory().numTensors;
          const r = t.step();
          expect(tf.memory().numTensors).toBe(before);
          return { path: t.readingPath, weights: Object.values(r.weights), after: vars.map((v) => Array.from(v.dataSync())) };
        } finally {
          setLayerwise(true);
        }
      };
      const lw = step(true);
      const pt = step(false);
      expect(lw.path, `bias ${useBias}`).toBe('representation, layer-wise');
      expect(pt.path).toBe('representation, per-term');
      lw.weights.forEach((w, k) => close(w, pt.weights[k], 1e-4));
      lw.after.flat().forEach((q, k) => close(q, pt.after.flat()[k], 1e-5));
      tf.dispose(start);
      [trunk, ...heads].forEach((l) => l.dispose());
    }
    x.dispose();
  });

  it('one head layer for all terms (a [d, T] variable, or a tfjs-layers Dense with T units, the terms from its columns): layer-wise, the per-term Gram, weights and step, stats, no leak', () => {
    const x = tf.randomNormal([16, 4], 0, 1, 'float32', 700);
    const y = tf.randomNormal([16, 5], 0, 1, 'float32', 701);
    for (const kind of ['variable', 'dense'] as const) {
      const trunk = tf.layers.dense({ units: 12, activation: 'tanh', inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 702 }) });
      const H = tf.variable(tf.randomNormal([12, 5], 0, 0.5, 'float32', 703), true, `hgjoint_H_${kind}`);
      const hb = tf.variable(tf.randomNormal([5], 0, 0.5, 'float32', 704), true, `hgjoint_b_${kind}`);
      const dense = tf.layers.dense({ units: 5, kernelInitializer: tf.initializers.glorotNormal({ seed: 705 }) });
      const z0 = trunk.apply(x) as tf.Tensor;
      tf.dispose(dense.apply(z0) as tf.Tensor);
      z0.dispose();
      const headVars = kind === 'variable' ? [H, hb] : dense.trainableWeights.map((w) => w.read() as tf.Variable);
      const vars = [...trunk.trainableWeights.map((w) => w.read() as tf.Variable), ...headVars];
      const start = vars.map((v) => v.clone());
      const zf = () => trunk.apply(x) as tf.Tensor;
      const hf = (z: tf.Tensor) => {
        const u = kind === 'variable' ? tf.add(tf.matMul(z as tf.Tensor2D, H), hb) : (dense.apply(z) as tf.Tensor);
        const per = tf.unstack(tf.mean(tf.square(tf.sub(u, y)), 0));
        return Object.fromEntries(per.map((l, i) => [`c${i}`, l as tf.Scalar]));
      };
      for (const balancer of ['mgda', 'grad-magnitude'] as const) {
        const step = (layerwise: boolean) => {
          setLayerwise(layerwise);
          try {
            vars.forEach((v, k) => v.assign(start[k]));
            const t = new BalancedTrainer({ optimizer: tf.train.sgd(0.05), balancer, variables: vars, represent: { trunk: zf, heads: hf }, warn: () => {} });
            t.step();
            const before = tf.memory().numTensors;
            const r = t.step();
            expect(tf.memory().numTensors).toBe(before);
            return { path: t.readingPath, weights: Object.values(r.weights), norms: Object.values(r.gradNorms ?? {}), after: vars.map((v) => Array.from(v.dataSync())) };
          } finally {
            setLayerwise(true);
          }
        };
        const lw = step(true);
        const pt = step(false);
        const what = `${kind}, ${balancer}`;
        expect(lw.path, what).toBe('representation, layer-wise');
        expect(pt.path, what).toBe('representation, per-term');
        lw.weights.forEach((q, k) => close(q, pt.weights[k], 1e-4));
        lw.norms.forEach((q, k) => close(q, pt.norms[k], 1e-4));
        lw.after.flat().forEach((q, k) => close(q, pt.after.flat()[k], 1e-5));
      }
      tf.dispose([...start, H, hb]);
      trunk.dispose();
      dense.dispose();
    }
    tf.dispose([x, y]);
  });

  it('stats (mean/max |∂L_i/∂z|) and unit head weights agree with the per-term path', () => {
    const p = problem();
    const lw = run(p, true, { stats: true, unit: true, w: [0.3, 2, 1, 0.7, 0.01] });
    const pt = run(p, false, { stats: true, unit: true, w: [0.3, 2, 1, 0.7, 0.01] });
    lw.reading.stats!.meanAbs.forEach((x, i) => close(x, pt.reading.stats!.meanAbs[i], 1e-5));
    lw.reading.stats!.maxAbs.forEach((x, i) => close(x, pt.reading.stats!.maxAbs[i], 1e-5));
    lw.out.flat().forEach((x, k) => close(x, pt.out.flat()[k], 1e-5));
    p.dispose();
  });

  it('falls back to the per-term passes when a term reads z in another way', () => {
    const p = problem();
    const shapes = {
      'an activation on z': (z: tf.Tensor) => tf.mean(tf.matMul(tf.relu(z), p.vars[6])),
      'a transposed product': (z: tf.Tensor) => tf.mean(tf.matMul(p.vars[6], z, true, true)),
      'a weight computed from z': (z: tf.Tensor) => tf.mean(tf.matMul(z, tf.transpose(z))),
    };
    for (const [what, f] of Object.entries(shapes)) {
      tf.tidy(() => {
        withTape((tape) => {
          const { z, t } = withMatMulAttrs(() => {
            const z = p.trunk();
            return { z, t: { ...p.heads(z), d: f(z) as tf.Scalar } };
          });
          expect(headDenseLayers(tape.recorded(), z, p.names.map((n) => t[n as 'a'])), what).toBeNull();
          return {};
        });
      });
    }
    // one dense layer whose output leads to two terms
    tf.tidy(() => {
      withTape((tape) => {
        const { z, t } = withMatMulAttrs(() => {
          const z = p.trunk();
          const u = tf.matMul(z, p.vars[6]);
          return { z, t: { u: tf.mean(u) as tf.Scalar, v: tf.mean(tf.square(u)) as tf.Scalar } };
        });
        expect(headDenseLayers(tape.recorded(), z, [t.u, t.v])).toBeNull();
        return {};
      });
    });
    p.dispose();
  });

  it('a Gram matrix that overflows float32 is read again from M in the scaled form', () => {
    const p = problem();
    const big = (z: tf.Tensor) => ({ ...p.heads(z), e: tf.mul(tf.sum(tf.matMul(z, p.vars[7])), 1e20) as tf.Scalar });
    const q = { ...p, heads: big };
    const lw = run(q, true);
    const pt = run(q, false);
    expect(Number.isFinite(lw.reading.gram[4][4])).toBe(true);
    lw.reading.gram.flat().forEach((x, k) => close(x, pt.reading.gram.flat()[k], 1e-4));
    p.dispose();
  });

  it('leaks no tensor, also when the decision throws', () => {
    const p = problem();
    run(p, true);
    const before = tf.memory().numTensors;
    run(p, true, { stats: true });
    run(p, true, { unit: true });
    expect(() =>
      tf.tidy(() => {
        representationReading(p, p.names, p.vars, () => {}, (_l, zg) => {
          zg.read(false);
          zg.matrix();
          throw new Error('decision failed');
        });
      }),
    ).toThrow(/decision failed/);
    expect(tf.memory().numTensors).toBe(before);
    p.dispose();
  });
});
