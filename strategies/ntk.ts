/**
 * ntk — Neural-tangent-kernel weighting: each term's weight is inversely proportional to the norm of
 * the gradient of √L_i, the trace proxy of its NTK block, so that no term's kernel dominates training.
 *
 * Paper: S. Wang, X. Yu, P. Perdikaris, "When and why PINNs fail to train: A neural tangent kernel
 * perspective", J. Comput. Phys. 449, 2022, https://arxiv.org/abs/2007.14527. This strategy follows the
 * form of NVIDIA Modulus Sym (`NTK` in modulus/sym/loss/aggregator.py, `training.ntk.run_freq`),
 * https://github.com/NVIDIA/modulus-sym.
 *
 * In words: with n_i = ‖∇_θ √|L_i|‖ (Modulus: the norm over the model's parameters of the gradient of
 * sqrt(|loss|)), the weights are
 *
 *   w_i = (Σ_j n_j) / n_i                              (`scale: 'sum'`, Modulus Sym)
 *   w_i = (Σ_j n_j) / (T·n_i) = mean_j(n_j) / n_i      (`scale: 'mean'`: all ones when the n_i agree).
 *
 * Since ∇√|L| = ∇L / (2√|L|), n_i = ‖g_i‖ / (2√|L_i|) = √G_ii / (2√|L_i|): the strategy reads only the
 * diagonal of the Gram matrix and the losses. The Gram matrix is taken over the shared variables (or
 * the representation), where Modulus takes every parameter of the model; the two agree when every
 * variable is shared. The weights are refreshed whenever the strategy runs: `updateEvery: k` in the
 * balancer spec (the trainer's `every`) recomputes them every k steps and keeps them in between, as
 * Modulus's `run_freq` (default 1000) does.
 *
 * jaxpi (PredictiveIntelligenceLab/jaxpi, `weighting.scheme: 'ntk'`) weights by the NTK diagonal itself:
 * w_i = mean_j(t_j) / (t_i + 1e-5·mean_j t_j) with t_i the mean over term i's points x_k of
 * ‖∇_θ u(x_k)‖² (per-point gradients of the network output or residual, by vmap). That needs per-sample
 * gradients, not the per-term gradient of the loss, so it is not the Gram diagonal and is not offered
 * here; Modulus's ‖∇√L_i‖ is its per-term proxy.
 *
 * Differences from Modulus: Modulus first computes the weights at step k (never at step 0); it trains
 * step 0 with weight 1 and steps 1…k−1 with weight 0 (its sum of stored values is still 0 there).
 * Here the weights are computed at the first update already. `warmup: { steps: 1 }` reproduces
 * Modulus exactly for k = 1 (weight 1 at step 0). A term whose n_i is 0 (zero gradient) keeps its
 * previous weight (1 at first); |L_i| below LOSS_EPS is guarded by LOSS_EPS.
 *
 * Options: `scale` ('sum' | 'mean') @default 'sum'.
 */
import * as z from 'zod/mini';
import { LOSS_EPS } from '../src/core/gram.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Numerator of the weights: Σ_j n_j (Modulus Sym) or mean_j n_j (all ones at balance). @default 'sum' */
  scale: z._default(z.enum(['sum', 'mean']), 'sum'),
});

/**
 * Options of {@link ntk}.
 * @useDeclaredType
 */
export type NtkOptions = z.infer<typeof options>;

/** State of {@link ntk}. */
export interface NtkState {
  /** The last weights (kept for a term whose gradient is zero). */
  weights: number[];
}

/** n_i = ‖∇√|L_i|‖ = √G_ii / (2√|L_i|) from the Gram diagonal; 0 for a zero gradient. */
export function ntkTrace(losses: readonly number[], gram: readonly (readonly number[])[]): number[] {
  return losses.map((l, i) => {
    const g2 = gram[i][i];
    return g2 > 0 ? Math.sqrt(g2) / (2 * Math.sqrt(Math.max(Math.abs(l), LOSS_EPS))) : 0;
  });
}

/**
 * The `ntk` strategy (Wang, Yu & Perdikaris 2022, in the form of NVIDIA Modulus Sym): weights
 * Σ_j n_j / n_i with n_i = ‖∇√L_i‖ = ‖g_i‖ / (2√L_i), the NTK trace proxy (reads the Gram diagonal).
 * Options: {@link NtkOptions}; state: {@link NtkState}.
 */
export const ntk: Strategy<NtkOptions, NtkState> = {
  name: 'ntk',
  summary: 'NTK weighting (Wang et al. 2022; Modulus Sym): w_i = Σ_j n_j / n_i, n_i = ‖∇√L_i‖ = ‖g_i‖/(2√L_i).',
  paper: 'Wang, Yu & Perdikaris, "When and why PINNs fail to train: A neural tangent kernel perspective", J. Comput. Phys. 2022, https://arxiv.org/abs/2007.14527',
  options,
  needs: () => ({ gradients: 'gram' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ weights: ss.perTerm(terms.length, 'nonNegative') }),
  init: (_o, terms) => ({ weights: terms.map(() => 1) }),
  initialWeights: (_o, s) => [...s.weights],
  update(o, state, { losses, gram }) {
    const n = ntkTrace(losses, gram!);
    const total = n.reduce((a, b) => a + b, 0) / (o.scale === 'mean' ? n.length : 1);
    const weights = n.map((ni, i) => {
      const w = ni > 0 ? total / ni : Number.NaN;
      return Number.isFinite(w) ? w : state.weights[i];
    });
    return { weights, state: { weights: [...weights] }, info: { ntkTrace: n } };
  },
};
