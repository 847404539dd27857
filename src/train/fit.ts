/**
 * `fitBalanced`: train a compiled multi-output `tf.LayersModel` with each output's compiled loss as
 * one term, the weights chosen by a balancer every step. TF.js `compile()` has no `lossWeights` (and
 * fixed weights are what we want to replace), so this drives its own loop with `variableGrads`
 * through {@link BalancedTrainer}, and returns a History shaped like `model.fit`'s.
 */
import * as tf from '@tensorflow/tfjs';
import type { Balancer } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import type { Sink } from '../core/history.js';
import { permutation, seedRng } from '../core/rng.js';
import { splitModel } from './split.js';
import { BalancedTrainer } from './trainer.js';
import type { BalancerSpec, NonFinitePolicy } from '../core/types.js';

/** A per-output loss: `(yTrue, yPred) → per-sample (or scalar) loss`. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Callbacks in the shape of tfjs `CustomCallbackArgs` (all optional, may be async). */
export interface FitBalancedCallbacks {
  /** Called once before the first epoch (no logs). */
  onTrainBegin?: (logs?: tf.Logs) => void | Promise<void>;
  /** Called once after the last epoch (no logs). */
  onTrainEnd?: (logs?: tf.Logs) => void | Promise<void>;
  /** Called at the start of every epoch with its 0-based index. */
  onEpochBegin?: (epoch: number, logs?: tf.Logs) => void | Promise<void>;
  /**
   * Called at the end of every epoch with its 0-based index and the epoch means of `loss`,
   * `loss/<term>` and `alpha/<term>` over the batches that were not skipped, plus
   * `val_loss/<term>` when `validationData` is given.
   */
  onEpochEnd?: (epoch: number, logs?: tf.Logs) => void | Promise<void>;
  /** Called after every batch with its 0-based index in the epoch, `loss` (the weighted total) and `loss/<term>`. */
  onBatchEnd?: (batch: number, logs?: tf.Logs) => void | Promise<void>;
}

/** Options of {@link fitBalanced}. */
export interface FitBalancedOptions {
  /** Strategy name, `{ name, ...options }` or a Balancer. @default 'fixed' */
  balancer?: BalancerSpec | Balancer;
  /** @default 1 */
  epochs?: number;
  /** @default 32 */
  batchSize?: number;
  /** Shuffle the samples every epoch (seeded). @default true */
  shuffle?: boolean;
  /** Seed of the shuffle. @default 0 */
  seed?: number;
  /** `[x, ys]` evaluated (unweighted, per term) at the end of every epoch. */
  validationData?: [tf.Tensor | tf.Tensor[], tf.Tensor[]];
  /** Callbacks, as `model.fit` takes them (plain-object form). */
  callbacks?: FitBalancedCallbacks | FitBalancedCallbacks[];
  /** Per-output losses; default: the model's compiled losses. */
  losses?: LossFn[];
  /** Term names; default: the model's output names. */
  names?: string[];
  /** Optimizer; default: the model's compiled optimizer. */
  optimizer?: tf.Optimizer;
  /** Shared variables for the Gram matrix; default: those reached by two or more outputs. */
  shared?: tf.Variable[];
  /**
   * Representation mode: the name of the shared layer whose output z the Gram matrix is formed over
   * (per-term ∂L_i/∂z through the heads, then one backward pass through the trunk). Every path from
   * the trunk to an output must pass through that layer (see `splitModel`). Not with `shared`.
   */
  representation?: string;
  /** Read gradients and refresh the weights only every `every` steps. @default 1 */
  every?: number;
  /** Extra sinks (JSONL, TensorBoard, ...). */
  sinks?: Sink[];
  /** @default 'skip' */
  onNonFinite?: NonFinitePolicy;
  /** Where warnings go. @default console.warn */
  warn?: (message: string) => void;
}

