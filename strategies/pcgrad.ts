/**
 * pcgrad — gradient surgery: each term's gradient drops its component along every other term's
 * gradient it conflicts with, and the surgically altered gradients are summed.
 *
 * Paper: T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman, C. Finn, "Gradient Surgery for Multi-Task
 * Learning", NeurIPS 2020. https://arxiv.org/abs/2001.06782 (Algorithm 1).
 *
 * In words: for every term i, start from g_i^PC = g_i and visit the other terms j ≠ i in a random
 * order; whenever ⟨g_i^PC, g_j⟩ < 0, project: g_i^PC ← g_i^PC − (⟨g_i^PC, g_j⟩ / ‖g_j‖²)·g_j. The
 * projection is always against the ORIGINAL g_j, never an already projected one (tianheyu927/PCGrad#2),
 * and each term draws its own order (as torchjd does). The update is Σ_i g_i^PC.
 *
 * On the Gram matrix: each g_i^PC is tracked as a coefficient vector c (g_i^PC = Σ_k c_k g_k), so
 * ⟨g_i^PC, g_j⟩ = (G c)_j. A projection adds −⟨g_i^PC, g_j⟩/‖g_j‖² > 0 to c_j, and c_i stays 1, so
 * the weights w = Σ_i c^(i) are ≥ 1 each: with no conflict at all they are all ones (the plain sum).
 * Only the shared parameters take part: the trainer forms G over them (Pytorch-PCGrad#1). A zero
 * gradient g_j conflicts with nothing and is never projected against.
 *
 * Randomness: the orders come from the seeded generator of src/core/rng.ts, whose state is kept in the
 * strategy state, so a run (and a resumed run) reproduces exactly with the same `seed`.
 *
 * Options: `seed` (seed of the order generator) @default 0.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { NORM_EPS, type Gram } from '../src/core/gram.js';
import { permutation, seedRng, type RngState } from '../src/core/rng.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Seed of the random projection orders. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link pcgrad}.
 * @useDeclaredType
 */
export type PCGradOptions = z.infer<typeof options>;

/** State of {@link pcgrad}. */
export interface PCGradState {
  /** mulberry32 state (src/core/rng.ts). */
  rng: RngState;
}

/**
 * PCGrad's weights on the original gradients for given visiting orders: `orders[i]` is the order in
 * which term i visits the others (entries equal to i are ignored). Returns `w` with
 * `Σ_i g_i^PC = Σ_k w_k g_k`, and per term the number of projections its gradient underwent.
 */
export function pcgradWeights(G: Gram, orders: readonly (readonly number[])[]): { weights: number[]; projections: number[] } {
  const T = G.length;
  const w = new Array<number>(T).fill(0);
  const projections = new Array<number>(T).fill(0);
  const scale = Math.max(0, ...G.map((r, i) => r[i]));
  for (let i = 0; i < T; i++) {
    const c = new Array<number>(T).fill(0);
    c[i] = 1;
    for (const j of orders[i]) {
      if (j === i) continue;
      const gjj = G[j][j];
      if (!(gjj > NORM_EPS * Math.max(scale, 1e-300))) continue; // a zero gradient conflicts with nothing
      const inner = G[j].reduce((acc, gjk, k) => acc + gjk * c[k], 0);
      if (inner < 0) {
        c[j] -= inner / gjj;
        projections[i]++;
      }
    }
    c.forEach((ck, k) => (w[k] += ck));
  }
  return { weights: w, projections };
}

/**
 * The `pcgrad` strategy (Yu et al., NeurIPS 2020): gradient surgery, each term's gradient loses its
 * components along the gradients it conflicts with (seeded random order), then the results are summed.
 * Options: {@link PCGradOptions}; state: {@link PCGradState}.
 */
export const pcgrad: Strategy<PCGradOptions, PCGradState> = {
  name: 'pcgrad',
  summary: 'PCGrad (Yu et al. 2020): project away conflicting components against the original gradients, random order, sum.',
  paper: 'Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, https://arxiv.org/abs/2001.06782',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({ rng: ss.rng }),
  init: (o) => ({ rng: seedRng(o.seed) }),
  update(_o, state, { gram }) {
    const G = gram!;
    const T = G.length;
    let rng = state.rng;
    const orders: number[][] = [];
    for (let i = 0; i < T; i++) {
      let perm: number[];
      [perm, rng] = permutation(rng, T);
      orders.push(perm);
    }
    const { weights, projections } = pcgradWeights(G, orders);
    return { weights, state: { rng }, info: { projections } };
  },
};
