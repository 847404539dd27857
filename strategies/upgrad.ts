/**
 * upgrad — unconflicting projection of gradients: every term's gradient is projected onto the dual cone
 * of all the gradients (the directions that conflict with none), and the projections are averaged.
 *
 * Paper: P. Quinton, V. Rey, "Jacobian Descent for Multi-Objective Optimization", 2024.
 * https://arxiv.org/abs/2406.16232 (UPGrad, eq. 5; reference implementation torchjd `UPGrad`,
 * `_upgrad.py` and `_utils/dual_cone.py`).
 *
 * In words: for each term i, with u = e_i, the projection of Jᵀu onto the dual cone {x : Jx ≥ 0} is
 * Jᵀv with (Proposition 1 of the paper)
 *
 *   v = argmin_{v ≥ u} vᵀ G' v,   G' = G / tr(G) + regEps·I   (G' = regEps·I when tr(G) < normEps),
 *
 * a small bound-constrained QP solved exactly by an active-set method (src/core/qp.ts `projectDualConeEach`;
 * torchjd calls quadprog). The T projections share one copy of G'; each starts with the terms that
 * conflict with g_i free (G'_ij < 0) and updates one Cholesky factor per change of its free set, so
 * that T = 64 costs milliseconds (docs/benchmarks.md, many terms). The weights are w = Σ_i v^(i): the sum of the projections (torchjd averages
 * them, 1/T of ours; the sum makes non-conflicting gradients give all ones, the plain sum).
 *
 * Properties: w ≥ 1 component-wise (v ≥ e_i); ⟨Σ w_j g_j, g_i⟩ = T·(G w)_i ≥ 0 up to the regulariser
 * (the direction conflicts with no term); w is invariant to a global scale of G when tr(G) ≥ normEps.
 * Note that `normEps` is absolute, as in torchjd: if the squared norms sum to less than 1e-4 the Gram
 * matrix is treated as zero and the weights are all ones — lower `normEps` (e.g. 1e-20) when your
 * gradients are that small. Degenerate cases: identical gradients → all ones; opposite gradients →
 * v^(i) makes the two cancel, d ≈ 0 up to regEps; a zero gradient takes weight 1 and does not constrain
 * the others.
 *
 * Options: `normEps` @default 1e-4; `regEps` @default 1e-4 (torchjd's defaults).
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Gram } from '../src/core/gram.js';
import { projectDualConeEach } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Below this trace the Gram matrix is treated as zero. @default 1e-4 */
  normEps: z._default(z.number().check(z.nonnegative()), 1e-4),
  /** Ridge added to the trace-normalised Gram matrix. @default 1e-4 */
  regEps: z._default(z.number().check(z.positive()), 1e-4),
});

/**
 * Options of {@link upgrad}.
 * @useDeclaredType
 */
export type UPGradOptions = z.infer<typeof options>;

/** UPGrad's weights (sum convention) for a Gram matrix. */
export function upgradWeights(G: Gram, normEps = 1e-4, regEps = 1e-4): number[] {
  const T = G.length;
  const tr = G.reduce((acc, row, i) => acc + row[i], 0);
  const Gp = G.map((row, i) => row.map((g, j) => (tr >= normEps && tr > 0 ? g / tr : 0) + (i === j ? regEps : 0)));
  const w = new Array<number>(T).fill(0);
  const us = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, k) => (k === i ? 1 : 0)));
  projectDualConeEach(Gp, us).forEach(({ x }, i) => x.forEach((v, k) => (w[k] += Math.max(v, us[i][k]))));
  return w;
}

/**
 * The `upgrad` strategy (Quinton & Rey, 2024): each term's gradient projected onto the dual cone of
 * all the gradients, projections summed; the update never conflicts with any term. Options:
 * {@link UPGradOptions}.
 */
export const upgrad: Strategy<UPGradOptions, Record<string, never>> = {
  name: 'upgrad',
  summary: 'UPGrad (Quinton & Rey 2024, torchjd): project each gradient onto the dual cone of all gradients, sum; never conflicts.',
  paper: 'Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024, https://arxiv.org/abs/2406.16232',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(o, state, { gram }) {
    return { weights: upgradWeights(gram!, o.normEps, o.regEps), state };
  },
};
