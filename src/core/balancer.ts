/**
 * `Balancer`: a strategy bound to its options, its term names and its current state. This is the only
 * object the trainers talk to. It validates every input (non-finite losses or gradients are skipped or
 * thrown per `onNonFinite`, never passed on), checks the strategy's output (finite, non-negative), and
 * makes the whole state one JSON-serialisable object for checkpoints.
 */
import {
  applyBounds,
  balancedIndices,
  cadenceAdd,
  cadenceInit,
  cadenceToEpoch,
  composeWeights,
  expand,
  parseCoreConfig,
  pick,
  subMatrix,
  tickMode,
  type CadenceState,
  type CoreConfig,
} from './balancer-config.js';
import { BalancerError, NonFiniteError, OptionError } from './errors.js';
import { parse, safeParse, type Schema } from './schema.js';
import { checkStrategyState, checkWithSchema, coreStateSchema, StateError } from './state-check.js';
import {
  isJacobianStrategy,
  type GradientStats,
  type JacobianOutput,
  type JacobianStrategy,
  type NonFinitePolicy,
  type Strategy,
  type StrategyNeeds,
  type Tf,
} from './types.js';
// Type-only (erased): the Balancer touches tensors only through the methods of those it is given.
import type { Tensor, Tensor1D, Tensor2D } from '@tensorflow/tfjs';

/** Settings of the core that stand beside a strategy's own options. */
export interface BalancerConfig {
  /**
   * A NaN/Inf loss or gradient statistic: `'skip'` leaves the state untouched, keeps the previous
   * weights and warns naming the term and step; `'throw'` throws a {@link NonFiniteError}.
   * @default 'skip'
   */
  onNonFinite?: NonFinitePolicy;
  /** Where warnings go. @default console.warn */
  warn?: (message: string) => void;
  /**
   * Prior weights by term name, multiplied with the adaptive weights: `w_i = base_i · adaptive_i`
   * (absent terms: 1). @default {}
   */
  baseWeights?: Record<string, number>;
  /**
   * Terms kept at a fixed weight, by name; the strategy balances only the other terms (it sees only
   * their losses, Gram sub-matrix and statistics, and normalises their weights among themselves).
   * @default {}
   */
  frozen?: Record<string, number>;
  /**
   * When the strategy is called: `'step'` (every update), `'epoch'` (once per epoch, at the first
   * step of a new epoch, with the mean raw losses of the epoch that ended), or every `k` steps. In
   * between, the last weights are reused and the trainer reads no per-term gradient.
   * @default 'step'
   */
  updateEvery?: 'step' | 'epoch' | number;
  /**
   * Fixed weights for the first `steps` steps before the strategy takes over (by term name; absent
   * terms get their base weight, frozen terms their frozen weight). @default none
   */
  warmup?: {
    /** Number of steps with fixed weights before the strategy takes over. */
    steps: number;
    /** The fixed weights during warm-up, by term name (terms not named: 1). @default all 1 */
    weights?: Record<string, number>;
  };
  /**
   * Bounds on the weights of the balanced terms, applied after the strategy: `min`, `max` and
   * `maxChange` (largest relative change per weight refresh, as a factor `1 + maxChange` either way).
   * The terms they changed are reported in {@link UpdateResult.clamped}. @default none
   */
  bounds?: {
    /** Smallest weight a balanced term may take. */
    min?: number;
    /** Largest weight a balanced term may take. */
    max?: number;
    /** Largest relative change per refresh: a weight moves at most ×(1 + maxChange) or ÷(1 + maxChange). */
    maxChange?: number;
  };
}

/** Keys of {@link BalancerConfig} accepted beside the strategy options in `{ name, ... }` specs. */
export const BALANCER_KEYS = ['onNonFinite', 'warn', 'baseWeights', 'frozen', 'updateEvery', 'warmup', 'bounds'] as const;

/** What the balancer is given each update (arrays in the order of {@link Balancer.terms}). */
export interface BalancerInput {
  /** Raw (unweighted) loss of each term. */
  losses: readonly number[];
  /** The T×T Gram matrix of per-term gradients, when the strategy reads it. */
  gram?: readonly (readonly number[])[];
  /** Per-term mean / max |gradient|, when the strategy reads them. */
  stats?: GradientStats;
  /** 0-based epoch index, for strategies that average losses per epoch; passed to the strategy as is. */
  epoch?: number;
  /**
   * The T×P matrix of per-term gradients over the shared variables, when the strategy is of the
   * Jacobian kind (see {@link JacobianStrategy}); with {@link tf}. Owned by the caller.
   */
  jacobian?: Tensor2D;
  /** The tfjs namespace, given with {@link jacobian}. */
  tf?: Tf;
}

