/**
 * moco — Multi-objective gradient with Correction: tracks each term's gradient by a moving average y_i
 * (to correct the bias of stochastic gradients) and combines the tracked gradients with weights λ on
 * the simplex, updated by a projected-gradient step on ‖Yᵀλ‖².
 *
 * Paper: H. D. Fernando, H. Shen, M. Liu, S. Chaudhury, K. Murugesan, T. Chen, "Mitigating Gradient
 * Bias in Multi-objective Learning: A Provably Convergent Approach", ICLR 2023,
 * https://openreview.net/forum?id=dLAYGdKTi2 ; reference implementation LibMTL `MoCo`
 * (LibMTL/weighting/MoCo.py, "based on the author's sharing code"). torchjd has none.
 *
 * Formula, at update t = 1, 2, … (LibMTL's form):
 *
 *   ĝ_i = g_i / (‖g_i‖ + 1e-8) · L_i                                   (normalised, scaled by the loss)
 *   y_i ← y_i − β_t (y_i − ĝ_i),            β_t = beta / t^betaSigma    (y starts at 0)
 *   λ ← softmax(λ − γ_t (Y Yᵀ + ρ I) λ),    γ_t = gamma / t^gammaSigma  (λ starts at 1/T)
 *   d = Yᵀ λ
 *
 * Jacobian kind: Y (T×P) is per-coordinate state, kept on the backend as the tensor `y` (owned by the
 * Balancer, written into checkpoints); only Y Yᵀ (T×T) is downloaded. The logged weights are λ (they
 * sum to 1, so with `updateEvery` > 1 the steps in between use Σ λ_i g_i, a different scale from d).
 * The direction's scale is that of the losses (ĝ_i has norm L_i), as in LibMTL. Losses must be ≥ 0
 * (a negative loss would reverse its gradient). Heads take their own gradient (LibMTL backpropagates
 * each task's loss).
 *
 * Options (LibMTL's defaults): `beta` 0.5, `betaSigma` 0.5, `gamma` 0.1, `gammaSigma` 0.5, `rho` 0.
 */
import * as z from 'zod/mini';
import type { Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import { softmax } from '../src/core/gram.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { JacobianStrategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Step size of the gradient tracking y. @default 0.5 */
  beta: z._default(z.number().check(z.positive(), z.maximum(1, { message: 'at most 1 (the tracking step y ← y − β(y − g) overshoots beyond 1)' })), 0.5),
  /** Decay exponent of beta: β_t = beta / t^betaSigma. @default 0.5 */
  betaSigma: z._default(z.number().check(z.nonnegative()), 0.5),
  /** Step size of λ. @default 0.1 */
  gamma: z._default(z.number().check(z.positive()), 0.1),
  /** Decay exponent of gamma. @default 0.5 */
  gammaSigma: z._default(z.number().check(z.nonnegative()), 0.5),
  /** ℓ2 regularisation of the λ update. @default 0 */
  rho: z._default(z.number().check(z.nonnegative()), 0),
});

/**
 * Options of {@link moco}.
 * @useDeclaredType
 */
export type MoCoOptions = z.infer<typeof options>;

/** JSON state of {@link moco} (the tracked gradients Y are the tensor `y`). */
export interface MoCoState {
  /** Updates so far. */
  t: number;
  /** λ, on the simplex. */
  lambda: number[];
}

/**
 * The `moco` strategy (Fernando et al., ICLR 2023; LibMTL `MoCo`): tracked, normalised gradients
 * combined with simplex weights. Jacobian kind, tensor state `y`. Options: {@link MoCoOptions}.
 */
export const moco: JacobianStrategy<MoCoOptions, MoCoState> = {
  kind: 'jacobian',
  name: 'moco',
  summary: 'MoCo (Fernando et al. 2023, LibMTL): moving-average tracked gradients, combined with simplex weights λ updated on ‖Yᵀλ‖²; tensor state.',
  paper: 'Fernando et al., "Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent Approach", ICLR 2023, https://openreview.net/forum?id=dLAYGdKTi2',
  options,
  needs: () => ({ gradients: 'jacobian' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ t: ss.count, lambda: ss.perTerm(terms.length, 'nonNegative') }),
  init: (_o, terms) => ({ t: 0, lambda: terms.map(() => 1 / terms.length) }),
  aggregate(o, state, { jacobian: J, losses, tensors, tf }) {
    const T = J.shape[0];
    const t = state.t + 1;
    const betaT = o.beta / t ** o.betaSigma;
    const gammaT = o.gamma / t ** o.gammaSigma;
    const y = tf.tidy(() => {
      const norms = tf.sqrt(tf.sum(tf.square(J), 1, true));
      const ghat = tf.mul(tf.div(J, tf.add(norms, 1e-8)), tf.tensor2d(losses as number[], [T, 1]));
      const prev = (tensors.y as Tensor2D | undefined) ?? tf.zerosLike(J);
      return tf.sub(prev, tf.mul(betaT, tf.sub(prev, ghat))) as Tensor2D;
    });
    const YYt = tf.tidy(() => tf.matMul(y, y, false, true).dataSync());
    const step = state.lambda.map((_, i) =>
      state.lambda.reduce((acc, lj, j) => acc + (YYt[i * T + j] + (i === j ? o.rho : 0)) * lj, 0),
    );
    const lambda = softmax(state.lambda.map((l, i) => l - gammaT * step[i]));
    const direction = tf.tidy(() => tf.matMul(tf.tensor2d(lambda, [1, T]), y).reshape([-1]) as Tensor1D);
    return { direction, weights: lambda, state: { t, lambda }, tensors: { y } };
  },
};
