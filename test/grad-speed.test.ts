/**
 * The faster gradient reading of issue 15 gives the same numbers as the plain per-term path:
 * transposed matrix products in the backward pass rewritten as transpose + plain product (wasm), in
 * exact and in representation mode. References: one `tf.variableGrads` per term (tfjs's
 * own gradients) and `tf.grad` of each head w.r.t. z.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { perTermGradients, representationGradients, termGradientsOnce } from '../src/train/grads.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function model() {
  const id = Math.random().toString(36).slice(2);
  const W = tf.variable(tf.randomNormal([6, 5], 0, 0.5, 'float32', 1), true, `W_${id}`);
  const Wt = tf.variable(tf.randomNormal([5, 5], 0, 0.5, 'float32', 2), true, `Wt_${id}`); // used transposed
  const B = tf.variable(tf.randomNormal([2, 8, 3], 0, 0.5, 'float32', 3), true, `B_${id}`); // batched product
  const h1 = tf.variable(tf.randomNormal([5, 1], 0, 0.5, 'float32', 4), true, `h1_${id}`);
  const h2 = tf.variable(tf.randomNormal([1, 5], 0, 0.5, 'float32', 5), true, `h2_${id}`);
  const x = tf.randomNormal([8, 6], 0, 1, 'float32', 6);
  const trunk = () => tf.tanh(tf.matMul(tf.matMul(x, W), Wt, false, true));
  const heads = (z: tf.Tensor): Record<string, tf.Scalar> => ({
    a: tf.mean(tf.square(tf.matMul(z, h1))),
    b: tf.mean(tf.square(tf.matMul(z, h2, false, true))),
    c: tf.mean(tf.matMul(tf.stack([z, tf.square(z)]), B, true, false).square().sum(2).mul(tf.range(1, 6))) as tf.Scalar,
  });
  const vars = [W, Wt, B, h1, h2];
  return { trunk, heads, terms: () => heads(trunk()), vars, dispose: () => tf.dispose([...vars, x]) };
}

describe('gradient reading, issue 15', () => {
  it('exact mode: one forward, T backward passes with plain products equals one variableGrads per term', () => {
    const m = model();
    const names = ['a', 'b', 'c'];
    const before = tf.memory().numTensors;
    const runKernel = (tf.engine() as unknown as { runKernel: unknown }).runKernel;
    tf.tidy(() => {
      const ref = perTermGradients(m.terms, names, m.vars, () => {});
      const got = termGradientsOnce(m.terms, names, m.vars, () => {});
      names.forEach((_, i) => {
        expect([...got.grads[i].keys()].sort()).toEqual([...ref.grads[i].keys()].sort());
        for (const [k, g] of ref.grads[i]) expect(maxDiff(g, got.grads[i].get(k)!)).toBeLessThan(1e-5);
      });
    });
    expect((tf.engine() as unknown as { runKernel: unknown }).runKernel).toBe(runKernel);
    expect(Object.prototype.hasOwnProperty.call(tf.engine(), 'runKernel')).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('representation mode: per-term ∂L_i/∂z and Σ w_i g_i equal the reference', () => {
    const m = model();
    const names = ['a', 'b', 'c'];
    const w = [0.5, 2, 1.5];
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      let rows: number[][] = [];
      const got = representationGradients({ trunk: m.trunk, heads: m.heads }, names, m.vars, () => {}, (_l, M) => {
        rows = M.arraySync();
        return w;
      });
      const z = m.trunk();
      names.forEach((n, i) => {
        const ref = tf.grad((zz: tf.Tensor) => m.heads(zz)[n])(z).reshape([-1]);
        expect(maxDiff(ref, tf.tensor1d(rows[i]))).toBeLessThan(1e-5);
      });
      const ref = tf.variableGrads(() => tf.addN(names.map((n, i) => m.terms()[n].mul(w[i]))) as tf.Scalar, m.vars);
      for (const v of m.vars) expect(maxDiff(ref.grads[v.name], got.grads[v.name])).toBeLessThan(1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
