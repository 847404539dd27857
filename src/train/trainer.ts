/**
 * `BalancedTrainer`: wraps a custom tfjs training loop. Each `step()` evaluates the named loss terms,
 * asks the balancer for weights (reading per-term gradients only when the strategy needs them),
 * applies Σ w_i g_i to the trained variables with the user's optimizer, and logs the step.
 */
import * as tf from '@tensorflow/tfjs';
import { accumulatedStep, microFractions, type MicroBatches } from './accumulate.js';
import { closest } from '../core/closest.js';
import { AutoSelector, parseAuto, winnerSpecOf, type AutoState, type AutoStepOutput, type PreparedAuto } from './auto.js';
import { Balancer, checkSameTerms, type BalancerState, type UpdateResult } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import { StateError } from '../core/state-check.js';
import {
  checkRepresentation, combine, detectShared, checkTerms, gradientMatrix, gramOverflowed, gramTensor, parseGram, readGramScaled, perTermGradients, representationReading, scalarOf, tapeWorks, termGradientsOnce, variableGrads,
  layerwiseEnabled, layerwiseMinTerms, termGradientsLayered,
  type GramReading, type Representation, type TermGrads,
} from './grads.js';
import { jacobianGrads } from './jacobian.js';
import { layerCombine, layerMatrix, partTensors } from './layerwise.js';
import { History, type PerTerm, type RunMeta, type Sink, type StepRecord } from '../core/history.js';
import { checkSpec, create } from '../core/registry.js';
import { remainingSelectionSteps, type Tournament } from '../core/tournament.js';
import { HarmMonitor, type HarmMonitorOptions } from '../core/harm.js';
import type { BalancerSpec, NonFinitePolicy } from '../core/types.js';

/** How a step read the per-term gradients (see {@link BalancedTrainer.readingPath}). */
export type ReadingPath = 'exact, layer-wise' | 'exact, per-term' | 'representation, layer-wise' | 'representation, per-term';

/** Options of {@link BalancedTrainer}. */
export interface BalancedTrainerOptions {
  /**
   * Computes the named scalar loss terms from the model. Called inside the trainer's gradient
   * functions, possibly several times a step; it must return the same names every time.
   * Give either `terms` or {@link represent}, not both.
   */
  terms?: () => Record<string, tf.Scalar>;
  /**
   * Representation mode (instead of `terms`): the model split at a shared representation z.
   * `trunk()` computes z, `heads(z)` the named scalar losses from it. Gram strategies then read the
   * per-term gradients ∂L_i/∂z (backward passes through the heads only) and one backward pass runs
   * through the trunk with upstream Σ w_i ∂L_i/∂z. Cheap and approximate: the Gram matrix is over
   * z, not over the trunk's parameters (MGDA-UB's bound, Sener & Koltun 2018).
   */
  represent?: Representation;
  /**
   * Read gradients and refresh the weights only every `every` steps (steps 0, k, 2k, ...); the other
   * steps reuse the last weights with one plain backward pass of Σ w_i L_i. @default 1
   */
  every?: number;
  /**
   * The number of `step()` calls the run will make, when known. With `balancer: 'auto'` it sizes the
   * selection's trials to the run (the auto option of the same name; see docs/guide-auto.md):
   * without it the selection plans for an unknown length (first round 10 steps).
   * @default unknown
   */
  totalSteps?: number;
  /**
   * Exact mode: run `terms()` once per step and backpropagate T times over that one recorded
   * forward pass (`false`: one `tf.variableGrads` per term, T forward passes). Falls back to the
   * per-term way by itself when the installed tfjs does not support it. @default true
   */
  singleForward?: boolean;
  /** The optimizer that applies the balanced gradient. */
  optimizer: tf.Optimizer;
  /**
   * A strategy name, `{ name, ...options }`, or a {@link Balancer}. `'auto'` (or
   * `{ name: 'auto', ...AutoOptions }`) selects the strategy during the first steps by successive
   * halving among candidates (see {@link AutoOptions} and docs/guide-auto.md). @default 'fixed'
   */
  balancer?: BalancerSpec | Balancer;
  /**
   * The variables this trainer updates, as `optimizer.minimize(f, returnCost, varList)` takes them.
   * A discriminator trained by its own optimizer must not be in this list. List a tfjs-layers
   * model's weights after it is built (its first `apply()`): the trainer warns once after the first
   * step about trainable variables `terms()` created that the list leaves out.
   * @default every trainable variable registered at each step, except this optimizer's own (Adam's β
   * powers); without it, `terms()` runs once before the first step so that unbuilt layers register
   * their weights
   */
  variables?: tf.Variable[];
  /**
   * The variables the terms share (the Gram matrix is formed over these). Must be a subset of
   * `variables`. @default the variables reached by two or more terms
   */
  shared?: tf.Variable[];
  /** Extra sinks (e.g. a {@link JsonlSink}); the in-memory history is always kept. */
  sinks?: Sink[];
  /** A NaN/Inf loss or gradient: skip the step (warn) or throw. @default 'skip' */
  onNonFinite?: NonFinitePolicy;
  /** Keep records in {@link BalancedTrainer.history}. Turn off for very long runs. @default true */
  keepHistory?: boolean;
  /** Where warnings go. @default console.warn */
  warn?: (message: string) => void;
  /** Extra facts for the run's meta record (e.g. the model's name). */
  meta?: Record<string, unknown>;
  /**
   * Live harm checks (a starved term, a weight pinned at a bound, runaway weight ratios, a loss rising
   * while the others fall), reported through `warn`, rate-limited: thresholds as in {@link HarmOptions},
   * or `false` to turn them off. @default {} (on, default thresholds)
   */
  harm?: Omit<HarmMonitorOptions, 'warn'> | false;
}

/** What {@link BalancedTrainer.step} returns. */
export interface StepResult {
  /** The trainer step (0-based). */
  step: number;
  /** Raw loss of each term. */
  losses: PerTerm;
  /** Weight applied to each term. */
  weights: PerTerm;
  /** ‖∂L_i/∂θ_shared‖ per term, when gradients were read this step. */
  gradNorms?: PerTerm;
  /**
   * Σ w_i L_i + Σ regulariser: the balanced objective, not the raw loss. It moves with the weights
   * (it can rise while every raw loss falls); follow `losses` to see training progress.
   */
  total: number;
  /** Why the step was skipped (no optimizer update), if it was. */
  skipped?: string;
  /** Whether the weights were refreshed (gradients read, if the strategy reads any) this step. */
  refreshed?: boolean;
  /**
   * During an `auto` selection: every live candidate's result, by label (the fields above are equal
   * weights', whose values the variables hold between steps).
   */
  candidates?: Record<string, StepResult>;
}

/** The serialised form of a trainer (see {@link BalancedTrainer.state}). */
export interface TrainerState {
  /** Always `'loss-balancer/trainer'`. */
  format: 'loss-balancer/trainer';
  /** Format version (1). */
  version: number;
  /** Steps taken. */
  step: number;
  /** Epochs ended. */
  epoch: number;
  /** The balancer's complete state. */
  balancer: BalancerState;
  /** The `auto` selection (running: every candidate's copies; done: the tournament), when used. */
  auto?: AutoState;
}

