/**
 * Small dense quadratic programs on a T×T Gram matrix, shared by the gradient-combination strategies
 * (MGDA's min-norm point, UPGrad's projection onto the dual cone, CAGrad's dual, Nash-MTL's
 * feasibility check). T is the number of loss terms (a handful), so exact active-set solves are cheap.
 *
 * Everything is plain numbers; linear solves and symmetric eigen-decompositions go through ml-matrix
 * (`LuDecomposition`, LU with partial pivoting; `EigenvalueDecomposition`, Householder tridiagonalisation
 * and implicit QL as in JAMA).
 * Each solver returns a feasible point even if its iteration cap is reached, and reports whether the
 * KKT conditions hold to tolerance, so a caller can validate rather than trust.
 *
 * @module
 */
import { EigenvalueDecomposition, LuDecomposition, Matrix } from 'ml-matrix';
import type { Gram } from './gram.js';

/** Relative tolerance of the QP solvers (on the KKT conditions, scaled by the problem). */
export const QP_TOL = 1e-12;

/** Result of {@link solveBoundedQP}. */
export interface QPResult {
  /** The minimiser. */
  x: number[];
  /** Whether the KKT conditions were met to tolerance (false: iteration cap or failed solve). */
  converged: boolean;
  /** Active-set iterations used. */
  iterations: number;
}

/** Solve the square system `A x = b` (ml-matrix LU with partial pivoting); null when singular or non-finite. */
export function solveLinear(A: readonly (readonly number[])[], b: readonly number[]): number[] | null {
  if (A.length === 0) return [];
  try {
    const lu = new LuDecomposition(new Matrix(A.map((r) => [...r])));
    if (lu.isSingular()) return null;
    const x = lu.solve(Matrix.columnVector([...b])).getColumn(0);
    return x.every(Number.isFinite) ? x : null;
  } catch {
    return null;
  }
}

/**
 * Minimise `½ xᵀQx + cᵀx` subject to `x ≥ lb` and, when `sum` is given, `Σ x = sum`, by a primal
 * active-set method (Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithm 16.3). `Q` must be
 * symmetric positive definite (callers add a ridge to a Gram matrix); then the method terminates at the
 * unique minimiser. With `sum`, `sum ≥ Σ lb` is required (otherwise the problem is infeasible: an error).
 */
export function solveBoundedQP(
  Q: Gram,
  c: readonly number[],
  lb: readonly number[],
  sum?: number,
  maxIter = 50 + 20 * Q.length,
): QPResult {
  const n = Q.length;
  const hasEq = sum !== undefined;
  const scale = [...Q.map((r, i) => Math.abs(r[i])), ...c.map(Math.abs)].reduce((m, v) => Math.max(m, v), 1e-300);
  const tol = QP_TOL * scale * lb.reduce((m, v) => Math.max(m, Math.abs(v)), Math.max(1, hasEq ? Math.abs(sum) : 0));
  // A feasible start: all bounds active, or (with the equality) the slack spread evenly.
  let x: number[];
  const active = new Array<boolean>(n).fill(!hasEq);
  if (hasEq) {
    const slack = sum - lb.reduce((a, b) => a + b, 0);
    if (slack < -1e-12 * Math.max(1, Math.abs(sum))) {
      throw new RangeError(`solveBoundedQP: infeasible, Σ lb = ${sum - slack} > sum = ${sum}`);
    }
    x = lb.map((l) => l + Math.max(slack, 0) / n);
  } else {
    x = [...lb];
  }
  for (let iter = 0; iter < maxIter; iter++) {
    const free = [...Array(n).keys()].filter((i) => !active[i]);
    // Minimiser of the objective on the current face: x_free solves the reduced KKT system.
    let target = [...x];
    let nu = 0;
    if (free.length > 0) {
      const k = free.length;
      const A: number[][] = free.map((i) => free.map((j) => Q[i][j]));
      const rhs = free.map((i) => -c[i] - active.reduce((acc, a, j) => (a ? acc + Q[i][j] * x[j] : acc), 0));
      if (hasEq) {
        A.forEach((row) => row.push(1));
        A.push([...new Array(k).fill(1), 0]);
        rhs.push(sum - active.reduce((acc, a, j) => (a ? acc + x[j] : acc), 0));
      }
      const z = solveLinear(A, rhs);
      if (!z) return { x, converged: false, iterations: iter };
      target = [...x];
      free.forEach((i, t) => (target[i] = z[t]));
      if (hasEq) nu = z[k];
    }
    const p = target.map((t, i) => t - x[i]);
    const pNorm = p.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    if (pNorm <= 1e-14 * x.reduce((m, v) => Math.max(m, Math.abs(v)), 1)) {
      // Stationary on this face: release the bound with the most negative multiplier, if any.
      const grad = Q.map((row, i) => row.reduce((acc, q, j) => acc + q * x[j], c[i]));
      if (hasEq && free.length === 0) nu = -grad.reduce((m, v) => Math.min(m, v), Number.POSITIVE_INFINITY);
      let worst = -1;
      let worstVal = -tol;
      for (let i = 0; i < n; i++) {
        // With Σx = sum, ∇f = μ + ν·1 where μ ≥ 0 are the bound multipliers.
        const mu = grad[i] + (hasEq ? nu : 0);
        if (active[i] && mu < worstVal) {
          worstVal = mu;
          worst = i;
        }
      }
      if (worst < 0) return { x, converged: true, iterations: iter };
      active[worst] = false;
      continue;
    }
    // Step towards the target, stopping at the first bound it would cross.
    let step = 1;
    let block = -1;
    for (const i of free) {
      if (p[i] < 0) {
        const s = (lb[i] - x[i]) / p[i];
        if (s < step) {
          step = s;
          block = i;
        }
      }
    }
    x = x.map((xi, i) => xi + step * p[i]);
    if (block >= 0) {
      x[block] = lb[block];
      active[block] = true;
    }
  }
  return { x, converged: false, iterations: maxIter };
}

