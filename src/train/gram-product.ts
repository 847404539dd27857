/**
 * The Gram product `G = M Mᵀ` of a T×P gradient matrix on the tfjs backend, at many terms (issue 27).
 * Called inside the caller's `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * `Mᵀ` for a T×P matrix, as `M` viewed as T × (P/c) × c transposed to (P/c) × c × T when P has a
 * divisor c between 64 and 1024 (else the plain 2-D transpose). Same values. On tfjs-backend-wasm 4.22
 * the 3-D permutation runs about twice as fast as the 2-D one at these shapes (Gram product
 * M·Mᵀ at T = 64, P = 32768: 23 ms against 43 ms; T = 64, P = 82432: 59 against 93 ms; T = 16,
 * P = 82432: 6.6 against 9.1 ms; measured one after the other, wasm, docs/benchmarks.md).
 */
export function transposeRows(M: tf.Tensor2D): tf.Tensor2D {
  const [T, P] = M.shape;
  const c = blockOf(P);
  if (c === 0) return tf.transpose(M);
  return tf.tidy(() => {
    // tfjs counts a reshaped view's bytes as its own: release the input view as soon as it is read
    const view = M.reshape([T, P / c, c]);
    const t = tf.transpose(view, [1, 2, 0]);
    view.dispose();
    return t.reshape([P, T]) as tf.Tensor2D;
  });
}

/**
 * The stacked per-term gradients D (T × B × out) laid out term by term with B innermost:
 * (T·out) × B. The out axis is split into blocks of 32 (when it divides) and permuted as a 4-D
 * transpose, which on tfjs-backend-wasm 4.22 runs faster than the 3-D one (T = 64, B = 128, out = 256:
 * about 5.5 ms against 9 ms, measured one after the other; issue 27).
 */
export function transposeInner(D: tf.Tensor, T: number, B: number, out: number): tf.Tensor2D {
  return tf.tidy(() => {
    const c = out % 32 === 0 && out > 32 ? 32 : 0;
    const view = c ? D.reshape([T, B, out / c, c]) : D.reshape([T, B, out]);
    const t = c ? tf.transpose(view, [0, 2, 3, 1]) : tf.transpose(view, [0, 2, 1]);
    view.dispose();
    return t.reshape([T * out, B]) as tf.Tensor2D;
  });
}

/** A divisor of P in [64, 1024] (the largest power of two first, then any), or 0. */
function blockOf(P: number): number {
  for (let c = 1024; c >= 64; c /= 2) if (P % c === 0) return c;
  for (let c = 1024; c >= 64; c--) if (P % c === 0) return c;
  return 0;
}

/** `G = M Mᵀ` (T×T). */
export function gramProduct(M: tf.Tensor2D): tf.Tensor2D {
  const T = M.shape[0];
  // wasm: a transposed operand is slow beyond a few rows (T=16, P=32768: 28 ms with transposeB,
  // 11 ms with an explicit transpose, measured interleaved); for T ≤ 4 transposeB is the faster one.
  return T > 4 ? tf.matMul(M, transposeRows(M)) : tf.matMul(M, M, false, true);
}
