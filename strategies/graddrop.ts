/**
 * graddrop — gradient sign dropout: in every coordinate one sign is kept at random, with probability
 * given by how much the terms agree on it, and the per-term values of the other sign are dropped.
 * Jacobian kind: the mask is per coordinate.
 *
 * Paper: Z. Chen, J. Ngiam, Y. Huang, T. Luong, H. Kretzschmar, Y. Chai, D. Anguelov, "Just Pick a
 * Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020.
 * https://arxiv.org/abs/2010.06808 (Algorithm 1, lines 10–15). Reference implementation: torchjd
 * `GradDrop` (src/torchjd/aggregation/_graddrop.py), on parameter gradients, which is what this is.
 *
 * Formula, per coordinate p of the T×P Jacobian J:
 *
 *   P_p = ½ (1 + Σ_i J_ip / Σ_i |J_ip|)          (the positive sign purity; ½ when the column is 0)
 *   U_p ~ Uniform(0, 1)
 *   M_ip = [P_p > U_p]·[J_ip > 0] + [P_p < U_p]·[J_ip < 0]
 *   d_p = Σ_i (ℓ_i + (1 − ℓ_i) M_ip) J_ip            (ℓ = leak)
 *
 * LibMTL's `GradDrop` is the same rule applied at the representation (LibMTL requires rep_grad: its
 * "gradients" are ∂L_i/∂z multiplied by sign(z) and summed over the batch before the purity is
 * formed, and an ε = 1e-7 is added to Σ|J|); it cannot be run on parameter gradients there. This
 * library runs on the parameters (torchjd's form) since the method needs the coordinates and has no
 * representation mode. A zero column gives d_p = 0 either way (torchjd divides 0/0 there; we
 * guard it).
 *
 * Randomness: U is drawn with `tf.randomUniform` (generated on the host, identical on every backend)
 * from a seed taken from the generator of src/core/rng.ts, whose state is in the strategy state: a
 * run, and a resumed run, reproduce exactly with the same `seed`. Weights logged as all ones (the
 * direction is a masked sum).
 *
 * Options: `leak` (one number for every term, or one per term, each in [0, 1]) @default 0 (LibMTL's
 * default; torchjd's default "None" is also no leak); `seed` @default 0.
 */
import * as z from 'zod/mini';
import type { Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import { BalancerError } from '../src/core/errors.js';
import { seedRng, uniform, type RngState } from '../src/core/rng.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { JacobianStrategy, Tf } from '../src/core/types.js';

const unit = z.number().check(z.minimum(0), z.maximum(1));
const options = z.strictObject({
  /** How much of each term's gradient always goes through: one number, or one per term, in [0, 1]. @default 0 */
  leak: z._default(z.union([unit, z.array(unit)]), 0),
  /** Seed of the random thresholds U. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link graddrop}.
 * @useDeclaredType
 */
export type GradDropOptions = z.infer<typeof options>;

/** State of {@link graddrop}. */
export interface GradDropState {
  /** mulberry32 state (src/core/rng.ts); each update draws the seed of its U from it. */
  rng: RngState;
}

/**
 * GradDrop's direction for given thresholds `U` (shape [P], in [0, 1)) and per-term leaks: shape [P].
 */
export function graddropDirection(tf: Tf, J: Tensor2D, U: Tensor1D, leak: readonly number[]): Tensor1D {
  return tf.tidy(() => {
    const sum = tf.sum(J, 0);
    const abs = tf.sum(tf.abs(J), 0);
    const zero = tf.equal(abs, 0);
    const purity = tf.mul(0.5, tf.add(1, tf.where(zero, tf.zerosLike(sum), tf.div(sum, tf.where(zero, tf.onesLike(abs), abs)))));
    const keepPos = tf.greater(purity, U).expandDims(0);
    const keepNeg = tf.less(purity, U).expandDims(0);
    const mask = tf.logicalOr(tf.logicalAnd(keepPos, tf.greater(J, 0)), tf.logicalAnd(keepNeg, tf.less(J, 0))).toFloat();
    const l = tf.tensor2d(leak as number[], [leak.length, 1]);
    const coef = tf.add(l, tf.mul(tf.sub(1, l), mask));
    return tf.sum(tf.mul(coef, J), 0) as Tensor1D;
  });
}

/**
 * The `graddrop` strategy (Chen et al., NeurIPS 2020; torchjd `GradDrop`): per coordinate, keep one
 * sign at random with the probability of its purity and drop the other sign's values (with a leak).
 * Jacobian kind, seeded. Options: {@link GradDropOptions}; state: {@link GradDropState}.
 */
export const graddrop: JacobianStrategy<GradDropOptions, GradDropState> = {
  kind: 'jacobian',
  name: 'graddrop',
  summary: 'GradDrop (Chen et al. 2020, torchjd/LibMTL): per coordinate keep one gradient sign at random, weighted by sign purity; seeded.',
  paper: 'Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020, https://arxiv.org/abs/2010.06808',
  options,
  needs: () => ({ gradients: 'jacobian' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({ rng: ss.rng }),
  init(o, terms) {
    if (Array.isArray(o.leak) && o.leak.length !== terms.length) {
      throw new BalancerError(`graddrop: option "leak" has ${o.leak.length} entries for ${terms.length} terms (${terms.join(', ')}); give one number or one per term`);
    }
    return { rng: seedRng(o.seed) };
  },
  aggregate(o, state, { jacobian, tf }) {
    const T = jacobian.shape[0];
    const [u, rng] = uniform(state.rng);
    const direction = tf.tidy(() => {
      const U = tf.randomUniform([jacobian.shape[1]], 0, 1, 'float32', Math.floor(u * 4294967296)) as Tensor1D;
      return graddropDirection(tf, jacobian, U, Array.isArray(o.leak) ? o.leak : Array<number>(T).fill(o.leak));
    });
    return { direction, weights: Array<number>(T).fill(1), state: { rng } };
  },
};
