/**
 * Per-epoch loss averaging shared by the strategies that compare loss values over time (`dwa`,
 * `softadapt`). In `'epoch'` mode a strategy accumulates the raw (unweighted) losses of the running
 * epoch and, when the first update of a new epoch arrives, closes the previous epoch into its mean
 * loss: one "loss point" per epoch, as in Liu et al. (DWA) and Heydari et al. (SoftAdapt), where the
 * losses are "averaged over each epoch". Plain numbers only; the state is JSON.
 */
import { BalancerError } from './errors.js';

/** Running sums of the current epoch and the means of the last completed epochs. */
export interface EpochMeans {
  /** Index of the epoch being accumulated; null before the first update. */
  epoch: number | null;
  /** Σ of the raw losses seen in the running epoch, per term. */
  sum: number[];
  /** Number of updates in the running epoch. */
  count: number;
  /** Mean losses of the last completed epochs, oldest first (at most `keep`). */
  means: number[][];
}

/** An empty accumulator for `T` terms. */
export function epochInit(T: number): EpochMeans {
  return { epoch: null, sum: new Array(T).fill(0), count: 0, means: [] };
}

/**
 * Check `epoch` (a non-negative integer, not smaller than the last one seen) and return the
 * accumulator after closing the previous epoch when `epoch` is new. The current losses are *not*
 * added; call {@link epochAdd} for that.
 */
export function epochAdvance(
  s: EpochMeans,
  epoch: number | undefined,
  keep: number,
  who: string,
  step: number,
): EpochMeans {
  if (epoch === undefined) {
    throw new BalancerError(
      `${who}: option "average" is 'epoch', but the input of step ${step} has no epoch; pass { losses, epoch } to update() (or use average: 'step')`,
    );
  }
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new BalancerError(`${who}: step ${step}: epoch must be a non-negative integer; got ${epoch}`);
  }
  if (s.epoch !== null && epoch < s.epoch) {
    throw new BalancerError(`${who}: step ${step}: epoch went back from ${s.epoch} to ${epoch}; epochs must not decrease`);
  }
  if (s.epoch === epoch) return s;
  const means = s.count > 0 ? [...s.means, s.sum.map((v) => v / s.count)].slice(-keep) : s.means;
  return { epoch, sum: s.sum.map(() => 0), count: 0, means };
}

/** Add one update's raw losses to the running epoch. */
export function epochAdd(s: EpochMeans, losses: readonly number[]): EpochMeans {
  return { ...s, sum: s.sum.map((v, i) => v + losses[i]), count: s.count + 1 };
}
