/**
 * gls — Geometric Loss Strategy: minimise the geometric mean of the losses, (Π_i L_i)^(1/T), which
 * is invariant to the scale of each term.
 *
 * Paper: S. Chennupati, G. Sistu, S. Yogamani, S. A. Rawashdeh, "MultiNet++: Multi-Stream Feature
 * Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019,
 * https://openaccess.thecvf.com/content_CVPRW_2019/papers/WAD/Chennupati_MultiNet_Multi-Stream_Feature_Aggregation_and_Geometric_Loss_Strategy_for_Multi-Task_CVPRW_2019_paper.pdf (also LibMTL, LibMTL/weighting/GLS.py).
 *
 * In words: the gradient of the geometric mean GM = (Π_j L_j)^(1/T) is Σ_i GM/(T·L_i)·∇L_i, so GLS is
 * loss weighting with w_i ∝ GM / L_i: each term is divided by its own loss, and the geometric mean
 * sets the overall scale. This library returns
 *
 *   w_i = GM / L_i = exp(mean_j log L_j) / L_i,
 *
 * T times the weights of the gradient of GM (LibMTL backpropagates GM itself), so that equal losses
 * give all ones, the scale of the other strategies (a constant factor T, like a learning-rate factor).
 * Losses must be ≥ 0; a loss below LOSS_EPS is taken as LOSS_EPS (the log of 0 is −∞).
 *
 * Options: none.
 */
import * as z from 'zod/mini';
import { LOSS_EPS } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({});

/**
 * Options of {@link gls} (none).
 * @useDeclaredType
 */
export type GlsOptions = z.infer<typeof options>;

/**
 * The `gls` strategy (Chennupati et al., CVPR-W 2019): weights GM(L)/L_i, the gradient of the
 * geometric mean of the losses times T (reads losses only). Options: none; state: none.
 */
export const gls: Strategy<GlsOptions, Record<string, never>> = {
  name: 'gls',
  summary: 'Geometric Loss Strategy (Chennupati et al. 2019): minimise (Π L_i)^(1/T); w_i = GM(L)/L_i.',
  paper: 'Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR-W 2019, https://openaccess.thecvf.com/content_CVPRW_2019/papers/WAD/Chennupati_MultiNet_Multi-Stream_Feature_Aggregation_and_Geometric_Loss_Strategy_for_Multi-Task_CVPRW_2019_paper.pdf',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: () => z.strictObject({}),
  init: () => ({}),
  update(_o, state, { losses }) {
    const logs = losses.map((l) => Math.log(Math.max(l, LOSS_EPS)));
    const logGm = logs.reduce((a, b) => a + b, 0) / logs.length;
    return { weights: logs.map((li) => Math.exp(logGm - li)), state, info: { geometricMean: losses.map(() => Math.exp(logGm)) } };
  },
};
