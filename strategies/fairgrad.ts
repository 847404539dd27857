/**
 * fairgrad — Fair resource allocation: weights that solve G·w = w^(−1/α), the update direction of
 * α-fair utility maximisation over the terms' loss decreases.
 *
 * Paper: H. Ban, K. Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024,
 * https://openreview.net/forum?id=KLmWRMg6nL (official code OptMN-Lab/fairgrad; LibMTL,
 * LibMTL/weighting/FairGrad.py, followed here).
 *
 * In words: the direction d = Σ_i w_i g_i maximises Σ_i u_α(⟨g_i, d⟩) (the α-fair utility:
 * log for α = 1, x^(1−α)/(1−α) otherwise) under a norm budget; its weights satisfy
 *
 *   (G w)_i = w_i^(−1/α),  w > 0,
 *
 * i.e. every term's rate of decrease ⟨g_i, d⟩ is w_i^(−1/α). α = 0 would be the plain sum, α = 1
 * proportional fairness (Nash-MTL's fixed point), α → ∞ the max-min (MGDA-like) direction. LibMTL
 * solves the system with scipy's least_squares from w = 1/T; here the unique solution is the
 * minimiser of the strictly convex f(w) = ½wᵀGw − Σ_i h(w_i) with h' = w^(−1/α), found by Newton's
 * method (Cholesky solves) with a positivity-keeping backtracking line search, full steps once the
 * relative residual is below 1e-6. The weights are used as they are (not
 * normalised), on the shared gradients and on the heads (LibMTL backpropagates Σ w_i L_i).
 *
 * Degenerate cases: a term whose gradient is zero (G_ii ≤ 1e-12·max_j G_jj) has no solution (LibMTL's
 * solver drifts); it gets weight 0 and the others are solved without it; an all-zero G gives all
 * ones. G + FAIRGRAD_RIDGE·max_j G_jj·I is used, so that gradients that cancel (Σ w_i g_i = 0 for
 * some w > 0) still give finite weights.
 *
 * Options: `alpha` (fairness, > 0) @default 1 (LibMTL's `FairGrad_alpha`).
 */
import * as z from 'zod/mini';
import { solveSPD } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

/** Relative ridge on G (times max_j G_jj). */
export const FAIRGRAD_RIDGE = 1e-10;

const options = z.strictObject({
  /** α of the α-fair utility (> 0; 1 = proportional fairness). @default 1 */
  alpha: z._default(z.number().check(z.positive()), 1),
});

/**
 * Options of {@link fairgrad}.
 * @useDeclaredType
 */
export type FairGradOptions = z.infer<typeof options>;

/**
 * Solve (G w)_i = w_i^(−1/α), w > 0, for a positive definite G (Newton on the convex potential).
 * Returns the weights and the largest relative residual |(Gw)_i·w_i^(1/α) − 1|.
 */
export function fairgradWeights(G: readonly (readonly number[])[], alpha: number): { weights: number[]; residual: number } {
  const T = G.length;
  const p = -1 / alpha;
  const h = (x: number) => (alpha === 1 ? Math.log(x) : x ** (1 + p) / (1 + p));
  const Gw = (w: readonly number[]) => G.map((r) => r.reduce((a, g, j) => a + g * w[j], 0));
  const f = (w: readonly number[]) => {
    const q = Gw(w);
    return w.reduce((a, wi, i) => a + 0.5 * wi * q[i] - h(wi), 0);
  };
  // start at the solution for orthogonal gradients: G_ii·w = w^(−1/α)
  let w = G.map((r, i) => r[i] ** (-alpha / (alpha + 1)));
  for (let it = 0; it < 100; it++) {
    const q = Gw(w);
    const grad = w.map((wi, i) => q[i] - wi ** p);
    if (grad.every((gi, i) => Math.abs(gi) <= 1e-13 * w[i] ** p)) break;
    const res = Math.max(0, ...grad.map((gi, i) => Math.abs(gi / w[i] ** p)));
    const H = G.map((r, i) => r.map((g, j) => (i === j ? g - p * w[i] ** (p - 1) : g)));
    const step = solveSPD(H, grad);
    if (!step) break;
    let t = 1;
    while (w.some((wi, i) => wi - t * step[i] <= 0) && t > 1e-30) t /= 2;
    if (res < 1e-6 && t === 1) {
      // Newton's quadratic region: f's change is below its round-off there, so an Armijo test on f
      // would reject good steps (it did, 100 iterations of 60 halvings at T = 128): take the full
      // step when it lowers the residual, else stop.
      const next = w.map((wi, i) => wi - step[i]);
      const qn = Gw(next);
      if (!(Math.max(0, ...next.map((x, i) => Math.abs(qn[i] * x ** -p - 1))) < res)) break;
      w = next;
      continue;
    }
    const f0 = f(w);
    const slope = grad.reduce((a, gi, i) => a + gi * step[i], 0);
    let tries = 0;
    while (f(w.map((wi, i) => wi - t * step[i])) > f0 - 1e-4 * t * slope && tries++ < 60) t /= 2;
    if (tries > 60) break; // the line search stalled on round-off: keep the current point
    const next = w.map((wi, i) => wi - t * step[i]);
    if (!next.every((x) => Number.isFinite(x) && x > 0)) break;
    w = next;
  }
  const q = Gw(w);
  const residual = Math.max(0, ...w.map((wi, i) => Math.abs(q[i] * wi ** -p - 1)));
  return { weights: w, residual };
}

/**
 * The `fairgrad` strategy (Ban & Ji, ICML 2024): α-fair weights, the solution of G·w = w^(−1/α)
 * (reads the Gram matrix). Options: {@link FairGradOptions}; state: none.
 */
export const fairgrad: Strategy<FairGradOptions, Record<string, never>> = {
  name: 'fairgrad',
  summary: 'FairGrad (Ban & Ji 2024): α-fair weights solving G·w = w^(−1/α); α = 1 is proportional fairness.',
  paper: 'Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, https://openreview.net/forum?id=KLmWRMg6nL',
  options,
  needs: () => ({ gradients: 'gram' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    const maxDiag = Math.max(0, ...G.map((r, i) => r[i]));
    if (!(maxDiag > 0)) return { weights: G.map(() => 1), state };
    const live = G.map((r, i) => i).filter((i) => G[i][i] > 1e-12 * maxDiag);
    const sub = live.map((i) => live.map((j) => G[i][j] + (i === j ? FAIRGRAD_RIDGE * maxDiag : 0)));
    const { weights: ws, residual } = fairgradWeights(sub, o.alpha);
    const weights = new Array<number>(T).fill(0);
    live.forEach((i, k) => (weights[i] = ws[k]));
    return { weights, state, info: { residual: weights.map(() => residual) } };
  },
};
