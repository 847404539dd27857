/**
 * Checks of saved state before anything is loaded (issue 12): a hand-edited or corrupted checkpoint
 * must give an error naming the field (and the term, for per-term values), never a half-loaded
 * balancer or a state that makes every later step fail.
 *
 * - {@link stateSchemas}: zod building blocks for a strategy's {@link Strategy.state} schema
 *   (finite numbers, one entry per term, Adam moments, RNG state, epoch means).
 * - {@link checkStrategyState}: a strategy's saved state against its schema, or, for a strategy that
 *   declares none, the generic check (every number finite; an array whose counterpart in the initial
 *   state has one entry per term must have one entry per term; same keys and kinds as the initial
 *   state).
 * - {@link checkCoreState}: the post-processing layer's saved bookkeeping (balanced terms, last
 *   adaptive weights, regulariser, cadence).
 *
 * Browser-safe (no tfjs).
 * @module
 */
import * as z from 'zod/mini';
import { BalancerError } from './errors.js';
import type { EpochMeans } from './loss-points.js';
import type { AdamState } from './optim.js';
import type { JacobianStrategy, Strategy } from './types.js';
import { safeParse, type Schema } from './schema.js';

/** A saved state failed a check; names the field (dotted path), the term when per-term, and the rule. */
export class StateError extends BalancerError {
  /**
   * @param owner - what the state belongs to, e.g. `balancer state for "gradnorm"`.
   * @param field - dotted path of the field at fault, e.g. `state.adam.m.1`.
   * @param value - the value found there.
   * @param rule - what is allowed.
   * @param term - the term the value belongs to, when it is a per-term value.
   */
  constructor(
    readonly owner: string,
    readonly field: string,
    readonly value: unknown,
    readonly rule: string,
    readonly term?: string,
  ) {
    super(`${owner}: field "${field}"${term !== undefined ? ` (term "${term}")` : ''} is ${show(value)}; ${rule}`);
    this.name = 'StateError';
  }

  /** The same error with `prefix` before the field and another owner (a file, a trainer state). */
  within(owner: string, prefix: string): StateError {
    return new StateError(owner, `${prefix}${this.field}`, this.value, this.rule, this.term);
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const s = JSON.stringify(value);
  if (s === undefined) return String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const FINITE = 'must be a finite number';

/** Building blocks for {@link Strategy.state} schemas. */
export const stateSchemas = {
  /** A finite number. */
  finite: z.number({ message: FINITE }),
  /** A finite number ≥ 0. */
  nonNegative: z.number({ message: FINITE }).check(z.nonnegative({ message: 'must be a finite number >= 0' })),
  /** An integer ≥ 0 (a counter). */
  count: z.number({ message: 'must be an integer >= 0' }).check(z.int({ message: 'must be an integer >= 0' }), z.nonnegative({ message: 'must be an integer >= 0' })),
  /** One finite number per term (`T` of them), optionally each ≥ 0 or > 0. */
  perTerm(T: number, sign: 'any' | 'nonNegative' | 'positive' = 'any') {
    const el = sign === 'any'
      ? z.number({ message: FINITE })
      : sign === 'nonNegative'
      ? z.number({ message: FINITE }).check(z.nonnegative({ message: 'must be a finite number >= 0' }))
      : z.number({ message: FINITE }).check(z.positive({ message: 'must be a finite number > 0' }));
    return z.array(el, { message: `must be a list of ${T} numbers, one per term` }).check(z.length(T, { message: `must have ${T} entries, one per term` }));
  },
  /** State of the seeded generator of src/core/rng.ts: an unsigned 32-bit integer. */
  rng: z.number({ message: 'must be an integer from 0 to 4294967295' }).check(z.int({ message: 'must be an integer from 0 to 4294967295' }), z.minimum(0, { message: 'must be an integer from 0 to 4294967295' }), z.maximum(4294967295, { message: 'must be an integer from 0 to 4294967295' })),
  /** Adam moments of `T` parameters (src/core/optim.ts). */
  adam(T: number): z.ZodMiniType<AdamState> {
    return z.strictObject({ m: stateSchemas.perTerm(T), v: stateSchemas.perTerm(T, 'nonNegative'), t: stateSchemas.count });
  },
  /** Epoch means of src/core/loss-points.ts for `T` terms. */
  epochMeans(T: number): z.ZodMiniType<EpochMeans> {
    return z.strictObject({
      epoch: z.nullable(stateSchemas.count),
      sum: stateSchemas.perTerm(T),
      count: stateSchemas.count,
      means: z.array(stateSchemas.perTerm(T), { message: 'must be a list of per-term lists' }),
    });
  },
  /** The balanced term names themselves, in order (for strategies that keep them for messages). */
  termNames(terms: readonly string[]) {
    return z.array(z.string(), { message: 'must be the list of term names' }).check(z.refine((a) => a.length === terms.length && a.every((n, i) => n === terms[i]), { message: `must be the term names ${JSON.stringify(terms)}` }));
  },
};

/** The term a per-term value at `path` belongs to: its last index into an array of `T` numbers. */
function termAt(root: unknown, path: readonly PropertyKey[], terms: readonly string[]): string | undefined {
  let v: unknown = root;
  let term: string | undefined;
  for (const k of path) {
    if (Array.isArray(v) && typeof k === 'number') {
      const perTerm = v.length === terms.length && v.every((x) => x === null || typeof x !== 'object');
      term = perTerm && k < terms.length ? terms[k] : undefined;
    } else {
      term = undefined;
    }
    v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  }
  return term;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), root);
}

