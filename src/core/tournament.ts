/**
 * The record of an `auto` strategy selection (see src/train/auto.ts): which candidates took part,
 * their score at the end of each round of successive halving, who was kept, who won and what it
 * cost. Plain JSON, browser-safe; sinks receive it through {@link Sink.tournament}, the console
 * summary prints it with {@link summarizeTournament}.
 *
 * @module
 */
import type { PerTerm, StepRecord } from './history.js';

/** One candidate of a tournament. */
export interface TournamentCandidate {
  /** Unique label, also the `candidate` tag of its step records (e.g. `equal`, `fixed[kl=10]`, `mgda`). */
  label: string;
  /** The balancer spec it ran with (a strategy name or `{ name, ...options }`). */
  spec: string | Record<string, unknown>;
  /** `'fixed'` (equal, user or grid weights), `'loss'`, `'learned'`, `'gradient'` or `'aggregation'`. */
  family: string;
  /** Its score at the end of each round it took part in (`null`: not finite). */
  scores: (number | null)[];
  /** Steps it trained during the selection. */
  steps: number;
  /** The round after which it was dropped, if it was (0-based). */
  droppedAfter?: number;
  /** Why it stopped early, when a step threw (e.g. a strategy that needs non-negative losses). */
  failed?: string;
  /**
   * Why it was dropped regardless of its score: a harm flag its trial raised that equal weights'
   * trial did not (e.g. `round 1: runaway on kl`).
   */
  disqualified?: string;
}

/** One round (rung) of successive halving. */
export interface TournamentRound {
  /** The trainer step (0-based) at which the round was scored: the step count after its last step. */
  step: number;
  /** Score of every candidate that trained in this round, by label (`null`: not finite). */
  scores: Record<string, number | null>;
  /** The labels kept for the next round (or the winner, after the last round). */
  kept: string[];
}

/** The whole tournament. */
export interface Tournament {
  /** `'running'` while candidates train, `'done'` once the winner took over. */
  phase: 'running' | 'done';
  /** Trainer step at which the selection started. */
  startStep: number;
  /** New steps each live candidate takes in the first round. */
  trialSteps: number;
  /** Round r lasts `trialSteps × growth^r` steps (absent in tournaments saved before it existed: 1). */
  growth?: number;
  /** The run's planned `step()` calls, when given (the trial length was sized to it). */
  totalSteps?: number;
  /** Fraction kept per round: the best ⌈n/eta⌉ challengers (equal weights always stay). */
  eta: number;
  /**
   * `'user'` (the `score` option) or `'default'` (each term's recent raw loss against equal weights'
   * on the same batches, worst term; see docs/guide-auto.md).
   */
  score: 'user' | 'default';
  /** `'min'` or `'max'`: which direction of the score is better. */
  mode: 'min' | 'max';
  /** Every candidate, in order of simplicity (ties go to the earlier one). */
  candidates: TournamentCandidate[];
  /** The rounds scored so far (the probation, when there is one, is the last). */
  rounds: TournamentRound[];
  /**
   * The leading challenger's probation (default score; see the `auto` option `probation`): after the
   * selection's last round it and equal weights train on side by side for `steps` more steps (round
   * `round`, 0-based), and it takes over only if it still beats equal weights at the end. Absent when
   * equal weights won the selection, with your `score`, with `probation: 0`, and in tournaments
   * saved before it existed.
   */
  probation?: {
    /** The challenger on probation (its label). */
    candidate: string;
    /** The probation's round index (0-based). */
    round: number;
    /** Its length in trainer steps. */
    steps: number;
    /** Once it ended: `'kept'` (the challenger took over) or `'fell back'` (equal weights' copy continued). */
    outcome?: 'kept' | 'fell back';
  };
  /** ‖∂L_i/∂θ_shared‖ per term at the start, which placed the fixed-weight grid. */
  gradNorms?: PerTerm;
  /** The label of the winner, once chosen. */
  winner?: string;
  /**
   * Where the winner reads per-term gradients, once it took over: `'shared'`, `'representation'` or
   * `'none'` (losses only). The run's meta line says `'per candidate'` (written before the selection).
   */
  gradients?: string;
  /** Why the winner won, in one line. */
  reason?: string;
  /** Cost: what was actually run so far, and the plan while the selection runs. */
  cost: {
    /** Candidate steps taken so far (each is one full training step of one candidate). */
    candidateSteps: number;
    /**
     * Candidate steps the whole selection takes: taken + still planned by the halving rule (revised
     * after each round and when a candidate fails), with the probation a challenger that wins the
     * default score serves (two candidates per step; none when equal weights win, so the selection
     * may end sooner); equal to `candidateSteps` once done.
     */
    plannedCandidateSteps: number;
    /** Trainer steps (calls of `step()`) taken during the selection so far. */
    trainerSteps: number;
    /**
     * Trainer steps the whole selection lasts: taken + still planned; equal to `trainerSteps`
     * once done. While running, `plannedTrainerSteps − trainerSteps` more `step()` calls end it.
     */
    plannedTrainerSteps: number;
    /** Copies of the trained variables held during the selection (one per candidate). */
    copies: number;
    /**
     * Bytes of those copies: each candidate's float32 variables and its optimizer's slots (Adam: two
     * per variable, so 3 × 4 bytes per parameter), at the start of the selection.
     */
    bytes: number;
  };
}

