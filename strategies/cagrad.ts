/**
 * cagrad — conflict-averse gradient descent: the direction, within a ball around the average gradient,
 * that maximises the worst improvement over the terms.
 *
 * Paper: B. Liu, X. Liu, X. Jin, P. Stone, Q. Liu, "Conflict-Averse Gradient Descent for Multi-task
 * Learning", NeurIPS 2021. https://arxiv.org/abs/2110.14048 (Algorithm 1; official code
 * github.com/Cranial-XIX/CAGrad).
 *
 * In words: with g0 = (1/T)Σ g_i and √φ = c‖g0‖, CAGrad solves
 *   max_d min_i ⟨g_i, d⟩  s.t. ‖d − g0‖ ≤ √φ,
 * through its dual over the simplex,
 *   w* = argmin_{w ∈ Δ} ⟨g_w, g0⟩ + √φ‖g_w‖,   g_w = Σ w_i g_i,
 * and steps along d = g0 + (√φ/‖g_w*‖)·g_w*. All of it is read from G: ⟨g_w, g0⟩ = wᵀG1/T,
 * ‖g_w‖² = wᵀGw.
 *
 * Solver (exact, instead of the official few hundred SGD steps / scipy SLSQP): at the optimum, w* also
 * minimises the QP ½‖g_w + μ g0‖² over the simplex for μ = ‖g_w*‖/√φ (the two problems have the same
 * KKT conditions). So we find μ > 0 with ‖g_{w(μ)}‖ = √φ·μ by the Illinois root finder (bracketed
 * regula falsi, ~10 evaluations), each w(μ) being an exact min-norm QP of the shifted gradients
 * g_i + μ g0 (src/core/qp.ts), whose Gram matrix is G_ij + μ(Gb)_i + μ(Gb)_j + μ²‖g0‖², b = 1/T.
 * Each QP starts from the support of the previous one (a warm start: the optimal face changes little
 * from one μ to the next), which makes the ~10 solves cost about one at T = 64.
 *
 * Weights on the original gradients (the "sum" convention of the official code, which multiplies d by
 * T to match the summed loss): w_i = (1 + T·λ·w*_i) / r with λ = √φ/‖g_w*‖, and r = 1 (rescale 0),
 * 1 + c² (rescale 1), 1 + c (rescale 2). These are ≥ 0, and all 1/r when c = 0. They are invariant to a
 * global scale of G: the dual is solved on G / mean(diag G), and because the weights multiply the
 * original (not normalised) gradients there is nothing to "scale back" (Cranial-XIX/CAGrad#1: rescale
 * back only when normalised gradients were combined).
 *
 * Degenerate cases: g0 = 0 (the gradients cancel) or c = 0: d = g0, weights 1/r. If the optimum is
 * g_w* = 0 (possible only at a Pareto-stationary point with c ≥ 1), the direction is undefined and the
 * weights are all 0 (no update), as in torchjd.
 *
 * Options: `c` (radius of the ball relative to ‖g0‖; the convergence guarantee needs c < 1; at most
 * 1e3) @default 0.5; `rescale` (0 | 1 | 2, see above) @default 1 (official NYUv2 code and LibMTL).
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { NORM_EPS, type Gram } from '../src/core/gram.js';
import { meanDiag, minNormSimplex } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

/**
 * Largest accepted `c`. The paper's convergence guarantee needs c < 1 and its experiments use c ≤ 0.9;
 * c = 1e308 (accepted before) overflowed √φ = c‖g0‖ and c², so that every step was skipped. At c = 1e3
 * the ball is already a thousand times wider than the mean gradient and the dual is still solved in
 * double precision.
 */
export const CAGRAD_MAX_C = 1e3;

const options = z.strictObject({
  /**
   * Radius of the ball around g0, relative to ‖g0‖, at most 1e3 (`CAGRAD_MAX_C`). @default 0.5
   */
  c: z._default(z.number().check(z.nonnegative(), z.maximum(CAGRAD_MAX_C)), 0.5),
  /** Final division: 0 none, 1 by 1 + c², 2 by 1 + c. @default 1 */
  rescale: z._default(z.union([z.literal(0), z.literal(1), z.literal(2)]), 1),
});

/** Relative ridge of the inner min-norm QPs (small: it perturbs ‖g_w‖ near a Pareto-stationary point). */
const CAGRAD_RIDGE = 1e-12;

/**
 * Options of {@link cagrad}.
 * @useDeclaredType
 */
export type CAGradOptions = z.infer<typeof options>;

/**
 * CAGrad's dual solution on a Gram matrix: `w` on the simplex and `lambda` = √φ/‖g_w‖ so that the
 * direction is g0 + lambda·g_w (`lambda` is null when that direction is undefined, g_w = 0).
 */
