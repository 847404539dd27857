/**
 * `fitDatasetBalanced(model, dataset, args)`: `model.fitDataset(dataset, args)` with the per-output
 * compiled losses balanced. The loop follows tfjs-layers 4.x `fitDataset`
 * (src/engine/training_dataset.ts) step for step: the argument checks, a fresh iterator per epoch
 * (or one iterator across epochs with `batchesPerEpoch`, with tfjs's warning when it runs dry),
 * `{ xs, ys }` elements as tensors, arrays or maps by input/output name, class weights applied per
 * batch, each element's tensors disposed after its step (nothing of the dataset is held beyond the
 * batch), validation at an epoch's end by `model.evaluateDataset` (a dataset, `validationBatches`)
 * or `model.evaluate` (tensors, `validationBatchSize`, default 32), the callbacks' params as tfjs
 * sets them, `model.stopTraining`, and a `tf.History`. Each optimizer step is a
 * {@link BalancedTrainer} step on the per-output losses, as in {@link fitBalanced} (the shared parts
 * are in src/train/fit-session.ts). Why an own loop rather than a callback in the user's
 * `fitDataset`: docs/design.md, "fitDatasetBalanced".
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { Balancer } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import { checkFitDatasetArgs } from './fit-args.js';
import { isDataset } from './fit.js';
import { disposeNew, FitSession, takeModel, type BalancedHistory, type BalancingArgs, type Internal } from './fit-session.js';

/**
 * The arguments of {@link fitDatasetBalanced}: every field of tfjs `ModelFitDatasetArgs` (see
 * `MODEL_FIT_DATASET_KEYS` for how each is treated) plus the balancing options ({@link BalancingArgs}).
 */
export interface FitDatasetBalancedArgs<T extends tf.TensorContainer = tf.TensorContainer> extends tf.ModelFitDatasetArgs<T>, BalancingArgs {}

type Element = { xs?: unknown; ys?: unknown };

/** A `{ xs, ys }` part as tensors in the model's input (output) order, as tfjs's `flattenTensorOrArrayOrMap`. */
function flatten(kind: 'input' | 'output', names: string[], values: unknown): tf.Tensor[] {
  if (values instanceof tf.Tensor) return [values];
  if (Array.isArray(values)) {
    if (values.length !== names.length) {
      throw new BalancerError(`fitDatasetBalanced: the dataset gives an array of ${values.length} tensors as ${kind === 'input' ? 'xs' : 'ys'}; the model's ${kind}s are ${names.length} (${names.join(', ')})`);
    }
    return values as tf.Tensor[];
  }
  const map = (values ?? {}) as Record<string, tf.Tensor>;
  return names.map((n) => {
    if (map[n] == null) throw new BalancerError(`fitDatasetBalanced: the dataset's ${kind === 'input' ? 'xs' : 'ys'} lack the ${kind} key "${n}" (the model's ${kind}s: ${names.join(', ')})`);
    return map[n];
  });
}

/** One dataset element as the model's inputs and targets, checked as tfjs's `standardizeDataIteratorOutput` checks it. */
function standardizeElement(model: tf.LayersModel, value: unknown): { xs: tf.Tensor[]; ys: tf.Tensor[] } {
  const el = value as Element;
  if (el === null || typeof el !== 'object' || el.xs == null || el.ys == null) {
    throw new BalancerError(`fitDatasetBalanced: the dataset must give elements { xs, ys } (each a tensor, an array of tensors or a map by input/output name), as model.fitDataset requires; it gave ${String(value)}`);
  }
  const xs = flatten('input', model.inputNames, el.xs);
  const ys = flatten('output', model.outputNames, el.ys);
  const n = xs[0].shape[0];
  [...xs, ...ys].forEach((t, i) => {
    if (t.shape[0] !== n) {
      const name = i < xs.length ? `input ${model.inputNames[i]}` : `output ${model.outputNames[i - xs.length]}`;
      throw new BalancerError(`fitDatasetBalanced: batch size mismatch: ${name} has ${t.shape[0]} samples, input ${model.inputNames[0]} has ${n}`);
    }
  });
  return { xs, ys };
}