/**
 * When a combined gradient is not finite: the term whose weight times its loss overflows float32
 * (|w·L| > 3.4e38), named as such, or null when no product overflows (the gradient itself is at fault).
 */
function overflowReason(step: number, names: readonly string[], weights: readonly number[], losses: readonly number[]): string | null {
  const i = weights.findIndex((w, k) => Number.isFinite(losses[k]) && !Number.isFinite(Math.fround(w * losses[k])));
  if (i < 0) return null;
  return `step ${step}: weight ${weights[i]} of term "${names[i]}" times its loss ${losses[i]} overflows float32 (|w·L| > 3.4e38), so its gradient is not finite; optimizer step skipped, balancer state kept (lower that weight, e.g. with bounds: { max })`;
}

/** Option `variables`: an array of tf.Variable (a tfjs-layers LayerVariable is named, with the fix). */
function checkVariablesOption(variables: unknown): void {
  if (variables === undefined) return;
  if (!Array.isArray(variables)) throw new BalancerError(`BalancedTrainer: option "variables" must be an array of tf.Variable, got ${typeof variables}`);
  variables.forEach((v, i) => {
    if (v instanceof tf.Variable) return;
    const layer = v && typeof (v as { read?: unknown }).read === 'function' && (v as { val?: unknown }).val instanceof tf.Variable;
    throw new BalancerError(
      `BalancedTrainer: option "variables": element ${i}${v && typeof (v as { name?: unknown }).name === 'string' ? ` ("${(v as { name: string }).name}")` : ''} is not a tf.Variable` +
        (layer ? ': it is a tfjs-layers LayerVariable (layer.trainableWeights); pass its variable: layer.trainableWeights.map((w) => w.read())' : ''),
    );
  });
}

/** The error of a step with nothing to train, naming the likely cause. */
function noVariablesError(listed: tf.Variable[] | undefined): BalancerError {
  return new BalancerError(
    listed
      ? `BalancedTrainer: option "variables" lists no trainable variable (${listed.length} given). A tfjs-layers layer creates its weights on its first apply(): apply the model once before reading layer.trainableWeights, or leave "variables" out`
      : 'BalancedTrainer: there are no trainable variables to update (terms() ran once and registered none)',
  );
}

/**
 * The variables an optimizer keeps in its own fields (Adam's β powers `accBeta1`/`accBeta2`, which
 * tfjs creates trainable, and any slot list of `{ variable }` entries), by id.
 */
function optimizerVariables(optimizer: tf.Optimizer): Set<number> {
  const ids = new Set<number>();
  for (const value of Object.values(optimizer as unknown as Record<string, unknown>)) {
    if (value instanceof tf.Variable) ids.add(value.id);
    else if (Array.isArray(value)) for (const e of value) if (e && (e as { variable?: unknown }).variable instanceof tf.Variable) ids.add((e as { variable: tf.Variable }).variable.id);
  }
  return ids;
}

/** Balances a multi-term loss in a custom training loop. */
export class BalancedTrainer {
  /**
   * The balancer choosing the weights. With `balancer: 'auto'`: equal weights' until the selection
   * ends, then the winner's (its own state and step count).
   */
  readonly balancer: Balancer;
  /** The `auto` selection, when `balancer` is `'auto'`. */
  private readonly selection: AutoSelector | null = null;
  /** Every step so far, in memory (unless `keepHistory: false`). */
  readonly history = new History();
  private readonly opts: BalancedTrainerOptions;
  private readonly sinks: Sink[];
  private names: string[] | null = null;
  private sharedVars: tf.Variable[] | null;
  private _step = 0;
  private _epoch = 0;
  private opened = false;

  private readonly termsFn: () => Record<string, tf.Scalar>;
  private readonly every: number;

  constructor(options: BalancedTrainerOptions) {
    checkTrainerOptions(options);
    checkVariablesOption(options.variables);
    const rep = options?.represent;
    if (rep !== undefined && options.terms !== undefined) {
      throw new BalancerError('BalancedTrainer: give either option "terms" or option "represent", not both');
    }
    if (rep !== undefined) {
      if (!rep || typeof rep.trunk !== 'function' || typeof rep.heads !== 'function') {
        throw new BalancerError('BalancedTrainer: option "represent" must be { trunk: () => z, heads: (z) => named scalar losses }');
      }
      if (options.shared) throw new BalancerError('BalancedTrainer: option "shared" cannot be used with option "represent" (the Gram matrix is formed over z)');
      this.termsFn = () => rep.heads(checkRepresentation(rep.trunk()));
    } else if (typeof options?.terms !== 'function') {
      throw new BalancerError('BalancedTrainer: option "terms" must be a function returning named scalar losses (or give option "represent")');
    } else {
      this.termsFn = options.terms;
    }
    this.every = options.every ?? 1;
    if (!Number.isInteger(this.every) || this.every < 1) {
      throw new BalancerError(`BalancedTrainer: option "every" got ${JSON.stringify(options.every)}; must be an integer >= 1`);
    }
    if (!options.optimizer || typeof (options.optimizer as tf.Optimizer).applyGradients !== 'function') {
      throw new BalancerError('BalancedTrainer: option "optimizer" must be a tf.Optimizer (e.g. tf.train.adam(1e-3))');
    }
    this.opts = options;
    // One cadence mechanism: the trainer's `every: k` is the balancer's `updateEvery: k`; the balancer
    // decides each step whether the strategy runs, and the trainer asks it (wantsUpdate) before
    // reading any per-term gradient.
    // `frozen` and `baseWeights` given with auto are settings of every candidate (fitBalanced's layer
    // penalties and lossWeights), not options of the selection.
    const { spec: autoSpec, common } = splitCandidateSettings(options.balancer);
    const auto = parseAuto(autoSpec, checkSpec); // every candidate/family spec checked now, not at the first step
    const total = options.totalSteps;
    if (total !== undefined && (!Number.isInteger(total) || total < 1)) {
      throw new BalancerError(`BalancedTrainer: option "totalSteps" got ${JSON.stringify(total)}; must be an integer >= 1 (the run's planned step() calls)`);
    }
    if (auto && auto.totalSteps === undefined && total !== undefined) auto.totalSteps = total;
    if (auto) {
      this.selection = new AutoSelector(auto, {
        terms: this.termsFn,
        optimizer: options.optimizer,
        shared: options.shared,
        warn: options.warn,
        // The candidates' harm flags are judged by the selection (disqualify), not warned about.
        makeTrainer: (balancer, optimizer, variables) => {
          // A bad batch makes every candidate warn the same words: passed on once per step.
          const warn = options.warn ?? ((m: string) => console.warn(`loss-balancer: ${m}`));
          return new BalancedTrainer({ ...options, balancer: withSettings(balancer, common), optimizer, variables, sinks: [], keepHistory: true, meta: undefined, harm: false, warn: (m) => this.selection!.relayWarning(m, warn) });
        },
      });
    }
    this.balancer = create(auto ? 'fixed' : options.balancer ?? 'fixed', {
      onNonFinite: options.onNonFinite,
      warn: options.warn,
      ...(this.every > 1 ? { updateEvery: this.every } : {}),
    });
    if (this.every > 1 && this.balancer.config.updateEvery !== this.every) {
      throw new BalancerError(
        `BalancedTrainer: option "every" is ${this.every} but the balancer has updateEvery ${JSON.stringify(this.balancer.config.updateEvery)}; set the cadence in one place (updateEvery in the balancer spec, or every here)`,
      );
    }
    if (rep !== undefined && this.balancer.kind === 'jacobian') {
      throw new BalancerError(
        `BalancedTrainer: strategy "${this.balancer.name}" is of the Jacobian kind (it needs the coordinates of the parameters' gradients), so option "represent" (representation mode) cannot be used with it; give option "terms"`,
      );
    }
    this.sinks = [...(options.keepHistory === false ? [] : [this.history]), ...(options.sinks ?? [])];
    if (options.harm !== false) this.sinks.push(new HarmMonitor({ ...options.harm, warn: options.warn }));
    this.sharedVars = options.shared ?? null;
    if (options.shared && options.variables) {
      const names = new Set(options.variables.map((v) => v.name));
      const outside = options.shared.find((v) => !names.has(v.name));
      if (outside) throw new BalancerError(`BalancedTrainer: shared variable "${outside.name}" is not in "variables"`);
    }
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this._step;
  }