/** What {@link fitBalanced} returns: `model.fit`-like epoch history plus the step trajectory. */
export interface BalancedHistory {
  /** Epoch indices. */
  epoch: number[];
  /**
   * Per-epoch means: `loss` (weighted total), `loss/<term>` (raw), `alpha/<term>` (weight),
   * `val_loss/<term>` when validation data is given.
   */
  history: Record<string, number[]>;
  /** The trainer, with the per-step `history` and the balancer state. */
  trainer: BalancedTrainer;
}

function asList(x: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(x) ? x : [x];
}

/** The model's per-output compiled losses. */
function compiledLosses(model: tf.LayersModel): LossFn[] {
  const fns = (model as unknown as { lossFunctions?: LossFn[] }).lossFunctions;
  if (!fns || !fns.length) {
    throw new BalancerError('fitBalanced: the model is not compiled; compile it with one loss per output, or pass options.losses');
  }
  return fns;
}

/**
 * Train `model` on `x` → `ys` (one target per output) with balanced per-output losses.
 *
 * @example
 * ```ts
 * model.compile({ optimizer: tf.train.adam(1e-3), loss: ['meanSquaredError', 'binaryCrossentropy'] });
 * const h = await fitBalanced(model, x, [y1, y2], { balancer: 'gradnorm', epochs: 5, batchSize: 64 });
 * h.history['alpha/out1'];
 * ```
 */
