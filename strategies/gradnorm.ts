/**
 * gradnorm — learn weights so that every term trains at a similar rate.
 *
 * Paper: Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich, "GradNorm: Gradient Normalization for
 * Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018. http://proceedings.mlr.press/v80/chen18a.html
 *
 * In words: each term's weighted gradient norm on the shared parameters, G_i = w_i‖g_i‖, is pulled
 * towards the mean norm Ḡ scaled by how far behind that term is in training. A term's training rate is
 * L̃_i = L_i(t) / L_i(0) (its own initial loss); its relative inverse rate r_i = L̃_i / mean_j L̃_j.
 * The target Ḡ·r_i^α is held constant (no gradient flows through it), and the weights descend
 *
 *   L_grad = Σ_i | w_i‖g_i‖ − Ḡ·r_i^α |,   ∂L_grad/∂w_i = sign(w_i‖g_i‖ − Ḡ·r_i^α)·‖g_i‖,
 *
 * after which weights are clipped at `minWeight` (they can otherwise go negative) and renormalised to
 * Σ_i w_i = T. ‖g_i‖ = sqrt(G[i][i]) from the Gram matrix. Weights start at 1, once, not per batch.
 * The weights returned at step t are those before step t's GradNorm update (the paper updates w after
 * the network step), so the first step trains with all ones.
 *
 * Options: `alpha` (restoring-force strength) @default 1.5; `lr` (learning rate of the weights)
 * @default 0.025; `optimizer` ('adam' | 'sgd') @default 'adam'; `minWeight` @default 1e-3.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { MAX_WEIGHT_LR } from '../src/core/limits.js';
import { LOSS_EPS, mean, norms, renormalize } from '../src/core/gram.js';
import { adamInit, adamStep, sgdStep, type AdamState } from '../src/core/optim.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Asymmetry α: how strongly lagging terms are pushed. @default 1.5 */
  alpha: z._default(z.number().check(z.nonnegative()), 1.5),
  /** Learning rate of the weights, at most 10 (MAX_WEIGHT_LR, src/core/limits.ts). @default 0.025 */
  lr: z._default(z.number().check(z.positive(), z.maximum(MAX_WEIGHT_LR)), 0.025),
  /** Optimiser of the weights. @default 'adam' */
  optimizer: z._default(z.enum(['adam', 'sgd']), 'adam'),
  /** Lower clip of a weight before renormalisation. @default 1e-3 */
  minWeight: z._default(z.number().check(z.nonnegative()), 1e-3),
});

/**
 * Options of {@link gradnorm}.
 * @useDeclaredType
 */
export type GradNormOptions = z.infer<typeof options>;

/** State of {@link gradnorm}. */
export interface GradNormState {
  /** Current weights (Σ = T). */
  weights: number[];
  /** L_i(0): each term's own first loss; null before the first step. */
  initialLosses: number[] | null;
  /** Adam moments of the weights. */
  adam: AdamState;
}

/**
 * The `gradnorm` strategy (Chen et al., ICML 2018): learned weights that equalise the weighted
 * gradient norms, scaled by each term's relative training rate (reads the Gram diagonal). Options:
 * {@link GradNormOptions}; state: {@link GradNormState}.
 */
export const gradnorm: Strategy<GradNormOptions, GradNormState> = {
  name: 'gradnorm',
  summary: 'GradNorm: learned weights equalise weighted gradient norms, scaled by relative training rate.',
  paper: 'Chen et al., "GradNorm", ICML 2018',
  options,
  needs: () => ({ gradients: 'gram' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      weights: ss.perTerm(terms.length, 'nonNegative'),
      initialLosses: z.nullable(ss.perTerm(terms.length)),
      adam: ss.adam(terms.length),
    }),
  init: (_o, terms) => ({ weights: terms.map(() => 1), initialLosses: null, adam: adamInit(terms.length) }),
  initialWeights: (_o, s) => [...s.weights],
  update(o, state, { losses, gram }) {
    const T = losses.length;
    const L0 = state.initialLosses ?? [...losses];
    const w = state.weights;
    const gNorm = norms(gram!);
    const G = w.map((wi, i) => wi * gNorm[i]);
    const Gbar = mean(G);
    const rate = losses.map((l, i) => l / Math.max(L0[i], LOSS_EPS));
    const meanRate = mean(rate);
    const r = rate.map((x) => (meanRate > LOSS_EPS ? x / meanRate : 1));
    const target = r.map((ri) => Gbar * ri ** o.alpha);
    const grad = G.map((gi, i) => Math.sign(gi - target[i]) * gNorm[i]);
    let next: number[];
    let adam = state.adam;
    if (o.optimizer === 'adam') ({ params: next, state: adam } = adamStep(w, grad, state.adam, { lr: o.lr }));
    else next = sgdStep(w, grad, o.lr);
    next = renormalize(next.map((x) => Math.max(x, o.minWeight)), T);
    return {
      weights: [...w],
      state: { weights: next, initialLosses: L0, adam },
      info: { targetNorm: target, weightedNorm: G, inverseRate: r },
    };
  },
};
