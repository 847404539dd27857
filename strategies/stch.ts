/**
 * stch — Smooth Tchebycheff scalarisation: minimise a smooth maximum (log-sum-exp with smoothing μ)
 * of the log-losses normalised by a nadir point, so that the worst-off term leads.
 *
 * Paper: X. Lin, X. Zhang, Z. Yang, F. Liu, Z. Wang, Q. Zhang, "Smooth Tchebycheff Scalarization for
 * Multi-Objective Optimization", ICML 2024, https://openreview.net/forum?id=m4dO5L6eCp (official code
 * Xi-L/STCH, STCH_MTL; LibMTL, LibMTL/weighting/STCH.py, followed here).
 *
 * In words (LibMTL's schedule, ε = 1e-20):
 * - epochs 0 … warmupEpochs−1: minimise Σ_i log(L_i + ε): w_i = 1 / (L_i + ε);
 * - epoch warmupEpochs: the same, while averaging the raw losses of that epoch into the nadir point z_i;
 * - afterwards, with l_i = log(L_i / z_i + ε), minimise T·μ·log Σ_i exp(l_i / μ):
 *
 *     w_i = T · softmax(l / μ)_i / (L_i + ε·z_i).
 *
 * These are the weights of the loss LibMTL backpropagates (each term's gradient is multiplied by
 * ∂loss/∂L_i); they are not normalised. Epochs are those of the `epoch` passed with each update (the
 * trainer and fitBalanced pass it); updates without `epoch` count as one epoch each. If no update fell
 * in epoch `warmupEpochs`, the losses of the first later update are the nadir point. Losses must be
 * ≥ 0; a nadir value below LOSS_EPS is taken as LOSS_EPS.
 *
 * Options: `mu` (smoothing; → 0 is the Tchebycheff max, large μ the mean of the log-losses)
 * @default 1; `warmupEpochs` @default 4 (LibMTL's `STCH_mu`, `STCH_warmup_epoch`).
 */
import * as z from 'zod/mini';
import { LOSS_EPS } from '../src/core/gram.js';
import { stateSchemas as ss } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';

/** LibMTL's ε inside the logarithms. */
const STCH_EPS = 1e-20;

const options = z.strictObject({
  /** Smoothing μ of the log-sum-exp. @default 1 */
  mu: z._default(z.number().check(z.positive()), 1),
  /** Epochs of log-loss warm-up before the nadir point is fixed (one more epoch averages it). @default 4 */
  warmupEpochs: z._default(z.number().check(z.int(), z.nonnegative()), 4),
});

/**
 * Options of {@link stch}.
 * @useDeclaredType
 */
export type StchOptions = z.infer<typeof options>;

/** State of {@link stch}. */
export interface StchState {
  /** Sum of the raw losses seen during epoch `warmupEpochs`. */
  nadirSum: number[];
  /** Number of updates in that sum. */
  nadirCount: number;
  /** The nadir point z, fixed at the first update after the averaging epoch; null before. */
  nadir: number[] | null;
}

/**
 * The `stch` strategy (Lin et al., ICML 2024): smooth Tchebycheff scalarisation of the log-losses
 * normalised by a nadir point averaged after a warm-up (reads losses only). Options:
 * {@link StchOptions}; state: {@link StchState}.
 */
export const stch: Strategy<StchOptions, StchState> = {
  name: 'stch',
  summary: 'Smooth Tchebycheff scalarisation (Lin et al. 2024): smooth max of nadir-normalised log-losses after a log-loss warm-up.',
  paper: 'Lin, Zhang, Yang, Liu, Wang & Zhang, "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML 2024, https://openreview.net/forum?id=m4dO5L6eCp',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      nadirSum: ss.perTerm(terms.length, 'nonNegative'),
      nadirCount: ss.count,
      nadir: z.nullable(ss.perTerm(terms.length, 'positive')),
    }),
  init: (_o, terms) => ({ nadirSum: terms.map(() => 0), nadirCount: 0, nadir: null }),
  update(o, state, { losses, epoch, step }) {
    const e = epoch ?? step;
    const T = losses.length;
    if (e < o.warmupEpochs) return { weights: losses.map((l) => 1 / (l + STCH_EPS)), state };
    if (e === o.warmupEpochs && state.nadir === null) {
      return {
        weights: losses.map((l) => 1 / (l + STCH_EPS)),
        state: { nadirSum: state.nadirSum.map((s, i) => s + losses[i]), nadirCount: state.nadirCount + 1, nadir: null },
      };
    }
    const nadir =
      state.nadir ??
      (state.nadirCount > 0 ? state.nadirSum.map((s) => Math.max(s / state.nadirCount, LOSS_EPS)) : losses.map((l) => Math.max(l, LOSS_EPS)));
    const l = losses.map((li, i) => Math.log(li / nadir[i] + STCH_EPS));
    const m = Math.max(...l);
    const ex = l.map((li) => Math.exp((li - m) / o.mu));
    const z = ex.reduce((a, b) => a + b, 0);
    const weights = ex.map((x, i) => (T * x) / z / (losses[i] + STCH_EPS * nadir[i]));
    return { weights, state: state.nadir ? state : { ...state, nadir }, info: { nadir: [...nadir] } };
  },
};
