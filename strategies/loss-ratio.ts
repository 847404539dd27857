/**
 * loss-ratio — divide each term by a reference of its own magnitude, so all terms start comparable.
 *
 * In words: w_i = 1 / ref_i, where ref_i is the term's first loss L_i(0) (`reference: 'initial'`) or
 * an exponential moving average of its loss, ref_i ← β·ref_i + (1 − β)·L_i(t), started at L_i(0)
 * (`reference: 'ema'`). With `normalize: 'sum'` the weights are rescaled to Σ w_i = T so that the
 * overall step size stays that of an unweighted sum of T terms. This is the loss normalisation used,
 * e.g., as the "initial loss" baseline in the GradNorm and DWA literature (each L_i / L_i(0)).
 * A zero reference is guarded by LOSS_EPS; losses must be non-negative.
 *
 * Options: `reference` ('initial' | 'ema') @default 'initial'; `decay` (β of the EMA) @default 0.99;
 * `normalize` ('sum' | 'none') @default 'sum'.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, renormalize } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** What each term is divided by. @default 'initial' */
  reference: z._default(z.enum(['initial', 'ema']), 'initial'),
  /** β of the EMA reference. @default 0.99 */
  decay: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0.99),
  /** Rescale the weights to sum to T ('sum') or leave them as 1/ref ('none'). @default 'sum' */
  normalize: z._default(z.enum(['sum', 'none']), 'sum'),
});

/**
 * Options of {@link lossRatio}.
 * @useDeclaredType
 */
export type LossRatioOptions = z.infer<typeof options>;

/** State of {@link lossRatio}: the per-term reference, null before the first step. */
export interface LossRatioState {
  /** ref_i per term (L_i(0) or the EMA of L_i); null before the first step. */
  reference: number[] | null;
}

/**
 * The `loss-ratio` strategy: each term divided by its initial loss or by an EMA of its loss, weights
 * rescaled to sum to T by default (loss values only). Options: {@link LossRatioOptions}; state:
 * {@link LossRatioState}.
 */
export const lossRatio: Strategy<LossRatioOptions, LossRatioState> = {
  name: 'loss-ratio',
  summary: 'Loss-ratio normalisation: each term divided by its initial loss or by an EMA of its loss.',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ reference: z.nullable(ss.perTerm(terms.length, 'nonNegative')) }),
  init: () => ({ reference: null }),
  update(o, state, { losses }) {
    let ref: number[];
    if (!state.reference) ref = [...losses];
    else if (o.reference === 'initial') ref = state.reference;
    else ref = state.reference.map((r, i) => o.decay * r + (1 - o.decay) * losses[i]);
    const raw = ref.map((r) => 1 / Math.max(r, LOSS_EPS));
    const weights = o.normalize === 'sum' ? renormalize(raw) : raw;
    return { weights, state: { reference: ref }, info: { reference: [...ref] } };
  },
};
