/**
 * A compact, human-readable summary of a trajectory: per term the start / end / mean alpha, and the
 * learned ratio of each term's end alpha to a reference term's ("recon ended at 18.7× kl").
 *
 * "End" means the same here as in `diagnose`: the mean alpha over the last {@link END_TAIL} (20%) of
 * the accepted steps ({@link tailCount}), so a weight that oscillates or moves in its last steps gives
 * the same end number in both, and two runs compared on the same `reference` give comparable ratios.
 */
import type { RunMeta, StepRecord } from './history.js';
import { followedTrajectory, summarizeTournament, type Tournament } from './tournament.js';

/** The fraction of a run's accepted steps, counted from the end, that "end" averages over (summarize and diagnose). */
export const END_TAIL = 0.2;

/** How many of `n` accepted steps the end averages: ⌈n · tail⌉, at least 1. */
export function tailCount(n: number, tail: number = END_TAIL): number {
  return Math.max(1, Math.ceil(n * tail));
}

/** Per-term numbers of {@link summarize}. */
export interface TermSummary {
  /** Term name. */
  term: string;
  /** Alpha (weight) at the first step that was not skipped. */
  start: number;
  /** Mean alpha over the last 20% of the steps that were not skipped ({@link tailCount}; diagnose's end). */
  end: number;
  /** Alpha at the last step that was not skipped. */
  last: number;
  /** Mean alpha over the steps that were not skipped. */
  mean: number;
  /** end alpha / end alpha of the reference term. */
  ratio: number;
  /** Raw (unweighted) loss at the first step that was not skipped. */
  lossStart: number;
  /** Raw loss at the last step that was not skipped. */
  lossEnd: number;
}

/** Options of {@link summarize} and {@link summarizeData}. */
export interface SummaryOptions {
  /**
   * The term every ratio is expressed against ("× kl"): give the same one to compare runs.
   * @default the term with the smallest positive end alpha (every ratio is then ≥ 1)
   */
  reference?: string;
}

/**
 * The summary as data. `records` must be non-empty. Skipped steps are left out (unless every step
 * was skipped). Any iterable works (one pass; memory: the end window's alphas, T numbers for each of
 * the last 20% of the steps), so a trajectory streamed from a file can be summarised without holding it.
 * @throws Error when `options.reference` is not a term.
 */
export function summarizeData(records: Iterable<StepRecord>, options: SummaryOptions = {}): {
  /** One entry per term, in term order. */
  terms: TermSummary[];
  /** The term every {@link TermSummary.ratio} is against: `options.reference`, else the smallest positive end alpha's. */
  reference: string;
  /** Whether the reference was chosen by the caller (`options.reference`) rather than by the smallest positive end alpha. */
  referenceGiven: boolean;
  /** Number of steps the end averages (the last 20% of the accepted steps). */
  endSteps: number;
  /** Number of skipped steps among `records`. */
  skipped: number;
} {
  // over the kept steps, and over all steps (used when every step was skipped)
  const acc = () => ({ first: null as StepRecord | null, last: null as StepRecord | null, n: 0, sum: new Map<string, number>(), rows: [] as number[][], from: 0 });
  const kept = acc();
  const all = acc();
  let names: string[] | null = null;
  const add = (a: ReturnType<typeof acc>, r: StepRecord) => {
    a.first ??= r;
    a.last = r;
    a.n += 1;
    for (const [k, v] of Object.entries(r.weight)) a.sum.set(k, (a.sum.get(k) ?? 0) + v);
    // the end window: the last tailCount(n) rows (it grows by at most one row per step)
    names ??= Object.keys(r.weight);
    a.rows.push(names.map((n) => r.weight[n]));
    if (a.rows.length - a.from > tailCount(a.n)) a.from += 1;
    if (a.from > 1024 && a.from * 2 > a.rows.length) {
      a.rows = a.rows.slice(a.from);
      a.from = 0;
    }
  };
  for (const r of records) {
    add(all, r);
    if (!r.skipped) add(kept, r);
  }
  if (!all.n) throw new Error('summarizeData: no records');
  const use = kept.n ? kept : all;
  const first = use.first!;
  const last = use.last!;
  const termNames = Object.keys(first.weight);
  const window = use.rows.slice(use.from);
  const ends = termNames.map((_, i) => window.reduce((a, row) => a + row[i], 0) / window.length);
  let reference: string;
  let refEnd: number;
  if (options.reference !== undefined) {
    const at = termNames.indexOf(options.reference);
    if (at < 0) throw new Error(`summarize: option "reference" got ${JSON.stringify(options.reference)}; not a term (terms: ${termNames.join(', ')})`);
    reference = options.reference;
    refEnd = ends[at];
  } else {
    let minEnd = Number.POSITIVE_INFINITY;
    for (const e of ends) if (e > 0 && e < minEnd) minEnd = e;
    if (minEnd === Number.POSITIVE_INFINITY) minEnd = 1;
    reference = termNames[ends.indexOf(minEnd)] ?? termNames[0];
    refEnd = minEnd;
  }
  const terms = termNames.map((n, i) => ({
    term: n,
    start: first.weight[n],
    end: ends[i],
    last: last.weight[n],
    mean: (use.sum.get(n) ?? Number.NaN) / use.n,
    ratio: ends[i] / refEnd,
    lossStart: first.loss[n],
    lossEnd: last.loss[n],
  }));
  return { terms, reference, referenceGiven: options.reference !== undefined, endSteps: window.length, skipped: all.n - kept.n };
}

