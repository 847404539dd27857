/**
 * The contract between the core and a balancing strategy.
 *
 * A strategy sees small things only: the step number, the per-term loss values and, when it asks for
 * them, the T×T Gram matrix of per-term gradients `G[i][j] = <g_i, g_j>` and cheap per-term gradient
 * statistics. From these it returns one non-negative weight per term. It never touches a tensor or a
 * model: the core reads gradients on the tfjs backend and combines them with the weights.
 *
 * A strategy is a pair of pure functions over an explicit, JSON-serialisable state (in the manner of
 * optax's `init`/`update`): `init(options, terms)` gives the state, `update(options, state, input)`
 * returns the weights and the next state. The core never mutates a state it was given.
 *
 * @module
 */
import type { z } from 'zod';

/** What a strategy reads from the gradients each step. */
export interface StrategyNeeds {
  /**
   * `'none'`: loss values only; the core computes no per-term gradient (one backward pass of the
   * weighted sum). `'gram'`: the T×T Gram matrix of per-term gradients w.r.t. the shared variables
   * (or the shared representation) is computed and passed as {@link StepInput.gram}.
   */
  readonly gradients: 'none' | 'gram';
  /** Per-term mean |g| and max |g| over the shared parameters ({@link StepInput.stats}). */
  readonly stats?: boolean;
}

/** Cheap per-term gradient statistics some papers define (Wang et al. 2021 use max and mean |g|). */
export interface GradientStats {
  /** mean over the shared parameters of |∂L_i/∂θ|, one per term. */
  readonly meanAbs: readonly number[];
  /** max over the shared parameters of |∂L_i/∂θ|, one per term. */
  readonly maxAbs: readonly number[];
}

/** What a strategy receives each time it is asked for weights. All numbers are finite. */
export interface StepInput {
  /** 0-based index of this update: how many updates were accepted before it. */
  readonly step: number;
  /** Raw (unweighted) per-term loss values, in the order of the term names. */
  readonly losses: readonly number[];
  /** `G[i][j] = <g_i, g_j>`; present when the strategy's needs include `'gram'`. */
  readonly gram?: readonly (readonly number[])[];
  /** Present when the strategy's needs include `stats`. */
  readonly stats?: GradientStats;
  /**
   * 0-based epoch index of this update, when the caller knows epoch boundaries (passed through from
   * {@link BalancerInput}); strategies that average losses per epoch (e.g. `dwa` with
   * `average: 'epoch'`) require it, the others ignore it. Non-decreasing over a run.
   */
  readonly epoch?: number;
}

/** What a strategy returns. */
export interface StepOutput<S> {
  /**
   * One finite weight per term, ≥ 0 unless the strategy sets {@link Strategy.signedWeights}: the
   * multiplier on that term's loss and gradient.
   */
  readonly weights: number[];
  /** The next state (a new object; the given one is not mutated). */
  readonly state: S;
  /**
   * Per-term additive terms of the objective that do not touch the model (uncertainty weighting's
   * ½·s_i). Logged separately so that a negative total is explainable.
   */
  readonly regularizer?: number[];
  /** Anything else worth logging, per term (e.g. GradNorm's target norms). */
  readonly info?: Readonly<Record<string, number[]>>;
}

/**
 * A loss-balancing method. One per file in `strategies/`.
 *
 * @typeParam O - the validated options, defaults filled.
 * @typeParam S - the JSON-serialisable state.
 */
export interface Strategy<O = any, S = any> {
  /** Registry name, e.g. `'gradnorm'`. */
  readonly name: string;
  /** One line for `list()`. */
  readonly summary: string;
  /** Citation (authors, title, venue, year, link). */
  readonly paper?: string;
  /** Zod schema of the options; fills defaults, rejects unknown keys. */
  readonly options: z.ZodType<O, any>;
  /** What the strategy reads; may depend on the options. */
  needs(options: O): StrategyNeeds;
  /**
   * Whether the strategy requires non-negative loss values (it divides by them or takes their
   * logarithm). A loss < 0 is then rejected with an error naming the term; a zero loss is guarded by
   * the strategy's epsilon.
   */
  readonly nonNegativeLosses?: boolean | ((options: O) => boolean);
  /**
   * Set by gradient-combination strategies whose weights are coefficients of a direction
   * `Σ w_i g_i` that may subtract a gradient (IMTL-G, Aligned-MTL): the balancer then accepts finite
   * negative weights. All other strategies must return weights ≥ 0.
   */
  readonly signedWeights?: boolean;
  /**
   * How the gradient of a variable that only one term reaches (a task-specific head) is scaled.
   * `'weighted'` (default): `w_i·g_i`, the gradient of `Σ w_i L_i`, as in GradNorm or uncertainty
   * weighting. `'unit'`: `g_i`, as the gradient-aggregation papers do (MGDA, PCGrad, CAGrad, IMTL,
   * Nash-MTL, Aligned-MTL, UPGrad; isl-org/MultiObjectiveOptimization#12): the weights then combine
   * the shared gradients only, and a negative weight never makes a head ascend its own loss.
   * Variables two or more terms reach always take `Σ w_i g_i`.
   */
  readonly headWeights?: 'weighted' | 'unit';
  /**
   * The shape of the state for these (balanced) term names, as a zod schema, in the manner of
   * the options schema: `Balancer.load()` checks a saved state against it before loading anything
   * (finite numbers, one entry per term, counters that are integers), so that a corrupted checkpoint
   * is an error naming the field and term instead of a run whose every later step is skipped.
   * Building blocks: `stateSchemas` in src/core/state-check.ts. Optional: without it the generic
   * check applies (every number finite; the same keys and kinds as `init()`'s state; an array that
   * has one entry per term in `init()`'s state has one entry per term).
   */
  readonly state?: (terms: readonly string[], options: O) => z.ZodType<S, any>;
  /** The initial state for these term names. */
  init(options: O, terms: readonly string[]): S;
  /** Weights before the first update (default: all ones). */
  initialWeights?(options: O, state: S): number[];
  /** One update. Pure: returns a new state. */
  update(options: O, state: S, input: StepInput): StepOutput<S>;
}

/** A strategy by name, by name with options, or an already constructed balancer. */
export type BalancerSpec =
  | string
  | ({
      /** The registered strategy name; the other keys are its options. */
      name: string;
    } & Record<string, unknown>);

/** What to do with a non-finite loss or gradient statistic. */
export type NonFinitePolicy = 'skip' | 'throw';
