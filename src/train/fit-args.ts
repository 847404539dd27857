/**
 * The arguments of {@link fitBalanced}: tfjs's `ModelFitArgs` (every field, honoured as `model.fit`
 * honours it or rejected with an error naming it) plus the balancing options. Unknown keys are
 * rejected with the closest known key suggested.
 */
import type * as tf from '@tensorflow/tfjs';
import { BalancerError } from '../core/errors.js';
import { closest } from '../core/closest.js';

/** Every field of tfjs 4.x `ModelFitArgs`, with how {@link fitBalanced} treats it. */
export const MODEL_FIT_KEYS = {
  batchSize: 'honoured',
  epochs: 'honoured',
  verbose: 'honoured (no output without tfjs-node, as model.fit; with tfjs-node the progress bar is not shown: warning)',
  callbacks: 'honoured',
  validationSplit: 'honoured',
  validationData: 'honoured ([x, y]; [x, y, sampleWeight] is rejected, as model.fit rejects it)',
  shuffle: 'honoured (true, false; "batch" is rejected, as model.fit rejects it)',
  classWeight: 'honoured',
  sampleWeight: 'rejected (model.fit rejects it too: "sample weight is not supported yet")',
  initialEpoch: 'honoured',
  stepsPerEpoch: 'rejected (model.fit rejects it too: "stepsPerEpoch mode is not implemented yet")',
  validationSteps: 'rejected (model.fit rejects it without stepsPerEpoch, which it does not implement)',
  yieldEvery: 'honoured',
} as const;

/** The balancing options {@link fitBalanced} adds to `ModelFitArgs`. */
export const BALANCING_KEYS = ['balancer', 'lossWeights', 'seed', 'shared', 'representation', 'every', 'sinks', 'onNonFinite', 'warn', 'harm'] as const;

/** A value for an argument error: numbers and strings as written, anything else by its kind. */
function what(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
}

/**
 * Check every key of `args`: unknown keys are an error naming them (and the closest known key);
 * fields `model.fit` rejects are rejected here too, naming the field.
 */
export function checkFitArgs(args: Record<string, unknown>): void {
  checkKeys('fitBalanced', 'ModelFitArgs', args, [...Object.keys(MODEL_FIT_KEYS), ...BALANCING_KEYS]);
  const given = (k: string) => args[k] !== undefined && args[k] !== null;
  if (given('sampleWeight')) {
    throw new BalancerError('fitBalanced: argument "sampleWeight" is not supported (model.fit rejects it too: "sample weight is not supported yet"); use "classWeight"');
  }
  if (given('stepsPerEpoch')) {
    throw new BalancerError('fitBalanced: argument "stepsPerEpoch" is not supported (model.fit does not implement it either)');
  }
  if (given('validationSteps')) {
    throw new BalancerError('fitBalanced: argument "validationSteps" is not supported (model.fit only accepts it with "stepsPerEpoch", which it does not implement)');
  }
  if (args.shuffle !== undefined && args.shuffle !== null && typeof args.shuffle !== 'boolean') {
    throw new BalancerError(`fitBalanced: argument "shuffle" got ${JSON.stringify(args.shuffle)}; must be true or false ("batch" is not implemented by model.fit either)`);
  }
  const vd = args.validationData as unknown[] | undefined;
  if (vd != null && !Array.isArray(vd)) {
    throw new BalancerError(`fitBalanced: argument "validationData" must be [xVal, yVal]; got ${what(vd)}`);
  }
  if (vd != null && vd.length > 0 && vd.length !== 2) {
    throw new BalancerError(
      `fitBalanced: argument "validationData" has ${vd.length} items; give [xVal, yVal] (validation sample weights are not supported, as in model.fit)`,
    );
  }
  for (const k of ['epochs', 'initialEpoch'] as const) {
    const v = args[k];
    if (v != null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      throw new BalancerError(`fitBalanced: argument "${k}" got ${JSON.stringify(v)}; must be an integer >= 0`);
    }
  }
  const seed = args.seed;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
    throw new BalancerError(`fitBalanced: argument "seed" got ${what(seed)}; must be an integer from 0 to 4294967295`);
  }
  const vs = args.validationSplit;
  if (vs != null && (typeof vs !== 'number' || !(vs >= 0 && vs < 1))) {
    throw new BalancerError(`fitBalanced: argument "validationSplit" got ${JSON.stringify(vs)}; must be a number in [0, 1)`);
  }
  const vb = args.verbose;
  if (vb != null && vb !== 0 && vb !== 1 && vb !== 2) {
    throw new BalancerError(`fitBalanced: argument "verbose" got ${JSON.stringify(vb)}; must be 0, 1 or 2`);
  }
}

/** Every field of tfjs 4.x `ModelFitDatasetArgs`, with how {@link fitDatasetBalanced} treats it. */
export const MODEL_FIT_DATASET_KEYS = {
  batchesPerEpoch: 'honoured (the iterator is then kept across epochs, as model.fitDataset keeps it)',
  epochs: 'honoured (required, a positive integer, as model.fitDataset requires)',
  verbose: 'honoured (as model.fitDataset; with tfjs-node the progress bar is not shown: warning)',
  callbacks: 'honoured',
  validationData: 'honoured (a dataset of { xs, ys }, or [x, y] tensors; [x, y, sampleWeight] is rejected, as model.fitDataset rejects it)',
  validationBatchSize: 'honoured (tensor validation data only; default 32, as model.fitDataset)',
  validationBatches: 'honoured (dataset validation data only; default: the whole dataset)',
  yieldEvery: 'honoured',
  initialEpoch: 'honoured',
  classWeight: 'honoured (per batch, as model.fitDataset applies it)',
} as const;

