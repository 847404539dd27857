/**
 * A small shipped example problem, used by `loss-balancer run` and the browser example: multi-head
 * regression with a shared trunk, whose terms' losses (and so gradients) are scaled by factors that
 * differ by orders of magnitude. With equal weights the largest-scale term dominates the shared trunk;
 * a balancer should bring the terms' alphas apart by roughly the inverse of the scales.
 *
 * Data are generated and seeded: inputs `x ~ N(0, 1)`, targets `y_i = tanh(x·A)·b_i + 0.1·noise`
 * for a random teacher (A, b_i), so every head can be fitted and the losses fall.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { tfjsSeed } from '../core/rng.js';

/** Options of {@link makeToyProblem}. */
export interface ToyOptions {
  /** Loss multiplier of each term; their count is the number of terms. @default [1, 10, 100] */
  scales?: number[];
  /** Term names. @default t0, t1, ... */
  names?: string[];
  /** Input width. @default 4 */
  inputs?: number;
  /** Width of the shared hidden layer. @default 16 */
  hidden?: number;
  /** Number of samples (full batch). @default 64 */
  samples?: number;
  /** Seed of the data and of the initial weights. @default 1 */
  seed?: number;
}

/** A toy multi-task problem: pass `terms` and `variables` to a `BalancedTrainer`. */
export interface ToyProblem {
  /** Term names, in order. */
  names: string[];
  /** The named scalar losses (scale_i × mean squared error of head i). */
  terms: () => Record<string, tf.Scalar>;
  /** Every trainable variable: the shared trunk first, then the heads. */
  variables: tf.Variable[];
  /** The shared trunk's variables. */
  shared: tf.Variable[];
  /** Dispose every tensor the problem holds. */
  dispose(): void;
}

let instance = 0;

/** Build the toy problem (tensors on the current backend). Bad options are errors naming the option. */
export function makeToyProblem(options: ToyOptions = {}): ToyProblem {
  const { scales = [1, 10, 100], inputs = 4, hidden = 16, samples = 64, seed = 1 } = options;
  if (!Array.isArray(scales) || scales.length < 1 || scales.some((s) => !Number.isFinite(s) || s <= 0)) {
    throw new Error(`toy: option "scales" got ${JSON.stringify(scales)}; must be a non-empty list of positive numbers`);
  }
  const names = options.names ?? scales.map((_, i) => `t${i}`);
  if (names.length !== scales.length || new Set(names).size !== names.length) {
    throw new Error(`toy: option "names" got ${JSON.stringify(names)}; must be ${scales.length} distinct names, one per scale`);
  }
  for (const [k, v] of Object.entries({ inputs, hidden, samples })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`toy: option "${k}" got ${v}; must be a positive integer`);
  }
  const id = `${++instance}`;
  const { x, ys } = tf.tidy(() => {
    const x = tf.randomNormal([samples, inputs], 0, 1, 'float32', tfjsSeed(seed));
    const teacher = tf.randomNormal([inputs, hidden], 0, 1, 'float32', tfjsSeed(seed + 1));
    const z = tf.tanh(tf.matMul(x, teacher));
    const ys = scales.map((_, i) =>
      tf.add(tf.matMul(z, tf.randomNormal([hidden, 1], 0, 1, 'float32', tfjsSeed(seed + 10 + i))), tf.randomNormal([samples, 1], 0, 0.1, 'float32', tfjsSeed(seed + 50 + i))),
    );
    return { x: tf.keep(x), ys: ys.map((y) => tf.keep(y)) };
  });
  // tf.variable keeps its own reference to the initial value's data: the initial tensor is disposed here
  const variable = (init: tf.Tensor, name: string) => {
    const v = tf.variable(init, true, name);
    init.dispose();
    return v;
  };
  const trunk = variable(tf.randomNormal([inputs, hidden], 0, 0.5, 'float32', tfjsSeed(seed + 100)), `toy${id}_trunk`);
  const heads = scales.map((_, i) => variable(tf.randomNormal([hidden, 1], 0, 0.5, 'float32', tfjsSeed(seed + 200 + i)), `toy${id}_head${i}`));
  return {
    names,
    terms: () => {
      const z = tf.tanh(tf.matMul(x, trunk));
      // fromEntries, not assignment: a term named "__proto__" stays an own key
      return Object.fromEntries(heads.map((h, i) => [names[i], tf.mul(tf.mean(tf.square(tf.sub(tf.matMul(z, h), ys[i]))), scales[i]) as tf.Scalar]));
    },
    variables: [trunk, ...heads],
    shared: [trunk],
    dispose() {
      [x, ...ys, trunk, ...heads].forEach((t) => t.dispose());
    },
  };
}
