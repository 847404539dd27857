/**
 * grad-magnitude — learning-rate annealing: weight each term by how much smaller its gradients are
 * than the reference term's. The most direct automatic "×20".
 *
 * Paper: S. Wang, Y. Teng, P. Perdikaris, "Understanding and Mitigating Gradient Flow Pathologies in
 * Physics-Informed Neural Networks", SIAM J. Sci. Comput. 43(5), 2021. https://arxiv.org/abs/2001.04536
 * (Algorithm 1, eq. 40).
 *
 * In words: the reference term keeps weight 1. For every other term an instantaneous weight
 *
 *   λ̂_i = stat_ref / stat_i,
 *
 * is computed from the unweighted gradients on the shared parameters, and smoothed:
 * λ_i ← (1 − α)·λ_i + α·λ̂_i (λ_i starts at 1). The statistic is one of
 * - `max-mean` (paper): max_θ|∇L_ref| / mean_θ|∇L_i|;
 * - `mean-mean`: mean_θ|∇L_ref| / mean_θ|∇L_i| (the variant in NVIDIA Modulus Sym);
 * - `norm`: ‖∇L_ref‖ / ‖∇L_i‖ (from the Gram diagonal).
 * A term (or reference) with a zero gradient has no defined ratio: its λ is kept unchanged that step.
 *
 * Options: `statistic` @default 'max-mean'; `alpha` (weight of the new estimate) @default 0.9 (paper);
 * `reference` (term name or index) @default the first term.
 */
import { z } from 'zod';
import { BalancerError } from '../src/errors.js';
import { NORM_EPS, norms } from '../src/gram.js';
import type { Strategy } from '../src/types.js';

const options = z.strictObject({
  /** Which gradient statistic is compared. @default 'max-mean' */
  statistic: z.enum(['max-mean', 'mean-mean', 'norm']).default('max-mean'),
  /** Weight α of the new estimate in the moving average. @default 0.9 */
  alpha: z.number().min(0).max(1).default(0.9),
  /** The reference term: name or 0-based index. @default 0 */
  reference: z.union([z.string(), z.number().int().nonnegative()]).default(0),
});

/** Options of {@link gradMagnitude}. */
export type GradMagnitudeOptions = z.infer<typeof options>;

/** State of {@link gradMagnitude}. */
export interface GradMagnitudeState {
  /** Index of the reference term. */
  reference: number;
  /** λ_i (1 for the reference). */
  lambda: number[];
}

export const gradMagnitude: Strategy<GradMagnitudeOptions, GradMagnitudeState> = {
  name: 'grad-magnitude',
  summary: 'Learning-rate annealing (Wang et al. 2021): weights from gradient-magnitude ratios to a reference term, EMA-smoothed.',
  paper: 'Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 2021',
  options,
  needs: (o) => (o.statistic === 'norm' ? { gradients: 'gram' } : { gradients: 'none', stats: true }),
  init(o, terms) {
    const ref = typeof o.reference === 'number' ? o.reference : terms.indexOf(o.reference);
    if (ref < 0 || ref >= terms.length) {
      throw new BalancerError(
        `grad-magnitude: option "reference" is ${JSON.stringify(o.reference)}, not a term; terms are ${terms.join(', ')}`,
      );
    }
    return { reference: ref, lambda: terms.map(() => 1) };
  },
  update(o, state, { gram, stats }) {
    const ref = state.reference;
    let num: number;
    let den: number[];
    if (o.statistic === 'norm') {
      const n = norms(gram!);
      num = n[ref];
      den = n;
    } else {
      num = o.statistic === 'max-mean' ? stats!.maxAbs[ref] : stats!.meanAbs[ref];
      den = [...stats!.meanAbs];
    }
    const estimate = den.map((d, i) => (i === ref ? 1 : num > NORM_EPS && d > NORM_EPS ? num / d : Number.NaN));
    const lambda = state.lambda.map((l, i) =>
      i === ref ? 1 : Number.isNaN(estimate[i]) ? l : (1 - o.alpha) * l + o.alpha * estimate[i],
    );
    return {
      weights: [...lambda],
      state: { reference: ref, lambda },
      info: { estimate: estimate.map((e, i) => (Number.isNaN(e) ? lambda[i] : e)) },
    };
  },
};