  /** The term names (known after the first step). */
  get terms(): readonly string[] | null {
    return this.names;
  }

  /**
   * The variables updated: the trainable ones of the `variables` option, else every trainable
   * variable now registered except the optimizer's own (tfjs's Adam keeps its β powers in trainable
   * variables). Without the option, `terms()` runs once before the first step so that layers built
   * on their first `apply()` have their weights registered.
   */
  get variables(): tf.Variable[] {
    // As `optimizer.minimize(f, returnCost, varList)`: a variable that is not trainable (now) is left alone.
    if (this.opts.variables) return this.opts.variables.filter((v) => v.trainable);
    const own = optimizerVariables(this.opts.optimizer);
    return Object.values(tf.engine().registeredVariables).filter((v) => v.trainable && !own.has(v.id));
  }

  /** Mark the end of an epoch (used by strategies and records that count epochs). */
  endEpoch(): void {
    this._epoch += 1;
    this.selection?.endEpoch();
  }

  /**
   * How the last step that read per-term gradients read them (null before one did): `'exact,
   * layer-wise'` (dense layers' Gram from their inputs and output gradients, 8 terms or more:
   * src/train/layerwise.ts), `'exact, per-term'` (T per-term gradients and M Mᵀ),
   * `'representation, layer-wise'` (every term reads z through its own dense layer:
   * src/train/head-gram.ts) or `'representation, per-term'` (the T×|z| matrix). See
   * docs/guide-speed.md for when each applies.
   */
  get readingPath(): ReadingPath | null {
    return this._readingPath;
  }

  private _readingPath: ReadingPath | null = null;

  /**
   * The `auto` selection's tournament (scores, winner, probation, cost) as it is now: a copy taken at
   * each read, so that one kept at step 300 still says what it said then (a new user's trial kept a
   * live object whose probation later read `outcome: 'kept'`). Null without `auto` or before the
   * first step.
   */
  get tournament(): Tournament | null {
    const t = this.selection?.tournament;
    return t ? (JSON.parse(JSON.stringify(t)) as Tournament) : null;
  }

  /** The step running now (`'stepAsync() (step 3)'`), or null: one step at a time. */
  private running: string | null = null;
  /** Whether the first step's check for variables created by `terms()` has run (see `reportNewVariables`). */
  private checkedNewVariables = false;
  /** Whether {@link buildOnce} has run. */
  private built = false;

  /** Mark `what` as running, or throw naming both when a step is running already. */
  private enterStep(what: string): void {
    if (this.running !== null) {
      throw new BalancerError(
        `BalancedTrainer: ${what} was called while ${this.running} is still running; steps run one at a time (await each stepAsync() before the next step() or stepAsync(), and do not step from inside terms()), as model.fit refuses a second fit while one runs`,
      );
    }
    this.running = `${what} (step ${this._step})`;
  }

  /**
   * One optimizer step on the balanced loss. With `{ microBatches: k, setMicroBatch }` the step's
   * batch is evaluated in k micro-batches whose per-term losses and gradients are accumulated before
   * the balancer sees them: the step equals one step on the whole batch (see {@link MicroBatches}).
   * @throws BalancerError when another step (a pending `stepAsync()`) is still running.
   */
  step(micro?: MicroBatches): StepResult {
    this.enterStep('step()');
    const before = this.watchNewVariables();
    try {
      return this.stepNow(micro);
    } finally {
      this.running = null;
      this.reportNewVariables(before);
    }
  }

  /**
   * Without option `variables`, before the first step: one call of `terms()` (its result disposed),
   * so that tfjs-layers layers, which create their weights on their first `apply()`, have them
   * registered before the trainer lists every trainable variable. Otherwise the first step would
   * train none of them (a model of unbuilt layers: no variable at all).
   */
  private buildOnce(): void {
    if (this.built || this.opts.variables) return;
    this.built = true;
    tf.tidy(() => void this.termsFn());
  }

  /**
   * Before the first step, when option `variables` is given: the names of the variables registered
   * now, so that the ones `terms()` creates in that step (a tfjs-layers layer creates its weights on
   * its first `apply()`) can be told apart afterwards. Null otherwise.
   */
  private watchNewVariables(): { names: Set<string>; step: number } | null {
    if (this.checkedNewVariables || !this.opts.variables) return null;
    return { names: new Set(Object.keys(tf.engine().registeredVariables)), step: this._step };
  }

  /**
   * After the first step: warn once, through `warn`, about trainable variables created during it that
   * option `variables` does not list. The trainer does not update them, which is rarely meant: the
   * usual cause is a list read from `layer.trainableWeights` before the layer was built.
   */
  private reportNewVariables(before: { names: Set<string>; step: number } | null): void {
    if (!before) return;
    this.checkedNewVariables = true;
    const listed = new Set(this.opts.variables!.map((v) => v.id));
    const fresh = Object.entries(tf.engine().registeredVariables).filter(([name, v]) => v.trainable && !before.names.has(name) && !listed.has(v.id)).map(([name]) => name);
    if (!fresh.length) return;
    const shown = fresh.slice(0, 4).map((n) => JSON.stringify(n)).join(', ') + (fresh.length > 4 ? `, and ${fresh.length - 4} more` : '');
    (this.opts.warn ?? ((m: string) => console.warn(m)))(
      `loss-balancer: terms() created ${fresh.length} trainable variable${fresh.length === 1 ? '' : 's'} during step ${before.step} that option "variables" does not list (${shown}): the trainer does not update ${fresh.length === 1 ? 'it' : 'them'}. ` +
        'A tfjs-layers layer creates its weights on its first apply(): apply the model once before reading layer.trainableWeights, or leave "variables" out to train every trainable variable.',
    );
  }

