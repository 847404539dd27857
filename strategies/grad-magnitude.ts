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
 * - `max-mean` (paper): max_θ|∇L_ref| / mean_θ|∇L_i|; α = 0.9 as in the paper's Algorithm 1 (the
 *   authors' code, PredictiveIntelligenceLab/GradientPathologiesPINNs, instead keeps 0.9 of the old
 *   value, i.e. α = 0.1, and refreshes every 10 steps: `{ alpha: 0.1, updateEvery: 10 }`);
 * - `mean-mean`: mean_θ|∇L_ref| / mean_θ|∇L_i|, the variant of NVIDIA Modulus Sym (`LRAnnealing` in
 *   modulus/sym/loss/aggregator.py: reference = the first term, EMA factor α = 0.01 on the new
 *   estimate, `update_freq` 1; Modulus takes the mean over every parameter the term reaches, here over
 *   the shared ones). Its α defaults to 0.01;
 * - `norm`: ‖∇L_ref‖ / ‖∇L_i‖ (from the Gram diagonal); α defaults to 0.9 as for `max-mean`.
 *
 * With `numerator: 'mean'` no term is the reference: the numerator is the mean of the statistic over
 * all terms, λ̂_i = mean_j stat_j / stat_i, and every term gets a λ. With `statistic: 'norm'` this is
 * the grad-norm weighting of jaxpi (S. Wang, S. Sankaran, H. Wang, P. Perdikaris, "An Expert's Guide
 * to Training Physics-informed Neural Networks", 2023, https://arxiv.org/abs/2308.08468;
 * PredictiveIntelligenceLab/jaxpi `compute_weights`): there the running average keeps 0.9 of the old
 * weight (α = 0.1) and the weights are refreshed every 1000 steps, i.e.
 * `{ statistic: 'norm', numerator: 'mean', alpha: 0.1, updateEvery: 1000 }`.
 * A term (or numerator) with a zero gradient has no defined ratio: its λ is kept unchanged that step.
 *
 * With `weighted: true` the denominator is the statistic of the weighted gradient λ_i·∇L_i, as in
 * the authors' released code (λ_i then settles at √(stat_ref / stat_i)).
 *
 * Options: `statistic` @default 'max-mean'; `alpha` (weight of the new estimate) @default 0.9 for
 * `max-mean` and `norm`, 0.01 for `mean-mean`; `reference` (term name or index) @default the first
 * term; `numerator` ('reference' | 'mean') @default 'reference'; `weighted` @default false.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { BalancerError } from '../src/core/errors.js';
import { NORM_EPS, norms } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Which gradient statistic is compared. @default 'max-mean' */
  statistic: z._default(z.enum(['max-mean', 'mean-mean', 'norm']), 'max-mean'),
  /**
   * Weight α of the new estimate in the moving average.
   * @default 0.9 for 'max-mean' and 'norm' (Wang et al.), 0.01 for 'mean-mean' (Modulus Sym)
   */
  alpha: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
  /** The reference term: name or 0-based index. @default 0 */
  reference: z._default(z.union([z.string(), z.number().check(z.int(), z.nonnegative())]), 0),
  /**
   * What each term's statistic is compared with: the reference term's, or the mean over all terms
   * (jaxpi's grad-norm weighting; no term is fixed at 1 then). @default 'reference'
   */
  numerator: z._default(z.enum(['reference', 'mean']), 'reference'),
  /**
   * Compare with the statistic of each term's WEIGHTED gradient λ_i·∇L_i instead of ∇L_i, as the
   * authors' code does (PredictiveIntelligenceLab/GradientPathologiesPINNs, Helmholtz2D_model_tf.py:
   * the boundary gradients are taken of `adaptive_constant · loss_bcs`). The estimate is then
   * stat_ref / (λ_i·stat_i) and λ_i settles at √(stat_ref / stat_i) rather than stat_ref / stat_i.
   * @default false
   */
  weighted: z._default(z.boolean(), false),
});

/** The default α of each statistic: the value of the source that defines the variant. */
export const GRAD_MAGNITUDE_ALPHA = { 'max-mean': 0.9, 'mean-mean': 0.01, norm: 0.9 } as const;

/**
 * Options of {@link gradMagnitude}.
 * @useDeclaredType
 */
export type GradMagnitudeOptions = z.infer<typeof options>;

/** State of {@link gradMagnitude}. */
export interface GradMagnitudeState {
  /** Index of the reference term. */
  reference: number;
  /** λ_i (1 for the reference). */
  lambda: number[];
}

/**
 * The `grad-magnitude` strategy (Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 2021): learning-rate
 * annealing, weights from gradient-magnitude ratios to a reference term (or to the mean over terms),
 * EMA-smoothed. Options: {@link GradMagnitudeOptions}; state: {@link GradMagnitudeState}.
 */
export const gradMagnitude: Strategy<GradMagnitudeOptions, GradMagnitudeState> = {
  name: 'grad-magnitude',
  summary: 'Learning-rate annealing (Wang et al. 2021): weights from gradient-magnitude ratios to a reference term, EMA-smoothed.',
  paper: 'Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 2021',
  options,
  needs: (o) => (o.statistic === 'norm' ? { gradients: 'gram' } : { gradients: 'none', stats: true }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ reference: ss.count.check(z.maximum(terms.length - 1, { message: `must be a term index from 0 to ${terms.length - 1}` })), lambda: ss.perTerm(terms.length, 'nonNegative') }),
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
    const byMean = o.numerator === 'mean';
    const ref = byMean ? -1 : state.reference;
    const alpha = o.alpha ?? GRAD_MAGNITUDE_ALPHA[o.statistic];
    let top: number[];
    let den: number[];
    if (o.statistic === 'norm') {
      top = norms(gram!);
      den = top;
    } else {
      top = o.statistic === 'max-mean' ? [...stats!.maxAbs] : [...stats!.meanAbs];
      den = [...stats!.meanAbs];
    }
    const num = byMean ? top.reduce((a, b) => a + b, 0) / top.length : top[ref];
    // `weighted`: the statistic of λ_i·∇L_i is λ_i times that of ∇L_i (λ_i > 0)
    if (o.weighted) den = den.map((d, i) => d * state.lambda[i]);
    const estimate = den.map((d, i) => (i === ref ? 1 : num > NORM_EPS && d > NORM_EPS ? num / d : Number.NaN));
    const lambda = state.lambda.map((l, i) =>
      i === ref ? 1 : Number.isNaN(estimate[i]) ? l : (1 - alpha) * l + alpha * estimate[i],
    );
    return {
      weights: [...lambda],
      state: { reference: ref, lambda },
      info: { estimate: estimate.map((e, i) => (Number.isNaN(e) ? lambda[i] : e)) },
    };
  },
};
