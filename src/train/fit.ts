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
import type { Balancer } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import type { Sink } from '../core/history.js';
import { permutation, seedRng } from '../core/rng.js';
import type { BalancerSpec, NonFinitePolicy } from '../core/types.js';
import { checkFitArgs, lossWeightsByName, type LossWeights } from './fit-args.js';
import { REGULARIZATION_TERM, resolveFitBalancer } from './fit-balancer.js';
import { SelectionHistory } from './fit-auto-history.js';
import { monitorScore, perOutputKeys } from './fit-monitor.js';
import type { HarmOptions } from '../core/harm.js';
import { splitModel } from './split.js';
import { BalancedTrainer } from './trainer.js';

/** A per-output loss or metric: `(yTrue, yPred) → per-sample (or scalar) values`. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/**
 * The arguments of {@link fitBalanced}: every field of tfjs `ModelFitArgs` (see `MODEL_FIT_KEYS` for
 * how each is treated) plus the balancing options below.
 */
export interface FitBalancedArgs extends tf.ModelFitArgs {
  /** Strategy name, `{ name, ...options }` or a Balancer. @default 'fixed' (all weights 1: `model.fit`) */
  balancer?: BalancerSpec | Balancer;
  /**
   * Keras' `compile(..., loss_weights)`, which tfjs lacks: one base weight per output (array in output
   * order, or `{ outputName: weight }`). They become the balancer's `baseWeights`
   * (`w_i = lossWeights_i · adaptive_i`); with `fixed` the loss is exactly `Σ lossWeights_i L_i`.
   */
  lossWeights?: LossWeights;
  /** Shuffle with this seed (reproducible) instead of `Math.random`, which `model.fit` uses. */
  seed?: number;
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
  /** Extra sinks (JSONL, TensorBoard, ...) for the per-step records. */
  sinks?: Sink[];
  /** @default 'skip' */
  onNonFinite?: NonFinitePolicy;
  /** Where warnings go. @default console.warn */
  warn?: (message: string) => void;
  /**
   * Live harm checks of the trainer (a starved output, a weight pinned at a bound, runaway weight
   * ratios, a loss rising while the others fall), reported through `warn`: thresholds as in
   * `HarmOptions`, or `false` to turn them off. @default {} (on, default thresholds)
   */
  harm?: HarmOptions | false;
}

/** @deprecated Use {@link FitBalancedArgs} (the same type). */
export type FitBalancedOptions = FitBalancedArgs;

/**
 * What {@link fitBalanced} returns: the `tf.History` that `model.fit` would return (`epoch`,
 * `history`, `params`), with the balancing keys beside the loss keys, plus the trainer.
 *
 * Keys of `history` (per epoch, means over the samples as `model.fit` forms them): `loss` (the
 * balanced objective `Σ w_i L_i` + regularisation + strategy regulariser), `<out>_loss` (each output's
 * raw, unweighted loss; several outputs only), the compiled metrics as `model.fit` names them
 * (`acc` or `<out>_acc`, ...), `val_` + each of those when validating (tfjs's values, see the guide),
 * and beside them `alpha/<out>` (the weight applied to each output), `regularization` (the layers'
 * penalties, when the model has any), and, several outputs only, `val_loss/<out>` and
 * `val_<metric>/<out>` (each output's own validation loss and metrics, `model.evaluate`'s values,
 * where tfjs's `val_` keys are shifted).
 */
export type BalancedHistory = tf.History & {
  /** The trainer, with the per-step `history` and the balancer state. */
  trainer: BalancedTrainer;
  /**
   * With `balancer: 'auto'`: the epochs (numbered as in `epoch`) that overlapped the strategy
   * selection. Once a winner was picked, their values in `history` are the winner's own trajectory
   * (its batch logs averaged as `model.fit` averages them, its validation at each epoch's end):
   * the numbers of the model you hold. Callbacks saw equal weights' numbers for those epochs while
   * the selection ran (the values the variables held between steps), and so does `history` when
   * the selection did not finish within the fit. See docs/guide-auto.md.
   */
  selectionEpochs?: number[];
};