  /** {@link step}'s work, once it is the only step running. */
  private stepNow(micro?: MicroBatches): StepResult {
    this.buildOnce();
    const vars = this.variables;
    if (vars.length === 0) throw noVariablesError(this.opts.variables);
    if (!this.names) this.bindNames();
    const names = this.names!;
    if (this.selection?.pending) this.scorePendingRound();
    if (this.selection && !this.selection.done) return this.selectStep(micro, vars, names);
    const needs = this.balancer.needs;
    const refresh = this.balancer.wantsUpdate(this._epoch);
    const perTerm = refresh && (needs.gradients !== 'none' || !!needs.stats);
    const check = (t: Record<string, tf.Scalar>) => checkTerms(names, t, this._step); // errors name the step
    if (micro !== undefined) return this.stepMicro(micro, vars, names, perTerm, check, refresh);
    if (perTerm && needs.gradients === 'jacobian') return this.stepJacobian(vars, names, check);

    const snapshot = this.balancer.snapshot();
    let outcome!: { losses: number[]; result: UpdateResult; gram?: number[][] };
    tf.tidy(() => {
      let losses: number[];
      let result: UpdateResult;
      let reading: GramReading | undefined;
      let grads: tf.NamedTensorMap;
      if (perTerm && this.opts.represent) {
        let res: UpdateResult | undefined;
        let read: number[] = [];
        const out = representationReading(this.opts.represent, names, vars, check, (vals, zg) => {
          read = vals;
          reading = zg.read(!!needs.stats);
          res = this.balancer.update({ losses: vals, gram: reading.gram, stats: reading.stats, epoch: this._epoch });
          return res.skipped ? null : res.weights;
        }, this.balancer.headWeights);
        losses = read;
        result = res!;
        grads = out.grads;
        this._readingPath = out.layerwise ? 'representation, layer-wise' : 'representation, per-term';
      } else if (perTerm) {
        const r = this.exactReading(names, vars, check);
        ({ losses, reading } = r.parse(r.flat.dataSync()));
        result = this.balancer.update({ losses, gram: reading.gram, stats: reading.stats, epoch: this._epoch });
        grads = result.skipped ? {} : r.combine(result.weights);
      } else {
        let res: UpdateResult | undefined;
        let vals: number[] = [];
        const out = variableGrads(() => {
          const t = this.termsFn();
          check(t);
          const scalars = names.map((n) => scalarOf(t, n));
          vals = Array.from(tf.stack(scalars).dataSync());
          // Between refreshes the balancer reuses its last weights without calling the strategy.
          res = this.balancer.update({ losses: vals, epoch: this._epoch });
          const w = res.skipped ? names.map(() => 0) : res.weights;
          return tf.addN(scalars.map((s, i) => s.mul(w[i]))) as tf.Scalar;
        }, vars);
        losses = vals;
        result = res!;
        grads = result.skipped ? {} : out.grads;
      }
      result = this.apply(grads, vars, result, snapshot, losses);
      outcome = { losses, result, gram: reading?.gram };
    });

    return { ...this.record(names, outcome.losses, outcome.result, outcome.gram), refreshed: refresh };
  }

  /**
   * {@link step} for browser backends (WebGL, WebGPU): the same step, but every value (losses, Gram
   * matrix, the finiteness check of the combined gradients) is read with `await tensor.data()`
   * instead of `dataSync()`, so the page's main thread is not blocked while the GPU works. Gives the
   * same records and the same variable updates as `step()`.
   *
   * Strategies that read losses only: a step's weights depend on that step's losses, and tfjs runs
   * a gradient function synchronously from forward to backward pass, so the losses are read from a
   * first forward pass and the balanced loss is differentiated in a second one (one extra forward
   * pass per step; `terms()` must give the same values both times, e.g. no unseeded dropout).
   * Strategies that read gradients: no extra pass.
   *
   * With option `represent` and with the Jacobian strategies (`needs.gradients === 'jacobian'`) it
   * takes {@link step}'s path: the same records, but those values are read synchronously.
   * Micro-batches are `step()`'s only.
   *
   * @throws BalancerError when another step is still running (await each `stepAsync()` before the next step).
   */
  async stepAsync(): Promise<StepResult> {
    this.enterStep('stepAsync()');
    const before = this.watchNewVariables();
    try {
      return await this.stepAsyncNow();
    } finally {
      this.running = null;
      this.reportNewVariables(before);
    }
  }

  /** {@link stepAsync}'s work, once it is the only step running. */
  private async stepAsyncNow(): Promise<StepResult> {
    this.buildOnce();
    const vars = this.variables;
    if (vars.length === 0) throw noVariablesError(this.opts.variables);
    // Representation mode reads its values inside one tidy: step()'s path (the same records; its reads block).
    if (this.opts.represent) return this.stepNow();
    if (!this.names) this.bindNames();
    const names = this.names!;
    if (this.selection?.pending) this.scorePendingRound();
    if (this.selection && !this.selection.done) return this.selectStepAsync(vars, names);
    // So do the Jacobian strategies (the T×P matrix goes to the strategy as a tensor inside the tidy).
    if (this.balancer.needs.gradients === 'jacobian') return this.stepNow();
    const needs = this.balancer.needs;
    const refresh = this.balancer.wantsUpdate(this._epoch);
    const perTerm = refresh && (needs.gradients === 'gram' || !!needs.stats);
    const check = (t: Record<string, tf.Scalar>) => checkTerms(names, t, this._step); // errors name the step
    const snapshot = this.balancer.state();
    const held: tf.Tensor[] = [];
    try {
      let losses: number[];
      let reading: GramReading | undefined;
      let result: UpdateResult;
      let grads: tf.NamedTensorMap = {};
      if (perTerm) {
        let out!: ReturnType<BalancedTrainer['exactReading']>;
        tf.tidy(() => {
          out = this.exactReading(names, vars, check);
          for (const t of new Set(out.tensors)) held.push(tf.keep(t));
          held.push(tf.keep(out.flat));
        });
        ({ losses, reading } = out.parse(await out.flat.data()));
        result = this.balancer.update({ losses, gram: reading.gram, stats: reading.stats, epoch: this._epoch });
        if (!result.skipped) grads = tf.tidy(() => out.combine(result.weights));
      } else {
        const lossTensor = tf.tidy(() => {
          const t = this.termsFn();
          check(t);
          return tf.stack(names.map((n) => scalarOf(t, n)));
        });
        held.push(lossTensor);
        losses = Array.from(await lossTensor.data());
        // Between refreshes the balancer reuses its last weights without calling the strategy.
        result = this.balancer.update({ losses, epoch: this._epoch });
        const w = result.weights;
        if (!result.skipped) {
          grads = tf.tidy(() => variableGrads(() => {
            const t = this.termsFn();
            check(t);
            return tf.addN(names.map((n, i) => scalarOf(t, n).mul(w[i]))) as tf.Scalar;
          }, vars).grads);
        }
      }
      for (const g of Object.values(grads)) held.push(g);
      if (!result.skipped && Object.keys(grads).length) {
        const gradNames = Object.keys(grads);
        const flags = tf.tidy(() => tf.stack(gradNames.map((n) => tf.all(tf.isFinite(grads[n])))));
        held.push(flags);
        result = this.guarded(gradNames, await flags.data(), result, snapshot, losses);
        if (!result.skipped) tf.tidy(() => this.opts.optimizer.applyGradients(this.inVariableOrder(grads, vars)));
      }
      return { ...this.record(names, losses, result, reading?.gram), refreshed: refresh };
    } finally {
      tf.dispose(held);
    }
  }

