/**
 * nash-mtl — the terms bargain over the update direction; the Nash bargaining solution gives each term a
 * weight inversely related to how much the common direction already helps it.
 *
 * Paper: A. Navon, A. Shamsian, I. Achituve, H. Maron, K. Kawaguchi, G. Chechik, E. Fetaya,
 * "Multi-Task Learning as a Bargaining Game", ICML 2022. https://arxiv.org/abs/2202.01017
 * (official code github.com/AvivNavon/nash-mtl).
 *
 * In words: the weights α > 0 solve Gα = 1/α (element-wise), i.e. ⟨g_i, d⟩ = 1/α_i for d = Σα_j g_j
 * (so ‖d‖² = αᵀGα = T whatever the gradient scale, and α scales as 1/‖g‖). The official code
 * approximates the solution by a sequence of convex problems (cvxpy/ECOS, ≤ 20 CCP steps, on G/‖G‖_F
 * but with ‖G‖_F put back into its constraint, so that it converges to the solution for the raw G: we
 * checked this by replicating its loop with scipy, see test/fixtures/nash-mtl.json). We solve the
 * system exactly: on Ĝ = G/‖G‖_F for conditioning, then α = α̂/√‖G‖_F. Ĝα̂ = 1/α̂ is the stationarity
 * condition of the strictly convex f(α) = ½αᵀĜα − Σ log α_i on α > 0, minimised by damped Newton
 * (Hessian Ĝ + diag(1/α²), Cholesky solve, backtracking Armijo line search that keeps α > 0; full
 * steps once the residual is below 1e-6, where f's change is below its round-off), quadratically
 * convergent, warm-started from the previous step's α.
 *
 * f is bounded below, so the solution exists, exactly when 0 is not in the convex hull of the gradients
 * (a v ≥ 0, v ≠ 0 with Jᵀv = 0 makes f → −∞ along v): opposite gradients, a zero gradient or any
 * Pareto-stationary point have no Nash-MTL weights. We check this first (MGDA's min-norm point, src/core/qp.ts)
 * and validate every solution (finite, positive, max_i |α_i(Gα)_i − 1| ≤ 1e-6); otherwise the previous
 * weights are kept (all ones before any solve) and `info.fallback` is 1 — the official solver can fail
 * or return huge weights there (AvivNavon/nash-mtl#7, #14, #15).
 *
 * `maxNorm` > 0 then scales the weights down so that ‖Σ α_i g_i‖ ≤ maxNorm (on the raw G), as torchjd
 * does; the official code instead clips the gradient norm of the shared parameters only.
 * `updateFrequency` k solves only every k-th update and reuses α in between (the Gram matrix is still
 * read each step, and maxNorm uses it).
 *
 * Options: `updateFrequency` @default 1; `maxNorm` (0 disables) @default 1 (official code). Since
 * ‖Σα_i g_i‖ = √T before the cap, the default cap makes every step's direction norm 1 for T ≥ 2.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { combinedNorm, gramTimes, type Gram } from '../src/core/gram.js';
import { meanDiag, minNormSimplex, solveSPD } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Solve every this many updates, reuse the weights in between. @default 1 */
  updateFrequency: z._default(z.number().check(z.int(), z.positive()), 1),
  /** Upper bound on ‖Σ w_i g_i‖ (0: none). @default 1 */
  maxNorm: z._default(z.number().check(z.nonnegative()), 1),
});

/**
 * Options of {@link nashMtl}.
 * @useDeclaredType
 */
export type NashMTLOptions = z.infer<typeof options>;

/** State of {@link nashMtl}. */
export interface NashMTLState {
  /** Updates seen (solves happen when step % updateFrequency === 0). */
  step: number;
  /** The last accepted solution α for the raw G (before maxNorm), all ones before any. */
  alpha: number[];
}

/** Accepted residual max_i |α_i (Gα)_i − 1| of a Nash-MTL solution. */
export const NASH_TOL = 1e-6;

/** Residual below which {@link solveNash} takes full Newton steps without a line search on f. */
const NEWTON_REGION = 1e-6;

/** max_i |α_i (Gα)_i − 1| from a given Gα. */
function residualOf(Ga: readonly number[], a: readonly number[]): number {
  let r = 0;
  for (let i = 0; i < a.length; i++) r = Math.max(r, Math.abs(a[i] * Ga[i] - 1));
  return r;
}

/** max_i |α_i (Gα)_i − 1|. */
export function nashResidual(G: Gram, a: readonly number[]): number {
  return residualOf(gramTimes(G, a), a);
}

/**
 * Solve Gα = 1/α (α > 0) by damped Newton on ½αᵀGα − Σ log α_i from `start`. Returns null when there
 * is no solution (0 in the convex hull of the gradients) or the iteration fails validation.
 */
