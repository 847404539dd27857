/**
 * The post-processing layer of a {@link Balancer}: what stands between a strategy and the weights the
 * trainer applies. Plain numbers only; no tensors. Everything here is pure and its state is JSON.
 *
 * 1. **Partial balancing** (`frozen: { adv: 0.5 }`): frozen terms keep a fixed weight; the strategy
 *    is bound to the other terms only (its own T', losses, Gram sub-matrix and statistics), so the
 *    weights of the balanced subset are normalised among themselves as the strategy does.
 * 2. **Base weights** (`baseWeights: { kl: 0.1 }`): a user prior multiplied with the adaptive weight
 *    of a balanced term: `w_i = base_i · adaptive_i`.
 * 3. **Cadence** (`updateEvery: 'step' | 'epoch' | k`) and **warm-up** (`warmup: { steps, weights }`):
 *    when the strategy is called at all. Between updates the last weights are reused and the
 *    trainer reads no per-term gradient ({@link Balancer.wantsUpdate}).
 * 4. **Bounds** (`bounds: { min, max, maxChange }`): clamps applied after any strategy, on the weights
 *    of the balanced terms; the terms they changed are reported (`clamped`).
 *
 * @module
 */
import * as z from 'zod/mini';
import { BalancerError, OptionError } from './errors.js';
import { MAX_WEIGHT, MAX_WEIGHT_RULE } from './limits.js';
import { safeParse, type Schema } from './schema.js';

// Bounded above by MAX_WEIGHT (src/core/limits.ts): larger weights overflow float32 on every step.
const weight = z.number({ message: 'must be a finite number >= 0' }).check(z.nonnegative({ message: 'must be a finite number >= 0' }), z.maximum(MAX_WEIGHT, { message: MAX_WEIGHT_RULE }));
const weightMap = z.record(z.string(), weight, { message: 'must be an object { termName: weight }' });

/** Schema of the core settings that post-process a strategy's weights. */
export const coreConfigSchema = z.strictObject({
  /**
   * Prior weights multiplied with the adaptive weights of balanced terms (absent terms: 1).
   * @default {}
   */
  baseWeights: z.optional(weightMap),
  /**
   * Terms kept at a fixed weight; the strategy balances only the others. @default {}
   */
  frozen: z.optional(weightMap),
  /**
   * When the strategy is called: every step, once per epoch (with the epoch's mean losses), or every
   * k steps. @default 'step'
   */
  updateEvery: z._default(
    z.union([z.enum(['step', 'epoch']), z.number().check(z.int(), z.positive())], { message: "must be 'step', 'epoch' or an integer k >= 1" }),
    'step',
  ),
  /**
   * Fixed weights for the first `steps` steps before the strategy takes over. `weights` by term
   * name; absent terms get their base weight (frozen terms their frozen weight). @default none
   */
  warmup: z.optional(
    z.strictObject({
      /** Number of warm-up steps. */
      steps: z.number({ message: 'must be an integer >= 0' }).check(z.int({ message: 'must be an integer >= 0' }), z.nonnegative({ message: 'must be an integer >= 0' })),
      /** Warm-up weights by term name. */
      weights: z.optional(weightMap),
    }),
  ),
  /**
   * Bounds on the weights of the balanced terms, applied after the strategy: `min`, `max`, and
   * `maxChange`, the largest relative change per weight refresh (a factor: with 0.1 a weight moves
   * at most ×1.1 or ÷1.1 from the weight in force before). @default none
   */
  bounds: z.optional(
    z
      .strictObject({
        /** Smallest weight of a balanced term. */
        min: z.optional(weight),
        /** Largest weight of a balanced term. */
        max: z.optional(z.number({ message: 'must be a finite number > 0' }).check(z.positive({ message: 'must be a finite number > 0' }), z.maximum(MAX_WEIGHT, { message: MAX_WEIGHT_RULE }))),
        /** Largest relative change per refresh (a factor 1 + maxChange either way). */
        maxChange: z.optional(z.number({ message: 'must be a finite number > 0' }).check(z.positive({ message: 'must be a finite number > 0' }))),
      })
      .check(z.refine((b) => b.min === undefined || b.max === undefined || b.min <= b.max, { message: 'min must not exceed max' })),
  ),
});

