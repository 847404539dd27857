/**
 * imtl — IMTL-G, impartial multi-task learning (gradient part): the combined direction has equal
 * projections onto every term's unit gradient, so no term is favoured.
 *
 * Paper: L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao, W. Zhang, "Towards Impartial
 * Multi-task Learning", ICLR 2021. https://openreview.net/forum?id=IMPnRXEWpvr (Section 3.2, IMTL-G).
 *
 * In words: find d = Σ α_i g_i with Σ α_i = 1 such that ⟨d, u_1⟩ = ⟨d, u_t⟩ for all t, u_i = g_i/‖g_i‖.
 * With the rows D_t = g_1 − g_t and U_t = u_1 − u_t (t = 2..T) the paper's closed form is
 *
 *   α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹,   α_1 = 1 − Σ_{t≥2} α_t,
 *
 * and every entry is read from G: (g_1Uᵀ)_t = G_11/n_1 − G_1t/n_t and
 * (DUᵀ)_st = G_11/n_1 − G_1t/n_t − G_s1/n_1 + G_st/n_t (n_i = ‖g_i‖). The (T−1)×(T−1) system is solved
 * with ml-matrix. When the gradients are linearly dependent (rank-deficient G) that system is singular; we
 * then use the generalisation of Quinton & Rey ("Jacobian Descent for Multi-Objective Optimization",
 * 2024, as in torchjd's IMTLG): v = G⁺n, α = v / Σv (α = 0 when Σv = 0), which equals the closed form
 * whenever G is invertible (numerical rank: eigenvalues above 1e3·T·ε·λ_max).
 *
 * Weights: w = T·α (sum T, so identical unit gradients give all ones). They can be NEGATIVE: the
 * equal-projection direction may need to subtract a gradient (e.g. two nearly parallel gradients and a
 * third between them), hence `signedWeights`. A zero gradient has no unit direction: it is left out of
 * the solve and gets weight 0 (it contributes nothing to d); all gradients zero gives all ones.
 *
 * IMTL's loss part (IMTL-L, learned loss scales) is not included here. Options: none.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { NORM_EPS, norms, type Gram } from '../src/core/gram.js';
import { psdPinvSolve, solveLinear, symmetricEigen } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({});

/**
 * Options of {@link imtl} (none).
 * @useDeclaredType
 */
export type IMTLOptions = z.infer<typeof options>;

/** Relative tolerance (in units of T·ε·λ_max) below which an eigenvalue of G counts as zero. */
const RANK_REL_TOL = 1e3;

/** IMTL-G's α (Σα = 1) on a Gram matrix of non-zero gradients, and which solve produced it. */
export function imtlAlpha(G: Gram): { alpha: number[]; method: 'closed-form' | 'pinv' } {
  const T = G.length;
  if (T === 1) return { alpha: [1], method: 'closed-form' };
  const n = norms(G);
  const { values } = symmetricEigen(G);
  // Numerical rank: eigenvalues below λ_max·T·ε·RANK_REL_TOL are round-off (the Jacobi eigenvalues of
  // a singular G scatter around ε·λ_max); the same cut is used by the pseudo-inverse below.
  const rank = values.filter((v) => v > Math.max(0, values[0]) * T * Number.EPSILON * RANK_REL_TOL).length;
  if (rank === T) {
    const rhs: number[] = [];
    const A: number[][] = [];
    for (let t = 1; t < T; t++) rhs.push(G[0][0] / n[0] - G[0][t] / n[t]);
    // Row-vector system α_r (DUᵀ) = g_1Uᵀ, i.e. (DUᵀ)ᵀ α_rᵀ = (g_1Uᵀ)ᵀ: A[t][s] = (DUᵀ)_{s,t}.
    for (let t = 1; t < T; t++) {
      A.push([]);
      for (let s = 1; s < T; s++) A[t - 1].push(G[0][0] / n[0] - G[0][t] / n[t] - G[s][0] / n[0] + G[s][t] / n[t]);
    }
    const ar = solveLinear(A, rhs);
    if (ar) return { alpha: [1 - ar.reduce((a, b) => a + b, 0), ...ar], method: 'closed-form' };
  }
  const v = psdPinvSolve(G, n, RANK_REL_TOL);
  const sum = v.reduce((a, b) => a + b, 0);
  const vmax = Math.max(0, ...v.map(Math.abs));
  return { alpha: Math.abs(sum) > 1e-12 * vmax && sum !== 0 ? v.map((x) => x / sum) : v.map(() => 0), method: 'pinv' };
}

/**
 * The `imtl` strategy (Liu et al., ICLR 2021): IMTL-G, the direction with equal projections onto every
 * term's unit gradient, closed form on the Gram matrix; weights may be negative. Options:
 * {@link IMTLOptions}.
 */
export const imtl: Strategy<IMTLOptions, Record<string, never>> = {
  name: 'imtl',
  summary: 'IMTL-G (Liu et al. 2021): direction with equal projections on all unit gradients; closed form on G. Weights may be negative.',
  paper: 'Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, https://openreview.net/forum?id=IMPnRXEWpvr',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  signedWeights: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(_o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    const n = norms(G);
    const scale = Math.max(0, ...n);
    const live = n.map((_, i) => i).filter((i) => n[i] > NORM_EPS * Math.max(scale, 1e-300) && scale > 0);
    if (live.length === 0) return { weights: new Array(T).fill(1), state };
    const sub = live.map((i) => live.map((j) => G[i][j]));
    const { alpha: a, method } = imtlAlpha(sub);
    const alpha = new Array<number>(T).fill(0);
    live.forEach((i, k) => (alpha[i] = a[k]));
    return { weights: alpha.map((x) => T * x), state, info: { alpha, pinv: alpha.map(() => (method === 'pinv' ? 1 : 0)) } };
  },
};
