/**
 * rgw — Random Gradient Weighting: fresh random weights on the per-term gradients of the shared
 * variables every update; each head keeps its own unweighted gradient.
 *
 * Paper: B. Lin, F. Ye, Y. Zhang, I. W. Tsang, "Reasonable Effectiveness of Random Weighting: A Litmus
 * Test for Multi-Task Learning", TMLR 2022, https://openreview.net/forum?id=jjtFD8A1Wx (LibMTL, branch
 * v1.1.6, LibMTL/weighting/RGW.py; it is no longer on LibMTL's main branch).
 *
 * In words: every update draws z_i ~ N(0, 1) and combines the shared gradients as
 *
 *   d = Σ_i w_i g_i,   w_i = T · exp(z_i) / Σ_j exp(z_j),
 *
 * while a variable that only term i reaches (its head) takes g_i itself (`headWeights: 'unit'`: LibMTL
 * backpropagates each loss unweighted to read the gradients, then overwrites the shared ones). That is
 * the one difference from `rlw`, which weights the losses (heads included); both draw the same numbers
 * for the same seed. LibMTL uses softmax(z) (Σ = 1); the factor T makes the expected weight 1. It reads
 * per-term gradients (T backward passes or the representation mode) but not the Gram matrix's values.
 * The normal samples come from the seeded generator of src/core/rng.ts, kept in the state.
 *
 * Options: `seed` @default 0.
 */
import * as z from 'zod/mini';
import { seedRng, type RngState } from '../src/core/rng.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';
import { randomSoftmaxWeights } from './rlw.js';

const options = z.strictObject({
  /** Seed of the normal draws. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link rgw}.
 * @useDeclaredType
 */
export type RgwOptions = z.infer<typeof options>;

/** State of {@link rgw}: the generator's state. */
export interface RgwState {
  /** State of the seeded generator (src/core/rng.ts), advanced at every update. */
  rng: RngState;
}

/**
 * The `rgw` strategy (Lin et al., TMLR 2022): Random Gradient Weighting, T·softmax of seeded standard
 * normal samples on the shared gradients, heads unweighted. Options: {@link RgwOptions}; state:
 * {@link RgwState}.
 */
export const rgw: Strategy<RgwOptions, RgwState> = {
  name: 'rgw',
  summary: 'Random Gradient Weighting (Lin et al. 2022): T·softmax(N(0,1)) on the shared gradients, heads unweighted; seeded.',
  paper: 'Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting", TMLR 2022, https://openreview.net/forum?id=jjtFD8A1Wx',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({ rng: ss.rng }),
  init: (o) => ({ rng: seedRng(o.seed) }),
  update: (_o, state, { losses }) => randomSoftmaxWeights(state.rng, losses.length),
};