  /**
   * Per-term gradients of the trained variables and, in one flat tensor to download, the term losses
   * (T) followed by {@link gramTensor} over the shared variables. Shared by {@link step} and
   * {@link stepAsync}; call inside `tf.tidy`.
   */
  private termReadings(
    names: string[],
    vars: tf.Variable[],
    check: (t: Record<string, tf.Scalar>) => void,
    pre?: { values: tf.Scalar[]; grads: TermGrads[] },
  ): { termGrads: TermGrads[]; flat: tf.Tensor1D } {
    const read = this.opts.singleForward !== false && tapeWorks() ? termGradientsOnce : perTermGradients;
    const { values, grads: termGrads } = pre ?? read(this.termsFn, names, vars, check);
    this.sharedVars ??= detectShared(termGrads, vars);
    // Own tidy: the T×P matrix is released here, not kept until the end of the step (peak memory).
    const flat = tf.tidy(() => tf.concat([tf.stack(values), gramTensor(gradientMatrix(termGrads, this.sharedVars!), !!this.balancer.needs.stats)]) as tf.Tensor1D);
    return { termGrads, flat };
  }

  /**
   * Exact mode's reading for {@link step} and {@link stepAsync}: `flat` (losses, then the Gram matrix,
   * then with stats mean/max |g|) to download, `parse` for the downloaded values, and `combine` for the
   * per-term gradients once the weights are known; `tensors` are what `combine` reads (a caller that
   * awaits between reading and combining keeps them). When the strategy reads the Gram matrix only (no
   * stats) and the model's shared part is made of dense layers (src/train/layerwise.ts), the
   * layer-wise reading (no per-term parameter gradients); else {@link termReadings}. Call inside
   * `tf.tidy`.
   */
  private exactReading(
    names: string[],
    vars: tf.Variable[],
    check: (t: Record<string, tf.Scalar>) => void,
  ): {
    flat: tf.Tensor1D;
    tensors: tf.Tensor[];
    parse: (data: Float32Array | Int32Array | Uint8Array) => { losses: number[]; reading: GramReading };
    combine: (w: readonly number[]) => tf.NamedTensorMap;
  } {
    const headWeights = this.balancer.headWeights;
    let pre: { values: tf.Scalar[]; grads: TermGrads[] } | undefined;
    if (!this.balancer.needs.stats && layerwiseEnabled() && names.length >= layerwiseMinTerms() && this.opts.singleForward !== false && tapeWorks()) {
      const r = termGradientsLayered(this.termsFn, names, vars, check, this.sharedVars);
      if (r.kind === 'layerwise') {
        const shared = (this.sharedVars ??= r.shared);
        const T = names.length;
        const flat = tf.tidy(() => tf.concat([tf.stack(r.values), r.gram.reshape([-1])]) as tf.Tensor1D);
        const parse = (data: Float32Array | Int32Array | Uint8Array) => {
          let reading = parseGram(data.subarray(T), T, false);
          if (gramOverflowed(reading.gram)) {
            const M = layerMatrix(r.parts, shared, T);
            try {
              reading = readGramScaled(M, false);
            } finally {
              M.dispose();
            }
          }
          return { losses: Array.from(data.subarray(0, T)), reading };
        };
        const combine = (w: readonly number[]) => {
          const out = layerCombine(r.parts, w);
          for (const h of r.head) out[h.v.name] = headWeights === 'unit' ? h.g : tf.mul(h.g, w[h.term]);
          return out;
        };
        const tensors = [...r.parts.flatMap(partTensors), ...r.head.map((h) => h.g)];
        this._readingPath = 'exact, layer-wise';
        return { flat, tensors, parse, combine };
      }
      pre = r;
    }
    this._readingPath = 'exact, per-term';
    const { termGrads, flat } = this.termReadings(names, vars, check, pre);
    return {
      flat,
      tensors: termGrads.flatMap((g) => [...g.values()]),
      parse: (data) => this.parseReadings(data, names.length, termGrads),
      combine: (w) => combine(termGrads, w, vars, headWeights),
    };
  }

  /**
   * The download of {@link termReadings}'s `flat` as losses and a {@link GramReading}; a Gram matrix
   * that overflowed float32 is read again from `termGrads` in a scaled form (see `readGram`).
   */
  private parseReadings(flat: Float32Array | Int32Array | Uint8Array, T: number, termGrads: TermGrads[]): { losses: number[]; reading: GramReading } {
    const stats = !!this.balancer.needs.stats;
    let reading = parseGram(flat.subarray(T), T, stats);
    if (gramOverflowed(reading.gram)) {
      const M = gradientMatrix(termGrads, this.sharedVars!);
      try {
        reading = readGramScaled(M, stats);
      } finally {
        M.dispose();
      }
    }
    return { losses: Array.from(flat.subarray(0, T)), reading };
  }

  /** One step of the `auto` selection (src/train/auto.ts): every live candidate steps on this batch. */
  private selectStep(micro: MicroBatches | undefined, vars: tf.Variable[], names: string[]): StepResult {
    const sel = this.selection!;
    sel.checkOpen();
    if (!sel.started) sel.begin(names, vars, this._step, this._epoch);
    return this.afterSelect(sel.step(micro, this._step, this._epoch), names);
  }

  /** {@link selectStep} for {@link stepAsync}: every live candidate takes an async step. */
  private async selectStepAsync(vars: tf.Variable[], names: string[]): Promise<StepResult> {
    const sel = this.selection!;
    sel.checkOpen();
    if (!sel.started) sel.begin(names, vars, this._step, this._epoch);
    return this.afterSelect(await sel.stepAsync(this._step, this._epoch), names);
  }

  /** A selection step's records and tournament to the sinks; the winner takes over when picked. */
  private afterSelect(out: AutoStepOutput, names: string[]): StepResult {
    const sel = this.selection!;
    this.openSinks(names);
    for (const rec of out.records) for (const s of this.sinks) s.write(rec);
    const t = sel.tournament!;
    if (t.rounds.length && t.rounds[t.rounds.length - 1].step === this._step + 1) {
      for (const s of this.sinks) s.tournament?.(JSON.parse(JSON.stringify(t)) as Tournament);
    }
    const winner = sel.takeWinner();
    if (winner) this.adoptWinner(winner);
    this._step += 1;
    // The round's scoring failed (the score option): the step stands and is recorded; the round is
    // scored again at the next step.
    if (out.error !== undefined) throw out.error;
    return { ...out.result, candidates: out.candidates };
  }

  /** Score the round whose scoring failed at the last step (see AutoSelector.pending); may end the selection. */
  private scorePendingRound(): void {
    const sel = this.selection!;
    sel.scorePending(this._step);
    const winner = sel.takeWinner();
    if (winner) this.adoptWinner(winner);
    for (const s of this.sinks) s.tournament?.(JSON.parse(JSON.stringify(sel.tournament)) as Tournament);
  }