type Internal = {
  isTraining: boolean;
  collectedTrainableWeights?: tf.LayerVariable[];
  standardizeUserData(
    x: unknown, y: unknown, sampleWeight: unknown, classWeight: unknown, checkBatchAxis: boolean, batchSize?: number,
  ): Promise<[tf.Tensor[], tf.Tensor[], tf.Tensor[] | null]>;
  getDedupedMetricsNames(): string[];
  checkTrainableWeightsConsistency?(): void;
  lossFunctions?: LossFn[];
  metricsTensors?: Array<[LossFn, number]>;
};

/** tfjs's `BaseCallback` (the base of `tf.Callback` and `tf.History`; not exported by name). */
const BaseCallback = Object.getPrototypeOf(tf.Callback.prototype).constructor as abstract new () => tf.CustomCallback;

/** `standardizeCallbacks` of tfjs-layers: callback instances kept, plain objects wrapped in `tf.CustomCallback`. */
function standardizeCallbacks(callbacks: tf.ModelFitArgs['callbacks'], yieldEvery: tf.ModelFitArgs['yieldEvery']): tf.CustomCallback[] {
  const list = (callbacks == null ? [{}] : Array.isArray(callbacks) ? callbacks : [callbacks]) as unknown[];
  return list.map((c) => {
    if (c instanceof BaseCallback) return c as tf.CustomCallback;
    if (c === null || typeof c !== 'object') {
      throw new BalancerError(`fitBalanced: argument "callbacks" holds ${JSON.stringify(c)}; give tf.Callback instances or objects of callback functions`);
    }
    return new tf.CustomCallback(c as tf.CustomCallbackArgs, yieldEvery);
  });
}

/** `BaseLogger` of tfjs-layers: per-epoch means of the batch logs, weighted by batch size. */
class EpochMeans extends tf.Callback {
  private seen = 0;
  private totals: Record<string, number> = {};
  constructor(private readonly keys: () => string[]) {
    super();
  }
  override async onEpochBegin(): Promise<void> {
    this.seen = 0;
    this.totals = {};
  }
  override async onBatchEnd(_batch: number, logs?: tf.Logs): Promise<void> {
    const size = (logs?.size as number | undefined) ?? 0;
    this.seen += size;
    for (const [k, v] of Object.entries(logs ?? {})) this.totals[k] = (this.totals[k] ?? 0) + (v as number) * size;
  }
  override async onEpochEnd(_epoch: number, logs?: tf.Logs): Promise<void> {
    if (!logs) return;
    for (const k of this.keys()) if (this.totals[k] !== undefined) logs[k] = this.totals[k] / this.seen;
  }
}

/** Ids of the tensors in x (tensor, array or name → tensor map). */
function idsOf(x: unknown): Set<number> {
  if (x instanceof tf.Tensor) return new Set([x.id]);
  const vals = Array.isArray(x) ? x : x && typeof x === 'object' ? Object.values(x) : [];
  return new Set(vals.filter((t): t is tf.Tensor => t instanceof tf.Tensor).map((t) => t.id));
}

/** Dispose the tensors of `ts` that are not among `original` (tfjs-layers `disposeNewTensors`). */
function disposeNew(ts: tf.Tensor[] | null | undefined, original: unknown): void {
  if (!ts) return;
  const keep = idsOf(original);
  for (const t of ts) if (t && !keep.has(t.id) && !t.isDisposed) t.dispose();
}

