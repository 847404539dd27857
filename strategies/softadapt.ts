/**
 * softadapt — SoftAdapt: weights from a softmax of each term's recent rate of change, so a term whose
 * loss falls slowly (or rises) gets more weight.
 *
 * Paper: A. A. Heydari, C. A. Thompson, A. Mehmood, "SoftAdapt: Techniques for Adaptive Loss
 * Weighting of Neural Networks with Multi-Part Loss Functions", arXiv:1912.12355, 2019.
 * https://arxiv.org/abs/1912.12355 (authors' package: github.com/dr-aheydari/SoftAdapt).
 *
 * In words: with L_i(t) the raw loss of term i at period t (one update, or an epoch mean), the slope
 * is the first-order finite difference s_i = L_i(t) − L_i(t−1) and
 *
 *   plain:          w_i = T · exp(β s_i) / Σ_j exp(β s_j)
 *   loss-weighted:  w_i = T · f_i exp(β s_i) / Σ_j f_j exp(β s_j),   f_i = (L_i(t) + L_i(t−1)) / 2
 *   normalized:     w_i = T · exp(β ns_i) / Σ_j exp(β ns_j),          ns_i = s_i / Σ_j |s_j|
 *
 * β > 0 favours the worst-performing terms (β < 0 the best, β = 0 gives equal weights). The paper's
 * weights sum to 1; here they are scaled to sum to T so that "all equal" is all ones, as for the other
 * strategies of this library (a constant factor: equivalent to a learning-rate factor of T). f_i is the
 * mean loss over the points the slope is taken from, as in the authors' package. For `normalized`,
 * the authors' package divides by the signed sum Σ_j s_j; when the slopes sum to a negative number
 * that reverses the ranking (in the package's own README example the fastest-falling term gets the
 * largest weight), so this implementation divides by Σ_j |s_j| (guarded by LOSS_EPS; all slopes 0
 * gives equal weights); this variant is checked against hand-worked numbers, not the package.
 *
 * Cadence (dr-aheydari/SoftAdapt#5): results change with the period. `average: 'step'` (default) uses
 * the raw losses of this update and the previous one (the first update gets weights 1);
 * `average: 'epoch'` needs `epoch` in every input and uses the means of the last two completed
 * epochs (weights 1 during the first two epochs, constant within an epoch), as the authors recommend
 * for minibatch training.
 *
 * Options: `beta` @default 0.1 (authors' package); `variant` ('plain' | 'loss-weighted' |
 * 'normalized') @default 'plain'; `average` ('step' | 'epoch') @default 'step'.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, renormalize, softmax } from '../src/core/gram.js';
import { epochAdd, epochAdvance, epochInit, type EpochMeans } from '../src/core/loss-points.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** β: how sharply the weights follow the slopes; may be negative. @default 0.1 */
  beta: z._default(z.number(), 0.1),
  /** Which SoftAdapt variant. @default 'plain' */
  variant: z._default(z.enum(['plain', 'loss-weighted', 'normalized']), 'plain'),
  /** What one period is: one update, or one epoch (needs `epoch` in every input). @default 'step' */
  average: z._default(z.enum(['step', 'epoch']), 'step'),
});

/**
 * Options of {@link softadapt}.
 * @useDeclaredType
 */
export type SoftAdaptOptions = z.infer<typeof options>;

/** State of {@link softadapt}. */
export interface SoftAdaptState {
  /** `'step'`: the raw losses of the previous update; null before the first. */
  previous: number[] | null;
  /** `'epoch'`: running sums and the means of the last two completed epochs. */
  epochs: EpochMeans;
}

/** SoftAdapt weights (Σ = T) from the loss points of the previous (`older`) and latest (`newer`) period. */
export function softAdaptWeights(
  older: readonly number[],
  newer: readonly number[],
  beta: number,
  variant: SoftAdaptOptions['variant'],
): { weights: number[]; slope: number[] } {
  const T = newer.length;
  const slope = newer.map((l, i) => l - older[i]);
  if (variant === 'normalized') {
    const total = slope.reduce((a, s) => a + Math.abs(s), 0);
    const ns = slope.map((s) => (total > LOSS_EPS ? s / total : 0));
    return { weights: softmax(ns.map((v) => beta * v)).map((p) => T * p), slope };
  }
  const p = softmax(slope.map((s) => beta * s));
  if (variant === 'plain') return { weights: p.map((v) => T * v), slope };
  const f = newer.map((l, i) => (l + older[i]) / 2);
  return { weights: renormalize(p.map((v, i) => f[i] * v), T), slope };
}

/**
 * The `softadapt` strategy (Heydari et al., 2019): T·softmax of β times each term's recent loss rate
 * of change (plain, loss-weighted or normalised). Options: {@link SoftAdaptOptions}; state:
 * {@link SoftAdaptState}.
 */
export const softadapt: Strategy<SoftAdaptOptions, SoftAdaptState> = {
  name: 'softadapt',
  summary: 'SoftAdapt (Heydari et al. 2019): T·softmax of β·(loss rate of change); plain, loss-weighted or normalized.',
  paper: 'Heydari, Thompson & Mehmood, "SoftAdapt", arXiv:1912.12355, 2019, https://arxiv.org/abs/1912.12355',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: (o) => o.variant === 'loss-weighted',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ previous: z.nullable(ss.perTerm(terms.length)), epochs: ss.epochMeans(terms.length) }),
  init: (_o, terms) => ({ previous: null, epochs: epochInit(terms.length) }),
  update(o, state, { step, losses, epoch }) {
    const T = losses.length;
    let older: readonly number[] | null = null;
    let newer: readonly number[] | null = null;
    let next: SoftAdaptState;
    if (o.average === 'epoch') {
      const advanced = epochAdvance(state.epochs, epoch, 2, 'softadapt', step);
      if (advanced.means.length === 2) [older, newer] = advanced.means;
      next = { previous: state.previous, epochs: epochAdd(advanced, losses) };
    } else {
      older = state.previous;
      newer = losses;
      next = { previous: [...losses], epochs: state.epochs };
    }
    if (!older || !newer) return { weights: new Array(T).fill(1), state: next };
    const { weights, slope } = softAdaptWeights(older, newer, o.beta, o.variant);
    return { weights, state: next, info: { slope } };
  },
};