  /** {@link step} with gradient accumulation over micro-batches (src/train/accumulate.ts). */
  private stepMicro(
    micro: MicroBatches,
    vars: tf.Variable[],
    names: string[],
    perTerm: boolean,
    check: (t: Record<string, tf.Scalar>) => void,
    refresh: boolean,
  ): StepResult {
    if (this.opts.represent) throw new BalancerError('BalancedTrainer: step({ microBatches }) cannot be used with option "represent"');
    if (this.balancer.kind === 'jacobian') {
      throw new BalancerError(`BalancedTrainer: step({ microBatches }) is not supported with strategy "${this.balancer.name}" (Jacobian kind)`);
    }
    microFractions(micro);
    const snapshot = this.balancer.state();
    let outcome!: { losses: number[]; result: UpdateResult; gram?: number[][] };
    tf.tidy(() => {
      const out = accumulatedStep(
        {
          terms: this.termsFn,
          names,
          vars,
          check,
          balancer: this.balancer,
          epoch: this._epoch,
          perTerm,
          withStats: !!this.balancer.needs.stats,
          shared: this.sharedVars,
          read: this.opts.singleForward !== false && tapeWorks() ? termGradientsOnce : perTermGradients,
        },
        micro,
      );
      if (perTerm) this.sharedVars ??= out.shared;
      outcome = { losses: out.losses, result: this.apply(out.grads, vars, out.result, snapshot, out.losses), gram: out.gram };
    });
    return { ...this.record(names, outcome.losses, outcome.result, outcome.gram), refreshed: refresh };
  }

  /**
   * {@link step} for a Jacobian-kind strategy on a refresh step: per-term gradients (one forward, T
   * backward passes), the T×P matrix over the shared variables handed to the balancer on the
   * backend, its direction cut back into per-variable gradients (src/train/jacobian.ts). Only the T
   * losses and T squared gradient norms are downloaded here (the balancer adds its finiteness
   * checks). The balancer's tensor state replaced by this update is released once the step is
   * applied or rolled back.
   */
  private stepJacobian(vars: tf.Variable[], names: string[], check: (t: Record<string, tf.Scalar>) => void): StepResult {
    const snapshot = this.balancer.snapshot();
    let outcome!: { losses: number[]; result: UpdateResult; gram: number[][] };
    try {
      tf.tidy(() => {
        const read = this.opts.singleForward !== false && tapeWorks() ? termGradientsOnce : perTermGradients;
        const { values, grads: termGrads } = read(this.termsFn, names, vars, check);
        this.sharedVars ??= detectShared(termGrads, vars);
        const M = gradientMatrix(termGrads, this.sharedVars);
        const T = names.length;
        const flat = tf.concat([tf.stack(values), tf.sum(tf.square(M), 1)]).dataSync();
        const losses = Array.from(flat.subarray(0, T));
        // gradNorm in the record comes from the diagonal: ‖g_i‖² over the shared variables.
        const gram = names.map((_, i) => names.map((_, j) => (i === j ? flat[T + i] : 0)));
        let result = this.balancer.update({ losses, jacobian: M, tf, epoch: this._epoch });
        const grads = result.skipped ? {} : jacobianGrads(termGrads, result, this.sharedVars, vars, this.balancer.headWeights);
        result = this.apply(grads, vars, result, snapshot, losses);
        const { direction: _d, ...kept } = result;
        outcome = { losses, result: kept, gram };
      });
    } finally {
      this.balancer.settle();
    }
    return { ...this.record(names, outcome.losses, outcome.result, outcome.gram), refreshed: true };
  }

  /** Guard the combined gradients, then apply them with the user's optimizer (unless skipped). */
  private apply(grads: tf.NamedTensorMap, vars: readonly tf.Variable[], result: UpdateResult, snapshot: BalancerState, losses: readonly number[]): UpdateResult {
    if (result.skipped || !Object.keys(grads).length) return result;
    const guarded = this.guardGradients(grads, result, snapshot, losses);
    if (!guarded.skipped) this.opts.optimizer.applyGradients(this.inVariableOrder(grads, vars));
    return guarded;
  }

