/**
 * The parts {@link fitBalanced} (`model.fit`) and {@link fitDatasetBalanced} (`model.fitDataset`)
 * share: taking the model for training, the {@link BalancedTrainer} built from the compiled losses
 * and metrics, one balanced batch step with its logs as tfjs logs them (the `auto` selection's
 * per-candidate logs included), the validation logs at an epoch's end, the callback list, and the
 * returned History. The two entry points differ only in where batches and validation data come from.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { Balancer } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import type { Sink } from '../core/history.js';
import type { HarmOptions } from '../core/harm.js';
import type { BalancerSpec, NonFinitePolicy } from '../core/types.js';
import { lossWeightsByName, type LossWeights } from './fit-args.js';
import { SelectionHistory } from './fit-auto-history.js';
import { REGULARIZATION_TERM, resolveFitBalancer } from './fit-balancer.js';
import { monitorScore, perOutputKeys } from './fit-monitor.js';
import { splitModel } from './split.js';
import { BalancedTrainer } from './trainer.js';

/** A per-output loss or metric: `(yTrue, yPred) → per-sample (or scalar) values`. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** The balancing options that {@link fitBalanced} and {@link fitDatasetBalanced} add to tfjs's arguments. */
export interface BalancingArgs {
  /** Strategy name, `{ name, ...options }` or a Balancer. @default 'fixed' (all weights 1: `model.fit`) */
  balancer?: BalancerSpec | Balancer;
  /**
   * Keras' `compile(..., loss_weights)`, which tfjs lacks: one base weight per output (array in output
   * order, or `{ outputName: weight }`). They become the balancer's `baseWeights`
   * (`w_i = lossWeights_i · adaptive_i`); with `fixed` the loss is exactly `Σ lossWeights_i L_i`.
   */
  lossWeights?: LossWeights;
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

/**
 * What {@link fitBalanced} and {@link fitDatasetBalanced} return: the `tf.History` that `model.fit`
 * (`model.fitDataset`) would return (`epoch`, `history`, `params`), with the balancing keys beside
 * the loss keys, plus the trainer.
 *
 * Keys of `history` (per epoch, means over the samples as tfjs forms them): `loss` (the balanced
 * objective `Σ w_i L_i` + regularisation + strategy regulariser), `<out>_loss` (each output's raw,
 * unweighted loss; several outputs only), the compiled metrics as tfjs names them (`acc` or
 * `<out>_acc`, ...), `val_` + each of those when validating (tfjs's values, see the guide), and beside
 * them `alpha/<out>` (the weight applied to each output), `regularization` (the layers' penalties,
 * when the model has any), and, several outputs only, `val_loss/<out>` and `val_<metric>/<out>` (each
 * output's own validation loss and metrics, `model.evaluate`'s values, where tfjs's `val_` keys are
 * shifted).
 */
export type BalancedHistory = tf.History & {
  /** The trainer, with the per-step `history` and the balancer state. */
  trainer: BalancedTrainer;
  /**
   * With `balancer: 'auto'`: the epochs (numbered as in `epoch`) that overlapped the strategy
   * selection. Once a winner was picked, their values in `history` are the winner's own trajectory
   * (its batch logs averaged as tfjs averages them, its validation at each epoch's end): the numbers
   * of the model you hold. Callbacks saw equal weights' numbers for those epochs while the selection
   * ran (the values the variables held between steps), and so does `history` when the selection did
   * not finish within the fit. See docs/guide-auto.md.
   */
  selectionEpochs?: number[];
};

/** The tfjs-layers internals the fit loops use (tfjs-layers 4.x). */
export type Internal = {
  isTraining: boolean;
  collectedTrainableWeights?: tf.LayerVariable[];
  metricsNames?: string[];
  standardizeUserData(
    x: unknown, y: unknown, sampleWeight: unknown, classWeight: unknown, checkBatchAxis: boolean, batchSize?: number,
  ): Promise<[tf.Tensor[], tf.Tensor[], tf.Tensor[] | null]>;
  getDedupedMetricsNames(): string[];
  checkTrainableWeightsConsistency?(): void;
  lossFunctions?: Array<LossFn | undefined>;
  metricsTensors?: Array<[LossFn, number]>;
};

/**
 * The LayersModel to train (a `tf.Sequential` trains the LayersModel it wraps, as `Sequential.fit`
 * does), checked for the internals the loop needs, marked as training (`isTraining`, as tfjs marks it).
 * @throws Error as tfjs throws it when another fit is running or the model is not compiled.
 */
export function takeModel(model: tf.LayersModel, fn: string): { model: tf.LayersModel; m: Internal } {
  if (model instanceof tf.Sequential) {
    const inner = (model as unknown as { model?: tf.LayersModel }).model;
    if (!inner) throw new Error('The model needs to be compiled before being used.');
    model = inner;
  }
  const m = model as unknown as Internal;
  if (typeof m.standardizeUserData !== 'function' || typeof m.getDedupedMetricsNames !== 'function') {
    throw new BalancerError(`${fn}: this tf.LayersModel lacks standardizeUserData/getDedupedMetricsNames (tfjs-layers 4.x is required)`);
  }
  if (m.isTraining) throw new Error('Cannot start training because another fit() call is ongoing.');
  m.isTraining = true;
  return { model, m };
}

/** tfjs's `BaseCallback` (the base of `tf.Callback` and `tf.History`; not exported by name). */
const BaseCallback = Object.getPrototypeOf(tf.Callback.prototype).constructor as abstract new () => tf.CustomCallback;

/** `standardizeCallbacks` of tfjs-layers: callback instances kept, plain objects wrapped in `tf.CustomCallback`. */
export function standardizeCallbacks(callbacks: tf.ModelFitArgs['callbacks'], yieldEvery: tf.ModelFitArgs['yieldEvery'], fn = 'fitBalanced'): tf.CustomCallback[] {
  const list = (callbacks == null ? [{}] : Array.isArray(callbacks) ? callbacks : [callbacks]) as unknown[];
  return list.map((c) => {
    if (c instanceof BaseCallback) return c as tf.CustomCallback;
    if (c === null || typeof c !== 'object') {
      throw new BalancerError(`${fn}: argument "callbacks" holds ${JSON.stringify(c)}; give tf.Callback instances or objects of callback functions`);
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
export function disposeNew(ts: Array<tf.Tensor | null> | null | undefined, original: unknown): void {
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

/** What a {@link FitSession} needs beyond the balancing arguments. */
export interface SessionContext {
  /** The entry point, named in errors and warnings. */
  fn: string;
  /** The batch size of evaluations (monitor scores). */
  batchSize: number;
  doValidation: boolean;
  /** Validation tensors for an `auto` balancer's `val_` monitor key (evaluated per candidate). */
  monitorVal?: () => { x: tf.Tensor[]; y: tf.Tensor[] } | undefined;
  /** All the training data, for a training monitor key; absent when it is not in memory (datasets). */
  monitorTrain?: { x: tf.Tensor[]; y: tf.Tensor[] };
  /** The fit's planned optimizer steps (epochs × batches per epoch), when known: `auto`'s `totalSteps`. */
  totalSteps?: number;
}

/**
 * One balanced fit: the trainer over the model's compiled per-output losses, the logs of each batch
 * as tfjs logs them (plus `alpha/<out>`, `regularization`), and the `auto` selection's bookkeeping.
 * The caller owns the batch loop and the data; {@link FitSession.dispose} releases what the session holds.
 */
export class FitSession {
  readonly trainer: BalancedTrainer;
  readonly outputNames: string[];
  /** `getDedupedMetricsNames()`: `loss`, then one label per entry of `metricsTensors`. */
  readonly outLabels: string[];
  /** The keys callbacks are told of (`params.metrics`): the labels, then `val_` + each when validating. */
  readonly callbackMetrics: string[];
  /** The balancing keys logged beside the fit keys. */
  readonly extraKeys: string[];
  readonly selection = new SelectionHistory();
  private readonly multi: boolean;
  private readonly hasReg: boolean;
  private readonly ownVal: string[];
  private readonly firstMetric: number;
  private readonly termOutputs: number[];
  private bx: tf.Tensor[] = [];
  private by: tf.Tensor[] = [];
  private bw: (tf.Tensor | null)[] = [];
  private metricVals: tf.Scalar[] = [];
  /** During an auto selection: each candidate's metric values of its step, by label. */
  private readonly metricBy = new Map<string, tf.Scalar[]>();
  /** Equal weights' candidate label during an `auto` selection (the values callbacks see). */
  private equalLabel: string | undefined;

  constructor(readonly model: tf.LayersModel, private readonly m: Internal, args: BalancingArgs & { verbose?: number }, private readonly ctx: SessionContext) {
    const fn = ctx.fn;
    m.checkTrainableWeightsConsistency?.();
    const outputNames = model.outputNames;
    if (new Set(outputNames).size !== outputNames.length) throw new BalancerError(`${fn}: the model's output names repeat (${outputNames.join(', ')}); each output is one term`);
    if (outputNames.includes(REGULARIZATION_TERM)) throw new BalancerError(`${fn}: an output is named "${REGULARIZATION_TERM}", the name of the regularisation term; rename the output layer`);
    const lossFns = m.lossFunctions!;
    const metricsTensors = m.metricsTensors ?? [];
    this.outputNames = outputNames;
    this.multi = model.outputs.length > 1;
    this.outLabels = m.getDedupedMetricsNames();
    this.ownVal = perOutputKeys(outputNames, this.outLabels, metricsTensors);
    this.hasReg = tf.tidy(() => model.calculateLosses().length > 0);
    this.firstMetric = this.multi ? outputNames.length : 0; // metricsTensors[i < outputs] are the output losses
    this.callbackMetrics = ctx.doValidation ? [...this.outLabels, ...this.outLabels.map((n) => `val_${n}`)] : [...this.outLabels];
    // Outputs compiled without a loss are not terms (Keras trains the others): tfjs gives them no loss function.
    this.termOutputs = outputNames.map((_, i) => i).filter((i) => typeof lossFns[i] === 'function');
    if (this.termOutputs.length === 0) throw new BalancerError(`${fn}: no output of the model was compiled with a loss; give model.compile a loss for at least one output`);
    const termOutputNames = this.termOutputs.map((i) => outputNames[i]);
    const hasReg = this.hasReg;
    const termNames = hasReg ? [...termOutputNames, REGULARIZATION_TERM] : termOutputNames;
    this.extraKeys = [...termOutputNames.map((n) => `alpha/${n}`), ...(hasReg ? [REGULARIZATION_TERM] : [])];

    let trainer!: BalancedTrainer;
    const termsOf = (preds: tf.Tensor[]): Record<string, tf.Scalar> => {
      const out: Record<string, tf.Scalar> = {};
      for (const i of this.termOutputs) {
        let l = lossFns[i]!(this.by[i], preds[i]);
        if (this.bw[i]) l = tf.mul(l, this.bw[i]!);
        out[outputNames[i]] = tf.mean(l) as tf.Scalar;
      }
      const vals = metricsTensors.slice(this.firstMetric).map(([f, o]) => tf.keep(tf.mean(f(this.by[o], preds[o])) as tf.Scalar));
      const candidate = trainer?.selectingCandidate;
      if (candidate != null) {
        tf.dispose(this.metricBy.get(candidate) ?? []);
        this.metricBy.set(candidate, vals);
      } else {
        tf.dispose(this.metricVals);
        this.metricVals = vals;
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
    const lw = args.lossWeights !== undefined ? lossWeightsByName(args.lossWeights, termOutputNames) : undefined;
    const warn = args.warn ?? ((s: string) => console.warn(s));
    const balancer = resolveFitBalancer(args.balancer, {
      baseWeights: lw,
      regularization: hasReg,
      totalSteps: ctx.totalSteps,
      monitor: (key) => {
        if (!key.startsWith('val_') && !ctx.monitorTrain) {
          throw new BalancerError(`${fn}: balancer option "monitor" ("${key}"): a training quantity needs all the training data in memory, which a dataset is not; monitor a "val_" key with argument "validationData", or omit monitor for the default score`);
        }
        return monitorScore(key, {
          model, outputNames, labels: this.outLabels, lossFns: lossFns as LossFn[], metricsTensors, baseWeights: lw, hasReg, batchSize: ctx.batchSize,
          val: ctx.doValidation ? ctx.monitorVal?.() : undefined,
          train: ctx.monitorTrain ?? { x: [], y: [] },
          warn,
        });
      },
    });
    const rep = args.representation !== undefined ? splitModel(model, args.representation) : null;
    if (rep && hasReg) throw new BalancerError(`${fn}: argument "representation" cannot be used with a model that has layer regularisation penalties`);
    const variables = (m.collectedTrainableWeights ?? model.trainableWeights).map((w) => w.read() as tf.Variable);
    trainer = new BalancedTrainer({
      ...(rep
        ? { represent: { trunk: () => (trainer?.terms ? rep.trunk(this.bx, true) : tf.zeros([1])), heads: (z: tf.Tensor) => binding() ?? termsOf(rep.heads(z, this.bx, true)) } }
        : { terms: () => binding() ?? termsOf(predict(this.bx)) }),
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
    this.trainer = trainer;
    const verbose = args.verbose ?? 1;
    if (verbose > 0 && tf.getBackend() === 'tensorflow') warn(`${fn}: verbose > 0 shows no progress bar (model.fit shows the tfjs-node one); use verbose: 0 or a callback`);
  }

  /** One batch's logs, as tfjs logs them, plus the balancing keys. */
  private logsOf(r: { total: number; losses: Record<string, number>; weights: Record<string, number> }, metrics: number[]): tf.Logs {
    const l: tf.Logs = { loss: r.total };
    if (this.multi) for (const i of this.termOutputs) l[`${this.outputNames[i]}_loss`] = r.losses[this.outputNames[i]];
    metrics.forEach((v, i) => (l[this.outLabels[1 + this.firstMetric + i]] = v));
    for (const i of this.termOutputs) l[`alpha/${this.outputNames[i]}`] = r.weights[this.outputNames[i]];
    if (this.hasReg) l[REGULARIZATION_TERM] = r.losses[REGULARIZATION_TERM];
    return l;
  }

  /**
   * One balanced step on a batch (inputs, targets and sample weights in model order; disposed here,
   * also when the step throws). Returns the batch's logs (the keys tfjs logs plus the balancing
   * keys); during an `auto` selection those of equal weights, and every candidate's are kept.
   */
  async trainBatch(epoch: number, x: tf.Tensor[], y: tf.Tensor[], w: (tf.Tensor | null)[]): Promise<tf.Logs> {
    const size = x[0].shape[0];
    this.bx = x;
    this.by = y;
    this.bw = w;
    let res;
    try {
      res = this.trainer.step();
    } finally {
      tf.dispose([...x, ...y, ...(w.filter(Boolean) as tf.Tensor[])]);
      this.bx = [];
      this.by = [];
      this.bw = [];
    }
    let logs: tf.Logs;
    if (res.candidates) {
      // auto selection: every live candidate ran this batch. Callbacks see equal weights' numbers
      // (the values the variables hold between steps); every candidate's are kept so that the
      // returned History can describe the winner's trajectory (src/train/fit-auto-history.ts).
      const byCandidate: Record<string, tf.Logs> = {};
      for (const [label, r] of Object.entries(res.candidates)) {
        const ms = this.metricBy.get(label) ?? [];
        byCandidate[label] = this.logsOf(r, (await Promise.all(ms.map((t) => t.data()))).map((v) => v[0]));
      }
      for (const ms of this.metricBy.values()) tf.dispose(ms);
      this.metricBy.clear();
      this.selection.selectionBatch(epoch, size, byCandidate);
      // equal weights' label, read once (trainer.tournament is a copy per read)
      this.equalLabel ??= this.trainer.tournament!.candidates[0].label;
      logs = { ...byCandidate[this.equalLabel] };
    } else {
      const vals = await Promise.all(this.metricVals.map((t) => t.data()));
      logs = this.logsOf(res, vals.map((v) => v[0]));
      this.selection.laterBatch(epoch, size, logs);
    }
    tf.dispose(this.metricVals);
    this.metricVals = [];
    return logs;
  }

  /**
   * The validation logs at an epoch's end: `evaluate()` gives tfjs's evaluation outputs (loss, then
   * one per `metricsTensors` entry) for the variables in place, `labels` names them as the tfjs
   * loop does. During an `auto` selection each live candidate is evaluated and the logs returned
   * are equal weights'.
   */
  async validateEpoch(epoch: number, evaluate: () => Promise<tf.Scalar | tf.Scalar[]>, labels: string[] = this.outLabels): Promise<tf.Logs> {
    const once = async (): Promise<tf.Logs> => {
      const out = await this.lossless(evaluate);
      const outs = Array.isArray(out) ? out : [out];
      const v = await Promise.all(outs.map((t) => t.data()));
      tf.dispose(outs);
      const logs: tf.Logs = {};
      labels.forEach((label, i) => (logs[`val_${label}`] = v[i][0]));
      // For several outputs tfjs's val_ keys are shifted (its test function pushes n running sums of
      // the output losses, then one value per metricsTensors entry, and fit labels them from the
      // start): evaluate's entries after the first n are each output's own loss, then each metric,
      // logged beside as val_loss/<out>, val_<metric>/<out>.
      this.ownVal.forEach((k, j) => (logs[`val_${k}`] = v[this.outputNames.length + j][0]));
      return logs;
    };
    const t = this.trainer.tournament;
    if (t && t.phase !== 'done') {
      const byCandidate: Record<string, tf.Logs> = {};
      await this.trainer.forEachCandidate(async (label) => {
        byCandidate[label] = await once();
      });
      this.selection.selectionValidation(epoch, byCandidate);
      return { ...byCandidate[t.candidates[0].label] };
    }
    return once();
  }

  /**
   * Run a tfjs evaluation of a model with outputs compiled without a loss: tfjs's test function calls
   * every output's loss (and throws `lossFunction is not a function`), Keras leaves such outputs out;
   * a zero loss in their place for the call gives Keras' total and tfjs's key layout.
   */
  private async lossless<T>(fn: () => Promise<T>): Promise<T> {
    const lossFns = this.m.lossFunctions;
    if (!lossFns || this.termOutputs.length === this.outputNames.length) return fn();
    const zero: LossFn = (_y, p) => tf.zeros([p.shape[0]]);
    const metrics = this.m.metricsTensors ?? [];
    const savedLoss = [...lossFns];
    const savedMetrics = metrics.map((e) => e[0]);
    lossFns.forEach((f, i) => (lossFns[i] = f ?? zero));
    metrics.forEach((e) => (e[0] = e[0] ?? zero));
    try {
      return await fn();
    } finally {
      savedLoss.forEach((f, i) => (lossFns[i] = f));
      metrics.forEach((e, i) => (e[0] = savedMetrics[i]));
    }
  }

  /** The callback list tfjs builds (BaseLogger's means, the user's callbacks, History), with its params set. */
  callbacks(args: { callbacks?: tf.ModelFitArgs['callbacks']; yieldEvery?: tf.ModelFitArgs['yieldEvery'] }, params: Record<string, unknown>): { list: tf.CallbackList; history: tf.History } {
    const history = new tf.History();
    const list = new tf.CallbackList([new EpochMeans(() => [...this.callbackMetrics, ...this.extraKeys]), ...standardizeCallbacks(args.callbacks, args.yieldEvery, this.ctx.fn), history]);
    list.setParams({ ...params, metrics: this.callbackMetrics } as Parameters<tf.CallbackList["setParams"]>[0]);
    list.setModel(this.model);
    this.model.history = history;
    return { list, history };
  }

  /** After `onTrainEnd`: the History synced, the `auto` epochs rewritten with the winner's numbers, the trainer attached. */
  async finish(history: tf.History): Promise<BalancedHistory> {
    await history.syncData();
    this.trainer.endSelection(`the end of ${this.ctx.fn}`);
    const t = this.trainer.tournament;
    const selectionEpochs = t?.winner ? this.selection.rewrite(history, t.winner, [...this.callbackMetrics, ...this.extraKeys]) : this.selection.touched;
    if (t) return Object.assign(history, { trainer: this.trainer, selectionEpochs });
    return Object.assign(history, { trainer: this.trainer });
  }

  /**
   * At the end of a fit: the sinks closed (their files complete) and, when the fit `failed`, an
   * unfinished `auto` selection's copies released (nothing could step the trainer on); the
   * balancer's tensor state moved off the backend (a later `trainer.step()` rebuilds it). Errors of
   * a sink's close are not allowed to hide the fit's own error.
   */
  async close(failed: boolean): Promise<void> {
    if (failed) this.trainer.releaseSelection();
    try {
      this.trainer.balancer.release();
      await this.trainer.closeSinks();
    } catch (e) {
      if (!failed) throw e;
    }
  }

  /** Release the metric values the session holds (also after an error). */
  dispose(): void {
    tf.dispose(this.metricVals.filter((t) => !t.isDisposed));
    for (const ms of this.metricBy.values()) tf.dispose(ms.filter((t) => !t.isDisposed));
    this.metricVals = [];
    this.metricBy.clear();
  }
}
