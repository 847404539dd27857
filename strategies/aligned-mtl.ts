/**
 * aligned-mtl — align the principal components of the gradient system so that its condition number is
 * one: the combined update treats every independent direction of the term gradients equally.
 *
 * Paper: D. Senushkin, N. Patakin, A. Kuznetsov, A. Konushin, "Independent Component Alignment for
 * Multi-Task Learning", CVPR 2023. https://openaccess.thecvf.com/content/CVPR2023/html/Senushkin_Independent_Component_Alignment_for_Multi-Task_Learning_CVPR_2023_paper.html
 * (Algorithm 1).
 *
 * In words: with the eigen-decomposition G = V Λ Vᵀ (ml-matrix `EigenvalueDecomposition`) restricted to its rank r (the
 * eigenvalues above λ_max·T·ε₃₂, ε₃₂ = 2⁻²³ the float32 machine epsilon, as in the reference code: the
 * Gram matrix comes from float32 gradients), the balance matrix is
 *
 *   B = √σ · V_r Λ_r^{-1/2} V_rᵀ,
 *
 * where σ is the smallest kept eigenvalue (`scale: 'min'`, the paper: the aligned system's singular
 * values all equal the smallest one), their median (`'median'`, lower median for an even count) or mean
 * (`'rmse'`). The weights are w = B·p with p the pre-weights (`preference`, default all ones). Then
 * Σ w_i g_i = Jᵀ B p has the gradients' principal directions rescaled to a common singular value.
 *
 * Weights can be NEGATIVE (B has negative entries when gradients are correlated), hence
 * `signedWeights`. Degenerate cases: G = 0 (rank 0): B = I, w = p; identical gradients (rank 1):
 * B = √λ·v vᵀ/√λ = v vᵀ, w = (1/T)·(Σp)·1; a zero gradient only lowers the rank. Invariance: B, hence
 * w, is unchanged by a global scale of G.
 *
 * Options: `scale` ('min' | 'median' | 'rmse') @default 'min'; `preference` (pre-weights p, one per
 * term, finite) @default all ones.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { MAX_WEIGHT } from '../src/core/limits.js';
import { BalancerError } from '../src/core/errors.js';
import type { Gram } from '../src/core/gram.js';
import { symmetricEigen } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Which eigenvalue the aligned singular values are set to. @default 'min' */
  scale: z._default(z.enum(['min', 'median', 'rmse']), 'min'),
  /** Pre-weights p (one per term), each within ±1e12 (MAX_WEIGHT, src/core/limits.ts); w = B·p. @default all ones */
  preference: z.optional(z.array(z.number().check(z.minimum(-MAX_WEIGHT), z.maximum(MAX_WEIGHT)))),
});

/**
 * Options of {@link alignedMtl}.
 * @useDeclaredType
 */
export type AlignedMTLOptions = z.infer<typeof options>;

/** State of {@link alignedMtl}. */
export interface AlignedMTLState {
  /** The resolved pre-weights p, one per term in term order. */
  preference: number[];
}

/** float32 machine epsilon, used for the rank cut as in the reference implementations. */
const EPS32 = 2 ** -23;

/** Aligned-MTL's balance matrix B for a Gram matrix (the identity when G = 0). */
export function balanceMatrix(G: Gram, scale: AlignedMTLOptions['scale'] = 'min'): number[][] {
  const T = G.length;
  const { values, vectors } = symmetricEigen(G);
  const tol = Math.max(0, values[0]) * T * EPS32;
  const keep = values.map((v, k) => k).filter((k) => values[k] > tol && values[k] > 0);
  if (keep.length === 0) return G.map((_, i) => G.map((__, j) => (i === j ? 1 : 0)));
  const lam = keep.map((k) => values[k]); // descending
  let sigma: number;
  if (scale === 'min') sigma = lam[lam.length - 1];
  else if (scale === 'median') sigma = [...lam].sort((a, b) => a - b)[Math.floor((lam.length - 1) / 2)];
  else sigma = lam.reduce((a, b) => a + b, 0) / lam.length;
  const B = G.map(() => new Array<number>(T).fill(0));
  keep.forEach((k, idx) => {
    const v = vectors[k];
    const f = Math.sqrt(sigma) / Math.sqrt(lam[idx]);
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) B[i][j] += f * v[i] * v[j];
  });
  return B;
}

/**
 * The `aligned-mtl` strategy (Senushkin et al., CVPR 2023): align the principal components of the
 * gradient system (eigen-decomposition of the Gram matrix) so that its condition number is one.
 * Reads the Gram matrix; weights may be negative. Options: {@link AlignedMTLOptions}; state:
 * {@link AlignedMTLState}.
 */
export const alignedMtl: Strategy<AlignedMTLOptions, AlignedMTLState> = {
  name: 'aligned-mtl',
  summary: 'Aligned-MTL (Senushkin et al. 2023): eigen-decomposition of G, condition number aligned to 1. Weights may be negative.',
  paper: 'Senushkin et al., "Independent Component Alignment for Multi-Task Learning", CVPR 2023',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  signedWeights: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ preference: ss.perTerm(terms.length) }),
  init(o, terms) {
    if (o.preference && o.preference.length !== terms.length) {
      throw new BalancerError(
        `aligned-mtl: option "preference" has ${o.preference.length} entries for ${terms.length} terms (${terms.join(', ')})`,
      );
    }
    return { preference: o.preference ? [...o.preference] : terms.map(() => 1) };
  },
  update(o, state, { gram }) {
    const B = balanceMatrix(gram!, o.scale);
    const p = state.preference;
    const weights = B.map((row) => row.reduce((acc, b, j) => acc + b * p[j], 0));
    return { weights, state };
  },
};
