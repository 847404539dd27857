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
 * Cholesky factor of a symmetric positive definite matrix, kept up to date while the set of rows and
 * columns it factors changes one index at a time (the free set of an active-set QP). `L` is lower
 * triangular, row-major with stride `n`, and factors `Q[idx][idx]` for the indices `idx` in their
 * order. Appending an index costs one triangular solve (O(k²)); removing one is a rank-one update of
 * the trailing block (O(k²)); Golub & Van Loan, "Matrix Computations", 4th ed., §6.5.4 (updating a
 * Cholesky factorisation).
 */
class ActiveCholesky {
  readonly L: Float64Array;
  readonly idx: number[] = [];
  private readonly work: Float64Array;
  constructor(
    private readonly Q: Float64Array,
    private readonly n: number,
  ) {
    this.L = new Float64Array(n * n);
    this.work = new Float64Array(n);
  }

  /** Factor `Q[idx][idx]` from scratch. False when it is not numerically positive definite. */
  reset(idx: readonly number[]): boolean {
    this.idx.length = 0;
    for (const j of idx) if (!this.append(j)) return false;
    return true;
  }

  /** Add index `j` as the last row and column. False when the result is not positive definite. */
  append(j: number): boolean {
    const { L, Q, n, idx } = this;
    const k = idx.length;
    const row = k * n;
    let d = Q[j * n + j];
    for (let a = 0; a < k; a++) {
      let v = Q[idx[a] * n + j];
      const ra = a * n;
      for (let b = 0; b < a; b++) v -= L[ra + b] * L[row + b];
      v /= L[ra + a];
      L[row + a] = v;
      d -= v * v;
    }
    // Relative pivot floor: below it the face matrix is singular to working precision.
    if (!(d > 1e-13 * Math.abs(Q[j * n + j]))) return false;
    L[row + k] = Math.sqrt(d);
    idx.push(j);
    return true;
  }

  /** Remove the index at position `p` (rows and columns after it move up by one). */
  remove(p: number): void {
    const { L, n, idx, work: x } = this;
    const k = idx.length;
    // x = the removed column below the diagonal; shift rows p+1.. up and drop column p.
    for (let i = p + 1; i < k; i++) {
      const src = i * n;
      const dst = (i - 1) * n;
      x[i - 1] = L[src + p];
      for (let b = 0; b < p; b++) L[dst + b] = L[src + b];
      for (let b = p + 1; b <= i; b++) L[dst + b - 1] = L[src + b];
    }
    // The trailing block T (positions p..k-2) now needs T Tᵀ + x xᵀ: a rank-one update.
    for (let a = p; a < k - 1; a++) {
      const ra = a * n;
      const lkk = L[ra + a];
      const r = Math.hypot(lkk, x[a]);
      const c = r / lkk;
      const s = x[a] / lkk;
      L[ra + a] = r;
      for (let i = a + 1; i < k - 1; i++) {
        const ri = i * n;
        L[ri + a] = (L[ri + a] + s * x[i]) / c;
        x[i] = c * x[i] - s * L[ri + a];
      }
    }
    idx.splice(p, 1);
  }

  /** Solve `Q[idx][idx] y = rhs` in place (rhs has one entry per position). */
  solve(rhs: Float64Array): void {
    const { L, n } = this;
    const k = this.idx.length;
    for (let a = 0; a < k; a++) {
      const ra = a * n;
      let v = rhs[a];
      for (let b = 0; b < a; b++) v -= L[ra + b] * rhs[b];
      rhs[a] = v / L[ra + a];
    }
    for (let a = k - 1; a >= 0; a--) {
      let v = rhs[a];
      for (let b = a + 1; b < k; b++) v -= L[b * n + a] * rhs[b];
      rhs[a] = v / L[a * n + a];
    }
  }
}

/**
 * Solve `A x = b` for a symmetric positive definite `A` by a Cholesky factorisation (a Newton system
 * with a positive definite Hessian); null when `A` is not numerically positive definite or the result
 * is not finite. About three times cheaper than {@link solveLinear}'s LU and allocation-light.
 */