export async function fitBalanced(
  model: tf.LayersModel,
  x: tf.Tensor | tf.Tensor[],
  ys: tf.Tensor[],
  options: FitBalancedOptions = {},
): Promise<BalancedHistory> {
  await tf.ready();
  const xs = asList(x);
  const outputs = model.outputs.length;
  if (ys.length !== outputs) {
    throw new BalancerError(`fitBalanced: ${ys.length} targets for a model with ${outputs} outputs (${model.outputNames.join(', ')})`);
  }
  const losses = options.losses ?? compiledLosses(model);
  if (losses.length !== outputs) throw new BalancerError(`fitBalanced: ${losses.length} losses for ${outputs} outputs`);
  const names = options.names ?? model.outputNames;
  if (names.length !== outputs) throw new BalancerError(`fitBalanced: ${names.length} names for ${outputs} outputs`);
  const optimizer = options.optimizer ?? (model.optimizer as tf.Optimizer | undefined);
  if (!optimizer) throw new BalancerError('fitBalanced: no optimizer; compile the model or pass options.optimizer');
  const epochs = options.epochs ?? 1;
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new BalancerError(`fitBalanced: option "epochs" got ${epochs}; must be an integer >= 1`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new BalancerError(`fitBalanced: option "batchSize" got ${batchSize}; must be an integer >= 1`);
  const n = xs[0].shape[0];
  for (const t of [...xs, ...ys]) {
    if (t.shape[0] !== n) throw new BalancerError(`fitBalanced: every input and target needs ${n} samples; got one with ${t.shape[0]}`);
  }
  const callbacks = options.callbacks ? (Array.isArray(options.callbacks) ? options.callbacks : [options.callbacks]) : [];
  const fire = async <K extends keyof FitBalancedCallbacks>(key: K, ...args: Parameters<NonNullable<FitBalancedCallbacks[K]>>) => {
    for (const c of callbacks) await (c[key] as ((...a: unknown[]) => unknown) | undefined)?.(...args);
  };

  const termLosses = (inputs: tf.Tensor[], targets: tf.Tensor[], training: boolean): Record<string, tf.Scalar> => {
    const preds = asList(model.apply(inputs.length === 1 ? inputs[0] : inputs, { training }) as tf.Tensor | tf.Tensor[]);
    return Object.fromEntries(names.map((name, k) => [name, tf.mean(losses[k](targets[k], preds[k])) as tf.Scalar]));
  };

  let batchX: tf.Tensor[] = [];
  let batchY: tf.Tensor[] = [];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const split = options.representation !== undefined ? splitModel(model, options.representation) : null;
  const lossesOf = (preds: tf.Tensor[]) => Object.fromEntries(names.map((name, k) => [name, tf.mean(losses[k](batchY[k], preds[k])) as tf.Scalar]));
  const trainer = new BalancedTrainer({
    ...(split
      ? { represent: { trunk: () => split.trunk(batchX, true), heads: (z: tf.Tensor) => lossesOf(split.heads(z, batchX, true)) } }
      : { terms: () => termLosses(batchX, batchY, true) }),
    every: options.every,
    optimizer,
    balancer: options.balancer,
    variables,
    shared: options.shared,
    sinks: options.sinks,
    onNonFinite: options.onNonFinite,
    warn: options.warn,
    meta: { model: model.name },
  });

  const history: Record<string, number[]> = {};
  const push = (key: string, v: number) => (history[key] ??= []).push(v);
  const epochList: number[] = [];
  let rng = seedRng(options.seed ?? 0);
  await fire('onTrainBegin');
  for (let epoch = 0; epoch < epochs; epoch++) {
    await fire('onEpochBegin', epoch);
    let order: number[];
    if (options.shuffle === false) order = Array.from({ length: n }, (_, i) => i);
    else [order, rng] = permutation(rng, n);
    const sums: Record<string, number> = {};
    let batches = 0;
    for (let start = 0, b = 0; start < n; start += batchSize, b++) {
      const idx = tf.tensor1d(order.slice(start, start + batchSize), 'int32');
      batchX = xs.map((t) => tf.gather(t, idx));
      batchY = ys.map((t) => tf.gather(t, idx));
      idx.dispose();
      let res;
      try {
        res = trainer.step();
      } finally {
        tf.dispose([...batchX, ...batchY]);
      }
      if (!res.skipped) {
        batches++;
        sums.loss = (sums.loss ?? 0) + res.total;
        for (const nm of names) {
          sums[`loss/${nm}`] = (sums[`loss/${nm}`] ?? 0) + res.losses[nm];
          sums[`alpha/${nm}`] = (sums[`alpha/${nm}`] ?? 0) + res.weights[nm];
        }
      }
      await fire('onBatchEnd', b, { loss: res.total, ...Object.fromEntries(names.map((nm) => [`loss/${nm}`, res.losses[nm]])) });
    }
    const logs: tf.Logs = {};
    for (const [k, v] of Object.entries(sums)) logs[k] = v / Math.max(batches, 1);
    if (options.validationData) {
      const [vx, vys] = options.validationData;
      const val = evaluateTerms(asList(vx), vys, batchSize, names, (i, t) => termLosses(i, t, false));
      for (const nm of names) logs[`val_loss/${nm}`] = val[nm];
    }
    for (const [k, v] of Object.entries(logs)) push(k, v);
    epochList.push(epoch);
    trainer.endEpoch();
    await fire('onEpochEnd', epoch, logs);
  }
  await fire('onTrainEnd');
  return { epoch: epochList, history, trainer };
}

/** Mean unweighted loss per term over a data set, batch by batch, without gradients. */
function evaluateTerms(
  xs: tf.Tensor[],
  ys: tf.Tensor[],
  batchSize: number,
  names: string[],
  termLosses: (x: tf.Tensor[], y: tf.Tensor[]) => Record<string, tf.Scalar>,
): Record<string, number> {
  const n = xs[0].shape[0];
  const sums = Object.fromEntries(names.map((nm) => [nm, 0]));
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const vals = tf.tidy(() => {
      const t = termLosses(
        xs.map((a) => a.slice(start, size)),
        ys.map((a) => a.slice(start, size)),
      );
      return tf.stack(names.map((nm) => t[nm])).dataSync();
    });
    names.forEach((nm, i) => (sums[nm] += vals[i] * size));
  }
  return Object.fromEntries(names.map((nm) => [nm, sums[nm] / n]));
}