/** For each variable, the outputs whose graph reaches it (by walking the symbolic graph). */
function sharedByOutputs(model: tf.LayersModel, vars: tf.Variable[]): tf.Variable[] {
  const count = new Map<string, number>();
  for (const out of model.outputs) {
    const seen = new Set<string>();
    const layers = new Set<tf.layers.Layer>();
    const stack: tf.SymbolicTensor[] = [out];
    const visited = new Set<number>();
    while (stack.length) {
      const s = stack.pop()!;
      if (visited.has(s.id)) continue;
      visited.add(s.id);
      if (s.sourceLayer) layers.add(s.sourceLayer as tf.layers.Layer);
      for (const i of s.inputs ?? []) stack.push(i);
    }
    for (const l of layers) for (const w of l.trainableWeights) seen.add((w.read() as tf.Variable).name);
    for (const n of seen) count.set(n, (count.get(n) ?? 0) + 1);
  }
  const shared = vars.filter((v) => (count.get(v.name) ?? 0) >= 2);
  return shared.length ? shared : vars;
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
  checkFitArgs(args as Record<string, unknown>);
  await tf.ready();
  // A tf.Sequential trains (and hands its callbacks) the LayersModel it wraps, as Sequential.fit does.
  if (model instanceof tf.Sequential) {
    const inner = (model as unknown as { model?: tf.LayersModel }).model;
    if (!inner) throw new Error('The model needs to be compiled before being used.');
    model = inner;
  }
  const m = model as unknown as Internal;
  if (typeof m.standardizeUserData !== 'function' || typeof m.getDedupedMetricsNames !== 'function') {
    throw new BalancerError('fitBalanced: this tf.LayersModel lacks standardizeUserData/getDedupedMetricsNames (tfjs-layers 4.x is required)');
  }
  if (m.isTraining) throw new Error('Cannot start training because another fit() call is ongoing.');
  m.isTraining = true;
  let inputs: tf.Tensor[] | undefined;
  let targets: tf.Tensor[] | undefined;
  let sampleWeights: tf.Tensor[] | null = null;
  let valX: tf.Tensor[] | undefined;
  let valY: tf.Tensor[] | undefined;
  const split: tf.Tensor[] = [];
  let metricVals: tf.Scalar[] = [];
  // During an auto selection: each candidate's metric values of its step, by label.
  const metricBy = new Map<string, tf.Scalar[]>();
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
    m.checkTrainableWeightsConsistency?.();

    const outputNames = model.outputNames;
    if (new Set(outputNames).size !== outputNames.length) throw new BalancerError(`fitBalanced: the model's output names repeat (${outputNames.join(', ')}); each output is one term`);
    if (outputNames.includes(REGULARIZATION_TERM)) throw new BalancerError(`fitBalanced: an output is named "${REGULARIZATION_TERM}", the name of the regularisation term; rename the output layer`);
    const lossFns = m.lossFunctions!;
    const metricsTensors = m.metricsTensors ?? [];
    const multi = model.outputs.length > 1;
    const outLabels = m.getDedupedMetricsNames();
    const ownVal = perOutputKeys(outputNames, outLabels, metricsTensors);
    const hasReg = tf.tidy(() => model.calculateLosses().length > 0);
    const termNames = hasReg ? [...outputNames, REGULARIZATION_TERM] : outputNames;

    // Balancing keys logged beside the fit keys.
    const extraKeys = [...outputNames.map((n) => `alpha/${n}`), ...(hasReg ? [REGULARIZATION_TERM] : [])];

    // The batch the terms see, set before each trainer step.
    let bx: tf.Tensor[] = [];
    let by: tf.Tensor[] = [];
    let bw: (tf.Tensor | null)[] = [];
    const firstMetric = multi ? outputNames.length : 0; // metricsTensors[i < outputs] are the output losses
    let trainer!: BalancedTrainer;
    const termsOf = (preds: tf.Tensor[]): Record<string, tf.Scalar> => {
      const out: Record<string, tf.Scalar> = {};
      outputNames.forEach((nm, i) => {
        let l = lossFns[i](by[i], preds[i]);
        if (bw[i]) l = tf.mul(l, bw[i]!);
        out[nm] = tf.mean(l) as tf.Scalar;
      });
      const vals = metricsTensors.slice(firstMetric).map(([fn, o]) => tf.keep(tf.mean(fn(by[o], preds[o])) as tf.Scalar));
      const candidate = trainer?.selectingCandidate;
      if (candidate != null) {
        tf.dispose(metricBy.get(candidate) ?? []);
        metricBy.set(candidate, vals);
      } else {
        tf.dispose(metricVals);
        metricVals = vals;
      }
      if (hasReg) out[REGULARIZATION_TERM] = tf.addN(model.calculateLosses()) as tf.Scalar;
      return out;
    };
    // The trainer binds the term names by calling terms() once outside a step; answer that call
    // without running the model, so that stateful layers (BatchNormalization) see each batch once.
    const binding = () => (trainer?.terms ? null : Object.fromEntries(termNames.map((n) => [n, tf.scalar(0)])));
    const predict = (xs: tf.Tensor[]) => {
      const p = model.apply(xs.length === 1 ? xs[0] : xs, { training: true }) as tf.Tensor | tf.Tensor[];
      return Array.isArray(p) ? p : [p];
    };
    const lw = args.lossWeights !== undefined ? lossWeightsByName(args.lossWeights, outputNames) : undefined;
    const trainX = inputs;
    const trainY = targets;
    const balancer = resolveFitBalancer(args.balancer, {
      baseWeights: lw,
      regularization: hasReg,
      monitor: (key) =>
        monitorScore(key, {
          model, outputNames, labels: outLabels, lossFns, metricsTensors, baseWeights: lw, hasReg, batchSize,
          val: doValidation ? { x: valX!, y: valY! } : undefined,
          train: { x: trainX, y: trainY },
          warn: args.warn ?? ((s: string) => console.warn(s)),
        }),
    });
    const rep = args.representation !== undefined ? splitModel(model, args.representation) : null;
    if (rep && hasReg) throw new BalancerError('fitBalanced: argument "representation" cannot be used with a model that has layer regularisation penalties');
    const variables = (m.collectedTrainableWeights ?? model.trainableWeights).map((w) => w.read() as tf.Variable);
    trainer = new BalancedTrainer({
      ...(rep
        ? { represent: { trunk: () => (trainer?.terms ? rep.trunk(bx, true) : tf.zeros([1])), heads: (z: tf.Tensor) => binding() ?? termsOf(rep.heads(z, bx, true)) } }
        : { terms: () => binding() ?? termsOf(predict(bx)) }),
      every: args.every,
      optimizer: model.optimizer,
      balancer,
      variables,
      shared: args.shared ?? (hasReg && !rep ? sharedByOutputs(model, variables.filter((v) => v.trainable)) : undefined),
      sinks: args.sinks,
      onNonFinite: args.onNonFinite,
      warn: args.warn,
      ...(args.harm !== undefined ? { harm: args.harm } : {}),
      meta: { model: model.name },
    });
    const warn = args.warn ?? ((s: string) => console.warn(s));
    const verbose = args.verbose ?? 1;
    if (verbose > 0 && tf.getBackend() === 'tensorflow') warn('fitBalanced: verbose > 0 shows no progress bar (model.fit shows the tfjs-node one); use verbose: 0 or a callback');

    const epochs = args.epochs ?? 1;
    const initialEpoch = args.initialEpoch ?? 0;
    for (let e = 0; e < initialEpoch; e++) trainer.endEpoch();
    const numTrainSamples = inputs[0].shape[0];
    const callbackMetrics = doValidation ? [...outLabels, ...outLabels.map((n) => `val_${n}`)] : [...outLabels];
    const history = new tf.History();
    const selection = new SelectionHistory();
    /** One batch's logs, as model.fit logs them, plus the balancing keys. */
    const logsOf = (r: { total: number; losses: Record<string, number>; weights: Record<string, number> }, metrics: number[]): tf.Logs => {
      const l: tf.Logs = { loss: r.total };
      if (multi) outputNames.forEach((nm) => (l[`${nm}_loss`] = r.losses[nm]));
      metrics.forEach((v, i) => (l[outLabels[1 + firstMetric + i]] = v));
      outputNames.forEach((nm) => (l[`alpha/${nm}`] = r.weights[nm]));
      if (hasReg) l[REGULARIZATION_TERM] = r.losses[REGULARIZATION_TERM];
      return l;
    };
    /** The validation logs of the model as it is now (model.evaluate, as model.fit validates). */
    const validate = async (): Promise<tf.Logs> => {
      const logs: tf.Logs = {};
      const out = model.evaluate(valX!.length === 1 ? valX![0] : valX!, valY!.length === 1 ? valY![0] : valY!, { batchSize });
      const outs = Array.isArray(out) ? out : [out];
      const v = await Promise.all(outs.map((t) => t.data()));
      tf.dispose(outs);
      outLabels.forEach((label, i) => (logs[`val_${label}`] = v[i][0]));
      // For several outputs tfjs's val_ keys are shifted (its test function pushes n running sums of
      // the output losses, then one value per metricsTensors entry, and fit labels them from the
      // start): evaluate's entries after the first n are each output's own loss, then each metric,
      // logged beside as val_loss/<out>, val_<metric>/<out>.
      ownVal.forEach((k, j) => (logs[`val_${k}`] = v[outputNames.length + j][0]));
      return logs;
    };
    const list = new tf.CallbackList([new EpochMeans(() => [...callbackMetrics, ...extraKeys]), ...standardizeCallbacks(args.callbacks, args.yieldEvery), history]);
    list.setParams({ epochs, initialEpoch, samples: numTrainSamples, steps: null as unknown as number, batchSize, verbose, doValidation, metrics: callbackMetrics });
    list.setModel(model);
    model.history = history;
    await list.onTrainBegin();
    model.stopTraining = false;

    let rng = seedRng(args.seed ?? 0);
    let indexArray = Array.from({ length: numTrainSamples }, (_, i) => i);
    const batches: [number, number][] = [];
    for (let s = 0; s < numTrainSamples; s += batchSize) batches.push([s, Math.min(s + batchSize, numTrainSamples)]);
    for (let epoch = initialEpoch; epoch < epochs; ++epoch) {
      await list.onEpochBegin(epoch);
      const epochLogs: tf.Logs = {};
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
        bx = inputs.map((t) => tf.gather(t, idx));
        by = targets.map((t) => tf.gather(t, idx));
        bw = (sampleWeights ?? outputNames.map(() => null)).map((w) => (w ? tf.gather(w, idx) : null));
        idx.dispose();
        let res;
        try {
          res = trainer.step();
        } finally {
          tf.dispose([...bx, ...by, ...(bw.filter(Boolean) as tf.Tensor[])]);
        }
        if (res.candidates) {
          // auto selection: every live candidate ran this batch. Callbacks see equal weights' numbers
          // (the values the variables hold between steps); every candidate's are kept so that the
          // returned History can describe the winner's trajectory (src/train/fit-auto-history.ts).
          const byCandidate: Record<string, tf.Logs> = {};
          for (const [label, r] of Object.entries(res.candidates)) {
            const ms = metricBy.get(label) ?? [];
            byCandidate[label] = logsOf(r, (await Promise.all(ms.map((t) => t.data()))).map((v) => v[0]));
          }
          for (const ms of metricBy.values()) tf.dispose(ms);
          metricBy.clear();
          selection.selectionBatch(epoch, end - start, byCandidate);
          Object.assign(batchLogs, byCandidate[trainer.tournament!.candidates[0].label]);
        } else {
          const vals = await Promise.all(metricVals.map((t) => t.data()));
          Object.assign(batchLogs, logsOf(res, vals.map((v) => v[0])));
          selection.laterBatch(epoch, end - start, batchLogs);
        }
        tf.dispose(metricVals);
        metricVals = [];
        if (b === batches.length - 1 && doValidation) {
          const selecting = !!trainer.tournament && trainer.tournament.phase !== 'done';
          if (selecting) {
            // During the selection: each live candidate's validation, with its values in place.
            const byCandidate: Record<string, tf.Logs> = {};
            await trainer.forEachCandidate(async (label) => {
              byCandidate[label] = await validate();
            });
            selection.selectionValidation(epoch, byCandidate);
            Object.assign(epochLogs, byCandidate[trainer.tournament!.candidates[0].label]);
          } else {
            Object.assign(epochLogs, await validate());
          }
        }
        await list.onBatchEnd(b, batchLogs);
        if (model.stopTraining) break;
      }
      trainer.endEpoch();
      await list.onEpochEnd(epoch, epochLogs);
      if (model.stopTraining) break;
    }
    await list.onTrainEnd();
    await history.syncData();
    trainer.warnUnfinishedSelection('the end of fitBalanced');
    const t = trainer.tournament;
    const selectionEpochs = t?.winner ? selection.rewrite(history, t.winner, [...callbackMetrics, ...extraKeys]) : selection.touched;
    if (t) return Object.assign(history, { trainer, selectionEpochs });
    return Object.assign(history, { trainer });
  } finally {
    m.isTraining = false;
    tf.dispose(metricVals.filter((t) => !t.isDisposed));
    for (const ms of metricBy.values()) tf.dispose(ms.filter((t) => !t.isDisposed));
    tf.dispose(split.filter((t) => !t.isDisposed));
    disposeNew(inputs, x);
    disposeNew(targets, y);
    disposeNew(valX, args.validationData?.[0]);
    disposeNew(valY, args.validationData?.[1]);
    if (sampleWeights) tf.dispose(sampleWeights.filter((t): t is tf.Tensor => !!t && !t.isDisposed));
  }
}
