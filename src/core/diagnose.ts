/**
 * `diagnose(records)`: explain a finished run in plain words, and turn it into advice.
 *
 * For each term: its share of the gradient norm on the shared parameters at the start and at the end
 * of the run (from the recorded `gradNorm`; when a strategy read no gradients this is said, and the
 * share of the weighted loss is shown instead); the learned alpha ratios ("recon_a ended at 18.7× kl");
 * whether the weights converged, oscillate or are still drifting; and a recommended fixed-weight
 * vector that reproduces the balanced run, for users who want fixed alphas in production.
 *
 * The criterion (documented in {@link DiagnoseOptions}): over the *tail* (the last `tail` fraction
 * of the accepted steps) each term's weight is normalised by the sum of all weights at that step
 * (so a global rescaling, as GradNorm's Σw = T, does not count as movement). Then
 * - `drift` = |log(mean over the tail's second half / mean over its first half)|;
 * - `cv` = standard deviation / mean of the normalised weight over the tail.
 * A term is `converged` when drift < `driftTolerance` and cv < `cvTolerance`; `drifting` when
 * drift ≥ `driftTolerance` (still moving one way: train longer or take the end value); else
 * `oscillating` (moving around a stable mean: the recommended value is that mean, the spread says how
 * much it wanders). The run's verdict is the worst over the terms (drifting > oscillating > converged).
 *
 * The recommendation is the arithmetic mean of each term's actual alpha over the tail (the combined
 * gradient is linear in the alphas, so the mean alpha gives the mean update direction), with the
 * relative spread (standard deviation / mean) and the min–max range as evidence.
 *
 * @example
 * ```ts
 * import { diagnose, readJsonl } from 'loss-balancer';
 * const { records } = readJsonl('runs/x/trajectory.jsonl');
 * const d = diagnose(records);
 * console.log(d.text);            // plain words
 * console.log(d.recommended);     // { recon_a: 18.2, recon_b: 3.1, kl: 1 } → balancer: { name: 'fixed', weights: d.recommended }
 * ```
 * @module
 */
import type { PerTerm, StepRecord } from './history.js';
import { fmt } from './summary.js';

/** Options of {@link diagnose}. */
export interface DiagnoseOptions {
  /** Fraction of the accepted steps, counted from the end, over which weights are averaged and judged. @default 0.2 */
  tail?: number;
  /** Fraction of the accepted steps, from the start, that describe "the start" of the run. @default 0.1 */
  head?: number;
  /**
   * Term the ratios are expressed against ("× kl"). @default the term with the smallest positive mean
   * alpha over the tail (every ratio of a weighted term is then ≥ 1)
   */
  reference?: string;
  /** A term whose normalised weight moved by more than this (|log ratio| of tail halves) is drifting. @default 0.1 */
  driftTolerance?: number;
  /** A term whose normalised weight varies more than this (std / mean over the tail) oscillates. @default 0.1 */
  cvTolerance?: number;
}

/** Convergence verdict of one term or of the run. */
export type WeightStatus = 'converged' | 'oscillating' | 'drifting';

/** What {@link diagnose} found about one term. */
export interface TermDiagnosis {
  /** Term name. */
  term: string;
  /** Alpha at the first accepted step. */
  alphaStart: number;
  /** Alpha at the last accepted step. */
  alphaEnd: number;
  /** Mean alpha over the tail: the recommended fixed weight. */
  alphaTailMean: number;
  /** Standard deviation / mean of alpha over the tail. */
  alphaTailSpread: number;
  /** Min alpha over the tail. */
  alphaTailMin: number;
  /** Max alpha over the tail. */
  alphaTailMax: number;
  /** Tail-mean alpha divided by that of the reference term. */
  ratio: number;
  /** Raw-gradient-norm share ‖g_i‖ / Σ‖g_j‖ over the head (null without gradient norms). */
  gradShareStart: number | null;
  /** Raw-gradient-norm share ‖g_i‖ / Σ‖g_j‖ over the tail (null without gradient norms). */
  gradShareEnd: number | null;
  /** Weighted-gradient-norm share α_i‖g_i‖ / Σ α_j‖g_j‖ over the head (null without gradient norms). */
  weightedGradShareStart: number | null;
  /** Weighted-gradient-norm share α_i‖g_i‖ / Σ α_j‖g_j‖ over the tail (null without gradient norms). */
  weightedGradShareEnd: number | null;
  /** Weighted-loss share α_i L_i / Σ α_j L_j over the head (always available). */
  weightedLossShareStart: number;
  /** Weighted-loss share α_i L_i / Σ α_j L_j over the tail (always available). */
  weightedLossShareEnd: number;
  /** Raw loss at the start (head mean). */
  lossStart: number;
  /** Raw loss at the end (tail mean). */
  lossEnd: number;
  /** |log(second half / first half)| of the normalised weight over the tail. */
  drift: number;
  /** std / mean of the normalised weight over the tail. */
  cv: number;
  /** `'drifting'` when `drift` ≥ `driftTolerance`, else `'oscillating'` when `cv` ≥ `cvTolerance`, else `'converged'`. */
  status: WeightStatus;
}

