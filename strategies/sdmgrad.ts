/**
 * sdmgrad — Stochastic Direction-oriented Multi-objective Gradient descent: MGDA's min-norm weights,
 * pulled towards the average gradient by a regulariser λ, found by a few projected momentum steps.
 *
 * Paper: P. Xiao, H. Ban, K. Ji, "Direction-oriented Multi-objective Learning: Simple and Provable
 * Stochastic Algorithms", NeurIPS 2023, https://openreview.net/forum?id=4Ks8RPcXd9 (official code
 * OptMN-Lab/sdmgrad; LibMTL, LibMTL/weighting/SDMGrad.py, followed here).
 *
 * In words: with the Gram matrix scaled by its mean gradient norm, Ĝ = G / (mean_i ‖g_i‖)² (+1e-8),
 * the simplex weights w (kept across updates, 1/T at first) take `iterations` steps of SGD with
 * momentum 0.5 and learning rate 5 (a new momentum buffer each update, as LibMTL) on
 *
 *   ½ wᵀĜw + λ·wᵀĜ1/T,   ∇ = Ĝw + λ·Ĝ1/T,   w ← Π_simplex(w − 5·buf),
 *
 * and the update direction is d = (Σ_i w_i g_i + λ·mean_i g_i) / (1 + λ), so the weights on the
 * gradients are (w_i + λ/T)/(1 + λ), returned ×T (Σ = T). Heads take their own gradient
 * (`headWeights: 'unit'`).
 *
 * Approximation: the paper and LibMTL read three independent mini-batches per step (ζ, ξ, ξ′): Ĝ is
 * the cross Gram matrix of the ξ and ξ′ gradients (an unbiased estimate of G w) and d uses the ζ
 * gradients. BalancedTrainer evaluates one batch per step, so here all three are the same batch (the
 * deterministic form of the method); the double-sampling that makes the stochastic estimate unbiased
 * is not reproduced. LibMTL also lets each head accumulate the gradients of all three batches.
 *
 * Options: `lambda` (regularisation λ towards the average gradient) @default 0.3; `iterations`
 * @default 20 (LibMTL's `SDMGrad_lamda`, `SDMGrad_niter`).
 */
import * as z from 'zod/mini';
import { projectSimplex } from '../src/core/qp.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** λ: weight of the average gradient in the direction. @default 0.3 */
  lambda: z._default(z.number().check(z.nonnegative()), 0.3),
  /** Projected momentum steps on w per update. @default 20 */
  iterations: z._default(z.number().check(z.int(), z.nonnegative(), z.maximum(10_000, { message: 'at most 10000 (inner projected steps per update: the cost of a step grows with it)' })), 20),
});

/**
 * Options of {@link sdmgrad}.
 * @useDeclaredType
 */
export type SdmGradOptions = z.infer<typeof options>;

/** State of {@link sdmgrad}. */
export interface SdmGradState {
  /** The simplex weights w (Σ = 1), kept across updates. */
  w: number[];
}

/**
 * The `sdmgrad` strategy (Xiao, Ban & Ji, NeurIPS 2023), single-batch form: projected momentum steps
 * towards the λ-regularised min-norm weights (reads the Gram matrix). Options: {@link SdmGradOptions};
 * state: {@link SdmGradState}.
 */
export const sdmgrad: Strategy<SdmGradOptions, SdmGradState> = {
  name: 'sdmgrad',
  summary: 'SDMGrad (Xiao et al. 2023): min-norm weights regularised towards the mean gradient; one-batch form.',
  paper: 'Xiao, Ban & Ji, "Direction-oriented Multi-objective Learning: Simple and Provable Stochastic Algorithms", NeurIPS 2023, https://openreview.net/forum?id=4Ks8RPcXd9',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ w: ss.perTerm(terms.length, 'nonNegative') }),
  init: (_o, terms) => ({ w: terms.map(() => 1 / terms.length) }),
  update(o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    const scale = G.reduce((a, r, i) => a + Math.sqrt(Math.max(r[i], 0)), 0) / T;
    const Gh = G.map((r) => r.map((g) => g / (scale * scale + 1e-8)));
    const Gg = Gh.map((r) => r.reduce((a, b) => a + b, 0) / T);
    let w = [...state.w];
    let buf: number[] | null = null;
    for (let k = 0; k < o.iterations; k++) {
      const grad = Gh.map((r, i) => r.reduce((a, g, j) => a + g * w[j], 0) + o.lambda * Gg[i]);
      buf = buf ? buf.map((b, i) => 0.5 * b + grad[i]) : grad;
      const stepped = w.map((wi, i) => wi - 5 * buf![i]);
      w = stepped.every(Number.isFinite) ? projectSimplex(stepped) : w;
    }
    const weights = w.map((wi) => (T * (wi + o.lambda / T)) / (1 + o.lambda));
    return { weights, state: { w } };
  },
};
