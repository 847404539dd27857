/**
 * `fitBalanced(model, x, y, args)`: `model.fit(x, y, args)` with the per-output compiled losses
 * balanced. The loop follows tfjs-layers 4.x `LayersModel.fit` / `fitLoop` step for step (argument
 * checks, data standardisation and class weights by the model's own `standardizeUserData`, batches,
 * shuffling, callbacks through `tf.CallbackList`, epoch means as `BaseLogger` forms them, validation by
 * the model's own `evaluate`, `model.stopTraining`, a `tf.History` returned), and each optimizer step is
 * a {@link BalancedTrainer} step on the per-output losses (one forward pass). Why this design rather
 * than `model.fit` with scaled losses: docs/design.md, "fitBalanced".
 *
 * Regularisation penalties of the layers (`kernelRegularizer`, ...) are added unweighted, as
 * `model.fit` (and Keras with `loss_weights`) adds them: they are the frozen term `regularization` of
 * weight 1, logged apart.
 */
import * as tf from '@tensorflow/tfjs';
import { BalancerError } from '../core/errors.js';
import { permutation, seedRng } from '../core/rng.js';
import { checkFitArgs } from './fit-args.js';
import { disposeNew, FitSession, takeModel, type BalancedHistory, type BalancingArgs } from './fit-session.js';

export type { BalancedHistory, LossFn } from './fit-session.js';

/**
 * The arguments of {@link fitBalanced}: every field of tfjs `ModelFitArgs` (see `MODEL_FIT_KEYS` for
 * how each is treated) plus the balancing options ({@link BalancingArgs}).
 */
export interface FitBalancedArgs extends tf.ModelFitArgs, BalancingArgs {
  /** Shuffle with this seed (reproducible) instead of `Math.random`, which `model.fit` uses. */
  seed?: number;
}

/** @deprecated Use {@link FitBalancedArgs} (the same type). */
export type FitBalancedOptions = FitBalancedArgs;

/** Whether `x` is a tf.data Dataset (what `model.fitDataset` takes), by its `iterator` method as tfjs tells. */
export function isDataset(x: unknown): boolean {
  return x !== null && typeof x === 'object' && !(x instanceof tf.Tensor) && typeof (x as { iterator?: unknown }).iterator === 'function';
}

/**
 * Train `model` on `x` → `y` as `model.fit(x, y, args)` does, with the per-output compiled losses
 * balanced by `args.balancer`. With the default `fixed` balancer (all weights 1) the numbers are
 * `model.fit`'s: losses, metrics, validation, final weights (test/fit-parity.test.ts).
 *
 * @param model A compiled `tf.LayersModel` (its compiled losses, metrics and optimizer are used).
 * @param x Inputs, as `model.fit` takes them (tensor, array, or `{ inputName: tensor }`).
 * @param y Targets, one per output, as `model.fit` takes them.
 * @param args `ModelFitArgs` plus the balancing options ({@link FitBalancedArgs}).
 * @returns The `tf.History` (`epoch`, `history`, `params`) with `alpha/<out>` beside the loss keys,
 * and `trainer`.
 * @throws BalancerError naming the argument at fault: an unknown or misspelt key (with the closest
 * known one), a `ModelFitArgs` field that `model.fit` rejects too, bad `lossWeights`; tfjs's own
 * errors for data that does not fit the model, as `model.fit` throws them.
 *
 * @example
 * ```ts
 * model.compile({ optimizer: tf.train.adam(1e-3), loss: ['meanSquaredError', 'binaryCrossentropy'], metrics: ['acc'] });
 * const h = await fitBalanced(model, x, [y1, y2], { epochs: 5, batchSize: 64, validationSplit: 0.2, balancer: 'gradnorm' });
 * h.history.val_loss; h.history['alpha/out1'];
 * ```
 */
