/**
 * The record of one training step, the in-memory {@link History}, and the sink interface that
 * trainers hand every record to (as tfjs-layers callbacks receive logs).
 */
import type { Tournament } from './tournament.js';

/** Per-term numbers, keyed by term name. */
export type PerTerm = Record<string, number>;

/** Everything logged for one step. Raw loss, weight, weighted loss and regulariser are separate. */
export interface StepRecord {
  /** Trainer step (0-based). */
  step: number;
  /** Epoch, when the trainer knows it. */
  epoch?: number;
  /** Raw, unweighted loss of each term. */
  loss: PerTerm;
  /** Weight (alpha) applied to each term this step. */
  weight: PerTerm;
  /** weight × loss. */
  weighted: PerTerm;
  /** Additive regulariser of the objective per term (uncertainty's ½·s), if the strategy has one. */
  regularizer?: PerTerm;
  /** ‖∂L_i/∂θ_shared‖, when gradients were read this step. */
  gradNorm?: PerTerm;
  /** Σ weighted + Σ regularizer: the objective the balancer minimises (may be negative). */
  total: number;
  /** Strategy-specific per-term values (e.g. GradNorm's target norms). */
  info?: Record<string, PerTerm>;
  /** Set when the step was skipped (no optimizer update, balancer state unchanged): why. */
  skipped?: string;
  /** Terms whose weight a bound (`bounds.min`, `max`, `maxChange`) changed this step. */
  clamped?: string[];
  /**
   * During an `auto` selection: the label of the candidate this record belongs to (one record per
   * live candidate per step; see {@link Tournament}). Absent outside the selection.
   */
  candidate?: string;
}

/** Facts about a run, written once at its start. */
export interface RunMeta {
  /** Registered name of the balancing strategy. */
  strategy: string;
  /** The strategy's options after validation (defaults filled in). */
  options: unknown;
  /** Term names, in term order. */
  terms: string[];
  /** The tfjs backend the run used (e.g. `'cpu'`, `'wasm'`). */
  backend: string;
  /**
   * Where per-term gradients were read: `'shared'`, `'representation'` or `'none'` (losses only);
   * `'per candidate'` for an `auto` run (the tournament's `gradients` names what the winner reads).
   */
  gradients: string;
  /** ISO 8601 time of the first step. */
  startedAt: string;
  /** Further caller- or trainer-supplied facts (e.g. `model`, `every`). */
  [key: string]: unknown;
}

/** Receives every step record. */
export interface Sink {
  /** Called once, before the first record. */
  open?(meta: RunMeta): void;
  /** Called once per step. */
  write(record: StepRecord): void;
  /** Called by `trainer.close()`. */
  close?(): void | Promise<void>;
  /** Called after each round of an `auto` selection and when its winner takes over. */
  tournament?(t: Tournament): void;
}

/** The trajectory so far, in memory. Also a {@link Sink}. */
export class History implements Sink {
  /**
   * Every step record received so far, oldest first. During an `auto` selection the candidates'
   * records go to {@link History.trials} instead; when the winner takes over, its trial records
   * are appended here, so that `records` is the trajectory the run actually followed. While the
   * selection runs (and after a run that ends before it finishes) it holds no selection step; the
   * variables then follow equal weights: `followedTrajectory(trials, tournament)` gives those records.
   */
  readonly records: StepRecord[] = [];
  /** The records of every candidate of an `auto` selection (tagged with `candidate`). */
  readonly trials: StepRecord[] = [];
  /** The run's facts, set by {@link History.open}; null before the first step. */
  meta: RunMeta | null = null;
  /** The `auto` selection's tournament, when the run had one (latest version). */
  tournamentRecord: Tournament | null = null;

  tournament(t: Tournament): void {
    const first = this.tournamentRecord?.phase !== 'done';
    this.tournamentRecord = t;
    if (t.phase === 'done' && first) for (const r of this.trials) if (r.candidate === t.winner) this.records.push(r);
  }

  open(meta: RunMeta): void {
    this.meta = meta;
  }

  write(record: StepRecord): void {
    if (record.candidate !== undefined) this.trials.push(record);
    else this.records.push(record);
  }

  /** Term names, in order. */
  get terms(): string[] {
    return this.meta?.terms ?? (this.records[0] ? Object.keys(this.records[0].loss) : []);
  }

  /** Number of records. */
  get length(): number {
    return this.records.length;
  }

  /**
   * The last record, if any. During an `auto` selection: equal weights' record of the last step (the
   * values the variables hold between steps).
   */
  get last(): StepRecord | undefined {
    const r = this.records[this.records.length - 1];
    const t = this.trials[this.trials.length - 1];
    if (!t || (r && r.step >= t.step)) return r;
    let i = this.trials.length - 1;
    while (i > 0 && this.trials[i - 1].step === t.step) i--;
    return this.trials[i];
  }

  /** The weight trajectory of one term (skipped steps included, with the weights kept). */
  weights(term: string): number[] {
    return this.records.map((r) => r.weight[term]);
  }

  /** The raw loss trajectory of one term. */
  losses(term: string): number[] {
    return this.records.map((r) => r.loss[term]);
  }
}
