/**
 * fixed — constant user weights: the hand-tuned "multiply recon by 20", made explicit and logged.
 *
 * Formula: w_i = c_i for every step, with c_i given by the user (default 1 for every term).
 *
 * Options:
 * - `weights` — an array in term order, or an object `{ term: weight }` (terms not named get 1).
 *   @default all 1
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { BalancerError } from '../src/core/errors.js';
import { MAX_WEIGHT } from '../src/core/limits.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /**
   * Weights by term name or in term order, each in [0, 1e12] (MAX_WEIGHT: a larger weight times an
   * ordinary loss overflows float32, and every step would be skipped). @default all 1
   */
  weights: z.optional(z.union([z.array(z.number().check(z.nonnegative(), z.maximum(MAX_WEIGHT))), z.record(z.string(), z.number().check(z.nonnegative(), z.maximum(MAX_WEIGHT)))])),
});

/**
 * Options of {@link fixed}.
 * @useDeclaredType
 */
export type FixedOptions = z.infer<typeof options>;

/** State: the resolved weights in term order. */
export interface FixedState {
  /** The constant weights, one per term in term order. */
  weights: number[];
}

/** Resolve `weights` (array or record) against the term names; unknown names are an error. */
export function resolveTermWeights(
  strategy: string,
  given: readonly number[] | Readonly<Record<string, number>> | undefined,
  terms: readonly string[],
  fill = 1,
): number[] {
  if (given === undefined) return terms.map(() => fill);
  if (Array.isArray(given)) {
    if (given.length !== terms.length) {
      throw new BalancerError(
        `${strategy}: option "weights" has ${given.length} entries for ${terms.length} terms (${terms.join(', ')})`,
      );
    }
    return [...given];
  }
  const record = given as Readonly<Record<string, number>>;
  for (const k of Object.keys(record)) {
    if (!terms.includes(k)) {
      throw new BalancerError(`${strategy}: option "weights" names unknown term "${k}"; terms are ${terms.join(', ')}`);
    }
  }
  return terms.map((t) => record[t] ?? fill);
}

/**
 * The `fixed` strategy: constant user weights (default all 1), the hand-tuned baseline made explicit
 * and logged. Options: {@link FixedOptions}; state: {@link FixedState}.
 */
export const fixed: Strategy<FixedOptions, FixedState> = {
  name: 'fixed',
  summary: 'Constant user weights (default all 1): the hand-tuned baseline.',
  options,
  needs: () => ({ gradients: 'none' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ weights: ss.perTerm(terms.length, 'nonNegative') }),
  init: (o, terms) => ({ weights: resolveTermWeights('fixed', o.weights, terms) }),
  initialWeights: (_o, s) => [...s.weights],
  update: (_o, state) => ({ weights: [...state.weights], state }),
};