/**
 * The validated core settings (defaults filled); the fields are those of {@link BalancerConfig}.
 * @useDeclaredType
 */
export type CoreConfig = z.infer<typeof coreConfigSchema>;

/** Names of the {@link CoreConfig} keys. */
export const CORE_KEYS = ['baseWeights', 'frozen', 'updateEvery', 'warmup', 'bounds'] as const;

/** Validate the core settings; errors name the option (dotted path, with the term), the value and the rule. */
export function parseCoreConfig(raw: Record<string, unknown>, strategy: string): CoreConfig {
  const result = safeParse(coreConfigSchema, raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const field = [...issue.path, issue.keys[0]].join('.');
    const value = valueAt(raw, [...issue.path, issue.keys[0]]);
    throw new OptionError(strategy, field, value, 'unknown option');
  }
  const field = issue.path.join('.') || '(options)';
  const value = valueAt(raw, issue.path);
  const term = (issue.path[0] === 'baseWeights' || issue.path[0] === 'frozen') && issue.path.length === 2
    ? ` (weight of term "${String(issue.path[1])}")`
    : issue.path[0] === 'warmup' && issue.path[1] === 'weights' && issue.path.length === 3
      ? ` (warm-up weight of term "${String(issue.path[2])}")`
      : '';
  throw new OptionError(strategy, field, value, `${issue.message}${term}`);
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), raw);
}

/**
 * Check the term names the settings mention against the bound terms and return the indices of the
 * balanced (not frozen) terms. Errors name the option and the term.
 */
export function balancedIndices(cfg: CoreConfig, terms: readonly string[], strategy: string): number[] {
  const known = terms.join(', ');
  const check = (field: string, map: Record<string, number> | undefined) => {
    for (const [name, value] of Object.entries(map ?? {})) {
      if (!terms.includes(name)) {
        throw new OptionError(strategy, `${field}.${name}`, value, `"${name}" is not a term; terms are ${known}`);
      }
    }
  };
  check('baseWeights', cfg.baseWeights);
  check('frozen', cfg.frozen);
  check('warmup.weights', cfg.warmup?.weights);
  for (const name of Object.keys(cfg.frozen ?? {})) {
    if (cfg.baseWeights && name in cfg.baseWeights) {
      throw new OptionError(
        strategy,
        `baseWeights.${name}`,
        cfg.baseWeights[name],
        `term "${name}" is also frozen (at ${cfg.frozen![name]}); give a frozen term its weight in "frozen" only`,
      );
    }
  }
  const active = terms.map((_, i) => i).filter((i) => !(cfg.frozen && terms[i] in cfg.frozen));
  if (active.length === 0) {
    throw new OptionError(strategy, 'frozen', cfg.frozen, `every term is frozen, nothing is left to balance; use the "fixed" strategy`);
  }
  return active;
}

/**
 * The full weight vector from the strategy's weights on the balanced subset: `base_i · adaptive_i`
 * for a balanced term, the frozen weight for a frozen one.
 */
export function composeWeights(cfg: CoreConfig, terms: readonly string[], active: readonly number[], adaptive: readonly number[]): number[] {
  const w = terms.map((name) => cfg.frozen?.[name] ?? 0);
  active.forEach((i, k) => {
    w[i] = (cfg.baseWeights?.[terms[i]] ?? 1) * adaptive[k];
  });
  return w;
}

/** A per-subset vector spread back onto all terms, `fill` for the frozen ones. */
export function expand(values: readonly number[], active: readonly number[], T: number, fill: number): number[] {
  const out = new Array<number>(T).fill(fill);
  active.forEach((i, k) => {
    out[i] = values[k];
  });
  return out;
}

/** Rows and columns `active` of a square matrix. */
export function subMatrix(G: readonly (readonly number[])[], active: readonly number[]): number[][] {
  return active.map((i) => active.map((j) => G[i][j]));
}

/** Entries `active` of a vector. */
export function pick<T>(xs: readonly T[], active: readonly number[]): T[] {
  return active.map((i) => xs[i]);
}