/** Format a number for tables: 4 significant digits, exponent for very small or large values. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

/**
 * The console summary of a run. With an `auto` selection's `tournament` (e.g. `trainer.tournament`
 * or `history.tournamentRecord`), the tournament's table, winner and cost follow; candidate records
 * in `records` (tagged `candidate`) are left out of the per-term table except the winner's.
 */
export function summarize(records: readonly StepRecord[], meta?: RunMeta | null, tournament?: Tournament | null, options: SummaryOptions = {}): string {
  if (records.some((r) => r.candidate !== undefined)) records = followedTrajectory(records, tournament);
  if (!records.length) return tournament ? summarizeTournament(tournament) : 'no steps recorded';
  const table = summarizeTable(records, meta, options);
  return tournament ? `${table}\n${summarizeTournament(tournament)}` : table;
}

function summarizeTable(records: readonly StepRecord[], meta: RunMeta | null | undefined, options: SummaryOptions): string {
  const { terms, reference, referenceGiven, endSteps, skipped } = summarizeData(records, options);
  const head = meta ? `strategy ${meta.strategy} on backend ${meta.backend}, ` : '';
  const lines = [
    `${head}${records.length} steps${skipped ? ` (${skipped} skipped)` : ''}; end = mean alpha over the last ${endSteps} step${endSteps === 1 ? '' : 's'} (20%, as diagnose); ratios against ${reference} (${referenceGiven ? 'the reference given' : `the smallest positive end alpha${terms.some((t) => t.end === 0) ? `; ${terms.filter((t) => t.end === 0).length} term(s) ended at alpha 0` : ''}`})`,
  ];
  const w = terms.reduce((m, t) => Math.max(m, t.term.length), 4);
  lines.push(
    `${'term'.padEnd(w)}  ${'alpha start'.padStart(11)}  ${'end'.padStart(9)}  ${'mean'.padStart(9)}  ${`× ${reference}`.padStart(10)}  ${'loss start'.padStart(10)}  ${'loss end'.padStart(9)}`,
  );
  for (const t of terms) {
    lines.push(
      `${t.term.padEnd(w)}  ${fmt(t.start).padStart(11)}  ${fmt(t.end).padStart(9)}  ${fmt(t.mean).padStart(9)}  ${`${fmt(t.ratio)}×`.padStart(10)}  ${fmt(t.lossStart).padStart(10)}  ${fmt(t.lossEnd).padStart(9)}`,
    );
  }
  const top = [...terms].sort((a, b) => b.ratio - a.ratio)[0];
  // "learned" only when some weight moved; a fixed strategy (or a fixed auto winner) learned nothing
  const moved = terms.some((t) => t.start !== t.end);
  if (top && top.term !== reference) lines.push(moved ? `learned: ${top.term} ended at ${fmt(top.ratio)}× ${reference}` : `fixed: ${top.term} at ${fmt(top.ratio)}× ${reference} throughout`);
  return lines.join('\n');
}