/** The outcome of one update. */
export interface UpdateResult {
  /** The weights to apply this step. */
  weights: number[];
  /** Per-term additive regulariser of the objective (uncertainty's ½·s_i), if any. */
  regularizer?: number[];
  /** Strategy-specific per-term values to log. */
  info?: Readonly<Record<string, number[]>>;
  /** Set when the update was skipped: the reason, naming the term and step. */
  skipped?: string;
  /** The update index this result belongs to. */
  step: number;
  /**
   * Whether the strategy was called this step; false during warm-up and between updates
   * (`updateEvery`), when the last weights are reused.
   */
  updated?: boolean;
  /** Names of the terms whose weight a bound (`bounds.min`, `max`, `maxChange`) changed this step. */
  clamped?: string[];
  /**
   * Jacobian-kind strategies: the update direction over the shared parameters, shape [P], when the
   * strategy was called and returned one (else the direction is `Σ w_i g_i`). Created in the
   * caller's scope; the caller disposes it (a `tf.tidy` around the update does).
   */
  direction?: Tensor1D;
}

/** A tensor written into a balancer state: its shape and values (row-major). */
export interface StateTensor {
  /** The tensor's shape. */
  shape: number[];
  /** Its values, row-major (float32 values are exact in JSON numbers). */
  values: number[];
}

/** The serialised form of a balancer (see {@link Balancer.state}). */
export interface BalancerState {
  /** Always `'loss-balancer/balancer'`. */
  format: 'loss-balancer/balancer';
  /** {@link STATE_VERSION} of the library that saved it. */
  version: number;
  /** Registry name of the strategy. */
  strategy: string;
  /** The strategy's validated options. */
  options: unknown;
  /** Term names, once bound. */
  terms: string[] | null;
  /** Accepted updates so far. */
  step: number;
  /** The weights in force. */
  weights: number[] | null;
  /** The strategy's own state (JSON). */
  state: unknown;
  /**
   * The post-processing layer (base weights, frozen terms, cadence, warm-up, bounds): its settings
   * and bookkeeping. Absent in states saved before these settings existed (then: defaults).
   */
  core?: CoreState;
  /**
   * Jacobian-kind strategies: the strategy's tensor state, by name (absent or null: none yet).
   * `'live'` in a rollback snapshot ({@link Balancer.snapshot}), which refers to the tensors in
   * memory instead of copying them.
   */
  tensors?: Record<string, StateTensor> | 'live' | null;
}

/** The serialised post-processing layer of a balancer (see {@link BalancerState.core}). */
export interface CoreState {
  /** The validated core settings (base weights, frozen terms, cadence, warm-up, bounds). */
  config: CoreConfig;
  /** Indices of the balanced (not frozen) terms: the strategy's terms, in order. */
  active: number[] | null;
  /** The strategy's last weights on the balanced subset (before base weights and bounds). */
  adaptive: number[] | null;
  /** The last regulariser, full length, reused between updates. */
  regularizer: number[] | null;
  /** Where the cadence (`updateEvery`, warm-up) stands. */
  cadence: CadenceState | null;
}

/** Version of {@link BalancerState}; bumped on any incompatible change. */
export const STATE_VERSION = 1;

/** A strategy with its options, term names and state. */
export class Balancer<O = unknown, S = unknown> {
  private _terms: string[] | null = null;
  private _state: S | null = null;
  private _weights: number[] | null = null;
  private _step = 0;
  private readonly onNonFinite: NonFinitePolicy;
  private readonly warn: (message: string) => void;
  /** Base weights, frozen terms, cadence, warm-up, bounds (validated). */
  private core: CoreConfig;
  /** Indices of the balanced terms (the strategy's terms). */
  private _active: number[] | null = null;
  /** The strategy this balancer runs. */
  readonly strategy: Strategy<O, S> | JacobianStrategy<O, S>;
  /** The strategy's validated options (defaults filled). */
  readonly options: O;

  /** The strategy's last weights on the balanced subset. *
   * @param strategy - the strategy (see the registry).
   * @param options - its validated options (defaults filled).
   * @param config - core settings beside the options.
   */
  private _adaptive: number[] | null = null;
  private _regularizer: number[] | null = null;
  private _cadence: CadenceState | null = null;
  /** Jacobian kind: the strategy's tensor state (kept), or its saved form until the next update. */
  private _tensors: Record<string, Tensor> | null = null;
  private _pendingTensors: Record<string, StateTensor> | null = null;
  /** Tensor state replaced by the last update, kept until {@link settle} for a rollback. */
  private _retired: Record<string, Tensor> | null = null;
  /** Snapshots taken by {@link snapshot}, with the tensors they refer to. */
  private readonly _liveRefs = new WeakMap<object, Record<string, Tensor> | null>();

  constructor(
    strategy: Strategy<O, S> | JacobianStrategy<O, S>,
    options: O,
    config: BalancerConfig = {},
  ) {
    this.strategy = strategy;
    this.options = options;
    this.onNonFinite = config.onNonFinite ?? 'skip';
    if (this.onNonFinite !== 'skip' && this.onNonFinite !== 'throw') {
      throw new OptionError(strategy.name, 'onNonFinite', config.onNonFinite, "onNonFinite must be 'skip' or 'throw'");
    }
    if (config.warn !== undefined && typeof config.warn !== 'function') {
      throw new OptionError(strategy.name, 'warn', config.warn, 'allowed: a function (message: string) => void');
    }
    this.warn = config.warn ?? ((m) => console.warn(`loss-balancer: ${m}`));
    const { onNonFinite: _o, warn: _w, ...rest } = config;
    this.core = parseCoreConfig(rest as Record<string, unknown>, strategy.name);
    if (isJacobianStrategy(strategy)) checkJacobianConfig(this.core, strategy.name);
  }

