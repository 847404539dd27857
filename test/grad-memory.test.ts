/**
 * Peak memory of gradient reading (issue 15): the library's own backward passes over the shared
 * tape are not recorded on it (tfjs records nested backward passes for higher-order gradients and
 * keeps a copy of every tensor they save until the outer gradient call ends), while the user's
 * forward, including a `tf.grad` inside `terms()`, still is. Numbers are checked against tfjs's own
 * gradients (one `tf.variableGrads` per term); memory by the engine's own counters.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { perTermGradients, termGradientsOnce, withTape } from '../src/train/grads.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
type EngineState = { activeTape: unknown[] | null; kernelDepth: number; gradientDepth: number };
const state = () => tf.engine().state as unknown as EngineState;

function mlp(T: number) {
  const id = Math.random().toString(36).slice(2);
  const W1 = tf.variable(tf.randomNormal([6, 16], 0, 0.4, 'float32', 1), true, `W1_${id}`);
  const W2 = tf.variable(tf.randomNormal([16, 16], 0, 0.3, 'float32', 2), true, `W2_${id}`);
  const hs = Array.from({ length: T }, (_, i) => tf.variable(tf.randomNormal([16, 1], 0, 0.5, 'float32', 10 + i), true, `h${i}_${id}`));
  const x = tf.randomNormal([8, 6], 0, 1, 'float32', 3);
  const trunk = () => tf.relu(tf.matMul(tf.relu(tf.matMul(x, W1)), W2));
  const terms = () => {
    const z = trunk();
    return Object.fromEntries(hs.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.matMul(z, h))) as tf.Scalar]));
  };
  const vars = [W1, W2, ...hs];
  return { terms, vars, names: hs.map((_, i) => `t${i}`), dispose: () => tf.dispose([...vars, x]) };
}

describe('gradient reading memory, issue 15', () => {
  it('backward passes over the shared tape add nothing to it and keep only their gradients', () => {
    const m = mlp(4);
    const before = tf.memory().numTensors;
    const lengths: number[] = [];
    const added: number[] = [];
    tf.tidy(() => {
      withTape((tape) => {
        const t = m.terms();
        lengths.push(state().activeTape!.length);
        const out: tf.NamedTensorMap = {};
        m.names.forEach((n, i) => {
          const bytes = tf.memory().numBytes;
          const gs = tape.grads(t[n], m.vars);
          // The first pass keeps exactly the gradients it returns (no saved copies, no cached transposes).
          if (i === 0) added.push(tf.memory().numBytes - bytes, gs.reduce((s, g) => s + (g ? g.size * 4 : 0), 0));
          gs.forEach((g, k) => g && (out[`${i}:${k}`] = g));
          lengths.push(state().activeTape!.length);
        });
        tape.unrecorded(() => tf.addN(Object.values(t)).dataSync());
        lengths.push(state().activeTape!.length);
        return out;
      });
    });
    expect(lengths.every((l) => l === lengths[0])).toBe(true);
    expect(added[0]).toBe(added[1]);
    expect(state().kernelDepth).toBe(0);
    expect(state().gradientDepth).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('the engine is left as it was when a backward pass throws', () => {
    const m = mlp(2);
    const before = tf.memory().numTensors;
    expect(() =>
      tf.tidy(() =>
        withTape((tape) => {
          const t = m.terms();
          tape.grads(t.t0, m.vars);
          tape.grads(t.t1, m.vars, tf.ones([3])); // dy of the wrong shape
          return {};
        }),
      ),
    ).toThrow();
    expect(state().kernelDepth).toBe(0);
    expect(state().gradientDepth).toBe(0);
    expect(state().activeTape === null || state().activeTape!.length === 0).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('a tf.grad inside terms() is still recorded: second-order per-term gradients equal tfjs own', () => {
    const id = Math.random().toString(36).slice(2);
    const W = tf.variable(tf.randomNormal([3, 4], 0, 0.5, 'float32', 7), true, `W_${id}`);
    const h = tf.variable(tf.randomNormal([4, 1], 0, 0.5, 'float32', 8), true, `h_${id}`);
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 9);
    // u(x) = (x W)² h; residual term: mean((∂Σu/∂x)²) (a derivative w.r.t. the input, as in a PINN).
    const terms = (): Record<string, tf.Scalar> => {
      const u = (xx: tf.Tensor) => tf.matMul(tf.square(tf.matMul(xx, W)), h);
      const dudx = tf.grad((xx: tf.Tensor) => tf.sum(u(xx)))(x);
      return { residual: tf.mean(tf.square(dudx)), fit: tf.mean(tf.square(tf.sub(u(x), 1))) };
    };
    const names = ['residual', 'fit'];
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const ref = perTermGradients(terms, names, [W, h], () => {});
      const got = termGradientsOnce(terms, names, [W, h], () => {});
      names.forEach((_, i) => {
        expect([...got.grads[i].keys()].sort()).toEqual([...ref.grads[i].keys()].sort());
        for (const [k, g] of ref.grads[i]) expect(maxDiff(g, got.grads[i].get(k)!)).toBeLessThan(1e-5);
      });
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([W, h, x]);
  });
});