export function solveSPD(A: readonly (readonly number[])[], b: readonly number[]): number[] | null {
  const n = A.length;
  if (n === 0) return [];
  const Q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Q[i * n + j] = A[i][j];
  const ch = new ActiveCholesky(Q, n);
  if (!ch.reset([...Array(n).keys()])) return null;
  const y = Float64Array.from(b);
  ch.solve(y);
  const x = Array.from(y);
  return x.every(Number.isFinite) ? x : null;
}

/**
 * Minimise `½ xᵀQx + cᵀx` subject to `x ≥ lb` and, when `sum` is given, `Σ x = sum`, by a primal
 * active-set method (Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithm 16.3). `Q` must be
 * symmetric positive definite (callers add a ridge to a Gram matrix); then the method terminates at the
 * unique minimiser. With `sum`, `sum ≥ Σ lb` is required (otherwise the problem is infeasible: an error).
 *
 * The face systems are solved with a Cholesky factor of `Q` on the free set that is updated, not
 * recomputed, when one bound is released or hit (O(k²) per iteration for k free variables, see
 * `ActiveCholesky`). Start: `start` lists the variables that begin free (a warm start, e.g. the
 * previous solve's free set); by default, without `sum`, every variable whose bound multiplier is
 * negative at `x = lb` (those the method would release first, released at once: at T = 64 this saves
 * most of the one-at-a-time releases), and with `sum`, every variable. Any start gives the same
 * minimiser; only the number of iterations changes.
 */
export function solveBoundedQP(
  Q: Gram,
  c: readonly number[],
  lb: readonly number[],
  sum?: number,
  maxIter = 50 + 20 * Q.length,
  start?: readonly number[],
): QPResult {
  return new BoundedQP(Q).solve(c, lb, sum, maxIter, start);
}

/** How many times {@link BoundedQP} releases every negative multiplier at once before going one by one. */
const BULK_RELEASES = 3;

/** `out = Q x + c` for an n×n row-major `Q` (a plain loop on typed arrays, for the JIT). */
function gemv(Q: Float64Array, x: Float64Array, c: Float64Array, out: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    let v = c[i];
    const r = i * n;
    for (let j = 0; j < n; j++) v += Q[r + j] * x[j];
    out[i] = v;
  }
}

/**
 * {@link solveBoundedQP} for several problems with the same `Q` (UPGrad's T projections): `Q` is
 * copied once into a flat array and the work buffers are shared by the solves.
 */
export class BoundedQP {
  private readonly n: number;
  private readonly Qf: Float64Array;
  private readonly ch: ActiveCholesky;
  private readonly diagMax: number;
  private readonly x: Float64Array;
  private readonly g: Float64Array;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly p: Float64Array;
  private readonly isFree: Uint8Array;
  private readonly cf: Float64Array;

