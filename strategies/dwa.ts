/**
 * dwa — Dynamic Weight Average: a term whose loss fell least over the last period gets more weight.
 *
 * Paper: S. Liu, E. Johns, A. J. Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.
 * https://arxiv.org/abs/1803.10704 (eq. 7).
 *
 * In words: with L_i(t) the raw (unweighted) loss of term i at period t (an epoch mean in the paper,
 * one step with `average: 'step'`), the relative descending rate of the previous period is
 *
 *   r_i(t−1) = L_i(t−1) / L_i(t−2),     w_i(t) = T · exp(r_i(t−1)/temp) / Σ_j exp(r_j(t−1)/temp),
 *
 * so the weights sum to T (the number of terms) and all equal 1 when every term falls at the same
 * rate. The first two periods have no ratio yet: their weights are 1 (the paper's r(1) = r(2) = 1).
 * A zero loss at t−2 is guarded: r_i = L_i(t−1) / max(L_i(t−2), LOSS_EPS) (0 when both are 0).
 *
 * - `average: 'step'` (default): a period is one update; the weights of update t use the raw losses
 *   of updates t−1 and t−2. Works with every trainer, but per-step ratios of minibatch losses are
 *   noisy.
 * - `average: 'epoch'` (the paper's and LibMTL's form, lorenmt/mtan#53): every update must carry
 *   `epoch` (`balancer.update({ losses, epoch })`); the raw losses are averaged over each epoch and
 *   the weights of epoch e come from the means of epochs e−1 and e−2 (constant within the epoch).
 *
 * Pitfall (lorenmt/mtan#2): DWA looks at ratios only, so it does not correct a difference of scale
 * between terms. With a reconstruction loss of 100 and a KL of 0.1 falling at similar rates every
 * ratio is near 1 and every weight hovers near 1: the big term still dominates. Combine with a
 * scale-aware method, or use one (e.g. `grad-magnitude`, `cov`, `famo`, `db-mtl`).
 *
 * Options: `temperature` @default 2 (paper); `average` ('step' | 'epoch') @default 'step'.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, softmax } from '../src/core/gram.js';
import { epochAdd, epochAdvance, epochInit, type EpochMeans } from '../src/core/loss-points.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** Softmax temperature; larger is softer (closer to equal weights). @default 2 */
  temperature: z._default(z.number().check(z.positive()), 2),
  /** What one period is: one update, or one epoch (needs `epoch` in every input). @default 'step' */
  average: z._default(z.enum(['step', 'epoch']), 'step'),
});

/**
 * Options of {@link dwa}.
 * @useDeclaredType
 */
export type DwaOptions = z.infer<typeof options>;

/** State of {@link dwa}. */
export interface DwaState {
  /** `'step'`: raw losses of the last (at most) two updates, oldest first. */
  recent: number[][];
  /** `'epoch'`: running sums and the means of the last two completed epochs. */
  epochs: EpochMeans;
}

/** DWA weights from the loss points of periods t−2 (`older`) and t−1 (`newer`). */
export function dwaWeights(older: readonly number[], newer: readonly number[], temperature: number): { weights: number[]; ratio: number[] } {
  const ratio = newer.map((l, i) => (l === 0 ? 0 : l / Math.max(older[i], LOSS_EPS)));
  const T = ratio.length;
  return { weights: softmax(ratio, temperature).map((p) => T * p), ratio };
}

/**
 * The `dwa` strategy (Liu, Johns & Davison, CVPR 2019): Dynamic Weight Average, T·softmax of the
 * last-period loss ratios L(t−1)/L(t−2) (loss values only). Options: {@link DwaOptions}; state:
 * {@link DwaState}.
 */
export const dwa: Strategy<DwaOptions, DwaState> = {
  name: 'dwa',
  summary: 'Dynamic Weight Average (Liu et al. 2019): T·softmax of last-period loss ratios L(t-1)/L(t-2), temperature 2.',
  paper: 'Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, https://arxiv.org/abs/1803.10704',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ recent: z.array(ss.perTerm(terms.length)).check(z.maxLength(2)), epochs: ss.epochMeans(terms.length) }),
  init: (_o, terms) => ({ recent: [], epochs: epochInit(terms.length) }),
  update(o, state, { step, losses, epoch }) {
    const T = losses.length;
    let points: number[][];
    let next: DwaState;
    if (o.average === 'epoch') {
      const advanced = epochAdvance(state.epochs, epoch, 2, 'dwa', step);
      points = advanced.means;
      next = { recent: state.recent, epochs: epochAdd(advanced, losses) };
    } else {
      points = state.recent;
      next = { recent: [...state.recent, [...losses]].slice(-2), epochs: state.epochs };
    }
    if (points.length < 2) return { weights: new Array(T).fill(1), state: next };
    const { weights, ratio } = dwaWeights(points[0], points[1], o.temperature);
    return { weights, state: next, info: { ratio } };
  },
};
