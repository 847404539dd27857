/**
 * gradvac — Gradient Vaccine: like PCGrad, but each pair of terms is pulled towards an adaptive target
 * cosine (an EMA of the cosines seen so far) instead of towards orthogonality.
 *
 * Paper: Z. Wang, Y. Tsvetkov, O. Firat, Y. Cao, "Gradient Vaccine: Investigating and Improving
 * Multi-task Optimization in Massively Multilingual Models", ICLR 2021,
 * https://openreview.net/forum?id=F1vEjWK-lH_ (Algorithm 1); reference implementation LibMTL
 * `GradVac` (LibMTL/weighting/GradVac.py; torchjd has none). torchjd has no GradVac, so LibMTL is the
 * reference and its defaults are ours.
 *
 * In words, for every term i (in order), starting from g_i^V = g_i, visit the other terms j in a
 * random order: with ρ = ⟨g_i^V, g_j⟩ / (‖g_i^V‖‖g_j‖ + ε) and the target φ̂_ij,
 *
 *   if ρ < φ̂_ij:  g_i^V ← g_i^V + ‖g_i^V‖ (φ̂_ij √(1−ρ²) − ρ √(1−φ̂_ij²)) / (‖g_j‖ √(1−φ̂_ij²) + ε) · g_j
 *   φ̂_ij ← (1 − β) φ̂_ij + β ρ                 (φ̂ starts at 0; updated on every visit)
 *
 * and the update is Σ_i g_i^V. Gram kind, exact for LibMTL's default granularity (whole model,
 * `GradVac_group_type = 0`): g_i^V is tracked as coefficients c on the original gradients, so every
 * inner product and norm is read from G (as `pcgrad` does). The per-layer granularities (group types
 * 1 and 2) need one Gram matrix per layer and are not offered. The added multiples are ≥ 0, so the
 * weights are ≥ 1. Heads take their own gradient (LibMTL backpropagates each task's loss).
 *
 * Randomness: the visiting orders come from the seeded generator of src/core/rng.ts (LibMTL uses
 * Python's random.shuffle); the state holds it and the T×T targets φ̂.
 *
 * Options: `beta` (β, EMA rate of the targets) @default 0.5 (LibMTL's default; the paper uses 0.01);
 * `eps` (ε, LibMTL's 1e-8, absolute) @default 1e-8; `seed` @default 0.
 */
import * as z from 'zod/mini';
import type { Gram } from '../src/core/gram.js';
import { permutation, seedRng, type RngState } from '../src/core/rng.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** EMA rate of the target cosines φ̂. @default 0.5 */
  beta: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0.5),
  /** Added to the denominators (absolute, as in LibMTL). @default 1e-8 */
  eps: z._default(z.number().check(z.nonnegative()), 1e-8),
  /** Seed of the random visiting orders. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link gradvac}.
 * @useDeclaredType
 */
export type GradVacOptions = z.infer<typeof options>;

const TARGET_RULE = 'must be a cosine target, a finite number from -1 to 1';
const TARGET = z.number({ message: TARGET_RULE }).check(z.minimum(-1.001, { message: TARGET_RULE }), z.maximum(1.001, { message: TARGET_RULE }));

/** State of {@link gradvac}. */
export interface GradVacState {
  /** mulberry32 state (src/core/rng.ts). */
  rng: RngState;
  /** φ̂[i][j]: target cosine of term i's gradient with term j's. */
  targets: number[][];
}

/** One GradVac step for given visiting orders: weights and the new targets. */
export function gradvacStep(
  G: Gram,
  targets: readonly (readonly number[])[],
  orders: readonly (readonly number[])[],
  beta: number,
  eps: number,
): { weights: number[]; targets: number[][] } {
  const T = G.length;
  const phi = targets.map((r) => [...r]);
  const w = new Array<number>(T).fill(0);
  // c: g_i^V's coefficients; Gc = G c and cGc = ‖g_i^V‖² are updated with each added multiple of g_j
  // (O(T) per pair instead of a fresh G c), so that a step is O(T³) rather than O(T⁴).
  const c = new Float64Array(T);
  const Gc = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    c.fill(0);
    c[i] = 1;
    for (let k = 0; k < T; k++) Gc[k] = G[k][i];
    let cGc = G[i][i];
    for (const j of orders[i]) {
      if (j === i) continue;
      const normI = Math.sqrt(Math.max(0, cGc));
      const normJ = Math.sqrt(Math.max(0, G[j][j]));
      const rho = Gc[j] / (normI * normJ + eps);
      const t = phi[i][j];
      if (rho < t) {
        const add = (normI * (t * Math.sqrt(Math.max(0, 1 - rho * rho)) - rho * Math.sqrt(Math.max(0, 1 - t * t)))) / (normJ * Math.sqrt(Math.max(0, 1 - t * t)) + eps);
        c[j] += add;
        cGc += 2 * add * Gc[j] + add * add * G[j][j];
        for (let k = 0; k < T; k++) Gc[k] += add * G[k][j];
      }
      phi[i][j] = (1 - beta) * t + beta * rho;
    }
    for (let k = 0; k < T; k++) w[k] += c[k];
  }
  return { weights: w, targets: phi };
}

/**
 * The `gradvac` strategy (Wang et al., ICLR 2021; LibMTL `GradVac`): PCGrad towards adaptive target
 * cosines. Options: {@link GradVacOptions}; state: {@link GradVacState}.
 */
export const gradvac: Strategy<GradVacOptions, GradVacState> = {
  name: 'gradvac',
  summary: 'GradVac (Wang et al. 2021, LibMTL): pull each pair of gradients towards an EMA target cosine (PCGrad with adaptive targets), sum; seeded.',
  paper: 'Wang et al., "Gradient Vaccine: Investigating and Improving Multi-task Optimization in Massively Multilingual Models", ICLR 2021, https://openreview.net/forum?id=F1vEjWK-lH_',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /**
   * Checked by `Balancer.load()` before a saved state is loaded. A target is an average of cosines,
   * so within [−1, 1] (up to rounding of a Gram matrix computed in float32, hence the 1e-3 slack); a
   * larger one would make the next steps' corrections explode (the denominator √(1 − φ²) vanishes).
   */
  state: (terms) =>
    z.strictObject({
      rng: ss.rng,
      targets: z
        .array(z.array(TARGET, { message: `must be a list of ${terms.length} cosine targets` }).check(z.length(terms.length, { message: `must have ${terms.length} entries, one per term` })), {
          message: `must be a ${terms.length}×${terms.length} matrix (a list of lists)`,
        })
        .check(z.length(terms.length, { message: `must have ${terms.length} rows, one per term` })),
    }),
  init: (o, terms) => ({ rng: seedRng(o.seed), targets: terms.map(() => terms.map(() => 0)) }),
  update(o, state, { gram }) {
    const G = gram!;
    let rng = state.rng;
    const orders: number[][] = [];
    for (let i = 0; i < G.length; i++) {
      let perm: number[];
      [perm, rng] = permutation(rng, G.length);
      orders.push(perm.filter((j) => j !== i));
    }
    const { weights, targets } = gradvacStep(G, state.targets, orders, o.beta, o.eps);
    return { weights, state: { rng, targets } };
  },
};
