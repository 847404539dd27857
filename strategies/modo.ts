/**
 * modo — Multi-objective gradient with Double sampling: simplex weights that take one projected
 * gradient step per update on ½ λᵀGλ + ½ρ‖λ‖², i.e. MGDA's min-norm problem solved incrementally.
 *
 * Paper: L. Chen, H. Fernando, Y. Ying, T. Chen, "Three-Way Trade-Off in Multi-Objective Learning:
 * Optimization, Generalization and Conflict-Avoidance", NeurIPS 2023 / JMLR 2024,
 * https://openreview.net/forum?id=yPkbdJxQ0o (official code heshandevaka/Trade-Off-MOL; LibMTL,
 * LibMTL/weighting/MoDo.py, followed here).
 *
 * In words: λ starts at 1/T and at every update
 *
 *   λ ← Π_simplex(λ − γ·(G λ + ρ λ)),   d = Σ_i λ_i g_i,
 *
 * with the new λ used at once; returned ×T (Σ = T). Heads take their own gradient (`headWeights:
 * 'unit'`; LibMTL averages each head's gradients over its three batches).
 *
 * Approximation: the paper and LibMTL read three independent mini-batches per step: G λ is estimated
 * by g(batch 1)·g(batch 2)ᵀλ (unbiased, hence "double sampling") and d uses batch 3. BalancedTrainer
 * evaluates one batch per step, so here the three are the same batch and G is that batch's Gram
 * matrix: the deterministic form, whose estimate of Gλ is biased on mini-batches.
 *
 * Options: `gamma` (step size of λ) @default 1e-3; `rho` (ℓ2 regularisation of λ) @default 0.1
 * (LibMTL's `MoDo_gamma`, `MoDo_rho`). With unnormalised gradients γ = 1e-3 moves λ slowly: scale it
 * with the size of G.
 */
import * as z from 'zod/mini';
import { projectSimplex } from '../src/core/qp.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Step size γ of λ. @default 1e-3 */
  gamma: z._default(z.number().check(z.nonnegative()), 1e-3),
  /** ℓ2 regularisation ρ of λ's update. @default 0.1 */
  rho: z._default(z.number().check(z.nonnegative()), 0.1),
});

/**
 * Options of {@link modo}.
 * @useDeclaredType
 */
export type MoDoOptions = z.infer<typeof options>;

/** State of {@link modo}. */
export interface MoDoState {
  /** The simplex weights λ (Σ = 1). */
  lambda: number[];
}

/**
 * The `modo` strategy (Chen et al., NeurIPS 2023), single-batch form: one projected gradient step on
 * the min-norm weights per update (reads the Gram matrix). Options: {@link MoDoOptions}; state:
 * {@link MoDoState}.
 */
export const modo: Strategy<MoDoOptions, MoDoState> = {
  name: 'modo',
  summary: 'MoDo (Chen et al. 2023): one projected step per update on the min-norm simplex weights; one-batch form.',
  paper: 'Chen, Fernando, Ying & Chen, "Three-Way Trade-Off in Multi-Objective Learning: Optimization, Generalization and Conflict-Avoidance", NeurIPS 2023, https://openreview.net/forum?id=yPkbdJxQ0o',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ lambda: ss.perTerm(terms.length, 'nonNegative') }),
  init: (_o, terms) => ({ lambda: terms.map(() => 1 / terms.length) }),
  initialWeights: (_o, s) => s.lambda.map((l) => l * s.lambda.length),
  update(o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    const l = state.lambda;
    const stepped = l.map((li, i) => li - o.gamma * (G[i].reduce((a, g, j) => a + g * l[j], 0) + o.rho * li));
    const lambda = stepped.every(Number.isFinite) ? projectSimplex(stepped) : [...l];
    return { weights: lambda.map((x) => T * x), state: { lambda } };
  },
};
