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
import type { Schema } from './schema.js';
// Type-only: erased at run time, so src/core/ and strategies/ load no tfjs (see JacobianStrategy).
import type * as tfjs from '@tensorflow/tfjs';

export type { Schema } from './schema.js';

/** What a strategy reads from the gradients each step. */
export interface StrategyNeeds {
  /**
   * `'none'`: loss values only; the core computes no per-term gradient (one backward pass of the
   * weighted sum). `'gram'`: the T×T Gram matrix of per-term gradients w.r.t. the shared variables
   * (or the shared representation) is computed and passed as {@link StepInput.gram}.
   * `'jacobian'`: the T×P matrix of per-term gradients over the shared parameters, on the backend
   * ({@link JacobianInput.jacobian}); only {@link JacobianStrategy | Jacobian-kind} strategies say so.
   */
  readonly gradients: 'none' | 'gram' | 'jacobian';
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
 * What both kinds of loss-balancing method share (one per file in `strategies/`): name, citation,
 * options schema, needs, state shape and initial state. See {@link Strategy} and {@link JacobianStrategy}.
 *
 * @typeParam O - the validated options, defaults filled.
 * @typeParam S - the JSON-serialisable state.
 */
export interface StrategyBase<O = any, S = any> {
  /** Registry name, e.g. `'gradnorm'`. */
  readonly name: string;
  /** One line for `list()`. */
  readonly summary: string;
  /** Citation (authors, title, venue, year, link). */
  readonly paper?: string;
  /** Zod schema of the options; fills defaults, rejects unknown keys. */
  readonly options: Schema<O>;
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
  readonly state?: (terms: readonly string[], options: O) => Schema<S>;
  /**
   * The least number of (balanced) terms the method is defined for with these options, e.g. Krum's
   * `nByzantine + 3`; binding fewer terms is an error naming the option. @default 1
   */
  minTerms?(options: O): number;
  /** The initial state for these term names. */
  init(options: O, terms: readonly string[]): S;
}

/**
 * A strategy of the Gram kind: small numbers in (losses, Gram matrix, statistics), weights out.
 *
 * @typeParam O - the validated options, defaults filled.
 * @typeParam S - the JSON-serialisable state.
 */
export interface Strategy<O = any, S = any> extends StrategyBase<O, S> {
  /** The kind: `'gram'` (or absent), weights from small numbers. See {@link JacobianStrategy}. */
  readonly kind?: 'gram';
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

// ---------------------------------------------------------------------------------------------
// The second kind: strategies that transform the T×P matrix of per-term gradients.
// ---------------------------------------------------------------------------------------------

/** The tfjs namespace, handed to a {@link JacobianStrategy} by the trainer. */
export type Tf = typeof tfjs;

/**
 * What a {@link JacobianStrategy} receives each update. Every tensor belongs to the caller: the
 * strategy must not dispose or keep any of them. All losses are finite, and so is every entry of
 * `jacobian` (the Balancer checks, one download of T booleans).
 */
export interface JacobianInput {
  /** 0-based index of this update, as in {@link StepInput.step}. */
  readonly step: number;
  /** Raw (unweighted) per-term loss values, in the order of the term names. */
  readonly losses: readonly number[];
  /** 0-based epoch index, when known (see {@link StepInput.epoch}). */
  readonly epoch?: number;
  /**
   * `J`, shape [T, P]: row i is `∂L_i/∂θ` flattened over the shared variables (in the order of the
   * trainer's shared variables, each flattened row-major); zeros where a term does not reach.
   */
  readonly jacobian: tfjs.Tensor2D;
  /**
   * The strategy's tensor state as it returned it at its previous update (`{}` before the first,
   * or rebuilt from a checkpoint). Owned by the Balancer.
   */
  readonly tensors: Readonly<Record<string, tfjs.Tensor>>;
  /** The tfjs namespace (strategies/ never import tfjs at run time; this is how they reach it). */
  readonly tf: Tf;
}

/** What a {@link JacobianStrategy} returns. */
export interface JacobianOutput<S> {
  /**
   * The update direction over the shared parameters, shape [P] (same layout as a row of
   * {@link JacobianInput.jacobian}). Absent: the direction is `Σ w_i g_i` with {@link weights}
   * (methods that read coordinates but output weights, e.g. ExcessMTL). The caller disposes it.
   */
  readonly direction?: tfjs.Tensor1D;
  /**
   * One finite number per term: the multipliers logged for this step (the logged objective is
   * `Σ w_i L_i`), the combination when there is no `direction`, and the weights in force on the
   * steps in between refreshes (`updateEvery`, warm-up). Methods with no weights of their own
   * return all ones (the plain sum).
   */
  readonly weights: number[];
  /** The next JSON state (a new object). */
  readonly state: S;
  /**
   * The next tensor state (replaces the previous one, which the Balancer then disposes; return the
   * same tensor object to keep one unchanged). Absent: unchanged. Tensors created inside the
   * caller's `tf.tidy` are kept by the Balancer, which owns them from then on.
   */
  readonly tensors?: Record<string, tfjs.Tensor>;
  /** Anything else worth logging, per term. */
  readonly info?: Readonly<Record<string, number[]>>;
}

/**
 * A Jacobian-kind strategy (torchjd's Aggregator, as opposed to its Weighting): a method that needs
 * the coordinates of the per-term gradients, not only their inner products, e.g. GradDrop (a random
 * sign mask per coordinate), TrimmedMean (a per-coordinate order statistic), MoCo and ExcessMTL
 * (per-coordinate state). It runs on the tfjs backend, since P is large; `tf` arrives in the input,
 * so the file in `strategies/` imports tfjs types only. Its JSON state works as for the Gram kind;
 * per-coordinate state is a map of tensors, owned and disposed by the Balancer, and written into
 * checkpoints as numbers.
 *
 * Costs, compared to the Gram kind: the T×P matrix (not only T×T numbers) is built every refresh,
 * and the strategy's own work is O(T·P) or more on the backend; no representation mode (the method
 * needs the parameters' coordinates), and no per-term `frozen`, `baseWeights` or `bounds` (there
 * may be no weights to post-process).
 *
 * @typeParam O - the validated options, defaults filled.
 * @typeParam S - the JSON-serialisable state.
 */
export interface JacobianStrategy<O = any, S = any> extends StrategyBase<O, S> {
  /** Always `'jacobian'`. */
  readonly kind: 'jacobian';
  /**
   * How variables outside the shared ones are updated: with `'unit'` a variable one term reaches
   * takes that term's gradient `g_i` (as LibMTL and torchjd do); otherwise `Σ w_i g_i` with the
   * returned weights. @default 'unit'
   */
  readonly headWeights?: 'weighted' | 'unit';
  /** One update, on the backend. Pure apart from the tensors it creates. */
  aggregate(options: O, state: S, input: JacobianInput): JacobianOutput<S>;
}

/** A strategy of either kind, as the registry holds them. */
export type AnyStrategy = Strategy | JacobianStrategy;

/** Whether a strategy is of the Jacobian kind. */
export function isJacobianStrategy(s: AnyStrategy): s is JacobianStrategy {
  return s.kind === 'jacobian';
}
