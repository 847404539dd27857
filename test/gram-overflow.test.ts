/**
 * Issue 26, item 12 (the Gram part): a finite gradient of about 4.8e19 overflowed the float32 Gram
 * matrix (Σ g² > 3.4e38), and every Gram strategy then skipped every step, blaming
 * `gradient (Gram matrix row) of term "b" is Infinity`, which was false. The Gram matrix is now
 * formed from each gradient divided by a power of two near its largest entry, and scaled back in
 * float64 on the CPU side (`gramTensor`/`parseGram` in src/train/grads.ts). Dividing by a power of two
 * is exact, so for ordinary gradients the values are bit-identical to the plain float32 `M Mᵀ`.
 * Reference values: float64 sums computed here in plain JavaScript.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { list } from '../src/core/registry.js';
import { readGram, readGramScaled } from '../src/train/grads.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { makeToy, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

/** Float64 Gram of the float32 rows. */
function gram64(rows: number[][]): number[][] {
  const f = rows.map((r) => Array.from(Float32Array.from(r)));
  return f.map((a) => f.map((b) => a.reduce((s, v, k) => s + v * b[k], 0)));
}

describe('readGram', () => {
  it('the scaled reading leaks no tensor and costs nothing when nothing overflows', () => {
    const M = tf.randomNormal([3, 50], 0, 1, 'float32', 5) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const plain = readGram(M, true);
    const scaled = readGramScaled(M, true);
    expect(tf.memory().numTensors).toBe(before);
    expect(scaled).toEqual(plain); // bit-identical: a division by a power of two is exact
    M.dispose();
  });

  it('a finite gradient of 4.8e19 gives a finite Gram matrix equal to the float64 one', () => {
    const rows = [
      [4.8e19, -3e19, 1e19, 2e18],
      [0.5, -1, 2, 0.25],
      [1e-30, 3e-31, 0, -2e-30],
    ];
    const M = tf.tensor2d(rows);
    const before = tf.memory().numTensors;
    const { gram, stats } = readGram(M as tf.Tensor2D, true);
    expect(tf.memory().numTensors).toBe(before);
    M.dispose();
    const ref = gram64(rows);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        expect(Number.isFinite(gram[i][j]), `G[${i}][${j}] = ${gram[i][j]}`).toBe(true);
        expect(Math.abs(gram[i][j] - ref[i][j])).toBeLessThanOrEqual(1e-6 * Math.sqrt(Math.abs(ref[i][i] * ref[j][j])));
      }
    }
    expect(gram[0][0]).toBeGreaterThan(3.4e38); // beyond float32: only float64 holds it
    expect(gram[2][2]).toBeGreaterThan(0); // 1e-60 underflowed float32 to 0 before
    expect(stats!.maxAbs[0]).toBeCloseTo(4.8e19, -14);
  });

  it('ordinary gradients: bit-identical to the plain float32 M Mᵀ', () => {
    for (const [T, P] of [
      [2, 7],
      [3, 100],
      [6, 513],
    ]) {
      const M = tf.randomNormal([T, P], 0, 0.3, 'float32', T * 31 + P) as tf.Tensor2D;
      const plain = tf.tidy(() => (T > 4 ? tf.matMul(M, tf.transpose(M)) : tf.matMul(M, M, false, true)).dataSync());
      const { gram } = readGramScaled(M, false);
      M.dispose();
      expect(gram.flat()).toEqual(Array.from(plain));
    }
  });

  it('a zero gradient stays zero; a non-finite one is reported as what it is', () => {
    const M = tf.tensor2d([
      [0, 0, 0],
      [1, Number.POSITIVE_INFINITY, 2],
      [1, Number.NaN, 2],
      [1, 2, 3],
    ]);
    const { gram } = readGram(M as tf.Tensor2D, false);
    M.dispose();
    expect([gram[0][0], gram[0][3], gram[3][0]]).toEqual([0, 0, 0]);
    expect(gram[1][1]).toBe(Number.POSITIVE_INFINITY);
    expect(gram[2][2]).toBeNaN();
    expect(gram[3][3]).toBe(14);
  });
});