  /**
   * `grads` with its keys in the order of the trained variables `vars` (the step's {@link variables}), then any
   * other. tfjs's optimizers keep their slots (Adam's moments, momentum, …) by the position of a name
   * in the map, not by the name: the readings build their maps in different orders (the layer-wise
   * one layer by layer from the output, `every: k`'s steps in between in the variables' order), and a
   * changed order gave a variable another one's moments (an error when the shapes differ, silently
   * wrong when they agree).
   */
  private inVariableOrder(grads: tf.NamedTensorMap, vars: readonly tf.Variable[]): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const v of vars) if (grads[v.name]) out[v.name] = grads[v.name];
    for (const [name, g] of Object.entries(grads)) if (!(name in out)) out[name] = g;
    return out;
  }

  /**
   * A NaN/Inf in the combined gradient of any trained variable (possible with finite losses, e.g. the
   * gradient of sqrt at 0, and not seen by the balancer when it reads no gradient, or for variables
   * outside the shared ones): the optimizer step is skipped and the balancer state restored to
   * `snapshot` (skip, with a warning naming the variable and step), or an error is thrown.
   * One small download (one boolean per variable) per step.
   */
  private guardGradients(grads: tf.NamedTensorMap, result: UpdateResult, snapshot: BalancerState, losses: readonly number[]): UpdateResult {
    const names = Object.keys(grads);
    const finite = tf.tidy(() => tf.stack(names.map((n) => tf.all(tf.isFinite(grads[n])))).dataSync());
    return this.guarded(names, finite, result, snapshot, losses);
  }

  /** The outcome of the finiteness check: `finite[i]` is 0 when variable `names[i]`'s gradient is not finite. */
  private guarded(names: string[], finite: ArrayLike<number>, result: UpdateResult, snapshot: BalancerState, losses: readonly number[]): UpdateResult {
    const i = Array.prototype.findIndex.call(finite, (v: number) => !v);
    if (i < 0) return result;
    const reason = overflowReason(this._step, this.names ?? [], result.weights, losses)
      ?? `step ${this._step}: the gradient of variable "${names[i]}" is not finite (NaN or Inf) although every loss is; optimizer step skipped, balancer state kept`;
    this.balancer.load(snapshot);
    this.balancer.reportNonFinite(reason);
    this.balancer.countSkipped();
    return { weights: this.balancer.weights, step: result.step, skipped: reason };
  }

  /**
   * During an `auto` selection, read inside `terms()`: the label of the candidate whose step is
   * running (each `step()` call runs every live candidate's step in turn), else null. Lets the
   * caller attribute what its `terms()` computes (e.g. a metric) to that candidate.
   */
  get selectingCandidate(): string | null {
    return this.selection?.current ?? null;
  }

  /**
   * During an `auto` selection: with each live candidate's variable values in place in turn, call
   * `fn(label)` (e.g. to evaluate a validation metric for each); afterwards, also when `fn` throws,
   * the variables hold equal weights' values again, as between steps. Does nothing when no
   * selection is running. Only the trainer's variables are swapped (see docs/guide-auto.md, Limits).
   */
  async forEachCandidate(fn: (label: string) => void | Promise<void>): Promise<void> {
    await this.selection?.forEachLive(fn);
  }

  /** The step count at which {@link warnUnfinishedSelection} last warned (once per step count). */
  private selectionWarnedAt = -1;

  /**
   * When an `auto` selection is still running: warn through the `warn` option that no winner was
   * picked, that training so far followed equal weights, and how many more `step()` calls the
   * selection needs. Called by {@link close} and at the end of `fitBalanced`; rate-limited to once
   * per step count (a `close()` right after `fitBalanced` does not repeat it).
   * @param where The moment, named in the message (e.g. `'close()'`).
   * @returns Whether it warned.
   */
  warnUnfinishedSelection(where: string): boolean {
    const t = this.selection?.tournament;
    if (!t || t.phase === 'done' || this.selectionWarnedAt === this._step) return false;
    this.selectionWarnedAt = this._step;
    const more = remainingSelectionSteps(t);
    const after = "the selection ends here with equal weights, the candidates' copies are released and the variables keep equal weights' values.";
    (this.opts.warn ?? ((m: string) => console.warn(m)))(
      `loss-balancer: auto: at ${where}, after ${this._step} steps, the strategy selection is still running: it needs ${more} more step() call${more === 1 ? '' : 's'} ` +
        `(it lasts ${t.cost.plannedTrainerSteps} steps from step ${t.startStep}, ${t.trialSteps} in its first round), so no winner was picked and training so far followed equal weights; ` +
        (t.totalSteps !== undefined && this._step < t.totalSteps
          ? `the run stopped at step ${this._step} of the ${t.totalSteps} planned (early stopping, stopTraining, or a loop that ended early); ${after}`
          : `pass totalSteps (the run's planned step() calls) so that the selection fits the run, or lower "trialSteps", or train longer; ${after}`),
    );
    return true;
  }

  /**
   * Flush and close every sink, and move the balancer's tensor state (a Jacobian-kind strategy's,
   * e.g. moco's `y`) off the backend ({@link Balancer.release}), so that after `close()` the trainer
   * holds no tensor; a later `step()` rebuilds it and continues exactly. A run ended during an `auto`
   * selection also releases the candidates' copies of the variables and optimizer slots here, and
   * warns (see {@link warnUnfinishedSelection}) that no winner was picked.
   */
  async close(): Promise<void> {
    this.endSelection('close()', false);
    this.balancer.release();
    await this.closeSinks();
  }

  /**
   * Release an unfinished `auto` selection's copies of the variables and optimizer slots (the
   * variables keep equal weights' values); a later step is an error saying so. Used by
   * `fitBalanced` when the fit fails.
   */
  releaseSelection(): void {
    if (this.selection && !this.selection.done) this.selection.dispose();
  }

  /**
   * Flush and close every sink without ending the run (as `fitBalanced` does at its end): a file
   * sink written again afterwards reopens its file and continues it.
   */
  async closeSinks(): Promise<void> {
    for (const s of this.sinks) await s.close?.();
  }

  /**
   * When an `auto` selection is still running: warn (see {@link warnUnfinishedSelection}) and end it
   * with equal weights as the winner, releasing every candidate's copies; later steps train with
   * equal weights. Called by {@link close} and at the end of `fitBalanced`.
   * @param where The moment, named in the warning and the tournament's reason.
   * @param adopt Whether the optimizer takes equal weights' trial slots (the run goes on); `close()`
   *   passes false: the run is over and the optimizer may already be disposed.
   */
  endSelection(where: string, adopt = true): void {
    const sel = this.selection;
    if (!sel || !sel.started || sel.done) return;
    this.warnUnfinishedSelection(where);
    sel.conclude(`the run ended (${where}) before the selection finished: kept equal weights`, adopt);
    const winner = sel.takeWinner();
    if (winner) this.adoptWinner(winner);
  }

  /**
   * The `auto` winner continues the run: its balancer becomes the trainer's, the tournament names
   * what it reads (the meta line, written before the selection, cannot), and the live harm checks
   * learn which strategy auto picked, so that their warnings name it, its caveat, and what to do.
   */
  private adoptWinner(winner: BalancedTrainer): void {
    (this as { balancer: Balancer }).balancer = winner.balancer;
    const t = this.selection!.tournament!;
    t.gradients = this.reads(winner.balancer);
    if (t.winner && t.winner !== 'equal' && t.score === 'default') {
      for (const s of this.sinks) if (s instanceof HarmMonitor) s.pickedByAuto(winner.balancer.name, t.winner, this._step, winner.balancer.config as { minWeight?: unknown });
    }
    // every sink learns the outcome (the in-memory history moves the winner's trial records into
    // `records`), also when the selection was ended early with equal weights
    for (const s of this.sinks) s.tournament?.(JSON.parse(JSON.stringify(t)) as Tournament);
  }

  /**
   * The whole trainer state (balancer state, step and epoch counters) as one JSON object. During an
   * `auto` selection it also holds every live candidate's variable values and optimizer slots
   * (field `auto`), so that a run interrupted mid-selection resumes bit-exactly.
   */
  state(): TrainerState {
    const s: TrainerState = { format: 'loss-balancer/trainer', version: 1, step: this._step, epoch: this._epoch, balancer: this.balancer.state() };
    const auto = this.selection?.state();
    if (auto) s.auto = auto;
    return s;
  }

  /**
   * Restore a state saved by {@link BalancedTrainer.state}. All or nothing: everything is checked
   * first ({@link checkState}); an error names the field and leaves the trainer unchanged.
   * (`checked`, internal: what {@link checkState} returned for this same state.)
   */
  load(state: TrainerState, checked?: PreparedAuto | null): void {
    // Everything is checked before anything is replaced: the balancer a saved auto selection's winner
    // needs is built (not installed) first, and the saved balancer state is checked against it.
    const balancer = this.balancerFor(state);
    const auto = this.checkState(state, balancer, checked);
    if (auto) this.selection!.load(auto, this.opts.variables ?? this.variables);
    // a state saved before the selection began: the running one is not part of it
    else if (this.selection?.started) this.selection.reset();
    (this as { balancer: Balancer }).balancer = balancer;
    this.balancer.load(state.balancer);
    this._step = state.step;
    this._epoch = state.epoch;
    this.names = state.balancer.terms ? [...state.balancer.terms] : null;
  }

  /** The balancer in force after loading `state`: this one, or a new one for a saved auto selection's winner. */
  private balancerFor(state: TrainerState): Balancer {
    if (!state || typeof state !== 'object' || state.auto === undefined) return this.balancer;
    if (!this.selection) throw new BalancerError('trainer state holds an auto selection ("auto"), but this trainer was not built with balancer: \'auto\'');
    if (!state.auto?.tournament) throw new StateError('trainer state', 'auto', state.auto, 'must be an auto selection state');
    const spec = winnerSpecOf(state.auto.tournament);
    if (!spec) return this.balancer;
    try {
      return create(spec, {
        onNonFinite: this.opts.onNonFinite,
        warn: this.opts.warn,
        ...(this.every > 1 ? { updateEvery: this.every } : {}),
      });
    } catch (e) {
      throw new StateError('trainer state', 'auto.tournament.winner', state.auto.tournament.winner, `names a candidate whose spec cannot be built (${(e as Error).message})`);
    }
  }

  /**
   * Check a saved trainer state as {@link load} would, without loading it. Throws a
   * {@link BalancerError} naming the field (`step`, `epoch`, `balancer.<field>`, `auto.<field>`)
   * otherwise. Returns the saved `auto` selection checked and decoded (for {@link load}), or null.
   * (`checked`, internal: that result, from a call on this same state, so it is not decoded twice.)
   */
  checkState(state: TrainerState, balancer: Balancer = this.balancerFor(state), checked?: PreparedAuto | null): PreparedAuto | null {
    const owner = 'trainer state';
    if (!state || typeof state !== 'object' || state.format !== 'loss-balancer/trainer') {
      throw new StateError(owner, 'format', state && typeof state === 'object' ? state.format : state, 'must be "loss-balancer/trainer" (not a loss-balancer trainer state)');
    }
    if (state.version !== 1) throw new StateError(owner, 'version', state.version, `trainer state version ${state.version} is not supported (this version reads 1)`);
    for (const k of ['step', 'epoch'] as const) {
      if (!Number.isInteger(state[k]) || state[k] < 0) throw new StateError(owner, k, state[k], 'must be an integer >= 0');
    }
    try {
      balancer.checkState(state.balancer);
    } catch (e) {
      if (e instanceof StateError) throw e.within(owner, 'balancer.');
      throw e;
    }
    // The saved selection (every live candidate's copies) is checked and decoded before anything is applied.
    if (state.auto === undefined) return null;
    // @internal: loadState passes what its own checkState call returned for this same state
    if (checked !== undefined) return checked;
    return this.selection!.prepare(state.auto, this.opts.variables ?? this.variables, state.balancer?.terms ?? null);
  }

  private bindNames(): void {
    const names = tf.tidy(() => {
      const t = this.termsFn();
      if (!t || typeof t !== 'object') throw new BalancerError('terms() must return an object of named scalar losses');
      const keys = Object.keys(t);
      keys.forEach((k) => scalarOf(t, k));
      return keys;
    });
    if (this.balancer.terms) checkSameTerms(this.balancer.terms, names);
    this.balancer.bind(this.balancer.terms ?? names);
    this.names = [...this.balancer.terms!];
  }

  private record(names: string[], losses: number[], result: UpdateResult, gram?: number[][]): StepResult {
    const per = (xs: readonly number[]): PerTerm => Object.fromEntries(names.map((n, i) => [n, xs[i]]));
    const weighted = losses.map((l, i) => l * result.weights[i]);
    const reg = result.regularizer;
    const total = weighted.reduce((a, b) => a + b, 0) + (reg ? reg.reduce((a, b) => a + b, 0) : 0);
    const rec: StepRecord = {
      step: this._step,
      epoch: this._epoch,
      loss: per(losses),
      weight: per(result.weights),
      weighted: per(weighted),
      total,
    };
    if (reg) rec.regularizer = per(reg);
    if (gram) rec.gradNorm = per(gram.map((row, i) => Math.sqrt(Math.max(0, row[i]))));
    if (result.info) rec.info = Object.fromEntries(Object.entries(result.info).map(([k, v]) => [k, per(v)]));
    if (result.skipped) rec.skipped = result.skipped;
    if (result.clamped?.length) rec.clamped = [...result.clamped];
    this.openSinks(names);
    for (const s of this.sinks) s.write(rec);
    this._step += 1;
    return { step: rec.step, losses: rec.loss, weights: rec.weight, gradNorms: rec.gradNorm, total, skipped: rec.skipped };
  }

  /** Where a balancer reads per-term gradients: `'shared'`, `'representation'` or `'none'` (losses only). */
  private reads(b: Balancer): string {
    return b.needs.gradients !== 'none' || b.needs.stats ? (this.opts.represent ? 'representation' : 'shared') : 'none';
  }

  /** Open the sinks with the run's meta record (once, before the first record). */
  private openSinks(names: string[]): void {
    if (!this.opened) {
      this.opened = true;
      const meta: RunMeta = {
        strategy: this.selection ? 'auto' : this.balancer.name,
        options: this.balancer.options,
        terms: names,
        backend: tf.getBackend(),
        gradients: this.selection ? 'per candidate' : this.reads(this.balancer),
        ...(this.every > 1 ? { every: this.every } : {}),
        startedAt: new Date().toISOString(),
        ...this.opts.meta,
      };
      for (const s of this.sinks) s.open?.(meta);
    }
  }
}

