/**
 * krum — (Multi-)Krum: keep the `nSelected` gradients closest to their `T − nByzantine − 2` nearest
 * neighbours and average them; robust to `nByzantine` arbitrary (adversarial) gradients.
 *
 * Paper: P. Blanchard, E. M. El Mhamdi, R. Guerraoui, J. Stainer, "Machine Learning with Adversaries:
 * Byzantine Tolerant Gradient Descent", NeurIPS 2017,
 * https://proceedings.neurips.cc/paper/2017/hash/f4b9ec30ad9f68f89b29639786cb62ef-Abstract.html;
 * reference implementation torchjd `Krum` / `KrumWeighting` (src/torchjd/aggregation/_krum.py).
 *
 * Gram kind, exact: distances are ‖g_i − g_j‖² = G_ii + G_jj − 2G_ij. With f = nByzantine and
 * m = nSelected: score(i) = Σ of the T − f − 2 smallest ‖g_i − g_j‖ over j ≠ i; the m lowest scores
 * are selected and w_i = T/m for them, 0 otherwise (torchjd averages: 1/m, T times less; ours is the
 * sum convention, identical gradients give T·g). Ties go to the lower index. Negative squared
 * distances from round-off are clipped to 0 (torchjd would take the square root of them: NaN).
 * Requires T ≥ f + 3 and T ≥ m (an error naming the options at bind). Heads take their own gradient.
 *
 * Options: `nByzantine` (f) @default 0 (torchjd has no default); `nSelected` (m) @default 1
 * (torchjd's default).
 */
import * as z from 'zod/mini';
import type { Gram } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** How many gradients may be adversarial (f). @default 0 */
  nByzantine: z._default(z.number().check(z.int(), z.nonnegative()), 0),
  /** How many gradients are kept and averaged (m; Multi-Krum when > 1). @default 1 */
  nSelected: z._default(z.number().check(z.int(), z.positive()), 1),
});

/**
 * Options of {@link krum}.
 * @useDeclaredType
 */
export type KrumOptions = z.infer<typeof options>;

/** Krum's scores and weights (sum convention). */
export function krumWeights(G: Gram, nByzantine: number, nSelected: number): { weights: number[]; scores: number[] } {
  const T = G.length;
  const k = T - nByzantine - 2;
  const scores = G.map((row, i) => {
    const d = row
      .map((gij, j) => ({ j, d: Math.sqrt(Math.max(0, G[i][i] + G[j][j] - 2 * gij)) }))
      .filter((x) => x.j !== i)
      .map((x) => x.d)
      .sort((a, b) => a - b);
    return d.slice(0, k).reduce((a, b) => a + b, 0);
  });
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const weights = new Array<number>(T).fill(0);
  for (const [, i] of order.slice(0, nSelected)) weights[i] = T / nSelected;
  return { weights, scores };
}

/**
 * The `krum` strategy (Blanchard et al., NeurIPS 2017; torchjd `Krum`): average of the `nSelected`
 * gradients closest to their neighbours. Options: {@link KrumOptions}.
 */
export const krum: Strategy<KrumOptions, Record<string, never>> = {
  name: 'krum',
  summary: 'Krum (Blanchard et al. 2017, torchjd): keep the nSelected gradients closest to their nearest neighbours, average them (×T); Byzantine-robust.',
  paper: 'Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017, https://proceedings.neurips.cc/paper/2017/hash/f4b9ec30ad9f68f89b29639786cb62ef-Abstract.html',
  options,
  needs: () => ({ gradients: 'gram' }),
  headWeights: 'unit',
  minTerms: (o) => Math.max(o.nByzantine + 3, o.nSelected),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(o, state, { gram }) {
    const { weights, scores } = krumWeights(gram!, o.nByzantine, o.nSelected);
    return { weights, state, info: { score: scores } };
  },
};
