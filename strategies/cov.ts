/**
 * cov — CoV-weighting: weight each term by the coefficient of variation of its loss ratio, so terms
 * whose loss is still moving relative to its own history get more weight.
 *
 * Paper: R. Groenendijk, S. Karaoglu, T. Gevers, T. Mensink, "Multi-Loss Weighting with Coefficient
 * of Variations", WACV 2021. https://arxiv.org/abs/2009.01717 (authors' code:
 * github.com/rickgroen/cov-weighting, losses/covweighting_loss.py).
 *
 * In words: at update t (0-based) with raw losses L_i(t),
 *
 *   ℓ_i(t) = L_i(t) / μ_L,i(t−1)            (loss ratio; μ_L(−1) := L(0), so ℓ(0) = 1)
 *   c_i    = σ_ℓ,i / μ_ℓ,i                   (coefficient of variation of the ratio, statistics up to t−1)
 *   w_i    = T · c_i / Σ_j c_j              (t ≥ 2; w_i = 1 for t = 0, 1)
 *
 * after which the running statistics take ℓ(t) and L(t) in, by Welford's algorithm with the mean
 * weight m(t) = 0 at t = 0, then m(t) = 1 − 1/(t+1) (`mean: 'full'`, the arithmetic mean) or
 * m(t) = `meanDecay` (`mean: 'decay'`, an exponentially decaying mean):
 *
 *   μ_ℓ ← m·μ_ℓ + (1−m)·ℓ,   S ← S + (ℓ − μ_ℓ,old)(ℓ − μ_ℓ,new),   σ_ℓ = sqrt(S/(t+1) + 1e-8),
 *   μ_L ← m·μ_L + (1−m)·L.
 *
 * This follows the authors' code step for step (including σ's divisor t+1 and its 1e-8 under the
 * root, VARIANCE_EPS). Their weights sum to 1; here they are scaled to sum to T (a constant factor),
 * so the first two updates give all ones. Guards: ℓ_i = L_i / max(μ_L,i, LOSS_EPS); a term whose
 * ratio mean μ_ℓ,i ≤ LOSS_EPS (e.g. a loss that has been 0 throughout) gets c_i = 0, i.e. weight 0
 * (nothing to balance); if every c_i is 0 the weights are all 1. Constant losses give ℓ = 1, S = 0
 * and equal c_i, hence all-ones weights. The ratios make the weights invariant to a common (or
 * per-term) scale of the losses.
 *
 * Options: `mean` ('full' | 'decay') @default 'full' (authors' code); `meanDecay` (m for 'decay')
 * @default 1 (authors' code; with 1 the means stay at their first values — set e.g. 0.99 for a
 * decaying mean).
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, renormalize } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

/** Added to the variance under the square root, as in the authors' code. */
export const VARIANCE_EPS = 1e-8;

const options = z.strictObject({
  /** Full running mean, or an exponentially decaying one. @default 'full' */
  mean: z._default(z.enum(['full', 'decay']), 'full'),
  /** Weight of the old mean when `mean` is 'decay'. @default 1 */
  meanDecay: z._default(z.number().check(z.minimum(0), z.maximum(1)), 1),
});

/**
 * Options of {@link cov}.
 * @useDeclaredType
 */
export type CovOptions = z.infer<typeof options>;

/** State of {@link cov}. */
export interface CovState {
  /** Number of updates so far. */
  t: number;
  /** μ_L: running mean of the raw losses. */
  meanLoss: number[];
  /** μ_ℓ: running mean of the loss ratios. */
  meanRatio: number[];
  /** S: Welford's running sum of squared deviations of the ratios. */
  sumSq: number[];
  /** σ_ℓ after the last update (null before the first). */
  stdRatio: number[] | null;
}

/**
 * The `cov` strategy (Groenendijk et al., WACV 2021): CoV-weighting, weights proportional to the
 * coefficient of variation of each term's loss ratio (loss values only). Options: {@link CovOptions};
 * state: {@link CovState}.
 */
export const cov: Strategy<CovOptions, CovState> = {
  name: 'cov',
  summary: 'CoV-weighting (Groenendijk et al. 2021): weights ∝ coefficient of variation of each loss ratio L/mean(L), Welford statistics.',
  paper: 'Groenendijk, Karaoglu, Gevers & Mensink, "Multi-Loss Weighting with Coefficient of Variations", WACV 2021, https://arxiv.org/abs/2009.01717',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      t: ss.count,
      meanLoss: ss.perTerm(terms.length),
      meanRatio: ss.perTerm(terms.length),
      sumSq: ss.perTerm(terms.length, 'nonNegative'),
      stdRatio: z.nullable(ss.perTerm(terms.length, 'nonNegative')),
    }),
  init: (_o, terms) => {
    const zeros = terms.map(() => 0);
    return { t: 0, meanLoss: [...zeros], meanRatio: [...zeros], sumSq: [...zeros], stdRatio: null };
  },
  update(o, state, { losses }) {
    const T = losses.length;
    const t = state.t;
    const L0 = t === 0 ? losses : state.meanLoss;
    const ratio = losses.map((l, i) => l / Math.max(L0[i], LOSS_EPS));
    let weights: number[];
    let variation: number[];
    if (t <= 1 || !state.stdRatio) {
      weights = new Array(T).fill(1);
      variation = new Array(T).fill(0);
    } else {
      const std = state.stdRatio;
      variation = state.meanRatio.map((m, i) => (m > LOSS_EPS ? std[i] / m : 0));
      weights = renormalize(variation, T);
    }
    const m = t === 0 ? 0 : o.mean === 'decay' ? o.meanDecay : 1 - 1 / (t + 1);
    const meanRatio = state.meanRatio.map((mu, i) => m * mu + (1 - m) * ratio[i]);
    const sumSq = state.sumSq.map((s, i) => s + (ratio[i] - state.meanRatio[i]) * (ratio[i] - meanRatio[i]));
    const stdRatio = sumSq.map((s) => Math.sqrt(Math.max(s, 0) / (t + 1) + VARIANCE_EPS));
    const meanLoss = state.meanLoss.map((mu, i) => m * mu + (1 - m) * losses[i]);
    return {
      weights,
      state: { t: t + 1, meanLoss, meanRatio, sumSq, stdRatio },
      info: { ratio, variation },
    };
  },
};
