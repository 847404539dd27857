/**
 * config — Conflict-Free Inverse Gradients: the direction whose cosine with every unit gradient is
 * the same (the pseudo-inverse of the unit gradients applied to the preference), scaled to the sum of
 * the projections of the gradients on it.
 *
 * Paper: Q. Liu, M. Chu, N. Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed
 * Neural Networks", ICLR 2025, https://arxiv.org/abs/2408.11104 (eq. 2); reference implementation
 * torchjd `ConFIG` (src/torchjd/aggregation/_config.py, adapted from tum-pbs/ConFIG).
 *
 * Formula: U = rows g_i/‖g_i‖ (a zero row stays 0), d̂ = U⁺ p / ‖U⁺ p‖ (p = `preference`, default all
 * ones), d = (Σ_i ⟨g_i, d̂⟩) d̂.
 *
 * Gram kind, exact: with N = diag(1/‖g_i‖), U⁺p = Uᵀ(UUᵀ)⁺p = Jᵀ c with c = N (N G N)⁺ p, so
 * d = Jᵀ w with w = c · (1ᵀ G c) / (cᵀ G c). The pseudo-inverse is taken from the eigen-decomposition
 * of the normalised Gram matrix (eigenvalues below λ_max·T·2⁻⁵² are zero; torch.linalg.pinv cuts the
 * singular values of U at the same relative size). The weights may be negative (`signedWeights`):
 * the pseudo-inverse can subtract a gradient. All-zero gradients give zero weights (d = 0, as in the
 * reference). Heads take their own gradient (`headWeights: 'unit'`).
 *
 * Options: `preference` (p, one number per term) @default all ones (torchjd's SumWeighting).
 */
import * as z from 'zod/mini';
import { BalancerError } from '../src/core/errors.js';
import { gramTimes, normalizeGram, norms, NORM_EPS, type Gram } from '../src/core/gram.js';
import { psdPinvSolve } from '../src/core/qp.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** The target cosines' weights p (one number per term). @default all ones */
  preference: z.optional(z.array(z.number())),
});

/**
 * Options of {@link config}.
 * @useDeclaredType
 */
export type ConFIGOptions = z.infer<typeof options>;

/** ConFIG's direction as weights on the gradients: `d = Σ w_i g_i`. */
export function configWeights(G: Gram, p: readonly number[]): number[] {
  const n = norms(G);
  const scale = Math.max(0, ...n);
  const inv = n.map((x) => (x > NORM_EPS * Math.max(scale, 1e-300) && x > 0 ? 1 / x : 0));
  const y = psdPinvSolve(normalizeGram(G, 0).map((row, i) => row.map((v, j) => (inv[i] && inv[j] ? v : 0))), p);
  const c = y.map((v, i) => v * inv[i]);
  const Gc = gramTimes(G, c);
  const cGc = Gc.reduce((a, v, i) => a + v * c[i], 0);
  if (!(cGc > 0)) return G.map(() => 0);
  const length = Gc.reduce((a, b) => a + b, 0);
  return c.map((v) => (v * length) / cGc);
}

/**
 * The `config` strategy (Liu, Chu & Thuerey, ICLR 2025; torchjd `ConFIG`): equal cosine with every
 * gradient, length the sum of the projections. Options: {@link ConFIGOptions}.
 */
export const config: Strategy<ConFIGOptions, Record<string, never>> = {
  name: 'config',
  summary: 'ConFIG (Liu, Chu & Thuerey 2025, torchjd): the direction at equal angle to every gradient (pseudo-inverse of the unit gradients), scaled to their projections.',
  paper: 'Liu, Chu & Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks", ICLR 2025, https://arxiv.org/abs/2408.11104',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  signedWeights: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init(o, terms) {
    if (o.preference && o.preference.length !== terms.length) {
      throw new BalancerError(`config: option "preference" has ${o.preference.length} entries for ${terms.length} terms (${terms.join(', ')})`);
    }
    return {};
  },
  update(o, state, { gram }) {
    const G = gram!;
    return { weights: configWeights(G, o.preference ?? G.map(() => 1)), state };
  },
};