/** Whether the balancer is `auto` with a validation `monitor` key (its score evaluates the validation data). */
function monitorsValidation(spec: BalancingArgs['balancer']): boolean {
  if (!spec || typeof spec !== 'object' || spec instanceof Balancer) return false;
  const s = spec as { name?: string; monitor?: unknown };
  return s.name === 'auto' && typeof s.monitor === 'string' && s.monitor.startsWith('val_');
}

/**
 * The validation data as tensors in model order, for an `auto` monitor's score: tensors as given, or
 * a validation dataset read once (its first `validationBatches` batches, else all) and concatenated.
 * @returns The tensors, the batch size to evaluate them with, and how to release them at the end.
 */
async function validationInMemory<T extends tf.TensorContainer>(
  model: tf.LayersModel, m: Internal, args: FitDatasetBalancedArgs<T>,
): Promise<{ x: tf.Tensor[]; y: tf.Tensor[]; batchSize: number; release: () => void }> {
  const vd = args.validationData!;
  if (!isDataset(vd)) {
    const [vx, vy] = vd as [unknown, unknown];
    const batchSize = args.validationBatchSize ?? 32;
    const [x, y] = await m.standardizeUserData(vx, vy, null, null, true, batchSize);
    return { x, y, batchSize, release: () => { disposeNew(x, vx); disposeNew(y, vy); } };
  }
  const it = await (vd as tf.data.Dataset<T>).iterator();
  const xs: tf.Tensor[][] = [];
  const ys: tf.Tensor[][] = [];
  try {
    for (let b = 0; args.validationBatches == null || b < args.validationBatches; b++) {
      const out = await it.next();
      if (out.value != null) {
        const e = standardizeElement(model, out.value);
        xs.push(e.xs);
        ys.push(e.ys);
      }
      if (out.done) break;
    }
    if (!xs.length) throw new BalancerError('fitDatasetBalanced: argument "validationData" is a dataset that gave no batch; the auto balancer\'s monitor cannot score on it');
    const cat = (parts: tf.Tensor[][], i: number) => (parts.length === 1 ? parts[0][i].clone() : tf.concat(parts.map((p) => p[i])));
    const x = xs[0].map((_, i) => cat(xs, i));
    const y = ys[0].map((_, i) => cat(ys, i));
    return { x, y, batchSize: xs[0][0].shape[0], release: () => tf.dispose([...x, ...y]) };
  } finally {
    tf.dispose([...xs.flat(), ...ys.flat()]);
  }
}

/**
 * Train `model` on a `tf.data` dataset as `model.fitDataset(dataset, args)` does, with the
 * per-output compiled losses balanced by `args.balancer`. With the default `fixed` balancer (all
 * weights 1) the numbers are `model.fitDataset`'s: History keys and values, params, validation,
 * final weights (test/fit-dataset.test.ts). A script switches by replacing
 * `model.fitDataset(ds, args)` with `fitDatasetBalanced(model, ds, args)`.
 *
 * @param model A compiled `tf.LayersModel` (its compiled losses, metrics and optimizer are used).
 * @param dataset A `tf.data.Dataset` of batches `{ xs, ys }`, as `model.fitDataset` takes it
 * (`xs`/`ys` a tensor, an array in input/output order, or a map by input/output name). Read once
 * per epoch (with `batchesPerEpoch`: one iterator across epochs); each batch's tensors are disposed
 * after its step, as tfjs disposes them.
 * @param args `ModelFitDatasetArgs` plus the balancing options. `epochs` is required. With
 * `balancer: { name: 'auto', monitor: 'val_…' }` the validation data is held in memory for the
 * selection's scores (a validation dataset is read once, its first `validationBatches` batches);
 * a training `monitor` key is refused (the training data is not in memory).
 * @returns The `tf.History` (`epoch`, `history`, `params`) with `alpha/<out>` beside the loss keys,
 * and `trainer`.
 * @throws BalancerError naming the argument at fault (an unknown or misspelt key with the closest
 * known one, `validationSplit`, `seed`, `epochs` missing, a non-dataset `dataset`); tfjs's own
 * errors for data that does not fit the model.
 *
 * @example
 * ```ts
 * const ds = tf.data.zip({ xs: tf.data.array(xRows), ys: tf.data.zip({ reg: ..., cls: ... }) }).batch(32);
 * const h = await fitDatasetBalanced(model, ds, { epochs: 5, validationData: valDs, balancer: 'gradnorm' });
 * ```
 */