  constructor(Q: Gram) {
    const n = Q.length;
    this.n = n;
    this.Qf = new Float64Array(n * n);
    let m = 0;
    // Symmetrised (a Gram matrix read in float32 may differ from its transpose in the last bit).
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) this.Qf[i * n + j] = i === j ? Q[i][i] : (Q[i][j] + Q[j][i]) / 2;
      m = Math.max(m, Math.abs(Q[i][i]));
    }
    this.diagMax = m;
    this.ch = new ActiveCholesky(this.Qf, n);
    this.x = new Float64Array(n);
    this.g = new Float64Array(n);
    this.a = new Float64Array(n);
    this.b = new Float64Array(n);
    this.p = new Float64Array(n);
    this.isFree = new Uint8Array(n);
    this.cf = new Float64Array(n);
  }

  /** See {@link solveBoundedQP}. */
  solve(c: readonly number[], lb: readonly number[], sum?: number, maxIter = 50 + 20 * this.n, start?: readonly number[]): QPResult {
    const { n, Qf, ch, x, g, a, b, p, isFree } = this;
    const hasEq = sum !== undefined;
    const scale = c.reduce((m, v) => Math.max(m, Math.abs(v)), Math.max(this.diagMax, 1e-300));
    const tol = QP_TOL * scale * lb.reduce((m, v) => Math.max(m, Math.abs(v)), Math.max(1, hasEq ? Math.abs(sum) : 0));
    for (let i = 0; i < n; i++) x[i] = lb[i];
    const cf = this.cf;
    for (let i = 0; i < n; i++) cf[i] = c[i];
    const gradient = () => gemv(Qf, x, cf, g, n);
    // A feasible start: x = lb with the start set free and, with the equality, the slack spread over it.
    let free0: number[];
    if (start) free0 = [...new Set(start)].filter((i) => Number.isInteger(i) && i >= 0 && i < n).sort((u, v) => u - v);
    else if (hasEq) free0 = [...Array(n).keys()];
    else {
      gradient();
      free0 = [];
      for (let i = 0; i < n; i++) if (g[i] < -tol) free0.push(i);
    }
    if (hasEq) {
      const slack = sum - lb.reduce((u, v) => u + v, 0);
      if (slack < -1e-12 * Math.max(1, Math.abs(sum))) {
        throw new RangeError(`solveBoundedQP: infeasible, Σ lb = ${sum - slack} > sum = ${sum}`);
      }
      if (!free0.length) free0 = [...Array(n).keys()];
      for (const i of free0) x[i] += Math.max(slack, 0) / free0.length;
    }
    const done = (converged: boolean, iterations: number): QPResult => ({ x: Array.from(x), converged, iterations });
    isFree.fill(0);
    if (!ch.reset(free0)) return done(false, 0);
    for (const i of free0) isFree[i] = 1;
    // g = Qx + c is kept up to date through the steps (O(n·k) each) and recomputed in full only at
    // the start and before a convergence is declared.
    gradient();
    let stationary = false;
    let fresh = true;
    let bulk = 0;
    for (let iter = 0; iter < maxIter; iter++) {
      const F = ch.idx;
      const k = F.length;
      let nu = 0;
      if (!stationary && k > 0) {
        // Newton step on the face: Q_FF p_F = −(g_F + ν·1), with ν making Σ p_F = 0 under the equality.
        for (let t = 0; t < k; t++) a[t] = g[F[t]];
        ch.solve(a);
        if (hasEq) {
          for (let t = 0; t < k; t++) b[t] = 1;
          ch.solve(b);
          let sa = 0;
          let sb = 0;
          for (let t = 0; t < k; t++) {
            sa += a[t];
            sb += b[t];
          }
          nu = -sa / sb;
        }
        let pNorm = 0;
        let xNorm = 1;
        for (let t = 0; t < k; t++) {
          p[t] = -(a[t] + (hasEq ? nu * b[t] : 0));
          pNorm = Math.max(pNorm, Math.abs(p[t]));
          xNorm = Math.max(xNorm, Math.abs(x[F[t]]));
        }
        if (!Number.isFinite(pNorm)) return done(false, iter);
        if (pNorm > 1e-14 * xNorm) {
          // Step towards the face minimiser, stopping at the first bound it would cross.
          let step = 1;
          let block = -1;
          for (let t = 0; t < k; t++) {
            if (p[t] < 0) {
              const s = (lb[F[t]] - x[F[t]]) / p[t];
              if (s < step) {
                step = s;
                block = t;
              }
            }
          }
          fresh = false;
          for (let t = 0; t < k; t++) x[F[t]] += step * p[t];
          for (let t = 0; t < k; t++) p[t] *= step;
          if (block >= 0) {
            const i = F[block];
            p[block] += lb[i] - x[i];
            x[i] = lb[i];
            isFree[i] = 0;
          }
          // g += Q_{:,F} p_F, one contiguous row of the symmetric Q per free variable
          for (let t = 0; t < k; t++) {
            const pt = p[t];
            if (pt === 0) continue;
            const row = F[t] * n;
            for (let r = 0; r < n; r++) g[r] += Qf[row + r] * pt;
          }
          if (block >= 0) {
            ch.remove(block);
            continue;
          }
          stationary = true;
          fresh = false;
          continue;
        }
      }
      // Stationary on this face: release the bound with the most negative multiplier, if any.
      // With Σx = sum, ∇f = μ + ν·1 where μ ≥ 0 are the bound multipliers; ν = −∇f_i on the free set.
      if (hasEq) {
        if (k > 0) {
          let s = 0;
          for (const i of F) s += g[i];
          nu = -s / k;
        } else {
          nu = Number.POSITIVE_INFINITY;
          for (let i = 0; i < n; i++) nu = Math.min(nu, g[i]);
          nu = -nu;
        }
      }
      let worst = -1;
      let worstVal = -tol;
      for (let i = 0; i < n; i++) {
        if (isFree[i]) continue;
        const mu = g[i] + (hasEq ? nu : 0);
        if (mu < worstVal) {
          worstVal = mu;
          worst = i;
        }
      }
      if (worst < 0) {
        // Confirm on a freshly computed gradient (the running one carries the steps' round-off).
        if (fresh) return done(true, iter);
        gradient();
        fresh = true;
        iter--;
        continue;
      }
      // The first few times, release every bound whose multiplier is negative at once (as block
      // principal pivoting does; a released variable whose step points below its bound is caught by
      // the ratio test with a zero step); then one at a time, which guarantees termination.
      if (bulk < BULK_RELEASES) {
        bulk++;
        for (let i = 0; i < n; i++) {
          if (isFree[i] || i === worst || !(g[i] + (hasEq ? nu : 0) < -tol)) continue;
          if (!ch.append(i)) return done(false, iter);
          isFree[i] = 1;
        }
      }
      if (!ch.append(worst)) return done(false, iter);
      isFree[worst] = 1;
      stationary = false;
    }
    return done(false, maxIter);
  }
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
 * uniform weights). An all-zero G gives uniform weights. `start`: the variables to begin free (a warm
 * start, e.g. the support of a previous solution; default all).
 */