/** Mean of the diagonal of `G` (the mean squared gradient norm); 0 for an all-zero Gram matrix. */
export function meanDiag(G: Gram): number {
  return G.length ? G.reduce((acc, row, i) => acc + Math.max(row[i], 0), 0) / G.length : 0;
}

/** `G / s + ridge·I`. */
function scaledRidge(G: Gram, s: number, ridge: number): number[][] {
  return G.map((row, i) => row.map((v, j) => v / s + (i === j ? ridge : 0)));
}

/** Relative ridge added to a Gram matrix before an exact QP solve (after scaling by its mean diagonal). */
export const QP_RIDGE = 1e-10;

/**
 * The min-norm point of the convex hull of the gradients: `argmin_{w ∈ Δ} wᵀGw` (Δ the probability
 * simplex), as in MGDA (Sener & Koltun 2018). Solved exactly by {@link solveBoundedQP} on
 * `G / mean(diag G) + ridge·I`: the scaling makes the result invariant to a global scale of `G`, the
 * ridge makes it unique (a rank-deficient G yields the min-‖w‖ minimiser; identical gradients give
 * uniform weights). An all-zero G gives uniform weights.
 */
export function minNormSimplex(G: Gram, ridge = QP_RIDGE): QPResult {
  const T = G.length;
  const s = meanDiag(G);
  if (!(s > 0)) return { x: new Array(T).fill(1 / T), converged: true, iterations: 0 };
  const r = solveBoundedQP(scaledRidge(G, s, ridge), new Array(T).fill(0), new Array(T).fill(0), 1);
  // Clean tiny negative round-off (the active-set iterate is feasible up to it) and renormalise.
  const x = r.x.map((v) => Math.max(v, 0));
  const tot = x.reduce((a, b) => a + b, 0);
  return { ...r, x: x.map((v) => v / tot) };
}

/**
 * Weights `v` of the projection of `Jᵀu` onto the dual cone of the rows of `J` (the cone of directions
 * that conflict with no gradient), given `G = J Jᵀ`: by Proposition 1 of Quinton & Layeb, "Jacobian
 * Descent for Multi-Objective Optimization" (2024), `v = argmin_{v ≥ u} vᵀGv`, and the projection is
 * `Jᵀv`. `G` must be positive definite (add a ridge first, as UPGrad's `regEps` does).
 */
export function projectDualCone(G: Gram, u: readonly number[]): QPResult {
  return solveBoundedQP(G, new Array(G.length).fill(0), u);
}

