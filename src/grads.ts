/**
 * Gradient reading on the tfjs backend: per-term gradients w.r.t. the trained variables, the Gram
 * matrix and statistics over the shared ones, and the weighted combination. Only T×T (+2T) numbers
 * leave the backend. Every function here is called inside the caller's `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';
import { BalancerError } from './errors.js';
import type { GradientStats } from './types.js';

/** A term's gradients, by variable name (variables the term does not reach are absent). */
export type TermGrads = Map<string, tf.Tensor>;

/**
 * Per-term gradients: one `tf.variableGrads` per term (each re-evaluates `terms`, then keeps one
 * term). Returns the loss value tensors and the gradients. A term that reaches none of `vars` is an
 * error naming it.
 */
export function perTermGradients(
  terms: () => Record<string, tf.Scalar>,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
): { values: tf.Scalar[]; grads: TermGrads[] } {
  const values: tf.Scalar[] = [];
  const grads: TermGrads[] = [];
  for (const name of names) {
    let out: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      out = tf.variableGrads(() => {
        const t = terms();
        check(t);
        return scalarOf(t, name);
      }, vars as tf.Variable[]);
    } catch (e) {
      if (e instanceof BalancerError) throw e;
      const msg = (e as Error).message ?? String(e);
      if (/connection between any variable/i.test(msg)) {
        throw new BalancerError(
          `term "${name}" has no gradient path to any of the trained variables (${vars.length} variables); check that it is computed from the model inside terms()`,
        );
      }
      throw e;
    }
    values.push(out.value);
    grads.push(new Map(Object.entries(out.grads)));
  }
  return { values, grads };
}

/** `t[name]` checked to be a scalar tensor; errors name the term. */
export function scalarOf(t: Record<string, tf.Tensor>, name: string): tf.Scalar {
  const v = t[name];
  if (!(v instanceof tf.Tensor)) throw new BalancerError(`term "${name}" is not a tensor (got ${typeof v})`);
  if (v.rank !== 0) {
    throw new BalancerError(`term "${name}" must be a scalar loss; got shape [${v.shape.join(', ')}] (reduce it with tf.mean)`);
  }
  return v as tf.Scalar;
}

/**
 * Variables that two or more terms reach: the shared trunk. With one term, or when no variable is
 * reached by two terms, every variable some term reaches.
 */
export function detectShared(grads: readonly TermGrads[], vars: readonly tf.Variable[]): tf.Variable[] {
  const count = (v: tf.Variable) => grads.filter((g) => g.has(v.name)).length;
  const shared = vars.filter((v) => count(v) >= 2);
  return shared.length ? shared : vars.filter((v) => count(v) >= 1);
}

/** The T×P matrix of per-term gradients flattened over `shared` (zeros where a term does not reach). */
export function gradientMatrix(grads: readonly TermGrads[], shared: readonly tf.Variable[]): tf.Tensor2D {
  const rows = grads.map((g) =>
    tf.concat(shared.map((v) => (g.get(v.name) ?? tf.zerosLike(v)).reshape([-1]))),
  );
  return tf.stack(rows) as tf.Tensor2D;
}

/** What {@link readGram} downloads. */
export interface GramReading {
  gram: number[][];
  stats?: GradientStats;
}

/** `G = M Mᵀ` (and mean/max |g| per row when `withStats`), downloaded as plain numbers. */
export function readGram(M: tf.Tensor2D, withStats: boolean): GramReading {
  const T = M.shape[0];
  const G = tf.matMul(M, M, false, true);
  const parts: tf.Tensor[] = [G.reshape([-1])];
  if (withStats) {
    const abs = M.abs();
    parts.push(abs.mean(1), abs.max(1));
  }
  const flat = tf.concat(parts).dataSync();
  const gram = Array.from({ length: T }, (_, i) => Array.from(flat.subarray(i * T, (i + 1) * T)));
  if (!withStats) return { gram };
  const off = T * T;
  return {
    gram,
    stats: {
      meanAbs: Array.from(flat.subarray(off, off + T)),
      maxAbs: Array.from(flat.subarray(off + T, off + 2 * T)),
    },
  };
}

/** `Σ_i w_i g_i` for every variable some term reaches (terms with weight 0 still count as reached). */
export function combine(grads: readonly TermGrads[], weights: readonly number[], vars: readonly tf.Variable[]): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const v of vars) {
    let acc: tf.Tensor | null = null;
    grads.forEach((g, i) => {
      const gi = g.get(v.name);
      if (!gi) return;
      const term = gi.mul(weights[i]);
      acc = acc ? acc.add(term) : term;
    });
    if (acc) out[v.name] = acc;
  }
  return out;
}