/** Trainer steps an unfinished selection still needs (0 once done). */
export function remainingSelectionSteps(t: Tournament): number {
  if (t.phase === 'done') return 0;
  return Math.max(0, (t.cost.plannedTrainerSteps ?? t.cost.trainerSteps) - t.cost.trainerSteps);
}

/** Score formatting: 4 significant digits. */
function num(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

/** The tournament as console lines: one row per candidate, its score per round, and the verdict. */
export function summarizeTournament(t: Tournament): string {
  const lines: string[] = [];
  const scoreWhat = t.score === 'user'
    ? `your score (${t.mode === 'min' ? 'lower' : 'higher'} is better)`
    : "default score: mean over terms of log(L_i / L_i of equal weights) on the same held-out batches, a gain capped at ln 10, a loss counted T times (lower is better; a winner must beat equal weights beyond the noise in the last two rounds, no term more than maxWorse worse)";
  const g = t.growth ?? 1;
  const rounds = g === 1 ? `${t.trialSteps} steps per round` : `rounds of ${t.trialSteps}, ${Math.round(t.trialSteps * g)}, ${Math.round(t.trialSteps * g * g)}, … steps`;
  lines.push(`auto: ${t.candidates.length} candidates from step ${t.startStep}, ${rounds}, successive halving (keep 1/${t.eta}); ${scoreWhat}`);
  const w = t.candidates.reduce((m, c) => Math.max(m, c.label.length), 9);
  const pr = t.probation;
  const head = `${'candidate'.padEnd(w)}  ${t.rounds.map((r, i) => (pr && i === pr.round ? 'probation' : `round ${i + 1}`).padStart(10)).join('  ')}  status`;
  lines.push(head);
  for (const c of t.candidates) {
    const cells = t.rounds.map((_, i) => num(c.scores[i]).padStart(10).slice(0, 10)).map((s, i) => (i < c.scores.length ? s : ''.padStart(10)));
    const status = c.label === t.winner ? 'WINNER' : pr && c.label === pr.candidate && t.phase === 'running' ? `on probation to step ${t.startStep + t.cost.plannedTrainerSteps}` : pr?.outcome === 'fell back' && c.label === pr.candidate ? 'fell behind in probation' : c.failed ? `failed: ${c.failed.slice(0, 60)}` : c.disqualified ? `disqualified (${c.disqualified})` : c.droppedAfter !== undefined ? `dropped after round ${c.droppedAfter + 1}` : t.phase === 'running' ? 'running' : '';
    lines.push(`${c.label.padEnd(w)}  ${cells.join('  ')}  ${status}`);
  }
  if (t.winner === 'equal' && t.reason?.startsWith('kept equal weights: ')) lines.push(`auto kept equal weights: ${t.reason.slice('kept equal weights: '.length)}`);
  else if (t.winner) lines.push(`auto picked ${t.winner}: ${t.reason ?? ''}`.trimEnd());
  else if (pr && t.phase === 'running') lines.push(`auto: ${pr.candidate} won the selection and is on probation beside equal weights for ${pr.steps} steps: it takes over only if it still beats equal weights then`);
  if (t.gradients) lines.push(`gradients read by ${t.winner}: ${t.gradients === 'none' ? 'none (losses only)' : t.gradients}`);
  const mb = t.cost.bytes / 2 ** 20;
  const size = `${t.cost.copies} copies of the variables (${mb < 0.1 ? `${(t.cost.bytes / 1024).toFixed(1)} KiB` : `${mb.toFixed(1)} MiB`})`;
  if (t.phase === 'done') {
    lines.push(`auto cost: ${t.cost.candidateSteps} candidate steps over ${t.cost.trainerSteps} trainer steps, ${size}`);
  } else {
    const more = remainingSelectionSteps(t);
    lines.push(
      `auto cost so far: ${t.cost.candidateSteps} candidate steps over ${t.cost.trainerSteps} trainer steps, ${size}; ` +
        `the selection is still running (planned: ${t.cost.plannedCandidateSteps} candidate steps over ${t.cost.plannedTrainerSteps} trainer steps, ${more} more step() calls); until it ends, training follows equal weights`,
    );
  }
  return lines.join('\n');
}

/**
 * The trajectory a run followed, from a stream of records that may hold an `auto` selection's
 * candidate records (e.g. read back from a JSONL file): records without a `candidate` tag, and the
 * winner's trial records. While the selection is running (no winner yet), equal weights' records.
 * Without `t`, records that carry one candidate's tag only are taken as already followed (kept whole).
 */
export function followedTrajectory(records: readonly StepRecord[], t?: Tournament | null): StepRecord[] {
  // Without the tournament, records tagged by one candidate only are already a followed trajectory
  // (e.g. `readJsonl`'s default): the winner's trial records, kept.
  const tags = new Set(records.map((r) => r.candidate).filter((c) => c !== undefined));
  if (!t && tags.size === 1) return [...records];
  const keep = t?.winner ?? 'equal';
  return records.filter((r) => r.candidate === undefined || r.candidate === keep);
}