/**
 * Euclidean projection of `y` onto the probability simplex `{w ≥ 0, Σ w = 1}` (sort-based algorithm of
 * Held, Wolfe & Crowder 1974; see Duchi et al., ICML 2008, Fig. 1).
 */
export function projectSimplex(y: readonly number[]): number[] {
  const u = [...y].sort((a, b) => b - a);
  let cum = 0;
  let theta = 0;
  for (let k = 0; k < u.length; k++) {
    cum += u[k];
    const t = (cum - 1) / (k + 1);
    if (u[k] - t > 0) theta = t;
  }
  return y.map((v) => Math.max(v - theta, 0));
}

/**
 * The KKT residual of `argmin_{x ≥ lb, [Σx = sum]} ½xᵀQx + cᵀx` at `x` (for tests and validation):
 * the largest violation of primal feasibility, dual feasibility and complementarity, relative to the
 * scale of the problem.
 */
export function kktResidual(Q: Gram, c: readonly number[], lb: readonly number[], x: readonly number[], sum?: number): number {
  const n = Q.length;
  const grad = Q.map((row, i) => row.reduce((acc, q, j) => acc + q * x[j], c[i]));
  const scale = [...grad.map(Math.abs), ...Q.map((r, i) => Math.abs(r[i]))].reduce((m, v) => Math.max(m, v), 1e-300);
  let res = 0;
  for (let i = 0; i < n; i++) res = Math.max(res, lb[i] - x[i]);
  let nu = 0;
  if (sum !== undefined) {
    res = Math.max(res, Math.abs(x.reduce((a, b) => a + b, 0) - sum));
    // ν = −∇f_i on the free coordinates (all equal at a KKT point); pick the one at the largest slack.
    let best = -1;
    for (let i = 0; i < n; i++) if (best < 0 || x[i] - lb[i] > x[best] - lb[best]) best = i;
    nu = -grad[best];
  }
  for (let i = 0; i < n; i++) {
    const mu = grad[i] + nu; // bound multiplier, must be ≥ 0, and 0 where the bound is inactive
    res = Math.max(res, -mu / scale, (Math.abs(mu) / scale) * Math.min(1, Math.abs(x[i] - lb[i])));
  }
  return res;
}

/** Eigen-decomposition of a symmetric matrix: eigenvalues in descending order with unit eigenvectors. */
export interface SymmetricEigen {
  values: number[];
  /** `vectors[k]` is the eigenvector of `values[k]`. */
  vectors: number[][];
}

/**
 * Eigen-decomposition of the symmetric part of `G` (ml-matrix `EigenvalueDecomposition` with
 * `assumeSymmetric`: Householder tridiagonalisation, then implicit QL), sorted by descending eigenvalue.
 */
export function symmetricEigen(G: Gram): SymmetricEigen {
  const n = G.length;
  if (n === 0) return { values: [], vectors: [] };
  const S = G.map((row, i) => row.map((v, j) => (v + G[j][i]) / 2));
  const e = new EigenvalueDecomposition(new Matrix(S), { assumeSymmetric: true });
  const V = e.eigenvectorMatrix;
  const pairs = e.realEigenvalues
    .map((value, k) => ({ value, vector: V.getColumn(k) }))
    .sort((a, b) => b.value - a.value);
  if (pairs.length !== n) throw new Error(`symmetricEigen: got ${pairs.length} eigenpairs for a ${n}×${n} matrix`);
  return { values: pairs.map((p) => p.value), vectors: pairs.map((p) => p.vector) };
}

/**
 * Moore–Penrose pseudo-inverse of a symmetric positive semi-definite matrix times a vector, `G⁺b`, from
 * its eigen-decomposition; eigenvalues below `max(λ)·T·2⁻⁵²·relTol` count as zero.
 */
export function psdPinvSolve(G: Gram, b: readonly number[], relTol = 1): number[] {
  const { values, vectors } = symmetricEigen(G);
  const cut = Math.max(0, values[0] ?? 0) * G.length * Number.EPSILON * relTol;
  const out = new Array(G.length).fill(0);
  values.forEach((lam, k) => {
    if (!(lam > cut)) return;
    const v = vectors[k];
    const coef = v.reduce((acc, vi, i) => acc + vi * b[i], 0) / lam;
    v.forEach((vi, i) => (out[i] += coef * vi));
  });
  return out;
}
