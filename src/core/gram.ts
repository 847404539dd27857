/**
 * Small helpers on the T×T Gram matrix `G[i][j] = <g_i, g_j>` and on weight vectors, shared by the
 * strategies. Plain numbers only; no tensors. Every division is guarded by a named epsilon.
 */

/** Guard for divisions by a gradient norm: a zero gradient is a defined case, never NaN. */
export const NORM_EPS = 1e-12;
/** Guard for divisions by a loss value or a loss reference. */
export const LOSS_EPS = 1e-12;

/** A read-only T×T matrix. */
export type Gram = readonly (readonly number[])[];

/** Per-term gradient norms `sqrt(G[i][i])` (negative round-off clipped to 0). */
export function norms(G: Gram): number[] {
  return G.map((row, i) => Math.sqrt(Math.max(row[i], 0)));
}

/** `G w`: entry i is `<g_i, Σ_j w_j g_j>`, the alignment of each term with the combined direction. */
export function gramTimes(G: Gram, w: readonly number[]): number[] {
  return G.map((row) => row.reduce((acc, gij, j) => acc + gij * w[j], 0));
}

/** `sqrt(wᵀ G w)`: the norm of the combined gradient `Σ w_i g_i`. */
export function combinedNorm(G: Gram, w: readonly number[]): number {
  const Gw = gramTimes(G, w);
  return Math.sqrt(Math.max(0, Gw.reduce((acc, v, i) => acc + v * w[i], 0)));
}

/**
 * The Gram matrix of the unit gradients `g_i / ‖g_i‖`. A zero gradient stays zero (its row and column
 * are 0) rather than producing NaN.
 */
export function normalizeGram(G: Gram, eps = NORM_EPS): number[][] {
  const n = norms(G);
  return G.map((row, i) => row.map((gij, j) => (n[i] > eps && n[j] > eps ? gij / (n[i] * n[j]) : 0)));
}

/** `G + eps·I`, for solves on a possibly rank-deficient Gram matrix. */
export function regularizeGram(G: Gram, eps: number): number[][] {
  return G.map((row, i) => row.map((gij, j) => (i === j ? gij + eps : gij)));
}

/** Scale weights so they sum to `total` (default: T). All-zero weights become uniform. */
export function renormalize(w: readonly number[], total = w.length): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  if (!(s > 0) || !Number.isFinite(s)) return w.map(() => total / w.length);
  return w.map((v) => (v * total) / s);
}

/** Numerically stable softmax of `x / temperature`. */
export function softmax(x: readonly number[], temperature = 1): number[] {
  const z = x.map((v) => v / temperature);
  const m = z.reduce((a, v) => Math.max(a, v), Number.NEGATIVE_INFINITY);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Arithmetic mean. */
export function mean(x: readonly number[]): number {
  return x.reduce((a, b) => a + b, 0) / x.length;
}