/** Every option of {@link BalancedTrainerOptions}. */
export const TRAINER_OPTION_NAMES: readonly string[] = ['terms', 'represent', 'every', 'totalSteps', 'singleForward', 'optimizer', 'balancer', 'variables', 'shared', 'sinks', 'onNonFinite', 'keepHistory', 'warn', 'meta', 'harm'];

/** Unknown options are an error naming them, with the closest known one (a misspelt option would otherwise do nothing). */
function checkTrainerOptions(options: unknown): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new BalancerError('BalancedTrainer: the options must be an object ({ terms, optimizer, balancer, ... })');
  }
  for (const key of Object.keys(options)) {
    if (TRAINER_OPTION_NAMES.includes(key)) continue;
    const hint = key === 'lossWeights' || key === 'loss_weights'
      ? '; fixed per-term weights are the balancer\'s "baseWeights" (balancer: { name, baseWeights: { term: w } }), or balancer: { name: \'fixed\', weights }'
      : ((near) => (near ? `; did you mean "${near}"?` : ''))(closest(key, TRAINER_OPTION_NAMES));
    throw new BalancerError(`BalancedTrainer: unknown option "${key}"${hint} (known: ${TRAINER_OPTION_NAMES.join(', ')})`);
  }
}

/** The balancer settings an `auto` spec passes to every candidate rather than to the selection. */
const CANDIDATE_SETTINGS = ['frozen', 'baseWeights'] as const;

/** An `auto` spec without {@link CANDIDATE_SETTINGS}, and those settings; any other spec unchanged. */
function splitCandidateSettings(spec: BalancedTrainerOptions['balancer']): { spec: BalancedTrainerOptions['balancer']; common: Record<string, unknown> } {
  if (!spec || typeof spec !== 'object' || spec instanceof Balancer || (spec as { name?: unknown }).name !== 'auto') return { spec, common: {} };
  const rest: Record<string, unknown> = { ...spec };
  const common: Record<string, unknown> = {};
  for (const k of CANDIDATE_SETTINGS) {
    if (rest[k] !== undefined) common[k] = rest[k];
    delete rest[k];
  }
  return { spec: rest as BalancerSpec, common };
}

/** A candidate's spec with the settings every candidate shares (its own fields win). */
function withSettings(spec: BalancerSpec, common: Record<string, unknown>): BalancerSpec {
  if (!Object.keys(common).length) return spec;
  return (typeof spec === 'string' ? { name: spec, ...common } : { ...common, ...(spec as object) }) as BalancerSpec;
}