  /** `'jacobian'` for a {@link JacobianStrategy}, else `'gram'` (which includes loss-only strategies). */
  get kind(): 'gram' | 'jacobian' {
    return isJacobianStrategy(this.strategy) ? 'jacobian' : 'gram';
  }

  /** The validated post-processing settings (base weights, frozen terms, cadence, warm-up, bounds). */
  get config(): Readonly<CoreConfig> {
    return this.core;
  }

  /** The balanced (not frozen) term names: the terms the strategy sees. */
  get balancedTerms(): readonly string[] | null {
    return this._terms && this._active ? this._active.map((i) => this._terms![i]) : null;
  }

  /**
   * Whether the next {@link update} (for a step of epoch `epoch`, when epochs are counted) will call
   * the strategy. False during warm-up and between updates (`updateEvery`): the trainer then reads no
   * per-term gradient and passes the losses only. Does not change any state.
   */
  wantsUpdate(epoch?: number): boolean {
    let c = this._cadence ?? cadenceInit(this._terms?.length ?? 0);
    if (epoch !== undefined && Number.isInteger(epoch) && epoch >= 0) c = cadenceToEpoch(c, epoch, this._step);
    return tickMode(this.core, c) === 'update';
  }

  /**
   * Whether the next update needs per-term gradients: the strategy reads the Gram matrix or
   * statistics, and {@link wantsUpdate} is true.
   */
  wantsGradients(epoch?: number): boolean {
    const needs = this.needs;
    return (needs.gradients !== 'none' || !!needs.stats) && this.wantsUpdate(epoch);
  }

  /**
   * Mark the end of an epoch when the caller does not pass `epoch` in each update (trainers pass it;
   * `trainer.endEpoch()` and `fitBalanced` count epochs). With `updateEvery: 'epoch'` the strategy is
   * then called at the next update with the mean losses of the epoch that ended.
   */
  endEpoch(): void {
    if (!this._terms || !this._cadence) throw new BalancerError('the balancer has no terms yet; call bind(names) first');
    this._cadence = cadenceToEpoch(this._cadence, this._cadence.epoch + 1, this._step);
  }

  /** The strategy's registry name. */
  get name(): string {
    return this.strategy.name;
  }

  /** What this balancer reads each update. */
  get needs(): StrategyNeeds {
    return this.strategy.needs(this.options);
  }

  /**
   * Report a non-finite value found outside the balancer (e.g. in a combined gradient) under this
   * balancer's `onNonFinite` policy: throw a {@link BalancerError} with `reason`, or warn.
   */
  reportNonFinite(reason: string): void {
    if (this.onNonFinite === 'throw') throw new BalancerError(reason);
    this.warn(reason);
  }

  /** How a variable reached by one term only is scaled: see {@link Strategy.headWeights}. */
  get headWeights(): 'weighted' | 'unit' {
    return this.strategy.headWeights ?? (isJacobianStrategy(this.strategy) ? 'unit' : 'weighted');
  }

  /** The term names, once bound (by the first update or {@link bind}). */
  get terms(): readonly string[] | null {
    return this._terms;
  }

  /** Number of accepted updates so far. */
  get step(): number {
    return this._step;
  }

  /** The weights currently in force (all ones, or the strategy's initial weights, before any update). */
  get weights(): number[] {
    if (this._weights) return [...this._weights];
    if (!this._terms) throw new BalancerError('the balancer has no terms yet; call bind(names) first');
    return this._terms.map(() => 1);
  }

  /**
   * Fix the term names and initialise the state. Calling it again with the same names is a no-op;
   * with other names it is an error naming the difference.
   */
  bind(terms: readonly string[]): void {
    if (terms.length === 0) throw new BalancerError('a balancer needs at least one term');
    if (new Set(terms).size !== terms.length) {
      throw new BalancerError(`term names must be distinct; got ${JSON.stringify(terms)}`);
    }
    if (this._terms) {
      checkSameTerms(this._terms, terms);
      return;
    }
    const active = balancedIndices(this.core, terms, this.name);
    const names = active.map((i) => terms[i]);
    const min = this.strategy.minTerms?.(this.options) ?? 1;
    if (names.length < min) {
      throw new BalancerError(
        `strategy "${this.name}" with options ${JSON.stringify(this.options)} needs at least ${min} balanced terms; got ${names.length} (${names.join(', ')})`,
      );
    }
    const state = this.strategy.init(this.options, names);
    this._terms = [...terms];
    this._active = active;
    this._state = state;
    const st = this.strategy;
    const a0 = (st.kind !== 'jacobian' && st.initialWeights?.(this.options, state)) || names.map(() => 1);
    this.checkWeights(a0, 'initial weights', names);
    this._adaptive = [...a0];
    this._cadence = cadenceInit(terms.length);
    const full = composeWeights(this.core, this._terms, active, a0);
    this._weights = applyBounds(this.core.bounds ? { min: this.core.bounds.min, max: this.core.bounds.max } : undefined, full, null, this.activeMask()).weights;
  }