/** What {@link diagnose} returns. `String(d)` is `d.text`. */
export interface Diagnosis {
  /** The explanation in plain words. */
  text: string;
  /** Steps recorded. */
  steps: number;
  /** How many of the recorded steps were skipped (non-finite). */
  skipped: number;
  /** The steps the tail averages cover (inclusive step indices). */
  tailSteps: [number, number];
  /** The fraction used for the tail. */
  tail: number;
  /** The term ratios are expressed against. */
  reference: string;
  /** Whether gradient norms were recorded. */
  hasGradNorms: boolean;
  /** One diagnosis per term, in term order. */
  terms: TermDiagnosis[];
  /** The run's verdict: the worst term status. */
  status: WeightStatus;
  /** Recommended fixed weights (mean alpha over the tail), by term. */
  recommended: PerTerm;
  /** The same, scaled so the reference term has weight 1. */
  recommendedRelative: PerTerm;
  /** Notes worth reading (constant weights, skipped steps, ...). */
  notes: string[];
  /** Returns {@link Diagnosis.text}. */
  toString(): string;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const std = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};
/** Below this a mean is treated as zero when dividing (a weight or share of exactly zero is a defined case). */
const DIAG_EPS = 1e-12;
const safeDiv = (a: number, b: number): number => (Math.abs(b) > DIAG_EPS ? a / b : 0);
const pct = (x: number): string => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;

function checkFraction(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0 && v <= 1)) throw new Error(`diagnose: option "${name}" got ${v}; must be a number in (0, 1]`);
}

/** Per-step shares a_i / Σ a_j of a per-term quantity, null when the quantity is missing. */
function shares(r: StepRecord, names: readonly string[], value: (r: StepRecord, n: string) => number | undefined): number[] | null {
  const v = names.map((n) => value(r, n));
  if (v.some((x) => x === undefined || !Number.isFinite(x))) return null;
  const a = (v as number[]).map(Math.abs);
  const s = a.reduce((x, y) => x + y, 0);
  return a.map((x) => safeDiv(x, s));
}

function meanShares(rows: readonly StepRecord[], names: readonly string[], value: (r: StepRecord, n: string) => number | undefined): (number | null)[] {
  const all = rows.map((r) => shares(r, names, value)).filter((s): s is number[] => s !== null);
  if (!all.length) return names.map(() => null);
  return names.map((_, i) => mean(all.map((s) => s[i])));
}

/**
 * Explain a finished run. `records` are the step records of one trajectory (from `trainer.history`
 * or `readJsonl(path).records`), in step order. See the module documentation for the criterion.
 */
