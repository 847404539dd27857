/**
 * mgda — multiple-gradient descent: step along the min-norm point of the convex hull of the term
 * gradients, a direction that decreases every term (or zero at a Pareto-stationary point).
 *
 * Paper: O. Sener, V. Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
 * https://arxiv.org/abs/1810.04650 (MGDA of J.-A. Désidéri, C. R. Math. 2012; Algorithm 2 solves the
 * same QP by Frank-Wolfe).
 *
 * In words: with normalised gradients ĝ_i = g_i / n_i,
 *
 *   α = argmin_{α ≥ 0, Σα = 1} ‖Σ_i α_i ĝ_i‖² = argmin αᵀ Ĝ α,   Ĝ_ij = G_ij / (n_i n_j),
 *
 * solved exactly on the Gram matrix by an active-set QP (src/core/qp.ts `minNormSimplex`, after scaling by
 * the mean diagonal and a 1e-10 relative ridge that makes α unique, e.g. uniform for identical
 * gradients). The direction is d = Σ α_i ĝ_i, so ⟨d, ĝ_i⟩ ≥ ‖d‖² ≥ 0 for every term: no term is
 * increased to first order.
 *
 * Weights: w_i = T·α_i / n_i, i.e. d scaled by T, so that identical gradients (normalisation 'none')
 * give the plain sum (all ones) like the other strategies; the paper leaves the step scale to the
 * learning rate. Note that isl-org/MultiObjectiveOptimization applies α to the *raw* losses even when it
 * normalised the gradients to find α; we follow LibMTL and apply α to the normalised gradients, which is
 * what keeps the no-conflict property above.
 *
 * Normalisation n_i (`normalization`, as in isl-org/MultiObjectiveOptimization): 'none' n_i = 1;
 * 'l2' n_i = ‖g_i‖; 'loss' n_i = L_i; 'loss+' n_i = L_i·‖g_i‖ (the loss modes need L_i ≥ 0; L_i is
 * floored at LOSS_EPS). A zero gradient: with 'none' it is the min-norm point itself (d = 0, weight T on
 * that term: MGDA stops, the point is Pareto-stationary); with 'l2'/'loss+' its normalised gradient is
 * taken as 0 (same result) and n_i as 1.
 *
 * With the trainer's representation-gradient mode (gradients w.r.t. the shared representation rather
 * than the shared parameters) this is MGDA-UB, the upper-bound variant of the paper (Section 3.3).
 * Task-specific parameters should take their own unscaled gradients (isl-org#12): the trainer applies
 * the weights to every trained variable, so keep task heads' learning rates in mind.
 *
 * Options: `normalization` @default 'none'.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, NORM_EPS, norms } from '../src/core/gram.js';
import { minNormSimplex } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Gradient normalisation before the min-norm solve. @default 'none' */
  normalization: z._default(z.enum(['none', 'l2', 'loss', 'loss+']), 'none'),
});

/**
 * Options of {@link mgda}.
 * @useDeclaredType
 */
export type MGDAOptions = z.infer<typeof options>;

/** MGDA's normalisers n_i (see the module description). */
export function mgdaNormalizers(gram: readonly (readonly number[])[], losses: readonly number[], mode: MGDAOptions['normalization']): number[] {
  const n = norms(gram);
  const scale = Math.max(0, ...n);
  const gn = n.map((v) => (v > NORM_EPS * Math.max(scale, 1e-300) ? v : 1));
  switch (mode) {
    case 'none':
      return n.map(() => 1);
    case 'l2':
      return gn;
    case 'loss':
      return losses.map((l) => Math.max(l, LOSS_EPS));
    case 'loss+':
      return losses.map((l, i) => Math.max(l, LOSS_EPS) * gn[i]);
  }
}

/**
 * The `mgda` strategy (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of the
 * (normalised) term gradients, an exact QP on the Gram matrix. Options: {@link MGDAOptions}.
 */
export const mgda: Strategy<MGDAOptions, Record<string, never>> = {
  name: 'mgda',
  summary: 'MGDA (Sener & Koltun 2018): min-norm point of the convex hull of the (normalised) gradients, exact QP on G.',
  paper: 'Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, https://arxiv.org/abs/1810.04650',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  nonNegativeLosses: (o) => o.normalization === 'loss' || o.normalization === 'loss+',
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(o, state, { gram, losses }) {
    const G = gram!;
    const T = G.length;
    const n = mgdaNormalizers(G, losses, o.normalization);
    const Ghat = G.map((row, i) => row.map((v, j) => v / (n[i] * n[j])));
    const { x: alpha } = minNormSimplex(Ghat);
    return { weights: alpha.map((a, i) => (T * a) / n[i]), state, info: { alpha } };
  },
};