  /** One update from this step's losses (and Gram matrix / statistics when the strategy needs them). */
  update(input: BalancerInput): UpdateResult {
    const terms = this._terms;
    if (!terms || !this._active || !this._cadence) throw new BalancerError('the balancer has no terms yet; call bind(names) first');
    const active = this._active;
    const T = terms.length;
    const step = this._step;
    // Messages name the call count (the trainer's step when a trainer drives this balancer: skipped
    // steps, warm-up and steps between refreshes count too), not the strategy's update index.
    const at = this._cadence.tick;
    if (input.losses.length !== T) {
      throw new BalancerError(`step ${at}: got ${input.losses.length} losses for ${T} terms (${terms.join(', ')})`);
    }
    // Epoch bookkeeping first: a new epoch index closes the running epoch (its mean feeds
    // `updateEvery: 'epoch'`), whatever happens to this step.
    let cadence = input.epoch === undefined ? this._cadence : cadenceToEpoch(this._cadence, input.epoch, step);
    const mode = tickMode(this.core, cadence);
    const epoch = input.epoch ?? (cadence.epochKnown ? cadence.epoch : undefined);
    const needs = this.needs;
    const bad = this.findNonFinite(input, needs);
    if (bad) {
      const [i, what, value] = bad;
      if (this.onNonFinite === 'throw') throw new NonFiniteError(terms[i], at, what, value);
      const reason = `step ${at}: ${what} of term "${terms[i]}" is ${value}; balancer update skipped, weights kept`;
      this.warn(reason);
      this.countSkipped();
      return { weights: this.weights, skipped: reason, step, updated: false };
    }
    const nonNegative = typeof this.strategy.nonNegativeLosses === 'function'
      ? this.strategy.nonNegativeLosses(this.options)
      : this.strategy.nonNegativeLosses;
    if (nonNegative) {
      const i = active.find((j) => input.losses[j] < 0);
      if (i !== undefined) {
        throw new BalancerError(
          `step ${at}: loss of term "${terms[i]}" is ${input.losses[i]}, but strategy "${this.name}" needs non-negative losses (it divides by them or takes their logarithm); shift that term (e.g. add a constant), freeze it (frozen: { ${terms[i]}: weight }) or use a strategy that reads gradients only`,
        );
      }
    }
    const mask = this.activeMask();
    if (mode !== 'update') {
      // Warm-up or between updates: the strategy is not called and needs no gradient.
      let weights = this.weights;
      let clamped: number[] = [];
      if (mode === 'warmup') {
        const fixed = this.core.warmup?.weights ?? {};
        const base = composeWeights(this.core, terms, active, this._adaptive!);
        const w = terms.map((n, i) => fixed[n] ?? base[i]);
        ({ weights, clamped } = applyBounds(this.core.bounds, w, this._weights, mask.map((m, i) => m && !(terms[i] in fixed))));
      }
      this._weights = weights;
      this._cadence = cadenceAdd({ ...cadence, tick: cadence.tick + 1 }, input.losses);
      const result: UpdateResult = { weights: [...weights], step, updated: false };
      if (this._regularizer) result.regularizer = [...this._regularizer];
      if (clamped.length) result.clamped = clamped.map((i) => terms[i]);
      return result;
    }
    if (needs.gradients === 'gram' && !input.gram) {
      throw new BalancerError(`step ${at}: strategy "${this.name}" needs the Gram matrix, none was given`);
    }
    if (needs.stats && !input.stats) {
      throw new BalancerError(`step ${at}: strategy "${this.name}" needs gradient statistics, none were given`);
    }
    const all = active.length === T;
    const losses = this.core.updateEvery === 'epoch' && cadence.pending ? cadence.pending : input.losses;
    const st = this.strategy;
    if (st.kind === 'jacobian') return this.updateJacobian(st, input, losses, cadence, at, step);
    const out = st.update(this.options, this._state as S, {
      step,
      losses: all ? losses : pick(losses, active),
      gram: needs.gradients === 'gram' ? (all ? input.gram : subMatrix(input.gram!, active)) : undefined,
      stats: needs.stats
        ? all
          ? input.stats
          : { meanAbs: pick(input.stats!.meanAbs, active), maxAbs: pick(input.stats!.maxAbs, active) }
        : undefined,
      epoch,
    });
    try {
      this.checkWeights(out.weights, `weights returned at step ${at}`, active.map((i) => terms[i]));
    } catch (e) {
      if (this.onNonFinite === 'throw') throw e;
      const reason = `${(e as Error).message}; update skipped, weights kept`;
      this.warn(reason);
      this.countSkipped();
      return { weights: this.weights, skipped: reason, step, updated: false };
    }
    const { weights, clamped } = applyBounds(this.core.bounds, composeWeights(this.core, terms, active, out.weights), this._weights, mask);
    this._state = out.state;
    this._adaptive = [...out.weights];
    this._weights = weights;
    this._regularizer = out.regularizer ? (all ? [...out.regularizer] : expand(out.regularizer, active, T, 0)) : null;
    this._step = step + 1;
    cadence = { ...cadence, tick: cadence.tick + 1, lastUpdateTick: cadence.tick, pending: null };
    this._cadence = cadenceAdd(cadence, input.losses);
    const result: UpdateResult = { weights: [...weights], step, updated: true };
    if (this._regularizer) result.regularizer = [...this._regularizer];
    if (out.info) {
      result.info = all
        ? out.info
        : Object.fromEntries(Object.entries(out.info).map(([k, v]) => [k, expand(v, active, T, Number.NaN)]));
    }
    if (clamped.length) result.clamped = clamped.map((i) => terms[i]);
    return result;
  }

