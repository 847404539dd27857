/**
 * The trainer's side of Jacobian-kind strategies (see `JacobianStrategy` in src/core/types.ts): the
 * direction over the flattened shared variables is cut back into one gradient per variable, and the
 * variables outside the shared ones take their terms' gradients as for the Gram kind. Called inside
 * the caller's `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';
import type { UpdateResult } from '../core/balancer.js';
import { combine, type TermGrads } from './grads.js';

/**
 * The gradients to apply after a Jacobian-kind update: for each shared variable its slice of
 * `result.direction` (reshaped; the layout of `gradientMatrix`), or `Σ w_i g_i` when the strategy
 * returned weights only; every other variable some term reaches `Σ w_i g_i`, or `g_i` unscaled when
 * one term reaches it and `headWeights` is `'unit'`.
 */
export function jacobianGrads(
  termGrads: readonly TermGrads[],
  result: UpdateResult,
  shared: readonly tf.Variable[],
  vars: readonly tf.Variable[],
  headWeights: 'weighted' | 'unit',
): tf.NamedTensorMap {
  const d = result.direction;
  if (!d) return combine(termGrads, result.weights, vars, headWeights);
  const sharedNames = new Set(shared.map((v) => v.name));
  const rest = combine(termGrads, result.weights, vars.filter((v) => !sharedNames.has(v.name)), headWeights);
  let offset = 0;
  for (const v of shared) {
    rest[v.name] = tf.slice(d, [offset], [v.size]).reshape(v.shape);
    offset += v.size;
  }
  // In the order of `vars`, as every other step builds them: tfjs optimizers (Adam, RMSProp, ...)
  // keep their slots by the POSITION of a name in the map, so another order on a later step would
  // give a variable another variable's moments (a shape error, or silently wrong moments).
  const out: tf.NamedTensorMap = {};
  for (const v of vars) if (rest[v.name]) out[v.name] = rest[v.name];
  for (const [k, g] of Object.entries(rest)) if (!out[k]) out[k] = g;
  return out;
}