/** Check `value` against `schema`; throw a {@link StateError} naming `prefix` + the failing path. */
export function checkWithSchema(schema: Schema, value: unknown, owner: string, prefix: string, terms: readonly string[]): void {
  const r = safeParse(schema, value);
  if (r.success) return;
  const issue = r.error.issues[0];
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  const rule = issue.code === 'unrecognized_keys' ? 'no such field in this state' : issue.message;
  const field = [prefix, ...path.map(String)].filter((s) => s !== '').join('.');
  throw new StateError(owner, field, valueAt(value, path), rule, termAt(value, path, terms));
}

/**
 * The generic check of a state against the initial state `init` (for strategies without a
 * {@link Strategy.state} schema): the same keys and kinds, every number finite, and an array whose
 * counterpart in `init` has `T` entries (one per term) has `T` entries.
 */
function checkLike(saved: unknown, init: unknown, at: string[], owner: string, terms: readonly string[], parentPerTerm = false, index = -1): void {
  const field = at.join('.');
  const term = parentPerTerm && index >= 0 ? terms[index] : undefined;
  const fail = (rule: string) => {
    throw new StateError(owner, field, saved, rule, term);
  };
  if (init === null || init === undefined) {
    // No template (e.g. a reference set at the first update): anything JSON whose numbers are finite.
    allFinite(saved, at, owner);
    return;
  }
  if (typeof init === 'number') {
    if (typeof saved !== 'number' || !Number.isFinite(saved)) fail(FINITE);
    return;
  }
  if (typeof init === 'string' || typeof init === 'boolean') {
    if (typeof saved !== typeof init) fail(`must be a ${typeof init}`);
    return;
  }
  if (Array.isArray(init)) {
    if (!Array.isArray(saved)) fail('must be a list');
    const list = saved as unknown[];
    const T = terms.length;
    const perTerm = init.length === T && T > 0;
    if (perTerm && list.length !== T) fail(`must have ${T} entries, one per term`);
    list.forEach((x, i) => checkLike(x, init.length ? init[Math.min(i, init.length - 1)] : null, [...at, String(i)], owner, terms, perTerm, i));
    return;
  }
  if (typeof init === 'object') {
    if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) fail('must be an object');
    const s = saved as Record<string, unknown>;
    const t = init as Record<string, unknown>;
    for (const k of Object.keys(t)) {
      if (!(k in s)) throw new StateError(owner, [...at, k].join('.'), undefined, 'is required');
      checkLike(s[k], t[k], [...at, k], owner, terms);
    }
    for (const k of Object.keys(s)) if (!(k in t)) throw new StateError(owner, [...at, k].join('.'), s[k], 'no such field in this state');
  }
}

function allFinite(v: unknown, at: string[], owner: string): void {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new StateError(owner, at.join('.'), v, FINITE);
  } else if (Array.isArray(v)) {
    // null in a list is how JSON writes NaN and ±Infinity
    v.forEach((x, i) => {
      if (x === null) throw new StateError(owner, [...at, String(i)].join('.'), x, FINITE);
      allFinite(x, [...at, String(i)], owner);
    });
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) allFinite(x, [...at, k], owner);
  }
}

/**
 * Check a strategy's saved state for the balanced `terms`: against the strategy's
 * {@link Strategy.state} schema when it declares one, else the generic check against
 * `strategy.init(options, terms)`. Throws a {@link StateError} naming `state.<path>` and the term.
 */
export function checkStrategyState<O, S>(strategy: Strategy<O, S> | JacobianStrategy<O, S>, options: O, terms: readonly string[], saved: unknown, owner: string): void {
  if (strategy.state) {
    checkWithSchema(strategy.state(terms, options), saved, owner, 'state', terms);
    return;
  }
  checkLike(saved, strategy.init(options, terms), ['state'], owner, terms);
}

/**
 * The post-processing layer's saved bookkeeping for `T` terms whose balanced subset is `active`
 * (recomputed from the saved settings): indices, last adaptive weights, regulariser and cadence.
 * Throws a {@link StateError} naming `core.<field>`.
 */
export function coreStateSchema(T: number, active: readonly number[], signedWeights: boolean) {
  const count = stateSchemas.count;
  const adaptive = signedWeights ? stateSchemas.perTerm(active.length) : stateSchemas.perTerm(active.length, 'nonNegative');
  return z.looseObject({
    active: z.nullable(
      z.array(count, { message: 'must be the list of balanced term indices' }).check(
        z.refine((a) => a.length === active.length && a.every((v, i) => v === active[i]), {
          message: `must be ${JSON.stringify(active)}, the terms not frozen by the saved settings`,
        }),
      ),
    ),
    adaptive: z.nullable(adaptive),
    regularizer: z.nullable(stateSchemas.perTerm(T)),
    cadence: z.nullable(
      z
        .strictObject({
          tick: count,
          lastUpdateTick: z.nullable(count),
          epoch: count,
          epochKnown: z.boolean({ message: 'must be true or false' }),
          epochSum: stateSchemas.perTerm(T),
          epochCount: count,
          pending: z.nullable(stateSchemas.perTerm(T)),
        })
        .check(z.refine((c) => c.lastUpdateTick === null || c.lastUpdateTick <= c.tick, { message: 'lastUpdateTick must not exceed tick', path: ['lastUpdateTick'] })),
    ),
  });
}