  /**
   * Count a step that was skipped (by this balancer, or by its caller after restoring the state the
   * balancer had before the step): only the call counter that messages name advances, so that the
   * next message names the caller's next step. State, weights and {@link step} are untouched.
   */
  countSkipped(): void {
    if (this._cadence) this._cadence = { ...this._cadence, tick: this._cadence.tick + 1 };
  }


  /**
   * One update of a Jacobian-kind strategy: the Jacobian's rows are checked finite (one download of
   * T booleans), the strategy runs on the backend, its weights and direction are checked (finite;
   * one more boolean), and only then are its JSON and tensor state committed. A bad output leaves
   * every state untouched and disposes what the strategy created.
   */
  private updateJacobian(
    strategy: JacobianStrategy<O, S>,
    input: BalancerInput,
    losses: readonly number[],
    cadence: CadenceState,
    at: number,
    step: number,
  ): UpdateResult {
    const terms = this._terms!;
    const { jacobian: J, tf } = input;
    if (!J || !tf) {
      throw new BalancerError(
        `step ${at}: strategy "${this.name}" needs the Jacobian (the T×P matrix of per-term gradients, with tf), none was given; run it through BalancedTrainer`,
      );
    }
    if (J.rank !== 2 || J.shape[0] !== terms.length) {
      throw new BalancerError(`step ${at}: strategy "${this.name}": the Jacobian has shape [${J.shape.join(', ')}]; expected [${terms.length}, P]`);
    }
    const rowsFinite = tf.tidy(() => tf.all(tf.isFinite(J), 1).dataSync());
    const bad = rowsFinite.findIndex((v) => !v);
    if (bad >= 0) {
      if (this.onNonFinite === 'throw') throw new NonFiniteError(terms[bad], at, 'gradient (Jacobian row)', Number.NaN);
      const reason = `step ${at}: gradient (Jacobian row) of term "${terms[bad]}" is not finite (NaN or Inf); balancer update skipped, weights kept`;
      this.warn(reason);
      return { weights: this.weights, skipped: reason, step, updated: false };
    }
    if (this._pendingTensors) {
      const rebuilt: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(this._pendingTensors)) rebuilt[k] = tf.keep(tf.tensor(v.values, v.shape, 'float32'));
      this._tensors = rebuilt;
      this._pendingTensors = null;
    }
    this.settle();
    const previous = this._tensors ?? {};
    const out: JacobianOutput<S> = strategy.aggregate(this.options, this._state as S, {
      step,
      losses,
      epoch: input.epoch,
      jacobian: J,
      tensors: previous,
      tf,
    });
    const fresh = Object.values(out.tensors ?? {}).filter((t) => !Object.values(previous).includes(t));
    try {
      this.checkWeights(out.weights, `weights returned at step ${at}`, terms);
      const d = out.direction;
      if (d !== undefined) {
        const P = J.shape[1];
        if (d.rank !== 1 || d.shape[0] !== P) {
          throw new BalancerError(`${this.name}: direction returned at step ${at} has shape [${d.shape.join(', ')}]; expected [${P}]`);
        }
        if (!tf.tidy(() => tf.all(tf.isFinite(d)).dataSync()[0])) {
          throw new BalancerError(`${this.name}: direction returned at step ${at} is not finite (NaN or Inf)`);
        }
      }
    } catch (e) {
      fresh.forEach((t) => t.dispose());
      out.direction?.dispose();
      if (this.onNonFinite === 'throw') throw e;
      const reason = `${(e as Error).message}; update skipped, weights kept`;
      this.warn(reason);
      return { weights: this.weights, skipped: reason, step, updated: false };
    }
    if (out.tensors) {
      fresh.forEach((t) => tf.keep(t));
      const kept = new Set(Object.values(out.tensors));
      const replaced = Object.fromEntries(Object.entries(previous).filter(([, t]) => !kept.has(t)));
      this._retired = Object.keys(replaced).length ? replaced : null;
      this._tensors = { ...out.tensors };
    }
    this._state = out.state;
    this._adaptive = [...out.weights];
    this._weights = [...out.weights];
    this._regularizer = null;
    this._step = step + 1;
    this._cadence = cadenceAdd({ ...cadence, tick: cadence.tick + 1, lastUpdateTick: cadence.tick, pending: null }, input.losses);
    const result: UpdateResult = { weights: [...out.weights], step, updated: true };
    if (out.direction) result.direction = out.direction;
    if (out.info) result.info = out.info;
    return result;
  }

  /**
   * Dispose the tensor state replaced by the last update. It is kept until then so that loading a
   * {@link snapshot} taken before that update can restore it; trainers call this once a step is
   * applied (the next update calls it too).
   */
  settle(): void {
    if (this._retired) for (const t of Object.values(this._retired)) if (!t.isDisposed) t.dispose();
    this._retired = null;
  }

  /**
   * Move the strategy's tensor state (Jacobian kind, e.g. moco's `y`) off the backend: its values
   * are downloaded into the same form {@link state} saves and the tensors disposed (with those
   * {@link settle} would dispose), so that no tensor of this balancer stays allocated. The balancer
   * stays usable: the next update rebuilds the tensors from those values (float32 both ways, so the
   * run continues bit-exactly), and {@link state} returns them as before. A rollback snapshot taken
   * before this cannot be loaded after it. Does nothing for a strategy without tensor state.
   * `BalancedTrainer.close()` and the end of `fitBalanced` call it.
   */
  release(): void {
    this.settle();
    if (!this._tensors) return;
    const values = Object.fromEntries(Object.entries(this._tensors).map(([k, t]) => [k, { shape: [...t.shape], values: Array.from(t.dataSync()) }]));
    this.dispose();
    this._pendingTensors = values;
  }

  /** Dispose the strategy's tensor state (Jacobian kind). The balancer must not be updated after. */
  dispose(): void {
    this.settle();
    if (this._tensors) for (const t of Object.values(this._tensors)) if (!t.isDisposed) t.dispose();
    this._tensors = null;
    this._pendingTensors = null;
  }

  /**
   * The state for rolling back the current step in this process: as {@link state}, but the
   * strategy's tensor state is referred to (`tensors: 'live'`), not downloaded. Loading it after one
   * update restores the tensors that update replaced (until {@link settle}).
   */
  snapshot(): BalancerState {
    const s = this.state(false);
    this._liveRefs.set(s, this._tensors);
    return s;
  }

  /** The whole state as one JSON-serialisable object (a deep copy), tensor state included. */
  state(copyTensors = true): BalancerState {
    let tensors: BalancerState['tensors'] = null;
    if (this._pendingTensors) tensors = this._pendingTensors;
    else if (this._tensors) {
      tensors = copyTensors
        ? Object.fromEntries(Object.entries(this._tensors).map(([k, t]) => [k, { shape: [...t.shape], values: Array.from(t.dataSync()) }]))
        : 'live';
    }
    return JSON.parse(
      JSON.stringify({
        format: 'loss-balancer/balancer',
        version: STATE_VERSION,
        strategy: this.name,
        options: this.options,
        terms: this._terms,
        step: this._step,
        weights: this._weights,
        state: this._state,
        core: {
          config: this.core,
          active: this._active,
          adaptive: this._adaptive,
          regularizer: this._regularizer,
          cadence: this._cadence,
        },
        ...(tensors !== null ? { tensors } : {}),
      } satisfies BalancerState),
    );
  }

  /**
   * Restore a state saved by {@link state}. The strategy must match; the options are those saved.
   * All or nothing: the whole state (options, settings, term names, counters, weights, the
   * strategy's own state against its {@link Strategy.state} schema, the cadence) is checked first;
   * an error names the field (and the term) and leaves this balancer unchanged.
   */
  load(saved: BalancerState): void {
    const next = this.checkState(saved);
    if (next.otherOptions) this.warn(`loading a "${this.name}" state saved with other options; the saved options are used`);
    if (next.otherCore) this.warn(`loading a "${this.name}" state saved with other balancer settings (baseWeights, frozen, updateEvery, warmup, bounds); the saved settings are used`);
    (this as { options: O }).options = next.options;
    this.core = next.core;
    this._terms = next.terms;
    this._step = next.step;
    this._weights = next.weights;
    this._state = next.state;
    this._active = next.active;
    this._adaptive = next.adaptive;
    this._regularizer = next.regularizer;
    this._cadence = next.cadence;
    this.loadTensors(saved, next.tensors);
  }

  /**
   * Check a saved state as {@link load} would, without loading it: returns what would be loaded.
   * Throws a {@link BalancerError} (a {@link StateError} for a bad field, naming it) otherwise.
   */
  checkState(saved: BalancerState): LoadedState<O, S> {
    if (!saved || typeof saved !== 'object' || saved.format !== 'loss-balancer/balancer') {
      throw new StateError('balancer state', 'format', saved && typeof saved === 'object' ? saved.format : saved, 'must be "loss-balancer/balancer" (not a loss-balancer balancer state)');
    }
    if (saved.version !== STATE_VERSION) {
      throw new StateError('balancer state', 'version', saved.version,
        `balancer state version ${saved.version} cannot be loaded by this version of loss-balancer (state version ${STATE_VERSION})`,
      );
    }
    if (saved.strategy !== this.name) {
      throw new StateError('balancer state', 'strategy', saved.strategy, `state is for strategy "${saved.strategy}", this balancer is "${this.name}"`);
    }
    checkSavedState(saved, this.strategy);
    const owner = `balancer state for "${this.name}"`;
    const options = parse(this.strategy.options as Schema<O>, saved.options ?? {});
    const copy = JSON.parse(JSON.stringify(saved)) as BalancerState;
    const core = copy.core;
    let config = this.core;
    if (core !== undefined) {
      if (!core || typeof core !== 'object') throw new StateError(owner, 'core', core, 'must be an object');
      try {
        config = parseCoreConfig((core.config ?? {}) as Record<string, unknown>, this.name);
      } catch (e) {
        const field = e instanceof OptionError ? `core.config.${e.field}` : 'core.config';
        throw new StateError(owner, field, e instanceof OptionError ? e.value : core.config, e instanceof OptionError ? e.allowed : (e as Error).message);
      }
    }
    const terms = copy.terms;
    const T = terms?.length ?? 0;
    let active: number[] | null = terms ? terms.map((_, i) => i) : null;
    if (terms) {
      try {
        active = balancedIndices(config, terms, this.name);
      } catch (e) {
        throw new StateError(owner, 'core.config', core?.config, (e as Error).message);
      }
      if (core) checkWithSchema(coreStateSchema(T, active, !!this.strategy.signedWeights), core, owner, 'core', terms);
      checkStrategyState(this.strategy, options, active.map((i) => terms[i]), copy.state, owner);
    } else if (copy.state !== null && copy.state !== undefined) {
      throw new StateError(owner, 'state', copy.state, 'must be null when "terms" is null (a balancer that never ran)');
    }
    return {
      options,
      otherOptions: JSON.stringify(saved.options) !== JSON.stringify(this.options),
      core: config,
      otherCore: !!core && JSON.stringify(core.config) !== JSON.stringify(this.core),
      terms,
      step: copy.step,
      weights: copy.weights,
      state: (copy.state ?? null) as S | null,
      // States saved before the post-processing layer existed: every term balanced, one tick per update.
      active: core?.active ?? active,
      adaptive: core?.adaptive ?? (copy.weights && active ? active.map((i) => copy.weights![i]) : null),
      regularizer: core?.regularizer ?? null,
      cadence: core?.cadence ?? (terms ? { ...cadenceInit(T), tick: copy.step, lastUpdateTick: copy.step > 0 ? copy.step - 1 : null } : null),
      tensors: copy.tensors ?? null,
    };
  }

  /** The tensor part of {@link load}: live references of a snapshot, or saved values (rebuilt lazily). */
  private loadTensors(saved: BalancerState, tensors: BalancerState['tensors']): void {
    if (tensors === 'live') {
      if (!this._liveRefs.has(saved)) {
        throw new BalancerError('balancer state: field "tensors" is "live" (a rollback snapshot of another process or balancer); load a state() instead');
      }
      const refs = this._liveRefs.get(saved)!;
      // Tensor state held as values now (release() or load() since the snapshot): its tensors are gone.
      if (this._pendingTensors) {
        throw new BalancerError('balancer state: this snapshot refers to tensors that were released since (release() or load() ran); load a state() instead');
      }
      if (refs === this._tensors) return;
      if (refs && Object.values(refs).some((t) => t.isDisposed)) {
        throw new BalancerError('balancer state: this snapshot refers to tensors that were disposed since (settle() ran); load a state() instead');
      }
      const keep = new Set(Object.values(refs ?? {}));
      for (const t of Object.values(this._tensors ?? {})) if (!keep.has(t)) t.dispose();
      this._tensors = refs;
      this._retired = null;
      return;
    }
    this.dispose();
    this._pendingTensors = tensors ?? null;
  }

  private findNonFinite(input: BalancerInput, needs: StrategyNeeds): [number, string, number] | null {
    for (let i = 0; i < input.losses.length; i++) {
      if (!Number.isFinite(input.losses[i])) return [i, 'loss', input.losses[i]];
    }
    if (needs.gradients === 'gram' && input.gram) {
      // A non-finite gradient g_i spoils row i and column i: name the term by its diagonal first.
      for (let i = 0; i < input.gram.length; i++) {
        if (!Number.isFinite(input.gram[i][i])) return [i, 'gradient (Gram matrix row)', input.gram[i][i]];
      }
      for (let i = 0; i < input.gram.length; i++) {
        for (const v of input.gram[i]) if (!Number.isFinite(v)) return [i, 'gradient (Gram matrix row)', v];
      }
    }
    if (needs.stats && input.stats) {
      for (let i = 0; i < input.stats.meanAbs.length; i++) {
        if (!Number.isFinite(input.stats.meanAbs[i])) return [i, 'mean |gradient|', input.stats.meanAbs[i]];
        if (!Number.isFinite(input.stats.maxAbs[i])) return [i, 'max |gradient|', input.stats.maxAbs[i]];
      }
    }
    return null;
  }

  private activeMask(): boolean[] {
    const terms = this._terms ?? [];
    return terms.map((_, i) => this._active?.includes(i) ?? true);
  }

  private checkWeights(w: readonly number[], what: string, names?: readonly string[]): void {
    const terms = names ?? this._terms ?? [];
    if (w.length !== terms.length) {
      throw new BalancerError(`${this.name}: ${what}: ${w.length} weights for ${terms.length} terms`);
    }
    w.forEach((v, i) => {
      if (!Number.isFinite(v) || (v < 0 && !this.strategy.signedWeights)) {
        const rule = this.strategy.signedWeights ? 'must be finite' : 'must be finite and >= 0';
        throw new BalancerError(`${this.name}: ${what}: weight of term "${terms[i]}" is ${v} (${rule})`);
      }
    });
  }
}