describe('every Gram strategy trains with a finite gradient of ~1e20', () => {
  const gramStrategies = list()
    .filter((s) => s.kind === 'gram' && s.reads.includes('gram'))
    .map((s) => s.name);

  it('there are Gram strategies to test', () => expect(gramStrategies.length).toBeGreaterThanOrEqual(10));

  it.each(gramStrategies)('%s: no step skipped, weights finite, no message blaming an infinite gradient', async (name) => {
    // term b's loss is multiplied by 1e20: its gradient norm is about 1e20, so Σ g² ≈ 1e40.
    const toy = makeToy([1, 1e20, 1], { names: ['a', 'b', 'c'], seed: 3 });
    const optimizer = tf.train.sgd(1e-30);
    const warnings: string[] = [];
    const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables, warn: (m) => warnings.push(m) });
    try {
      for (let i = 0; i < 4; i++) {
        const r = i < 3 ? trainer.step() : await trainer.stepAsync();
        // A skip is allowed only with a true reason: modo's weight of b reaches 1.3e33 at step 3, and
        // w·L then overflows float32 (the trainer says so). Never a blame on the Gram matrix.
        if (r.skipped) expect(r.skipped, `${name} step ${i}`).toMatch(/times its loss .* overflows float32/);
        for (const w of Object.values(r.weights)) expect(Number.isFinite(w), `${name} weight ${w}`).toBe(true);
      }
      expect(warnings.filter((w) => /Gram matrix row/.test(w))).toEqual([]);
    } finally {
      await trainer.close();
      optimizer.dispose();
      toy.dispose();
    }
  });
});

describe('every gradient-reading mode reads a 1e20 gradient without a false skip', () => {
  /** A three-term model (shared W, one head each) with term b's loss times 1e20; two micro-batches. */
  function model() {
    const id = Math.random().toString(36).slice(2);
    const W = tf.variable(tf.randomNormal([3, 4], 0, 0.5, 'float32', 4), true, `W_${id}`);
    const H = [0, 1, 2].map((i) => tf.variable(tf.randomNormal([4, 1], 0, 0.5, 'float32', 5 + i), true, `H${i}_${id}`));
    const xs = [0, 1].map((j) => tf.randomNormal([6, 3], 0, 1, 'float32', 9 + j) as tf.Tensor2D);
    const ys = [0, 1, 2].map((i) => tf.randomNormal([6, 1], 0, 1, 'float32', 12 + i) as tf.Tensor2D);
    let micro = 0;
    const trunk = () => tf.tanh(tf.matMul(xs[micro], W));
    const heads = (z: tf.Tensor): Record<string, tf.Scalar> =>
      Object.fromEntries(H.map((h, i) => ['abc'[i], tf.mean(tf.square(tf.sub(tf.matMul(z as tf.Tensor2D, h), ys[i]))).mul(i === 1 ? 1e20 : 1) as tf.Scalar]));
    return { variables: [W, ...H], terms: () => heads(trunk()), represent: { trunk, heads }, setMicro: (j: number) => (micro = j), dispose: () => tf.dispose([W, ...H, ...xs, ...ys]) };
  }

  it.each(['exact', 'per-term', 'accumulate', 'representation'] as const)('%s mode, mgda and upgrad', (mode) => {
    for (const name of ['mgda', 'upgrad']) {
      const m = model();
      const optimizer = tf.train.sgd(1e-30);
      const warnings: string[] = [];
      const trainer = new BalancedTrainer({
        ...(mode === 'representation' ? { represent: m.represent } : { terms: m.terms }),
        optimizer,
        balancer: name,
        variables: m.variables,
        singleForward: mode !== 'per-term',
        warn: (w) => warnings.push(w),
      });
      try {
        for (let i = 0; i < 2; i++) {
          const r = mode === 'accumulate' ? trainer.step({ microBatches: 2, setMicroBatch: (j) => m.setMicro(j) }) : trainer.step();
          expect(r.skipped, `${mode} ${name} step ${i}`).toBeUndefined();
          expect(r.gradNorms!.b, `${mode} ${name}`).toBeGreaterThan(1e19);
          expect(Number.isFinite(r.gradNorms!.b)).toBe(true);
        }
        expect(warnings).toEqual([]);
      } finally {
        optimizer.dispose();
        m.dispose();
      }
    }
  });
});