export async function fitDatasetBalanced<T extends tf.TensorContainer>(model: tf.LayersModel, dataset: tf.data.Dataset<T>, args: FitDatasetBalancedArgs<T>): Promise<BalancedHistory> {
  checkFitDatasetArgs(args as unknown as Record<string, unknown>);
  if (!isDataset(dataset)) {
    throw new BalancerError('fitDatasetBalanced: argument "dataset" is not a tf.data.Dataset (it has no iterator()); for tensors use fitBalanced(model, x, y, args), the balanced model.fit');
  }
  if (model.optimizer == null && !(model instanceof tf.Sequential && (model as unknown as { model?: tf.LayersModel }).model?.optimizer)) {
    throw new Error('You must compile a model before training/testing. Use LayersModel.compile(modelCompileConfig).');
  }
  await tf.ready();
  const fn = 'fitDatasetBalanced';
  const { model: inner, m } = takeModel(model, fn);
  model = inner;
  let session: FitSession | undefined;
  let failed = true;
  let release = (): void => {};
  try {
    const hasBatchesPerEpoch = args.batchesPerEpoch != null;
    const doValidation = args.validationData != null;
    const valIsDataset = doValidation && isDataset(args.validationData);
    let monitorVal: { x: tf.Tensor[]; y: tf.Tensor[] } | undefined;
    let monitorBatch = 32;
    if (doValidation && monitorsValidation(args.balancer)) {
      const v = await validationInMemory(model, m, args);
      release = v.release;
      monitorVal = { x: v.x, y: v.y };
      monitorBatch = v.batchSize;
    }
    // auto's totalSteps when the epoch length is known (batchesPerEpoch, or a dataset of known size)
    const perEpoch = args.batchesPerEpoch ?? (Number.isFinite(dataset.size) && dataset.size > 0 ? dataset.size : undefined);
    const totalSteps = perEpoch !== undefined ? perEpoch * Math.max(0, args.epochs - (args.initialEpoch ?? 0)) : undefined;
    session = new FitSession(model, m, args, { fn, batchSize: monitorBatch, doValidation, monitorVal: () => monitorVal, totalSteps });
    const { trainer, outputNames } = session;
    const warn = args.warn ?? ((s: string) => console.warn(s));
    const auto = trainer.tournament === null && isAutoSpec(args.balancer) ? (typeof args.balancer === 'object' ? (args.balancer as Record<string, unknown>) : {}) : null;
    if (auto && totalSteps === undefined && auto.totalSteps === undefined && auto.trialSteps === undefined) {
      warn(
        `${fn}: balancer 'auto' cannot size its selection to this run: the dataset's size is unknown (a generator?) and "batchesPerEpoch" is not given, so the selection plans for an unknown length (150 steps at the defaults) and ends with equal weights if the fit is shorter; pass "batchesPerEpoch", or the run's step count as { name: 'auto', totalSteps }`,
      );
    }
    const verbose = args.verbose ?? 1;
    const steps = args.batchesPerEpoch ?? (Number.isFinite(dataset.size) ? dataset.size : null);
    // model.fitDataset's params: no initialEpoch, samples or batchSize (the dataset decides).
    const { list, history } = session.callbacks(args, { epochs: args.epochs, initialEpoch: null, samples: null, steps, batchSize: null, verbose, doValidation });
    const evaluate = async (): Promise<tf.Scalar | tf.Scalar[]> => {
      if (valIsDataset) return model.evaluateDataset(args.validationData as unknown as tf.data.Dataset<{}>, { batches: args.validationBatches });
      const [vx, vy] = args.validationData as [tf.Tensor | tf.Tensor[], tf.Tensor | tf.Tensor[]];
      return model.evaluate(vx, vy, { batchSize: args.validationBatchSize ?? 32, verbose: 0 }) as tf.Scalar | tf.Scalar[];
    };
    await list.onTrainBegin();
    model.stopTraining = false;
    let epoch = args.initialEpoch ?? 0;
    for (let e = 0; e < epoch; e++) trainer.endEpoch();
    let iterator = await dataset.iterator();
    while (epoch < args.epochs) {
      let epochLogs: tf.Logs = {};
      await list.onEpochBegin(epoch);
      let stepsDone = 0;
      let batchIndex = 0;
      if (!hasBatchesPerEpoch) iterator = await dataset.iterator();
      while (hasBatchesPerEpoch ? stepsDone < args.batchesPerEpoch! : true) {
        const out = await iterator.next();
        if (hasBatchesPerEpoch && out.done) {
          warn(
            `You provided \`batchesPerEpoch\` as ${args.batchesPerEpoch}, but your dataset iterator ran out of data after ${stepsDone} batches; interrupting training. ` +
              `Make sure that your dataset can generate at least \`batchesPerEpoch * epochs\` batches (in this case, ${args.batchesPerEpoch! * args.epochs} batches). ` +
              'You may need to use the repeat() function when building your dataset.',
          );
          break;
        }
        if (out.value != null) {
          const { xs, ys } = standardizeElement(model, out.value);
          let started = false;
          try {
            const batchLogs: tf.Logs = { batch: batchIndex, size: xs[0].shape[0] };
            await list.onBatchBegin(batchIndex, batchLogs);
            let ws: (tf.Tensor | null)[] = outputNames.map(() => null);
            if (args.classWeight != null) {
              // The class weights' per-sample weights, by tfjs's own standardisation (as fitDataset applies them per batch).
              const [sx, sy, sw] = await m.standardizeUserData(xs, ys, null, args.classWeight, false, xs[0].shape[0]);
              disposeNew(sx, xs);
              disposeNew(sy, ys);
              ws = outputNames.map((_, i) => sw?.[i] ?? null);
            }
            started = true;
            Object.assign(batchLogs, await session.trainBatch(epoch, xs, ys, ws));
            await list.onBatchEnd(batchIndex, batchLogs);
          } finally {
            if (!started) tf.dispose([...xs, ...ys]);
          }
          batchIndex++;
          stepsDone++;
        }
        if (hasBatchesPerEpoch ? stepsDone >= args.batchesPerEpoch! : out.done) {
          if (doValidation) epochLogs = await session.validateEpoch(epoch, evaluate, m.metricsNames ?? session.outLabels);
          break;
        }
        if (model.stopTraining) break;
      }
      trainer.endEpoch();
      await list.onEpochEnd(epoch, epochLogs);
      epoch++;
      if (model.stopTraining) break;
    }
    await list.onTrainEnd();
    const out = await session.finish(history);
    failed = false;
    return out;
  } finally {
    m.isTraining = false;
    session?.dispose();
    release();
    // the sinks closed; after a failure the auto selection's copies released too
    await session?.close(failed);
  }
}

/** Whether a balancer argument is the `auto` selector (`'auto'` or `{ name: 'auto', ... }`). */
function isAutoSpec(b: unknown): boolean {
  return b === 'auto' || (!!b && typeof b === 'object' && (b as { name?: unknown }).name === 'auto');
}