/** What {@link Balancer.checkState} found: the values {@link Balancer.load} assigns. */
export interface LoadedState<O, S> {
  /** The saved options, validated. */
  options: O;
  /** Whether they differ from the balancer's own (load warns). */
  otherOptions: boolean;
  /** The saved core settings, validated. */
  core: CoreConfig;
  /** Whether they differ from the balancer's own (load warns). */
  otherCore: boolean;
  /** Term names. */
  terms: string[] | null;
  /** Accepted updates. */
  step: number;
  /** Weights in force. */
  weights: number[] | null;
  /** The strategy's state. */
  state: S | null;
  /** The strategy's tensor state (Jacobian kind): saved values, `'live'` references of a snapshot, or null. */
  tensors: BalancerState['tensors'];
  /** Indices of the balanced terms. */
  active: number[] | null;
  /** Last adaptive weights. */
  adaptive: number[] | null;
  /** Last regulariser. */
  regularizer: number[] | null;
  /** Cadence bookkeeping. */
  cadence: CadenceState | null;
}

/**
 * Check a saved state's fields before loading it (a hand-edited or corrupted checkpoint): the options
 * against the strategy's schema, the term names, the update counter and the weights. Errors name the
 * field.
 */
function checkSavedState(saved: BalancerState, strategy: Strategy | JacobianStrategy): void {
  const bad = (field: string, value: unknown, rule: string, term?: string) =>
    new StateError(`balancer state for "${strategy.name}"`, field, value, rule, term);
  const parsed = safeParse(strategy.options, saved.options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = ['options', ...issue.path.map(String)].join('.');
    throw bad(path, issue.path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), saved.options), issue.message);
  }
  const terms = saved.terms;
  if (terms !== null && (!Array.isArray(terms) || terms.length === 0 || terms.some((t) => typeof t !== 'string') || new Set(terms).size !== terms.length)) {
    throw bad('terms', terms, 'must be null or a non-empty list of distinct term names');
  }
  if (!Number.isInteger(saved.step) || saved.step < 0) throw bad('step', saved.step, 'must be an integer >= 0');
  const tensors = saved.tensors;
  if (tensors !== undefined && tensors !== null && tensors !== 'live') {
    if (typeof tensors !== 'object' || !isJacobianStrategy(strategy)) throw bad('tensors', '…', 'must be absent for a strategy without tensor state');
    for (const [k, v] of Object.entries(tensors)) {
      const n = Array.isArray(v?.shape) && v.shape.every((d) => Number.isInteger(d) && d >= 0) ? v.shape.reduce((a, b) => a * b, 1) : -1;
      if (n < 0 || !Array.isArray(v.values) || v.values.length !== n || v.values.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        throw bad(`tensors.${k}`, v?.shape, 'must be { shape: integers >= 0, values: as many finite numbers as the shape holds }');
      }
    }
  }
  const w = saved.weights;
  if (w !== null) {
    if (!terms || !Array.isArray(w) || w.length !== terms.length) throw bad('weights', w, `must be null or one weight per term (${terms?.length ?? 0})`);
    const i = w.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v) || (v < 0 && !strategy.signedWeights));
    if (i >= 0) throw bad(`weights.${i}`, w[i], strategy.signedWeights ? 'must be finite' : 'must be finite and >= 0', terms[i]);
  }
}

