/**
 * resnorm — Residual normalisation: GradNorm's rule applied to the loss magnitudes instead of the
 * gradient norms, so it needs no per-term gradient.
 *
 * Source: NVIDIA Modulus Sym, `ResNorm` in modulus/sym/loss/aggregator.py (contributors T. Nandi,
 * D. Van Essendelft, M. A. Nabian; no paper). https://github.com/NVIDIA/modulus-sym
 * GradNorm, whose rule it reuses: Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018.
 *
 * In words: the weights are w_i = exp(λ_i), with λ shifted before every step so that Σ_i w_i = T.
 * With L̃_i = L_i(t) / L_i(0) (each term's own first loss) and the relative inverse training rate
 * r_i = L̃_i / mean_j L̃_j, the weighted loss w_i·L_i is pulled towards the mean raw loss scaled by
 * how far behind the term is:
 *
 *   L_res = Σ_i | w_i·L_i − mean_j(L_j)·r_i^α |,   ∂L_res/∂λ_i = sign(w_i·L_i − mean_j(L_j)·r_i^α)·w_i·L_i,
 *
 * the target being held constant (no gradient through it). λ takes one optimiser step on L_res per
 * update (Modulus puts λ in the model's optimizer: Adam, lr 1e-3 by default). The weights returned at
 * step t are those used by step t's model update, computed before λ moves, as in Modulus (the
 * aggregator's forward uses exp(λ) and the optimizer then steps λ and the model together).
 *
 * Options: `alpha` (restoring-force strength) @default 1 (Modulus); `lr` @default 1e-3 and
 * `optimizer` ('adam' | 'sgd') @default 'adam' (Modulus's default optimizer; PyTorch's Adam
 * β = (0.9, 0.999), ε = 1e-8). Losses must be ≥ 0; an initial loss of 0 is guarded by LOSS_EPS.
 */
import * as z from 'zod/mini';
import { MAX_WEIGHT_LR, MAX_WEIGHT_LR_RULE } from '../src/core/limits.js';
import { LOSS_EPS, mean } from '../src/core/gram.js';
import { adamInit, adamStep, sgdStep, type AdamState } from '../src/core/optim.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Asymmetry α: how strongly lagging terms are pushed. @default 1 (Modulus Sym) */
  alpha: z._default(z.number().check(z.nonnegative()), 1),
  /** Learning rate of the log-weights λ. @default 1e-3 (Modulus Sym's default Adam) */
  lr: z._default(z.number().check(z.positive(), z.maximum(MAX_WEIGHT_LR, { message: MAX_WEIGHT_LR_RULE })), 1e-3),
  /** Optimiser of the log-weights. @default 'adam' */
  optimizer: z._default(z.enum(['adam', 'sgd']), 'adam'),
});

/**
 * Options of {@link resnorm}.
 * @useDeclaredType
 */
export type ResNormOptions = z.infer<typeof options>;

/** State of {@link resnorm}. */
export interface ResNormState {
  /** λ, the log-weights after the last optimiser step (shifted to Σ exp λ = T at the next update). */
  logWeights: number[];
  /** L_i(0): each term's own first loss; null before the first update. */
  initialLosses: number[] | null;
  /** Adam moments of λ. */
  adam: AdamState;
}

/** λ shifted so that Σ exp(λ) = T (Modulus: λ ← λ + log(T / Σ exp λ)). */
function normalizeLog(lambda: readonly number[]): number[] {
  const m = Math.max(...lambda);
  const lse = m + Math.log(lambda.reduce((a, l) => a + Math.exp(l - m), 0));
  const shift = Math.log(lambda.length) - lse;
  return lambda.map((l) => l + shift);
}

/**
 * The `resnorm` strategy (NVIDIA Modulus Sym's ResNorm): learned weights that pull each weighted loss
 * towards the mean loss, scaled by the term's relative training rate (GradNorm's rule on loss
 * magnitudes; reads losses only). Options: {@link ResNormOptions}; state: {@link ResNormState}.
 */
export const resnorm: Strategy<ResNormOptions, ResNormState> = {
  name: 'resnorm',
  summary: "ResNorm (Modulus Sym): GradNorm's rule on loss magnitudes; learned log-weights, no per-term gradient.",
  paper: 'NVIDIA Modulus Sym, ResNorm aggregator (Nandi, Van Essendelft & Nabian), https://github.com/NVIDIA/modulus-sym',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      logWeights: ss.perTerm(terms.length),
      initialLosses: z.nullable(ss.perTerm(terms.length, 'nonNegative')),
      adam: ss.adam(terms.length),
    }),
  init: (_o, terms) => ({ logWeights: terms.map(() => 0), initialLosses: null, adam: adamInit(terms.length) }),
  initialWeights: (_o, s) => normalizeLog(s.logWeights).map(Math.exp),
  update(o, state, { losses }) {
    const L0 = state.initialLosses ?? [...losses];
    const lambda = normalizeLog(state.logWeights);
    const w = lambda.map(Math.exp);
    const rate = losses.map((l, i) => l / Math.max(L0[i], LOSS_EPS));
    const meanRate = mean(rate);
    const r = rate.map((x) => (meanRate > LOSS_EPS ? x / meanRate : 1));
    const avg = mean(losses);
    const target = r.map((ri) => avg * ri ** o.alpha);
    const residual = w.map((wi, i) => wi * losses[i]);
    const grad = residual.map((ri, i) => Math.sign(ri - target[i]) * ri);
    let next: number[];
    let adam = state.adam;
    if (o.optimizer === 'adam') ({ params: next, state: adam } = adamStep(lambda, grad, state.adam, { lr: o.lr }));
    else next = sgdStep(lambda, grad, o.lr);
    return {
      weights: w,
      state: { logWeights: next, initialLosses: L0, adam },
      info: { target, weightedLoss: residual, inverseRate: r },
    };
  },
};
