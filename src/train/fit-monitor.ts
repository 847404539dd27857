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
import type { LossFn } from './fit-session.js';

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
  /** Where the warning about a tfjs-shifted `val_` key goes (see {@link monitorScore}); none when absent. */
  warn?: (message: string) => void;
}

/**
 * The per-output keys `fitBalanced` adds for a model with several outputs, without the `val_`
 * prefix, one per entry j of `metricsTensors` (whose tfjs label is `labels[1 + j]`):
 * `loss/<out>` for each output's loss, then `<metric>/<out>` for each compiled metric, `<metric>`
 * being tfjs's label without its `<out>_` prefix (`cls_acc` → `acc/cls`, a deduplicated
 * `cls_acc_1` → `acc_1/cls`). The form is that of `alpha/<out>`: the quantity as a one-output
 * model names it, then the output. Empty for one output (tfjs's keys are not shifted then).
 */
export function perOutputKeys(outputNames: string[], labels: string[], metricsTensors: Array<[LossFn, number]>): string[] {
  if (outputNames.length < 2) return [];
  return metricsTensors.map(([, o], j) => {
    const out = outputNames[o];
    if (j < outputNames.length) return `loss/${out}`;
    const label = labels[1 + j];
    return `${label.startsWith(`${out}_`) ? label.slice(out.length + 1) : label}/${out}`;
  });
}

/** The keys `monitor` accepts for this model (validation keys only when there is validation data). */
export function monitorKeys(ctx: MonitorContext): string[] {
  const own = [...ctx.labels.slice(1), ...perOutputKeys(ctx.outputNames, ctx.labels, ctx.metricsTensors)];
  return [...(ctx.val ? ['val_loss', ...own.map((k) => `val_${k}`)] : []), ...own];
}

/**
 * The score function of a `monitor` key.
 *
 * - `val_loss`: Σ_i lossWeights_i · L_i + the layers' regularisation penalties (Keras' `val_loss`;
 *   fixed weights, so candidates are compared on the same objective whatever weights they learnt).
 * - `val_<label>` for each compiled label but `loss` (`val_<out>_loss`, `val_acc`, `val_<out>_acc`, ...),
 *   and the added per-output keys `val_loss/<out>`, `val_<metric>/<out>` ({@link perOutputKeys}):
 *   that output's own loss or metric on the validation data (`model.evaluate`'s value).
 * - For several outputs, `val_loss` and `val_<label>` name History keys whose values tfjs shifts
 *   (docs/guide.md, "fitBalanced"): the score is still the quantity the name means in Keras (above),
 *   not the shifted History value, and `ctx.warn` is told so once, naming the History key that holds
 *   the scored value (`val_<metric>/<out>`, `val_loss/<out>`) when there is one.
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
    // Outputs compiled without a loss are not in the objective (as in Keras).
    parts = ctx.outputNames.map((n, i) => [i, ctx.lossFns[i], ctx.baseWeights?.[n] ?? 1] as [number, LossFn, number]).filter(([, fn]) => typeof fn === 'function');
    withReg = ctx.hasReg;
  } else if (perOutputKeys(ctx.outputNames, ctx.labels, ctx.metricsTensors).includes(name)) {
    const j = perOutputKeys(ctx.outputNames, ctx.labels, ctx.metricsTensors).indexOf(name);
    const [fn, o] = ctx.metricsTensors[j];
    parts = [[o, j < ctx.outputNames.length ? ctx.lossFns[o] : fn, 1]];
  } else {
    const j = ctx.labels.indexOf(name) - 1;
    if (j < 0 || !ctx.metricsTensors[j]) {
      throw new BalancerError(`fitBalanced: ${opt} is not a quantity of this model; allowed: ${monitorKeys(ctx).join(', ')}`);
    }
    const [fn, o] = ctx.metricsTensors[j];
    parts = [[o, fn, 1]];
  }
  if (isVal && multi && !name.includes('/')) warnShifted(key, name, ctx);
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

/** The one warning of {@link monitorScore} for a tfjs-shifted `val_` key of a model with several outputs. */
function warnShifted(key: string, name: string, ctx: MonitorContext): void {
  const head = `fitBalanced: balancer option "monitor" ("${key}"): for a model with several outputs, tfjs's History key "${key}" is shifted (tfjs-layers' test function; docs/guide.md, "fitBalanced")`;
  // 'val_loss' is the documented monitor and scores Keras' total Σ lossWeights_i·L_i + penalties; no
  // History key holds that total (tfjs's val_loss holds the first output's loss), so a warning could
  // point nowhere: docs/guide-auto.md says it instead of a warning on every run.
  if (name === 'loss') return;
  const own = perOutputKeys(ctx.outputNames, ctx.labels, ctx.metricsTensors)[ctx.labels.indexOf(name) - 1];
  ctx.warn?.(`${head}: it does not hold ${name}, while the selection scores ${name} itself (model.evaluate's value), which History logs as "val_${own}"; monitor "val_${own}" to name the same quantity as History`);
}
