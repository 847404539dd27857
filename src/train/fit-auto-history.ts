/**
 * `fitBalanced`'s History during an `auto` selection. While the candidates train, each batch is run
 * by every live candidate, and the variables hold equal weights' values between steps: the
 * callbacks (live) receive equal weights' numbers, the only ones known at that moment. Once the
 * winner is known, the user's model holds the winner's trained values, so the returned History
 * must describe the winner's trajectory: this module keeps every candidate's batch logs (and its
 * validation logs at the end of an epoch during the selection) and, at the end of the fit,
 * rewrites the History entries of the epochs that overlapped the selection with the winner's own
 * numbers, averaged as tfjs's `BaseLogger` averages them (weighted by batch size).
 *
 * @module
 */
import type * as tf from '@tensorflow/tfjs';

/** One batch of an epoch that overlapped the selection. */
interface Batch {
  /** Samples in the batch (the averaging weight). */
  size: number;
  /** During the selection: each live candidate's batch logs, by label. */
  byCandidate?: Record<string, tf.Logs>;
  /** After the selection (same epoch): the batch logs (the winner's, as run). */
  logs?: tf.Logs;
}

/** Keeps the candidates' logs of the epochs that overlap an `auto` selection. */
export class SelectionHistory {
  private readonly epochs = new Map<number, { batches: Batch[]; val?: Record<string, tf.Logs> }>();

  /** The epochs (as `tf.History.epoch` numbers them) that overlapped the selection so far. */
  get touched(): number[] {
    return [...this.epochs.keys()];
  }

  /** A batch run during the selection: every live candidate's logs. */
  selectionBatch(epoch: number, size: number, byCandidate: Record<string, tf.Logs>): void {
    this.epochOf(epoch).batches.push({ size, byCandidate });
  }

  /** A batch run after the selection ended, in an epoch that overlapped it (ignored otherwise). */
  laterBatch(epoch: number, size: number, logs: tf.Logs): void {
    this.epochs.get(epoch)?.batches.push({ size, logs: { ...logs } });
  }

  /** Validation logs at the end of an epoch during the selection, by candidate label. */
  selectionValidation(epoch: number, byCandidate: Record<string, tf.Logs>): void {
    this.epochOf(epoch).val = byCandidate;
  }

  /**
   * Rewrite `history` (after `syncData`) for the touched epochs with the winner's numbers: each key
   * of `keys` that its batches log is the size-weighted mean over the epoch's batches (the winner's
   * logs during the selection, the logs as run after it); validation keys come from the winner's
   * validation at that epoch's end when the epoch ended during the selection (when it ended after,
   * the History already holds the winner's). Keys absent from `history` are left alone.
   * @returns The epochs rewritten.
   */
  rewrite(history: tf.History, winner: string, keys: readonly string[]): number[] {
    const done: number[] = [];
    for (const [epoch, { batches, val }] of this.epochs) {
      const at = history.epoch.indexOf(epoch);
      if (at < 0) continue;
      const totals: Record<string, number> = {};
      let seen = 0;
      for (const b of batches) {
        const logs = b.byCandidate ? b.byCandidate[winner] : b.logs;
        if (!logs) continue;
        seen += b.size;
        for (const [k, v] of Object.entries(logs)) if (typeof v === 'number') totals[k] = (totals[k] ?? 0) + v * b.size;
      }
      for (const k of keys) {
        const series = history.history[k];
        if (series && totals[k] !== undefined) series[at] = totals[k] / seen;
      }
      const v = val?.[winner];
      if (v) for (const [k, x] of Object.entries(v)) if (history.history[k]) history.history[k][at] = x;
      done.push(epoch);
    }
    return done;
  }

  private epochOf(epoch: number): { batches: Batch[]; val?: Record<string, tf.Logs> } {
    let e = this.epochs.get(epoch);
    if (!e) this.epochs.set(epoch, (e = { batches: [] }));
    return e;
  }
}