/** Throw an error naming the difference when `got` is not the same set of names as `expected`. */
export function checkSameTerms(expected: readonly string[], got: readonly string[]): void {
  const missing = expected.filter((n) => !got.includes(n));
  const extra = got.filter((n) => !expected.includes(n));
  if (missing.length || extra.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.map((n) => `"${n}"`).join(', ')}`);
    if (extra.length) parts.push(`unexpected ${extra.map((n) => `"${n}"`).join(', ')}`);
    throw new BalancerError(
      `the terms changed: expected ${expected.map((n) => `"${n}"`).join(', ')}; ${parts.join('; ')}`,
    );
  }
}

/**
 * Jacobian-kind strategies may have no weights to post-process: the per-term settings `frozen`,
 * `baseWeights` and `bounds` are rejected with an error naming the setting (the cadence settings
 * `updateEvery` and `warmup` work: in between, the last logged weights are used).
 */
function checkJacobianConfig(core: CoreConfig, name: string): void {
  const c = core as unknown as Record<string, unknown>;
  for (const key of ['frozen', 'baseWeights', 'bounds'] as const) {
    const v = c[key];
    if (v !== undefined && v !== null && !(typeof v === 'object' && Object.keys(v as object).length === 0)) {
      throw new OptionError(name, key, v, `not supported by a strategy of the Jacobian kind (it transforms the per-term gradients, not weights); allowed: updateEvery, warmup, onNonFinite, warn`);
    }
  }
}
