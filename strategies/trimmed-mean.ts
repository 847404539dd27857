/**
 * trimmed-mean — coordinate-wise trimmed mean of the per-term gradients: in every coordinate the
 * `trimNumber` largest and `trimNumber` smallest values are dropped and the rest averaged.
 * Jacobian kind: an order statistic per coordinate is not a function of inner products.
 *
 * Paper: D. Yin, Y. Chen, K. Ramchandran, P. Bartlett, "Byzantine-Robust Distributed Learning: Towards
 * Optimal Statistical Rates", ICML 2018. https://proceedings.mlr.press/v80/yin18a/yin18a.pdf
 * (Definition 2, coordinate-wise trimmed mean). Reference implementation: torchjd `TrimmedMean`
 * (src/torchjd/aggregation/_trimmed_mean.py).
 *
 * Formula: with b = trimNumber and, for coordinate p, the sorted values J_(1)p ≤ … ≤ J_(T)p,
 *
 *   d_p = T · (1 / (T − 2b)) · Σ_{k = b+1}^{T−b} J_(k)p .
 *
 * The factor T is the library's sum convention (as for `upgrad`): identical gradients g give T·g,
 * the plain sum; torchjd returns the mean, 1/T of ours. Requires T ≥ 2b + 1 (an error naming the
 * option otherwise). No JSON or tensor state; weights logged as all ones.
 *
 * Options: `trimNumber` (values removed at each end, per coordinate) @default 1 (torchjd has no
 * default; 1 is the smallest that trims anything, and makes T = 3 the median).
 */
import * as z from 'zod/mini';
import type { Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import type { JacobianStrategy, Tf } from '../src/core/types.js';

const options = z.strictObject({
  /** Number of largest and of smallest values removed in each coordinate. @default 1 */
  trimNumber: z._default(z.number().check(z.int(), z.nonnegative()), 1),
});

/**
 * Options of {@link trimmedMean}.
 * @useDeclaredType
 */
export type TrimmedMeanOptions = z.infer<typeof options>;

/**
 * The coordinate-wise trimmed mean of the rows of `J` (T×P), times T: shape [P]. `T ≥ 2·trimNumber + 1`.
 */
export function trimmedMeanDirection(tf: Tf, J: Tensor2D, trimNumber: number): Tensor1D {
  return tf.tidy(() => {
    const T = J.shape[0];
    const keep = T - 2 * trimNumber;
    if (trimNumber === 0) return tf.sum(J, 0) as Tensor1D;
    // topk sorts the last axis (descending): P×T, then the middle columns.
    const sorted = tf.topk(tf.transpose(J), T, true).values;
    const middle = tf.slice(sorted, [0, trimNumber], [-1, keep]);
    return tf.mul(tf.mean(middle, 1), T) as Tensor1D;
  });
}

/**
 * The `trimmed-mean` strategy (Yin et al., ICML 2018; torchjd `TrimmedMean`): in each coordinate drop
 * the `trimNumber` largest and smallest per-term values, average the rest (times T). Jacobian kind.
 * Options: {@link TrimmedMeanOptions}.
 */
export const trimmedMean: JacobianStrategy<TrimmedMeanOptions, Record<string, never>> = {
  kind: 'jacobian',
  name: 'trimmed-mean',
  summary: 'TrimmedMean (Yin et al. 2018, torchjd): per coordinate, drop the trimNumber largest and smallest gradient values, average the rest (×T).',
  paper: 'Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018, https://proceedings.mlr.press/v80/yin18a/yin18a.pdf',
  options,
  needs: () => ({ gradients: 'jacobian' }),
  minTerms: (o) => 2 * o.trimNumber + 1,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  aggregate(o, state, { jacobian, tf }) {
    return { direction: trimmedMeanDirection(tf, jacobian, o.trimNumber), weights: Array<number>(jacobian.shape[0]).fill(1), state };
  },
};
