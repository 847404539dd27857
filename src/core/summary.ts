/**
 * A compact, human-readable summary of a trajectory: per term the start / end / mean alpha, and the
 * learned ratio of each term's final alpha to the smallest one ("recon ended at 18.7× kl").
 */
import type { RunMeta, StepRecord } from './history.js';
import { followedTrajectory, summarizeTournament, type Tournament } from './tournament.js';

/** Per-term numbers of {@link summarize}. */
export interface TermSummary {
  /** Term name. */
  term: string;
  /** Alpha (weight) at the first step that was not skipped. */
  start: number;
  /** Alpha at the last step that was not skipped. */
  end: number;
  /** Mean alpha over the steps that were not skipped. */
  mean: number;
  /** end alpha / end alpha of the term with the smallest end alpha. */
  ratio: number;
  /** Raw (unweighted) loss at the first step that was not skipped. */
  lossStart: number;
  /** Raw loss at the last step that was not skipped. */
  lossEnd: number;
}

/**
 * The summary as data. `records` must be non-empty. Skipped steps are left out (unless every step
 * was skipped). Any iterable works (one pass, memory bounded by the number of terms), so a trajectory
 * streamed from a file can be summarised without holding it.
 */
export function summarizeData(records: Iterable<StepRecord>): {
  /** One entry per term, in term order. */
  terms: TermSummary[];
  /** The term with the smallest positive end alpha: the denominator of every {@link TermSummary.ratio}. */
  reference: string;
  /** Number of skipped steps among `records`. */
  skipped: number;
} {
  // over the kept steps, and over all steps (used when every step was skipped)
  const acc = () => ({ first: null as StepRecord | null, last: null as StepRecord | null, n: 0, sum: new Map<string, number>() });
  const kept = acc();
  const all = acc();
  const add = (a: ReturnType<typeof acc>, r: StepRecord) => {
    a.first ??= r;
    a.last = r;
    a.n += 1;
    for (const [k, v] of Object.entries(r.weight)) a.sum.set(k, (a.sum.get(k) ?? 0) + v);
  };
  for (const r of records) {
    add(all, r);
    if (!r.skipped) add(kept, r);
  }
  if (!all.n) throw new Error('summarizeData: no records');
  const use = kept.n ? kept : all;
  const first = use.first!;
  const last = use.last!;
  const names = Object.keys(first.weight);
  const ends = names.map((n) => last.weight[n]);
  let minEnd = Number.POSITIVE_INFINITY;
  for (const e of ends) if (e > 0 && e < minEnd) minEnd = e;
  if (minEnd === Number.POSITIVE_INFINITY) minEnd = 1;
  const reference = names[ends.indexOf(minEnd)] ?? names[0];
  const terms = names.map((n) => ({
    term: n,
    start: first.weight[n],
    end: last.weight[n],
    mean: (use.sum.get(n) ?? Number.NaN) / use.n,
    ratio: last.weight[n] / minEnd,
    lossStart: first.loss[n],
    lossEnd: last.loss[n],
  }));
  return { terms, reference, skipped: all.n - kept.n };
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
export function summarize(records: readonly StepRecord[], meta?: RunMeta | null, tournament?: Tournament | null): string {
  if (records.some((r) => r.candidate !== undefined)) records = followedTrajectory(records, tournament);
  if (!records.length) return tournament ? summarizeTournament(tournament) : 'no steps recorded';
  const table = summarizeTable(records, meta);
  return tournament ? `${table}\n${summarizeTournament(tournament)}` : table;
}

function summarizeTable(records: readonly StepRecord[], meta?: RunMeta | null): string {
  const { terms, reference, skipped } = summarizeData(records);
  const head = meta ? `strategy ${meta.strategy} on backend ${meta.backend}, ` : '';
  const lines = [`${head}${records.length} steps${skipped ? ` (${skipped} skipped)` : ''}`];
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