export async function fitBalanced(
  model: tf.LayersModel,
  x: tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>,
  y: tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>,
  args: FitBalancedArgs = {},
): Promise<BalancedHistory> {
  if (isDataset(x)) {
    throw new BalancerError('fitBalanced: argument "x" is a tf.data Dataset; fitBalanced takes tensors as model.fit does. For a dataset use fitDatasetBalanced(model, dataset, args), the balanced model.fitDataset');
  }
  checkFitArgs(args as Record<string, unknown>);
  await tf.ready();
  const { model: inner, m } = takeModel(model, 'fitBalanced');
  model = inner;
  let inputs: tf.Tensor[] | undefined;
  let targets: tf.Tensor[] | undefined;
  let sampleWeights: tf.Tensor[] | null = null;
  let valX: tf.Tensor[] | undefined;
  let valY: tf.Tensor[] | undefined;
  const split: tf.Tensor[] = [];
  let session: FitSession | undefined;
  let failed = true;
  try {
    const batchSize = args.batchSize == null ? 32 : args.batchSize;
    tf.util.assert(batchSize > 0 && Number.isInteger(batchSize), () => `batchSize is required to be a positive integer, but got ${batchSize}`);
    [inputs, targets, sampleWeights] = await m.standardizeUserData(x, y, null, args.classWeight, false, batchSize);

    // Validation data, as model.fit prepares it (validationData wins over validationSplit).
    let doValidation = false;
    if (args.validationData != null && args.validationData.length > 0) {
      doValidation = true;
      [valX, valY] = await m.standardizeUserData(args.validationData[0], args.validationData[1], null, null, true, batchSize);
    } else if (args.validationSplit != null && args.validationSplit > 0 && args.validationSplit < 1) {
      doValidation = true;
      const n0 = inputs[0].shape[0];
      const at = Math.floor(n0 * (1 - args.validationSplit));
      const cut = (ts: tf.Tensor[], a: number, b: number) => ts.map((t) => { const s = t.slice(a, b - a); split.push(s); return s; });
      valX = cut(inputs, at, n0);
      valY = cut(targets, at, n0);
      inputs = cut(inputs, 0, at);
      targets = cut(targets, 0, at);
      // model.fit leaves the class weights' sample weights whole and gathers them with the training
      // batches' indices, which only reach the training part: the same as slicing them here.
      if (sampleWeights) {
        const whole = sampleWeights;
        sampleWeights = whole.map((w) => (w ? cut([w], 0, at)[0] : w));
        tf.dispose(whole.filter((w): w is tf.Tensor => !!w));
      }
    }
    const trainX = inputs;
    const trainY = targets;
    session = new FitSession(model, m, args, {
      fn: 'fitBalanced',
      batchSize,
      doValidation,
      monitorVal: () => (doValidation ? { x: valX!, y: valY! } : undefined),
      monitorTrain: { x: trainX, y: trainY },
      totalSteps: Math.ceil(trainX[0].shape[0] / batchSize) * Math.max(0, (args.epochs ?? 1) - (args.initialEpoch ?? 0)),
    });
    const { trainer, outputNames } = session;
    const verbose = args.verbose ?? 1;
    const epochs = args.epochs ?? 1;
    const initialEpoch = args.initialEpoch ?? 0;
    for (let e = 0; e < initialEpoch; e++) trainer.endEpoch();
    const numTrainSamples = inputs[0].shape[0];
    const { list, history } = session.callbacks(args, { epochs, initialEpoch, samples: numTrainSamples, steps: null as unknown as number, batchSize, verbose, doValidation });
    await list.onTrainBegin();
    model.stopTraining = false;

    let rng = seedRng(args.seed ?? 0);
    let indexArray = Array.from({ length: numTrainSamples }, (_, i) => i);
    const batches: [number, number][] = [];
    for (let s = 0; s < numTrainSamples; s += batchSize) batches.push([s, Math.min(s + batchSize, numTrainSamples)]);
    for (let epoch = initialEpoch; epoch < epochs; ++epoch) {
      await list.onEpochBegin(epoch);
      let epochLogs: tf.Logs = {};
      if (args.shuffle !== false) {
        if (args.seed !== undefined) [indexArray, rng] = permutation(rng, numTrainSamples);
        else tf.util.shuffle(indexArray);
      }
      for (let b = 0; b < batches.length; ++b) {
        const batchLogs: tf.Logs = {};
        await list.onBatchBegin(b, batchLogs);
        const [start, end] = batches[b];
        batchLogs.batch = b;
        batchLogs.size = end - start;
        const idx = tf.tensor1d(indexArray.slice(start, end), 'int32');
        let bx: tf.Tensor[], by: tf.Tensor[], bw: (tf.Tensor | null)[];
        try {
          bx = inputs.map((t) => tf.gather(t, idx));
          by = targets.map((t) => tf.gather(t, idx));
          bw = (sampleWeights ?? outputNames.map(() => null)).map((w) => (w ? tf.gather(w, idx) : null));
        } finally {
          idx.dispose();
        }
        Object.assign(batchLogs, await session.trainBatch(epoch, bx, by, bw));
        if (b === batches.length - 1 && doValidation) {
          // The validation logs of the model as it is now (model.evaluate, as model.fit validates).
          epochLogs = await session.validateEpoch(epoch, async () =>
            model.evaluate(valX!.length === 1 ? valX![0] : valX!, valY!.length === 1 ? valY![0] : valY!, { batchSize }) as tf.Scalar | tf.Scalar[],
          );
        }
        await list.onBatchEnd(b, batchLogs);
        if (model.stopTraining) break;
      }
      trainer.endEpoch();
      await list.onEpochEnd(epoch, epochLogs);
      if (model.stopTraining) break;
    }
    await list.onTrainEnd();
    const out = await session.finish(history);
    failed = false;
    return out;
  } finally {
    m.isTraining = false;
    session?.dispose();
    tf.dispose(split.filter((t) => !t.isDisposed));
    disposeNew(inputs, x);
    disposeNew(targets, y);
    disposeNew(valX, args.validationData?.[0]);
    disposeNew(valY, args.validationData?.[1]);
    if (sampleWeights) tf.dispose(sampleWeights.filter((t): t is tf.Tensor => !!t && !t.isDisposed));
    // the sinks closed; after a failure the auto selection's copies released too
    await session?.close(failed);
  }
}
