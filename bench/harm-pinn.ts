/**
 * A small 1-D physics-informed fit, the PINN failure in miniature: −u'' = f on [0, 1] with
 * u(0) = u(1) = 0 and f = 16π² sin 4πx, whose solution is u = sin 4πx.
 *
 * The model is a one-hidden-layer tanh network u(x) = Σ_j v_j tanh(w_j x + b_j) + c. Its second
 * input derivative is written out, u''(x) = Σ_j v_j w_j² · (−2 t_j (1 − t_j²)) with t_j = tanh(w_j x + b_j),
 * because tfjs's nested `tf.grad` cannot differentiate a tanh network twice with respect to its input
 * (docs: PITFALLS). Terms: `residual` = mean over fixed collocation points of (−u'' − f)², `bc` =
 * u(0)² + u(1)². The residual's gradient is about three orders of magnitude larger than the boundary
 * term's at the start, as in the report.
 */
import * as tf from '@tensorflow/tfjs';
import { BalancedTrainer } from '../src/train/trainer.js';
import type { StepRecord } from '../src/core/history.js';
import type { BalancerSpec } from '../src/core/types.js';
import { tfjsSeed } from '../src/core/rng.js';

/** Options of {@link pinnRun}. */
export interface PinnOptions {
  spec: BalancerSpec;
  /** @default 1500 */
  steps?: number;
  /** Hidden units. @default 32 */
  hidden?: number;
  /** Collocation points (evenly spaced in (0, 1)). @default 64 */
  points?: number;
  /** Adam learning rate. @default 5e-3 */
  lr?: number;
  /** @default 1 */
  seed?: number;
  /** Live warnings of the trainer (harm checks included). @default ignored */
  warn?: (m: string) => void;
}

/** What {@link pinnRun} returns. */
export interface PinnResult {
  /** max |u − sin 4πx| on 201 evenly spaced points of [0, 1]. */
  maxError: number;
  records: StepRecord[];
}

/** Train the 1-D PINN once with `spec`. Leaves no tensor behind. */
export function pinnRun(o: PinnOptions): PinnResult {
  const { steps = 1500, hidden = 32, points = 64, lr = 5e-3, seed = 1 } = o;
  const k = 4 * Math.PI;
  const vars = tf.tidy(() => [
    tf.variable(tf.randomNormal([1, hidden], 0, 4, 'float32', tfjsSeed(seed)), true, `pinn_w_${seed}_${Math.random()}`),
    tf.variable(tf.randomNormal([hidden], 0, 2, 'float32', tfjsSeed(seed + 1)), true, `pinn_b_${seed}_${Math.random()}`),
    tf.variable(tf.randomNormal([hidden, 1], 0, Math.sqrt(1 / hidden), 'float32', tfjsSeed(seed + 2)), true, `pinn_v_${seed}_${Math.random()}`),
    tf.variable(tf.zeros([1]), true, `pinn_c_${seed}_${Math.random()}`),
  ]);
  const [w, b, v, c] = vars;
  const xs = tf.tensor2d(Array.from({ length: points }, (_, i) => (i + 0.5) / points), [points, 1]);
  const f = tf.tidy(() => tf.sin(xs.mul(k)).mul(k * k));
  const ends = tf.tensor2d([0, 1], [2, 1]);
  const u = (x: tf.Tensor2D) => tf.tidy(() => tf.tanh(x.matMul(w).add(b)).matMul(v).add(c));
  const uxx = (x: tf.Tensor2D) =>
    tf.tidy(() => {
      const t = tf.tanh(x.matMul(w).add(b));
      const d2 = t.mul(tf.scalar(1).sub(t.square())).mul(-2); // tanh''
      return d2.mul(w.square()).matMul(v);
    });
  const opt = tf.train.adam(lr);
  try {
    const trainer = new BalancedTrainer({
      terms: () => ({
        residual: tf.mean(tf.square(uxx(xs).neg().sub(f))) as tf.Scalar,
        bc: tf.sum(tf.square(u(ends))) as tf.Scalar,
      }),
      optimizer: opt,
      balancer: o.spec,
      variables: vars,
      shared: vars,
      warn: o.warn ?? (() => {}),
    });
    for (let s = 0; s < steps; s++) trainer.step();
    const maxError = tf.tidy(() => {
      const grid = tf.tensor2d(Array.from({ length: 201 }, (_, i) => i / 200), [201, 1]);
      return tf.max(tf.abs(u(grid).sub(tf.sin(grid.mul(k))))).dataSync()[0];
    });
    return { maxError, records: trainer.history.records };
  } finally {
    opt.dispose();
    tf.dispose([...vars, xs, f, ends]);
  }
}