/**
 * Apply `bounds` to the weights `w` of the terms where `mask` is true. `maxChange` is relative to
 * `prev` (the weights in force before): a weight moves at most by the factor `1 + maxChange` either
 * way; a previous weight of 0 (or below) has no relative scale and is exempt. `min`/`max` come last, so
 * they always hold. Returns the bounded weights and the indices that were changed.
 */
export function applyBounds(
  bounds: CoreConfig['bounds'],
  w: readonly number[],
  prev: readonly number[] | null,
  mask: readonly boolean[],
): { weights: number[]; clamped: number[] } {
  const out = [...w];
  const clamped: number[] = [];
  if (!bounds) return { weights: out, clamped };
  for (let i = 0; i < out.length; i++) {
    if (!mask[i]) continue;
    let v = out[i];
    if (bounds.maxChange !== undefined && prev && prev[i] > 0) {
      const f = 1 + bounds.maxChange;
      v = Math.min(Math.max(v, prev[i] / f), prev[i] * f);
    }
    if (bounds.min !== undefined) v = Math.max(v, bounds.min);
    if (bounds.max !== undefined) v = Math.min(v, bounds.max);
    if (v !== out[i]) {
      out[i] = v;
      clamped.push(i);
    }
  }
  return { weights: out, clamped };
}

/** The balancer's bookkeeping for cadence, warm-up and epoch means; plain JSON. */
export interface CadenceState {
  /** Accepted `update()` calls so far (a skipped step, non-finite input, is not counted). */
  tick: number;
  /** The tick of the last strategy update; null before the first. */
  lastUpdateTick: number | null;
  /** The current epoch (0-based). */
  epoch: number;
  /** Whether epochs were ever signalled (an `epoch` in the input or `endEpoch()`). */
  epochKnown: boolean;
  /** Σ of the raw losses of the running epoch, per term. */
  epochSum: number[];
  /** Accepted steps in the running epoch. */
  epochCount: number;
  /** `updateEvery: 'epoch'`: mean losses of the last completed epoch, not yet given to the strategy. */
  pending: number[] | null;
}

/** A fresh cadence state for `T` terms. */
export function cadenceInit(T: number): CadenceState {
  return { tick: 0, lastUpdateTick: null, epoch: 0, epochKnown: false, epochSum: new Array(T).fill(0), epochCount: 0, pending: null };
}

/** The state after moving to `epoch`; a different index closes the running epoch into `pending`. */
export function cadenceToEpoch(s: CadenceState, epoch: number, step: number): CadenceState {
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new BalancerError(`step ${step}: the epoch index must be an integer >= 0; got ${epoch}`);
  }
  // Any change of the index is a boundary: a lower index is a new run counting from 0 again (a
  // balancer reused by a second trainer or fitBalanced call).
  if (epoch === s.epoch) return s.epochKnown ? s : { ...s, epochKnown: true };
  const pending = s.epochCount > 0 ? s.epochSum.map((v) => v / s.epochCount) : s.pending;
  return { ...s, epoch, epochKnown: true, epochSum: s.epochSum.map(() => 0), epochCount: 0, pending };
}

/** What happens at the next tick: fixed warm-up weights, a strategy update, or the last weights reused. */
export type TickMode = 'warmup' | 'update' | 'reuse';

/** Decide the mode of the tick `s.tick` (after any epoch change was applied to `s`). */
export function tickMode(cfg: CoreConfig, s: CadenceState): TickMode {
  if (cfg.warmup && s.tick < cfg.warmup.steps) return 'warmup';
  const every = cfg.updateEvery;
  if (every === 'step') return 'update';
  if (every === 'epoch') return s.pending ? 'update' : 'reuse';
  return s.lastUpdateTick === null || s.tick - s.lastUpdateTick >= every ? 'update' : 'reuse';
}

/** Add one accepted step's raw losses to the running epoch. */
export function cadenceAdd(s: CadenceState, losses: readonly number[]): CadenceState {
  return { ...s, epochSum: s.epochSum.map((v, i) => v + losses[i]), epochCount: s.epochCount + 1 };
}