export function minNormSimplex(G: Gram, ridge = QP_RIDGE, start?: readonly number[]): QPResult {
  const T = G.length;
  const s = meanDiag(G);
  if (!(s > 0)) return { x: new Array(T).fill(1 / T), converged: true, iterations: 0 };
  const r = solveBoundedQP(scaledRidge(G, s, ridge), new Array(T).fill(0), new Array(T).fill(0), 1, undefined, start);
  // Clean tiny negative round-off (the active-set iterate is feasible up to it) and renormalise.
  const x = r.x.map((v) => Math.max(v, 0));
  const tot = x.reduce((a, b) => a + b, 0);
  return { ...r, x: x.map((v) => v / tot) };
}

/**
 * Weights `v` of the projection of `Jᵀu` onto the dual cone of the rows of `J` (the cone of directions
 * that conflict with no gradient), given `G = J Jᵀ`: by Proposition 1 of Quinton & Layeb, "Jacobian
 * Descent for Multi-Objective Optimization" (2024), `v = argmin_{v ≥ u} vᵀGv`, and the projection is
 * `Jᵀv`. `G` must be positive definite (add a ridge first, as UPGrad's `regEps` does). The solve
 * starts with the terms that conflict with `Jᵀu` free (`(Gu)_j < 0`, see {@link solveBoundedQP}).
 */
export function projectDualCone(G: Gram, u: readonly number[]): QPResult {
  return solveBoundedQP(G, new Array(G.length).fill(0), u);
}

/**
 * {@link projectDualCone} for each of the vectors `us` (UPGrad: every unit vector), sharing the copy
 * of `G` and the work buffers.
 */
export function projectDualConeEach(G: Gram, us: readonly (readonly number[])[]): QPResult[] {
  const qp = new BoundedQP(G);
  const zero = new Array<number>(G.length).fill(0);
  return us.map((u) => qp.solve(zero, u));
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
