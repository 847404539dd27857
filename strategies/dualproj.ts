/**
 * dualproj — the sum of the gradients, projected onto the dual cone of the gradients (the directions
 * that conflict with none of them).
 *
 * Paper: D. Lopez-Paz, M. Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017,
 * https://arxiv.org/abs/1706.08840 (eq. 11, the dual of the projection); reference implementation
 * torchjd `DualProj` / `DualProjWeighting` (src/torchjd/aggregation/_dualproj.py).
 *
 * Gram kind, exact: the projection of Jᵀu onto {x : Jx ≥ 0} is Jᵀv with (Proposition 1 of Quinton &
 * Rey 2024, as in `upgrad`)
 *
 *   v = argmin_{v ≥ u} vᵀ G' v,   G' = G / tr(G) + regEps·I   (G' = regEps·I when tr(G) < normEps),
 *
 * solved exactly by the active-set QP of src/core/qp.ts. u = `preference` (default all ones: the sum;
 * torchjd's default is the mean, 1/T of ours, the projection being positively homogeneous in u).
 * Weights w = v ≥ u ≥ 0. Unlike `upgrad` (which projects each gradient and sums), one projection of
 * the combined gradient. Heads take their own gradient (`headWeights: 'unit'`).
 *
 * Options: `normEps` @default 1e-4; `regEps` @default 1e-4 (torchjd's defaults); `preference` (u, one
 * number ≥ 0 per term) @default all ones.
 */
import * as z from 'zod/mini';
import { BalancerError } from '../src/core/errors.js';
import type { Gram } from '../src/core/gram.js';
import { projectDualCone } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Below this trace the Gram matrix is treated as zero. @default 1e-4 */
  normEps: z._default(z.number().check(z.nonnegative()), 1e-4),
  /** Ridge added to the trace-normalised Gram matrix. @default 1e-4 */
  regEps: z._default(z.number().check(z.positive()), 1e-4),
  /** The combination u projected (one number ≥ 0 per term). @default all ones */
  preference: z.optional(z.array(z.number().check(z.nonnegative()))),
});

/**
 * Options of {@link dualproj}.
 * @useDeclaredType
 */
export type DualProjOptions = z.infer<typeof options>;

/** DualProj's weights: the projection of `Σ u_i g_i` onto the dual cone, as weights on the g_i. */
export function dualprojWeights(G: Gram, u: readonly number[], normEps = 1e-4, regEps = 1e-4): number[] {
  const tr = G.reduce((acc, row, i) => acc + row[i], 0);
  const Gp = G.map((row, i) => row.map((g, j) => (tr >= normEps && tr > 0 ? g / tr : 0) + (i === j ? regEps : 0)));
  return projectDualCone(Gp, u).x.map((v, k) => Math.max(v, u[k]));
}

/**
 * The `dualproj` strategy (Lopez-Paz & Ranzato 2017; torchjd `DualProj`): the sum of the gradients
 * projected onto their dual cone. Options: {@link DualProjOptions}.
 */
export const dualproj: Strategy<DualProjOptions, Record<string, never>> = {
  name: 'dualproj',
  summary: 'DualProj (Lopez-Paz & Ranzato 2017, torchjd): the sum of the gradients projected onto their dual cone; never conflicts.',
  paper: 'Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017, https://arxiv.org/abs/1706.08840',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init(o, terms) {
    if (o.preference && o.preference.length !== terms.length) {
      throw new BalancerError(`dualproj: option "preference" has ${o.preference.length} entries for ${terms.length} terms (${terms.join(', ')})`);
    }
    return {};
  },
  update(o, state, { gram }) {
    const G = gram!;
    return { weights: dualprojWeights(G, o.preference ?? G.map(() => 1), o.normEps, o.regEps), state };
  },
};
