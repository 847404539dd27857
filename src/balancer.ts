/**
 * `Balancer`: a strategy bound to its options, its term names and its current state. This is the only
 * object the trainers talk to. It validates every input (non-finite losses or gradients are skipped or
 * thrown per `onNonFinite`, never passed on), checks the strategy's output (finite, non-negative), and
 * makes the whole state one JSON-serialisable object for checkpoints.
 */
import { BalancerError, NonFiniteError } from './errors.js';
import type { GradientStats, NonFinitePolicy, Strategy, StrategyNeeds } from './types.js';

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
}

/** Keys of {@link BalancerConfig} accepted beside the strategy options in `{ name, ... }` specs. */
export const BALANCER_KEYS = ['onNonFinite', 'warn'] as const;

/** What the balancer is given each update (arrays in the order of {@link Balancer.terms}). */
export interface BalancerInput {
  losses: readonly number[];
  gram?: readonly (readonly number[])[];
  stats?: GradientStats;
  /** 0-based epoch index, for strategies that average losses per epoch; passed to the strategy as is. */
  epoch?: number;
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
}

/** The serialised form of a balancer (see {@link Balancer.state}). */
export interface BalancerState {
  format: 'loss-balancer/balancer';
  version: number;
  strategy: string;
  options: unknown;
  terms: string[] | null;
  step: number;
  weights: number[] | null;
  state: unknown;
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

  constructor(
    readonly strategy: Strategy<O, S>,
    readonly options: O,
    config: BalancerConfig = {},
  ) {
    this.onNonFinite = config.onNonFinite ?? 'skip';
    if (this.onNonFinite !== 'skip' && this.onNonFinite !== 'throw') {
      throw new BalancerError(`onNonFinite must be 'skip' or 'throw'; got ${JSON.stringify(this.onNonFinite)}`);
    }
    this.warn = config.warn ?? ((m) => console.warn(`loss-balancer: ${m}`));
  }

  /** The strategy's registry name. */
  get name(): string {
    return this.strategy.name;
  }

  /** What this balancer reads each update. */
  get needs(): StrategyNeeds {
    return this.strategy.needs(this.options);
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
    this._terms = [...terms];
    this._state = this.strategy.init(this.options, this._terms);
    const w0 = this.strategy.initialWeights?.(this.options, this._state) ?? this._terms.map(() => 1);
    this.checkWeights(w0, 'initial weights');
    this._weights = w0;
  }

  /** One update from this step's losses (and Gram matrix / statistics when the strategy needs them). */
  update(input: BalancerInput): UpdateResult {
    const terms = this._terms;
    if (!terms) throw new BalancerError('the balancer has no terms yet; call bind(names) first');
    const T = terms.length;
    const step = this._step;
    if (input.losses.length !== T) {
      throw new BalancerError(`step ${step}: got ${input.losses.length} losses for ${T} terms (${terms.join(', ')})`);
    }
    const needs = this.needs;
    const bad = this.findNonFinite(input, needs);
    if (bad) {
      const [i, what, value] = bad;
      if (this.onNonFinite === 'throw') throw new NonFiniteError(terms[i], step, what, value);
      const reason = `step ${step}: ${what} of term "${terms[i]}" is ${value}; balancer update skipped, weights kept`;
      this.warn(reason);
      return { weights: this.weights, skipped: reason, step };
    }
    const nonNegative = typeof this.strategy.nonNegativeLosses === 'function'
      ? this.strategy.nonNegativeLosses(this.options)
      : this.strategy.nonNegativeLosses;
    if (nonNegative) {
      const i = input.losses.findIndex((l) => l < 0);
      if (i >= 0) {
        throw new BalancerError(
          `step ${step}: loss of term "${terms[i]}" is ${input.losses[i]}, but strategy "${this.name}" needs non-negative losses (it divides by them or takes their logarithm); shift that term (e.g. add a constant) or use a strategy that reads gradients only`,
        );
      }
    }
    if (needs.gradients === 'gram' && !input.gram) {
      throw new BalancerError(`step ${step}: strategy "${this.name}" needs the Gram matrix, none was given`);
    }
    if (needs.stats && !input.stats) {
      throw new BalancerError(`step ${step}: strategy "${this.name}" needs gradient statistics, none were given`);
    }
    const out = this.strategy.update(this.options, this._state as S, {
      step,
      losses: input.losses,
      gram: needs.gradients === 'gram' ? input.gram : undefined,
      stats: needs.stats ? input.stats : undefined,
      epoch: input.epoch,
    });
    try {
      this.checkWeights(out.weights, `weights returned at step ${step}`);
    } catch (e) {
      if (this.onNonFinite === 'throw') throw e;
      const reason = `${(e as Error).message}; update skipped, weights kept`;
      this.warn(reason);
      return { weights: this.weights, skipped: reason, step };
    }
    this._state = out.state;
    this._weights = [...out.weights];
    this._step = step + 1;
    return { weights: [...out.weights], regularizer: out.regularizer, info: out.info, step };
  }

  /** The whole state as one JSON-serialisable object (a deep copy). */
  state(): BalancerState {
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
      } satisfies BalancerState),
    );
  }

  /** Restore a state saved by {@link state}. The strategy must match; the options are those saved. */
  load(saved: BalancerState): void {
    if (!saved || saved.format !== 'loss-balancer/balancer') {
      throw new BalancerError('not a loss-balancer balancer state (missing format "loss-balancer/balancer")');
    }
    if (saved.version !== STATE_VERSION) {
      throw new BalancerError(
        `balancer state version ${saved.version} cannot be loaded by this version of loss-balancer (state version ${STATE_VERSION})`,
      );
    }
    if (saved.strategy !== this.name) {
      throw new BalancerError(`state is for strategy "${saved.strategy}", this balancer is "${this.name}"`);
    }
    if (JSON.stringify(saved.options) !== JSON.stringify(this.options)) {
      this.warn(`loading a "${this.name}" state saved with other options; the saved options are used`);
      (this as { options: O }).options = saved.options as O;
    }
    const copy = JSON.parse(JSON.stringify(saved)) as BalancerState;
    this._terms = copy.terms;
    this._step = copy.step;
    this._weights = copy.weights;
    this._state = copy.state as S;
  }

  private findNonFinite(input: BalancerInput, needs: StrategyNeeds): [number, string, number] | null {
    for (let i = 0; i < input.losses.length; i++) {
      if (!Number.isFinite(input.losses[i])) return [i, 'loss', input.losses[i]];
    }
    if (needs.gradients === 'gram' && input.gram) {
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

  private checkWeights(w: readonly number[], what: string): void {
    const terms = this._terms ?? [];
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
