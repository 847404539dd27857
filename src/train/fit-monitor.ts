/**
 * The quantity a `monitor` key of `fitBalanced`'s `auto` balancer names, as a score function: each
 * call evaluates the model (inference mode) on the validation data (or, for a training key, on the
 * training part) with the variables currently in place, using the model's compiled losses and
 * metrics as fit's evaluation does: per-sample values averaged over all samples, in batches.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { BalancerError } from '../core/errors.js';
import type { LossFn } from './fit.js';

/** A monitored quantity: its score function and its Keras `'auto'` mode. */
export interface MonitorScore {
  score: () => number;
  /** `'max'` when the key names an accuracy (`acc`, `accuracy`), else `'min'` (as Keras' `mode: 'auto'`). */
  mode: 'min' | 'max';
}

/** What the evaluator needs from the fit call. */
export interface MonitorContext {
  model: tf.LayersModel;
  outputNames: string[];
  /** `getDedupedMetricsNames()`: `loss`, then one label per entry of `metricsTensors`. */
  labels: string[];
  lossFns: LossFn[];
  /** The model's `metricsTensors`: `[fn, output index]` for `labels[1 + j]`. */
  metricsTensors: Array<[LossFn, number]>;
  /** Base weights by output (`lossWeights`), default 1. */
  baseWeights?: Record<string, number>;
  hasReg: boolean;
  batchSize: number;
  val?: { x: tf.Tensor[]; y: tf.Tensor[] };
  train: { x: tf.Tensor[]; y: tf.Tensor[] };
}

/** The keys `monitor` accepts for this model (validation keys only when there is validation data). */
export function monitorKeys(ctx: MonitorContext): string[] {
  const multi = ctx.outputNames.length > 1;
  const own = [...ctx.labels.slice(1), ...(multi ? ctx.outputNames.map((n) => `loss/${n}`) : [])];
  return [...(ctx.val ? ['val_loss', ...own.map((k) => `val_${k}`)] : []), ...own];
}

/**
 * The score function of a `monitor` key.
 *
 * - `val_loss`: Σ_i lossWeights_i · L_i + the layers' regularisation penalties (Keras' `val_loss`;
 *   fixed weights, so candidates are compared on the same objective whatever weights they learnt).
 * - `val_<label>` for each compiled label but `loss` (`val_<out>_loss`, `val_acc`, `val_<out>_acc`, ...)
 *   and `val_loss/<out>`: that output's own loss or metric on the validation data.
 * - The same keys without `val_`: on the training part (all of it, inference mode). Training `loss`
 *   is refused: fit's `loss` is the balanced objective Σ w_i L_i, whose weights differ between
 *   candidates, so it cannot rank them.
 * @throws BalancerError naming option `monitor` for an unknown key, a `val_` key without validation
 * data, or `loss`.
 */
export function monitorScore(key: string, ctx: MonitorContext): MonitorScore {
  const opt = `balancer option "monitor" ("${key}")`;
  if (key === 'loss') {
    throw new BalancerError(
      `fitBalanced: ${opt}: the training "loss" is the balanced objective Σ w_i·L_i, whose weights differ between the candidates, so it cannot rank them; monitor "val_loss" (with validationData or validationSplit), an output's own loss such as "${ctx.labels[1] ?? 'val_loss'}", or omit monitor for the default scale-free score`,
    );
  }
  const isVal = key.startsWith('val_');
  if (isVal && !ctx.val) {
    throw new BalancerError(`fitBalanced: ${opt} needs validation data: give argument "validationData" or "validationSplit", or monitor a training key (${monitorKeys(ctx).join(', ')})`);
  }
  const name = isVal ? key.slice(4) : key;
  const multi = ctx.outputNames.length > 1;
  // Per-output summands: [output index, fn, coefficient]; plus the regularisation penalties for val_loss.
  let parts: Array<[number, LossFn, number]>;
  let withReg = false;
  if (name === 'loss') {
    parts = ctx.outputNames.map((n, i) => [i, ctx.lossFns[i], ctx.baseWeights?.[n] ?? 1]);
    withReg = ctx.hasReg;
  } else if (multi && name.startsWith('loss/') && ctx.outputNames.includes(name.slice(5))) {
    const i = ctx.outputNames.indexOf(name.slice(5));
    parts = [[i, ctx.lossFns[i], 1]];
  } else {
    const j = ctx.labels.indexOf(name) - 1;
    if (j < 0 || !ctx.metricsTensors[j]) {
      throw new BalancerError(`fitBalanced: ${opt} is not a quantity of this model; allowed: ${monitorKeys(ctx).join(', ')}`);
    }
    const [fn, o] = ctx.metricsTensors[j];
    parts = [[o, fn, 1]];
  }
  const data = isVal ? ctx.val! : ctx.train;
  const n = data.x[0].shape[0];
  const score = (): number =>
    tf.tidy(() => {
      let sum: tf.Tensor = tf.scalar(0);
      for (let s = 0; s < n; s += ctx.batchSize) {
        const size = Math.min(ctx.batchSize, n - s);
        const xs = data.x.map((t) => t.slice(s, size));
        const out = ctx.model.apply(xs.length === 1 ? xs[0] : xs, { training: false }) as tf.Tensor | tf.Tensor[];
        const preds = Array.isArray(out) ? out : [out];
        for (const [o, fn, c] of parts) sum = tf.add(sum, tf.mul(tf.mean(fn(data.y[o].slice(s, size), preds[o])), c * size));
      }
      let v = tf.div(sum, n);
      if (withReg) v = tf.add(v, tf.addN(ctx.model.calculateLosses()));
      return v.dataSync()[0];
    });
  const mode = key.includes('acc') ? 'max' : 'min'; // tfjs/Keras EarlyStopping, mode 'auto'
  return { score, mode };
}