export function cagradDual(G: Gram, c: number): { w: number[]; lambda: number | null } {
  const T = G.length;
  const s = meanDiag(G);
  const uniform = new Array<number>(T).fill(1 / T);
  if (!(s > 0)) return { w: uniform, lambda: 0 };
  const Gs = G.map((row) => row.map((v) => v / s));
  const Gb = Gs.map((row) => row.reduce((a, b) => a + b, 0) / T);
  const g0sq = Math.max(0, Gb.reduce((a, b) => a + b, 0) / T);
  const sqrtPhi = c * Math.sqrt(g0sq);
  if (!(sqrtPhi > Math.sqrt(NORM_EPS))) return { w: uniform, lambda: 0 };
  // ‖g_w‖ over the support of w only (w is sparse at many terms)
  const normOf = (w: readonly number[]) => {
    const nz = w.flatMap((v, i) => (v !== 0 ? [i] : []));
    let acc = 0;
    for (const i of nz) for (const j of nz) acc += w[i] * Gs[i][j] * w[j];
    return Math.sqrt(Math.max(0, acc));
  };
  // Each solve starts from the support of the previous one (the active set moves little with μ).
  let support: number[] | undefined;
  const solve = (mu: number) => {
    const Gmu = Gs.map((row, i) => row.map((v, j) => v + mu * (Gb[i] + Gb[j]) + mu * mu * g0sq));
    const w = minNormSimplex(Gmu, CAGRAD_RIDGE, support).x;
    support = w.flatMap((v, i) => (v > 0 ? [i] : []));
    return { w, h: normOf(w) };
  };
  const maxNorm = Math.sqrt(Math.max(...Gs.map((r, i) => r[i])));
  let hi = (2 * maxNorm) / sqrtPhi; // there ‖g_w‖ ≤ max‖g_i‖ < √φ·μ
  // A lower end where ‖g_w‖ > √φ·μ: near 0 when the min-norm point is not 0 (or when c < 1).
  let lo = hi * 1e-3;
  let atLo = solve(lo);
  while (!(atLo.h > sqrtPhi * lo) && lo > hi * 1e-12) {
    hi = lo;
    lo *= 0.1;
    atLo = solve(lo);
  }
  if (!(atLo.h > sqrtPhi * lo)) return { w: atLo.w, lambda: null };
  // Illinois (modified regula falsi) on φ(μ) = ‖g_w(μ)‖ − √φ·μ, keeping the bracket φ(lo) > 0 > φ(hi).
  let fLo = atLo.h - sqrtPhi * lo;
  const atHi = solve(hi);
  let fHi = atHi.h - sqrtPhi * hi;
  let best = fLo < -fHi ? atLo : atHi;
  let bestF = Math.min(fLo, -fHi);
  let side = 0;
  for (let k = 0; k < 100 && bestF > 1e-14 * sqrtPhi * hi && hi - lo > 1e-14 * hi; k++) {
    let x = (lo * fHi - hi * fLo) / (fHi - fLo);
    if (!(x > lo && x < hi)) x = (lo + hi) / 2;
    const at = solve(x);
    const f = at.h - sqrtPhi * x;
    if (Math.abs(f) < bestF) {
      best = at;
      bestF = Math.abs(f);
    }
    if (f > 0) {
      lo = x;
      fLo = f;
      if (side === 1) fHi /= 2;
      side = 1;
    } else {
      hi = x;
      fHi = f;
      if (side === -1) fLo /= 2;
      side = -1;
    }
  }
  const w = best.w;
  const h = normOf(w);
  return { w, lambda: h > Math.sqrt(NORM_EPS) ? sqrtPhi / h : null };
}

/**
 * The `cagrad` strategy (Liu et al., NeurIPS 2021): conflict-averse gradient descent, the direction
 * within a ball around the mean gradient that maximises the worst term's improvement (dual solved
 * exactly on the Gram matrix). Options: {@link CAGradOptions}.
 */
export const cagrad: Strategy<CAGradOptions, Record<string, never>> = {
  name: 'cagrad',
  summary: 'CAGrad (Liu et al. 2021): maximise the worst-term improvement in a ball around the mean gradient; dual solved exactly on G.',
  paper: 'Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021, https://arxiv.org/abs/2110.14048',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    const r = o.rescale === 0 ? 1 : o.rescale === 1 ? 1 + o.c * o.c : 1 + o.c;
    const { w, lambda } = cagradDual(G, o.c);
    const weights = lambda === null ? w.map(() => 0) : w.map((wi) => (1 + T * lambda * wi) / r);
    return { weights, state, info: { dual: w } };
  },
};
