/**
 * rlw — Random Loss Weighting: fresh random weights every update, the baseline every balancing
 * method should beat.
 *
 * Paper: B. Lin, F. Ye, Y. Zhang, I. W. Tsang, "Reasonable Effectiveness of Random Weighting: A Litmus
 * Test for Multi-Task Learning", TMLR 2022. https://openreview.net/forum?id=jjtFD8A1Wx
 * (also LibMTL, LibMTL/weighting/RLW.py).
 *
 * In words: every update draws z_i ~ N(0, 1) independently per term and uses
 *
 *   w_i = T · exp(z_i) / Σ_j exp(z_j).
 *
 * The paper and LibMTL use softmax(z) (Σ = 1); the factor T here makes the expected weight 1, the
 * scale of equal weighting and of this library's other strategies (a constant factor: equivalent to
 * a learning-rate factor of T). The normal samples come from the seeded generator of src/core/rng.ts
 * (Box–Muller on mulberry32) whose state is kept in the strategy state: the same seed gives the same
 * weights, also across a checkpoint. Loss values are not read at all (any sign is fine); T = 1 gives
 * weight 1.
 *
 * Options: `seed` @default 0.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { softmax } from '../src/core/gram.js';
import { normal, seedRng, type RngState } from '../src/core/rng.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Seed of the normal draws. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link rlw}.
 * @useDeclaredType
 */
export type RlwOptions = z.infer<typeof options>;

/** State of {@link rlw}: the generator's state. */
export interface RlwState {
  /** State of the seeded generator (src/core/rng.ts), advanced at every update. */
  rng: RngState;
}

/** Draw `n` standard normal samples; returns them and the next generator state. */
export function normals(state: RngState, n: number): [number[], RngState] {
  const out: number[] = [];
  let s = state;
  for (let i = 0; i < n; i++) {
    let z: number;
    [z, s] = normal(s);
    out.push(z);
  }
  return [out, s];
}

/**
 * The random weights of RLW (on the losses) and RGW (on the gradients), from the same rule:
 * T·softmax(z) with z T seeded standard normal samples; the advanced RNG state; the sample as info.
 */
export function randomSoftmaxWeights(rng: RngState, T: number): { weights: number[]; state: { rng: RngState }; info: { sample: number[] } } {
  const [z, next] = normals(rng, T);
  return { weights: softmax(z).map((p) => T * p), state: { rng: next }, info: { sample: z } };
}

/**
 * The `rlw` strategy (Lin et al., TMLR 2022): Random Loss Weighting, T·softmax of seeded standard
 * normal samples at every update; the baseline a balancer should beat. Options: {@link RlwOptions};
 * state: {@link RlwState}.
 */
export const rlw: Strategy<RlwOptions, RlwState> = {
  name: 'rlw',
  summary: 'Random Loss Weighting (Lin et al. 2022): T·softmax of standard normal samples each step; seeded.',
  paper: 'Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting", TMLR 2022, https://openreview.net/forum?id=jjtFD8A1Wx',
  options,
  needs: () => ({ gradients: 'none' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({ rng: ss.rng }),
  init: (o) => ({ rng: seedRng(o.seed) }),
  update: (_o, state, { losses }) => randomSoftmaxWeights(state.rng, losses.length),
};