/** The balancing options {@link fitDatasetBalanced} adds (all of fitBalanced's but `seed`: the dataset owns its shuffling). */
export const DATASET_BALANCING_KEYS = BALANCING_KEYS.filter((k) => k !== 'seed');

/**
 * Check the arguments of {@link fitDatasetBalanced}: unknown keys are an error naming them (and the
 * closest known key); what `model.fitDataset` asserts (`epochs` a positive integer, `batchesPerEpoch`
 * and `validationBatches` positive integers, no `validationSplit`) is checked here, naming the field.
 */
export function checkFitDatasetArgs(args: Record<string, unknown>): void {
  const fn = 'fitDatasetBalanced';
  if (args !== null && typeof args === 'object' && args.validationSplit != null) {
    throw new BalancerError(`${fn}: argument "validationSplit" is not supported (model.fitDataset rejects it too); give "validationData" (a dataset or [x, y])`);
  }
  if (args !== null && typeof args === 'object' && args.seed !== undefined) {
    throw new BalancerError(`${fn}: argument "seed" is not supported: the dataset owns its order; seed its shuffle (dataset.shuffle(bufferSize, seed))`);
  }
  checkKeys(fn, 'ModelFitDatasetArgs', args, [...Object.keys(MODEL_FIT_DATASET_KEYS), ...DATASET_BALANCING_KEYS]);
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!posInt(args.epochs)) throw new BalancerError(`${fn}: argument "epochs" got ${JSON.stringify(args.epochs)}; must be a positive integer (required, as in model.fitDataset)`);
  for (const k of ['batchesPerEpoch', 'validationBatches', 'validationBatchSize'] as const) {
    if (args[k] != null && !posInt(args[k])) throw new BalancerError(`${fn}: argument "${k}" got ${JSON.stringify(args[k])}; must be a positive integer`);
  }
  const ie = args.initialEpoch;
  if (ie != null && (typeof ie !== 'number' || !Number.isInteger(ie) || ie < 0)) {
    throw new BalancerError(`${fn}: argument "initialEpoch" got ${JSON.stringify(ie)}; must be an integer >= 0`);
  }
  const vd = args.validationData as unknown;
  if (Array.isArray(vd) && vd.length !== 2) {
    throw new BalancerError(`${fn}: argument "validationData" has ${vd.length} items; give [xVal, yVal] or a dataset (validation sample weights are not supported, as in model.fitDataset)`);
  }
  if (vd != null && !Array.isArray(vd) && typeof (vd as { iterator?: unknown }).iterator !== 'function') {
    throw new BalancerError(`${fn}: argument "validationData" must be a tf.data.Dataset of { xs, ys } or [xVal, yVal]`);
  }
  const vb = args.verbose;
  if (vb != null && vb !== 0 && vb !== 1 && vb !== 2) {
    throw new BalancerError(`${fn}: argument "verbose" got ${JSON.stringify(vb)}; must be 0, 1 or 2`);
  }
}

/** The arguments are an object and every key is known; else an error naming the key and the closest known one. */
function checkKeys(fn: string, tfType: string, args: Record<string, unknown>, known: readonly string[]): void {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new BalancerError(`${fn}: the arguments must be an object (tfjs ${tfType} plus balancing options)`);
  }
  for (const key of Object.keys(args)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    throw new BalancerError(`${fn}: unknown argument "${key}"${near ? `; did you mean "${near}"?` : ''} (known: ${known.join(', ')})`);
  }
}

/** Keras' `loss_weights`: one weight per output, as an array in output order or an object by output name. */
export type LossWeights = number[] | Record<string, number>;

/** `lossWeights` as the balancer's `baseWeights` (by output name), with errors naming the output. */
export function lossWeightsByName(lw: LossWeights, outputNames: readonly string[]): Record<string, number> {
  let out: Record<string, number>;
  if (Array.isArray(lw)) {
    if (lw.length !== outputNames.length) {
      throw new BalancerError(`fitBalanced: argument "lossWeights" has ${lw.length} entries; the model has ${outputNames.length} outputs (${outputNames.join(', ')})`);
    }
    out = Object.fromEntries(outputNames.map((n, i) => [n, lw[i]]));
  } else if (lw && typeof lw === 'object') {
    const extra = Object.keys(lw).find((k) => !outputNames.includes(k));
    if (extra !== undefined) {
      throw new BalancerError(`fitBalanced: argument "lossWeights" names "${extra}", which is not an output of the model (${outputNames.join(', ')})`);
    }
    out = { ...lw };
  } else {
    throw new BalancerError('fitBalanced: argument "lossWeights" must be an array (one weight per output) or an object { outputName: weight }');
  }
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new BalancerError(`fitBalanced: argument "lossWeights" gives output "${k}" the weight ${JSON.stringify(v)}; must be a finite number >= 0`);
    }
  }
  return out;
}

/** The callback forms `model.fit` takes. */
export type FitCallbacks = tf.ModelFitArgs['callbacks'];