export function solveNash(G: Gram, start?: readonly number[], maxIter = 100): number[] | null {
  const T = G.length;
  const s = meanDiag(G);
  if (!(s > 0)) return null;
  // Existence: the min-norm point of the hull must be away from 0 (relative to the gradient scale).
  const mn = minNormSimplex(G).x;
  const mnSq = mn.reduce((acc, wi, i) => acc + wi * G[i].reduce((a, g, j) => a + g * mn[j], 0), 0);
  if (!(mnSq > 1e-10 * s)) return null;
  const f = (a: readonly number[]) =>
    0.5 * a.reduce((acc, ai, i) => acc + ai * G[i].reduce((x, g, j) => x + g * a[j], 0), 0) -
    a.reduce((acc, ai) => acc + Math.log(ai), 0);
  // Start: the given point if usable, else the solution's scale along the all-ones direction.
  let a: number[] =
    start && start.length === T && start.every((v) => Number.isFinite(v) && v > 0)
      ? [...start]
      : new Array(T).fill(1 / Math.sqrt(Math.max(G.reduce((acc, r) => acc + r.reduce((x, y) => x + y, 0), 0), 1e-300) / T));
  for (let it = 0; it < maxIter; it++) {
    const Ga = G.map((row) => row.reduce((acc, g, j) => acc + g * a[j], 0));
    const grad = Ga.map((v, i) => v - 1 / a[i]);
    const res = residualOf(Ga, a);
    if (res < 1e-13) break;
    const H = G.map((row, i) => row.map((g, j) => (i === j ? g + 1 / (a[i] * a[i]) : g)));
    const dir = solveSPD(H, grad.map((g) => -g));
    if (!dir) return null;
    const slope = grad.reduce((acc, g, i) => acc + g * dir[i], 0);
    if (!(slope < 0)) break; // no descent left: at the minimum up to round-off
    let t = 1;
    for (let i = 0; i < T; i++) if (dir[i] < 0) t = Math.min(t, (-0.99 * a[i]) / dir[i]);
    let next = a.map((ai, i) => ai + t * dir[i]);
    if (res < NEWTON_REGION && t === 1) {
      // Close to the solution Newton converges quadratically; there the change of f is below its
      // round-off and an Armijo test on f would reject good steps (100 iterations of 40 halvings each
      // at T = 128 before): accept the full step when it lowers the residual, else stop.
      if (!(nashResidual(G, next) < res)) break;
      a = next;
      continue;
    }
    const f0 = f(a);
    while (f(next) > f0 + 1e-4 * t * slope && t > 1e-12) {
      t /= 2;
      next = a.map((ai, i) => ai + t * dir[i]);
    }
    if (!(t > 1e-12)) break; // the line search stalled on round-off: keep the current point
    a = next;
  }
  const ok = a.every((v) => Number.isFinite(v) && v > 0) && nashResidual(G, a) <= NASH_TOL;
  return ok ? a : null;
}

/**
 * The `nash-mtl` strategy (Navon et al., ICML 2022): the Nash bargaining solution Gα = 1/α, solved by
 * a damped Newton method on the Gram matrix and validated, falling back to the previous weights.
 * Options: {@link NashMTLOptions}; state: {@link NashMTLState}.
 */
export const nashMtl: Strategy<NashMTLOptions, NashMTLState> = {
  name: 'nash-mtl',
  summary: 'Nash-MTL (Navon et al. 2022): bargaining solution Gα = 1/α, exact damped Newton, validated with fallback to the previous weights.',
  paper: 'Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, https://arxiv.org/abs/2202.01017',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ step: ss.count, alpha: ss.perTerm(terms.length, 'positive') }),
  init: (_o, terms) => ({ step: 0, alpha: terms.map(() => 1) }),
  initialWeights: (_o, s) => [...s.alpha],
  update(o, state, { gram }) {
    const G = gram!;
    let alpha = state.alpha;
    let fallback = 0;
    if (state.step % o.updateFrequency === 0) {
      const fro = Math.sqrt(G.reduce((acc, row) => acc + row.reduce((x, g) => x + g * g, 0), 0));
      const rootFro = Math.sqrt(fro);
      const start = state.alpha.map((a) => a * rootFro);
      const solved = fro > 0 ? solveNash(G.map((row) => row.map((g) => g / fro)), start) : null;
      if (solved) alpha = solved.map((a) => a / rootFro);
      else fallback = 1;
    }
    let weights = [...alpha];
    if (o.maxNorm > 0) {
      const norm = combinedNorm(G, weights);
      if (norm > o.maxNorm) weights = weights.map((w) => (w * o.maxNorm) / norm);
    }
    return {
      weights,
      state: { step: state.step + 1, alpha: [...alpha] },
      info: { alpha: [...alpha], fallback: weights.map(() => fallback) },
    };
  },
};
