/**
 * excess-mtl — weights by excess risk: each term's distance to its own optimum is estimated from its
 * gradient and a diagonal (AdaGrad) curvature estimate, relative to its first value, and the weights
 * grow exponentially with it (mirror ascent on the simplex scaled to sum T).
 *
 * Paper: Y. He, S. Zhou, G. Zhang, H. Yun, Y. Xu, B. Zeng, T. Chilimbi, H. Zhao, "Robust Multi-Task
 * Learning with Excess Risks", ICML 2024, https://openreview.net/forum?id=JzWFmMySpn ; reference
 * implementation LibMTL `ExcessMTL` (LibMTL/weighting/ExcessMTL.py, from the authors' code). torchjd
 * has none.
 *
 * Formula, per update (LibMTL's form):
 *
 *   S_i ← S_i + g_i ⊙ g_i                       (S starts at 0; per coordinate)
 *   e_i = Σ_p g_ip² / √(S_ip + 1e-7)            (excess-risk estimate gᵀ H⁻¹ g, H = diag √S)
 *   first update: e_i(0) = e_i, weights stay 1
 *   later:        w_i ← w_i · exp(stepSize · e_i / e_i(0)),  then w ← T · w / Σ w
 *
 * and the update is Σ w_i g_i (LibMTL backpropagates Σ w_i L_i: heads are weighted too). Jacobian
 * kind: S (T×P) is per-coordinate state, kept as the tensor `gradSum`; only the T numbers e are
 * downloaded; the strategy returns weights, no direction. A term whose first estimate e_i(0) is 0 (a
 * zero gradient) keeps ratio 0 instead of LibMTL's division by zero.
 *
 * Options: `stepSize` (LibMTL's robust_step_size) @default 0.01.
 */
import * as z from 'zod/mini';
import type { Tensor2D } from '@tensorflow/tfjs';
import { softmax } from '../src/core/gram.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { JacobianStrategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Step size of the exponential weight update. @default 0.01 */
  stepSize: z._default(z.number().check(z.nonnegative()), 0.01),
});

/**
 * Options of {@link excessMtl}.
 * @useDeclaredType
 */
export type ExcessMTLOptions = z.infer<typeof options>;

/** JSON state of {@link excessMtl} (the sums of squared gradients are the tensor `gradSum`). */
export interface ExcessMTLState {
  /** The weights in force (sum T). */
  weights: number[];
  /** e_i of the first update (null before it). */
  initial: number[] | null;
}

/**
 * The `excess-mtl` strategy (He et al., ICML 2024; LibMTL `ExcessMTL`): weights grow with each term's
 * estimated excess risk. Jacobian kind, tensor state `gradSum`. Options: {@link ExcessMTLOptions}.
 */
export const excessMtl: JacobianStrategy<ExcessMTLOptions, ExcessMTLState> = {
  kind: 'jacobian',
  name: 'excess-mtl',
  summary: 'ExcessMTL (He et al. 2024, LibMTL): weights grow exponentially with each term\'s excess risk, estimated from its gradient and an AdaGrad diagonal; tensor state.',
  paper: 'He et al., "Robust Multi-Task Learning with Excess Risks", ICML 2024, https://openreview.net/forum?id=JzWFmMySpn',
  options,
  needs: () => ({ gradients: 'jacobian' }),
  headWeights: 'weighted',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      weights: ss.perTerm(terms.length, 'nonNegative'),
      initial: z.nullable(ss.perTerm(terms.length, 'nonNegative')),
    }),
  init: (_o, terms) => ({ weights: terms.map(() => 1), initial: null }),
  aggregate(o, state, { jacobian: J, tensors, tf }) {
    const T = J.shape[0];
    const gradSum = tf.tidy(() => tf.add((tensors.gradSum as Tensor2D | undefined) ?? tf.zerosLike(J), tf.square(J)) as Tensor2D);
    const e = Array.from(tf.tidy(() => tf.sum(tf.div(tf.square(J), tf.sqrt(tf.add(gradSum, 1e-7))), 1).dataSync()));
    if (state.initial === null) return { weights: [...state.weights], state: { weights: [...state.weights], initial: e }, tensors: { gradSum }, info: { excess: e.map((v) => (v > 0 ? 1 : 0)) } };
    const ratio = e.map((v, i) => (state.initial![i] > 0 ? v / state.initial![i] : 0));
    // w·exp(η r), renormalised to sum T, computed in log space (a large η·r would overflow exp).
    const logits = state.weights.map((w, i) => Math.log(w) + ratio[i] * o.stepSize);
    const weights = softmax(logits).map((v) => v * T);
    return { weights, state: { weights, initial: state.initial }, tensors: { gradSum }, info: { excess: ratio } };
  },
};