export function diagnose(records: readonly StepRecord[], options: DiagnoseOptions = {}): Diagnosis {
  const { tail = 0.2, head = 0.1, driftTolerance = 0.1, cvTolerance = 0.1 } = options;
  checkFraction('tail', tail);
  checkFraction('head', head);
  for (const [k, v] of [['driftTolerance', driftTolerance], ['cvTolerance', cvTolerance]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`diagnose: option "${k}" got ${v}; must be a positive number`);
  }
  if (!Array.isArray(records) || records.length === 0) throw new Error('diagnose: the trajectory has no steps');
  const names = Object.keys(records[0].weight ?? {});
  if (!names.length) throw new Error('diagnose: step 0 has no weights (is this a loss-balancer trajectory?)');
  records.forEach((r, i) => {
    for (const n of names) {
      if (typeof r.weight?.[n] !== 'number' || typeof r.loss?.[n] !== 'number') {
        throw new Error(`diagnose: record ${i} (step ${r.step}) has no weight or loss for term "${n}"`);
      }
    }
  });
  const kept = records.filter((r) => !r.skipped);
  const skipped = records.length - kept.length;
  if (!kept.length) throw new Error(`diagnose: all ${records.length} steps were skipped (non-finite losses or gradients)`);
  const nTail = Math.max(1, Math.ceil(kept.length * tail));
  const nHead = Math.max(1, Math.ceil(kept.length * head));
  const tailRows = kept.slice(kept.length - nTail);
  const headRows = kept.slice(0, nHead);
  const tailMean = (n: string) => mean(tailRows.map((r) => r.weight[n]));
  const positive = names.filter((n) => tailMean(n) > DIAG_EPS);
  const reference = options.reference ?? (positive.length ? positive.reduce((best, n) => (tailMean(n) < tailMean(best) ? n : best)) : names[0]);
  if (!names.includes(reference)) throw new Error(`diagnose: option "reference" is "${reference}", not a term; terms are ${names.join(', ')}`);

  const hasGradNorms = kept.some((r) => r.gradNorm && names.every((n) => Number.isFinite(r.gradNorm![n])));
  const grad = (r: StepRecord, n: string) => r.gradNorm?.[n];
  const wgrad = (r: StepRecord, n: string) => (r.gradNorm?.[n] === undefined ? undefined : r.gradNorm[n] * r.weight[n]);
  const wloss = (r: StepRecord, n: string) => r.weight[n] * r.loss[n];
  const gS = meanShares(headRows, names, grad);
  const gE = meanShares(tailRows, names, grad);
  const wgS = meanShares(headRows, names, wgrad);
  const wgE = meanShares(tailRows, names, wgrad);
  const wlS = meanShares(headRows, names, wloss);
  const wlE = meanShares(tailRows, names, wloss);

  const refMean = mean(tailRows.map((r) => r.weight[reference]));
  const norm = (r: StepRecord, n: string) => safeDiv(r.weight[n], names.reduce((a, m) => a + r.weight[m], 0));
  const half = Math.floor(tailRows.length / 2);
  const terms: TermDiagnosis[] = names.map((n, i) => {
    const a = tailRows.map((r) => r.weight[n]);
    const m = mean(a);
    const nw = tailRows.map((r) => norm(r, n));
    const nm = mean(nw);
    const cv = nm > DIAG_EPS ? std(nw) / nm : 0;
    const first = mean(nw.slice(0, half));
    const second = mean(nw.slice(half));
    const drift = half >= 1 && first > DIAG_EPS && second > DIAG_EPS ? Math.abs(Math.log(second / first)) : 0;
    const status: WeightStatus = drift >= driftTolerance ? 'drifting' : cv >= cvTolerance ? 'oscillating' : 'converged';
    return {
      term: n,
      alphaStart: kept[0].weight[n],
      alphaEnd: kept[kept.length - 1].weight[n],
      alphaTailMean: m,
      alphaTailSpread: m > DIAG_EPS ? std(a) / m : 0,
      alphaTailMin: Math.min(...a),
      alphaTailMax: Math.max(...a),
      ratio: safeDiv(m, refMean),
      gradShareStart: gS[i],
      gradShareEnd: gE[i],
      weightedGradShareStart: wgS[i],
      weightedGradShareEnd: wgE[i],
      weightedLossShareStart: wlS[i] ?? 0,
      weightedLossShareEnd: wlE[i] ?? 0,
      lossStart: mean(headRows.map((r) => r.loss[n])),
      lossEnd: mean(tailRows.map((r) => r.loss[n])),
      drift,
      cv,
      status,
    };
  });
  const order: WeightStatus[] = ['converged', 'oscillating', 'drifting'];
  const status = terms.reduce<WeightStatus>((w, t) => (order.indexOf(t.status) > order.indexOf(w) ? t.status : w), 'converged');
  const recommended = Object.fromEntries(terms.map((t) => [t.term, t.alphaTailMean]));
  const recommendedRelative = Object.fromEntries(terms.map((t) => [t.term, t.ratio]));
  const constant = terms.every((t) => t.alphaTailMin === t.alphaTailMax && t.alphaStart === t.alphaEnd);

  const notes: string[] = [];
  if (skipped) notes.push(`${skipped} of ${records.length} steps were skipped (non-finite loss or gradient); they are left out of every average.`);
  if (constant) notes.push('The weights never changed (fixed weights): there is nothing to learn from the alphas; the shares below show how the terms competed.');
  if (kept.length < 20) notes.push(`Only ${kept.length} accepted steps: the verdicts below rest on very few points.`);

  const tailFrom = tailRows[0].step;
  const tailTo = tailRows[tailRows.length - 1].step;
  const L: string[] = [];
  L.push(`${records.length} steps${skipped ? ` (${skipped} skipped)` : ''}, ${names.length} terms: ${names.join(', ')}. "End" means the mean over the last ${pct(tail)} of the accepted steps (steps ${tailFrom}–${tailTo}); "start" the first ${pct(head)}.`);
  for (const n of notes) L.push(`Note: ${n}`);
  L.push('');
  L.push('Gradient shares (how much of the update each term drives):');
  if (!hasGradNorms) {
    L.push('  Gradient norms were not recorded (this strategy reads losses only, so the trainer computed no per-term gradient). Shares of the weighted loss α·L instead:');
    for (const t of terms) L.push(`  - ${t.term}: ${pct(t.weightedLossShareStart)} of α·L at the start → ${pct(t.weightedLossShareEnd)} at the end`);
  } else {
    for (const t of terms) {
      const raw = `raw ‖∇${t.term}‖ ${pct(t.gradShareStart ?? 0)} → ${pct(t.gradShareEnd ?? 0)} of Σ‖∇‖`;
      const w = `weighted α‖∇‖ ${pct(t.weightedGradShareStart ?? 0)} → ${pct(t.weightedGradShareEnd ?? 0)}`;
      L.push(`  - ${t.term}: ${raw}; ${w}`);
    }
    const dom = [...terms].sort((a, b) => (b.gradShareEnd ?? 0) - (a.gradShareEnd ?? 0));
    const weak = dom[dom.length - 1];
    if (dom[0] && weak && (weak.gradShareEnd ?? 0) > 0) {
      L.push(`  Unweighted, ${dom[0].term}'s gradient is ${fmt((dom[0].gradShareEnd ?? 0) / (weak.gradShareEnd ?? 1))}× ${weak.term}'s at the end: with equal weights ${dom[0].term} would drive the shared parameters.`);
    }
  }
  L.push('');
  L.push(`Learned alpha ratios (end, × ${reference}):`);
  if (refMean <= DIAG_EPS) L.push(`  ${reference}'s alpha ended at 0, so no ratio to it is defined; the alphas themselves:`);
  for (const t of [...terms].sort((a, b) => b.ratio - a.ratio)) {
    if (t.term === reference) continue;
    const what = refMean > DIAG_EPS ? `ended at ${fmt(t.ratio)}× ${reference}` : 'ended';
    L.push(`  - ${t.term} ${what} (alpha ${fmt(t.alphaStart)} → ${fmt(t.alphaEnd)}; end mean ${fmt(t.alphaTailMean)})`);
  }
  const off = terms.filter((t) => t.alphaTailMean <= DIAG_EPS);
  if (off.length) L.push(`  Switched off at the end (alpha 0): ${off.map((t) => t.term).join(', ')}.`);
  L.push('');
  const verdict = {
    converged: 'The weights converged',
    oscillating: 'The weights oscillate around a stable mean',
    drifting: 'The weights are still drifting',
  }[status];
  L.push(`${verdict} (criterion: over the end window, each weight's share of Σα moved < ${fmt(driftTolerance)} in |log| between the window's halves, and varied < ${fmt(cvTolerance)} std/mean):`);
  for (const t of terms) L.push(`  - ${t.term}: ${t.status} (drift ${fmt(t.drift)}, variation ${fmt(t.cv)})`);
  if (status === 'drifting') L.push('  A drifting weight has not settled: train longer, or treat the recommendation as a starting point.');
  L.push('');
  L.push(`Recommended fixed weights (mean alpha over steps ${tailFrom}–${tailTo}; ± relative spread, [min, max]):`);
  for (const t of terms) {
    L.push(`  - ${t.term}: ${fmt(t.alphaTailMean)} ± ${pct(t.alphaTailSpread)} [${fmt(t.alphaTailMin)}, ${fmt(t.alphaTailMax)}]  (relative: ${fmt(t.ratio)})`);
  }
  L.push(`  As code: balancer: { name: 'fixed', weights: ${JSON.stringify(Object.fromEntries(terms.map((t) => [t.term, Number(t.alphaTailMean.toPrecision(4))])))} }`);
  if (!constant) L.push('  These reproduce the end of the balanced run; the early steps used different weights, so a fixed-weight run can differ early on.');
  const text = L.join('\n');

  return {
    text,
    steps: records.length,
    skipped,
    tailSteps: [tailFrom, tailTo],
    tail,
    reference,
    hasGradNorms,
    terms,
    status,
    recommended,
    recommendedRelative,
    notes,
    toString: () => text,
  };
}
