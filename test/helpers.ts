/**
 * Shared test fixtures: a tiny multi-head regression model whose terms have gradient scales that
 * differ by a chosen factor, with everything seeded.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/train/backend.js';
import type { Balancer, BalancerInput } from '../src/core/balancer.js';

let ready: Promise<unknown> | null = null;

/** Use the wasm backend (the library default) for tests; cpu if wasm cannot start. */
export function useTestBackend(name: 'wasm' | 'cpu' = 'wasm'): Promise<unknown> {
  ready ??= initBackend(name);
  return ready;
}

/** A toy multi-task problem: shared trunk W (d→h), one linear head per term. */
export interface Toy {
  trunk: tf.Variable;
  heads: tf.Variable[];
  x: tf.Tensor2D;
  ys: tf.Tensor2D[];
  terms: () => Record<string, tf.Scalar>;
  variables: tf.Variable[];
  dispose(): void;
}

/**
 * `scales[i]` multiplies term i's loss, so its gradients are `scales[i]` times larger. Names are
 * `t0, t1, ...` unless given.
 */
export function makeToy(scales: number[], opts: { seed?: number; d?: number; h?: number; n?: number; names?: string[] } = {}): Toy {
  const { seed = 1, d = 4, h = 8, n = 16 } = opts;
  const names = opts.names ?? scales.map((_, i) => `t${i}`);
  const trunk = tf.variable(tf.randomNormal([d, h], 0, 0.5, 'float32', seed), true, `trunk_${seed}_${Math.random().toString(36).slice(2)}`);
  const heads = scales.map((_, i) =>
    tf.variable(tf.randomNormal([h, 1], 0, 0.5, 'float32', seed + 10 + i), true, `head${i}_${Math.random().toString(36).slice(2)}`),
  );
  const x = tf.randomNormal([n, d], 0, 1, 'float32', seed + 100) as tf.Tensor2D;
  const ys = scales.map((_, i) => tf.randomNormal([n, 1], 0, 1, 'float32', seed + 200 + i) as tf.Tensor2D);
  const terms = () => {
    const z = tf.tanh(tf.matMul(x, trunk));
    const out: Record<string, tf.Scalar> = {};
    heads.forEach((hd, i) => {
      out[names[i]] = tf.mean(tf.square(tf.sub(tf.matMul(z, hd), ys[i]))).mul(scales[i]) as tf.Scalar;
    });
    return out;
  };
  return {
    trunk,
    heads,
    x,
    ys,
    terms,
    variables: [trunk, ...heads],
    dispose() {
      [trunk, ...heads, x, ...ys].forEach((t) => t.dispose());
    },
  };
}

/** `fn()` inside a `tf.tidy` whose result may be any plain value (every tensor created is released). */
export function tidyValue<T>(fn: () => T): T {
  let out!: T;
  tf.tidy(() => {
    out = fn();
  });
  return out;
}

/**
 * `b.update(x)`; for a Jacobian-kind strategy the input's gradient vectors (`x.rows`, as
 * test/fixtures/degenerate-cases.ts builds them) are handed over as the Jacobian (on the backend,
 * released after), and the result's direction is dropped.
 */
export function feed(b: Balancer, x: BalancerInput): ReturnType<Balancer['update']> {
  if (b.kind !== 'jacobian') return b.update(x);
  const rows = (x as BalancerInput & { rows?: number[][] }).rows;
  if (!rows) throw new Error('feed: a Jacobian-kind strategy needs an input with rows (use inputOf)');
  return tidyValue(() => {
    const { direction: _d, ...r } = b.update({ ...x, jacobian: tf.tensor2d(rows), tf });
    return r;
  });
}

/**
 * Run `fn` with `console.log`/`info`/`warn`/`error` captured instead of printed: a script's expected
 * output (a benchmark's tables), which the test then checks, so a passing run prints nothing.
 * @returns The value of `fn` and the captured lines (each call's arguments joined by spaces).
 */
export async function quietly<T>(fn: () => Promise<T> | T): Promise<{ value: T; lines: string[] }> {
  const names = ['log', 'info', 'warn', 'error'] as const;
  const saved = names.map((n) => console[n]);
  const lines: string[] = [];
  for (const n of names) console[n] = (...a: unknown[]) => void lines.push(a.map(String).join(' '));
  try {
    return { value: await fn(), lines };
  } finally {
    names.forEach((n, i) => (console[n] = saved[i]));
  }
}

/**
 * A compiled two-output `tf.LayersModel` on one tanh trunk (3 → `units`), heads `a` and `b`,
 * Glorot-normal kernels seeded 1, 2, 3, Adam 0.01, mean squared error on both outputs.
 */
export function twoOutputModel(units = 8): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [a, b] });
  model.compile({ optimizer: tf.train.adam(0.01), loss: ['meanSquaredError', 'meanSquaredError'] });
  return model;
}

