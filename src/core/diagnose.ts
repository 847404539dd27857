/**
 * `diagnose(records)`: explain a finished run in plain words, and turn it into advice.
 *
 * For each term: its share of the gradient norm on the shared parameters at the start and at the end
 * of the run (from the recorded `gradNorm`; when a strategy read no gradients this is said, and the
 * share of the weighted loss is shown instead); the learned alpha ratios ("recon_a ended at 18.7× kl");
 * whether the weights converged, oscillate or are still drifting; and a recommended fixed-weight
 * vector that reproduces the balanced run, for users who want fixed alphas in production.
 *
 * The criterion (documented in {@link DiagnoseOptions}) works on log-weights, so that it means the same
 * at every scale: over the *tail* (the last `tail` fraction of the accepted steps), for each term,
 * - `drift` = |mean log α over the tail's second half − mean over its first half|;
 * - `cv` = standard deviation of log α over the tail (≈ std / mean for small variations).
 * When every term's log-weight moves by more than the tolerance, part of that may be a rescaling shared
 * by all terms (GradNorm's Σw = T), which is not movement: the measure is then taken on the log-weights
 * centred by their mean over the terms at each step. Otherwise the raw log-weights are judged, so a
 * constant weight is never moved by another term's movement. (Before, weights were
 * normalised by their sum: with large ratios a moving large weight then looked constant and the small
 * constant reference looked oscillating.) A term is `converged` when drift < `driftTolerance` and
 * cv < `cvTolerance`; `drifting` when drift ≥ `driftTolerance` (still moving one way: train longer or
 * take the end value); else `oscillating` (moving around a stable mean: the recommended value is that
 * mean, the spread says how much it wanders). The run's verdict is the worst over the terms (drifting >
 * oscillating > converged).
 *
 * The harm checks of src/core/harm.ts (starved term, weight pinned at a bound, runaway ratio, loss
 * rising while the others fall) run over the same records; `harm` lists what they found.
 *
 * The recommendation is the arithmetic mean of each term's actual alpha over the tail (the combined
 * gradient is linear in the alphas, so the mean alpha gives the mean update direction), with the
 * relative spread (standard deviation / mean) and the min–max range as evidence.
 *
 * @example
 * ```ts
 * import { diagnose, readJsonl } from 'loss-balancer';
 * const { records } = readJsonl('runs/x/trajectory.jsonl');
 * const d = diagnose(records);   // or diagnoseJsonl('runs/x/trajectory.jsonl').diagnosis: streamed, any length
 * console.log(d.text);            // plain words
 * console.log(d.recommended);     // { recon_a: 18.2, recon_b: 3.1, kl: 1 } → balancer: { name: 'fixed', weights: d.recommended }
 * ```
 * @module
 */
import type { PerTerm, RunMeta, StepRecord } from './history.js';
import { END_TAIL, fmt, tailCount } from './summary.js';
import { HarmDetector, type HarmOptions, type HarmSummary } from './harm.js';
import { followedTrajectory, type Tournament } from './tournament.js';

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
  /** A term whose log-weight moved by more than this between the tail's halves is drifting. @default 0.1 */
  driftTolerance?: number;
  /** A term whose log-weight varies more than this (standard deviation over the tail) oscillates. @default 0.1 */
  cvTolerance?: number;
  /** Thresholds of the harm checks (src/core/harm.ts), or `false` to skip them. @default {} */
  harm?: HarmOptions | false;
  /**
   * The run's meta line (strategy name and options): the harm checks read the strategy's floor
   * (`minWeight`) and caveats from it. @default none (`diagnoseJsonl` passes the file's)
   */
  meta?: Pick<RunMeta, 'strategy' | 'options'>;
  /**
   * An `auto` run's tournament: records tagged by a candidate other than the winner are left out
   * (the trajectory the run followed; see `followedTrajectory`). Without it, an array holding several
   * candidates' records is reduced the same way (equal weights' while no winner is known).
   */
  tournament?: Tournament | null;
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
  /** |difference of the mean log-weight between the tail's halves| (centred when every term moves). */
  drift: number;
  /** Standard deviation of the log-weight over the tail (centred when every term varies). */
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
  /** What the harm checks found (one entry per flag and term; empty when none was raised or the checks were off). */
  harm: HarmSummary[];
  /** Returns {@link Diagnosis.text}. */
  toString(): string;
}

/** Below this a mean is treated as zero when dividing (a weight or share of exactly zero is a defined case). */
const DIAG_EPS = 1e-12;
const safeDiv = (a: number, b: number): number => (Math.abs(b) > DIAG_EPS ? a / b : 0);
const pct = (x: number): string => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;
/** log |w|, with |w| floored at {@link DIAG_EPS} (a zero weight is a defined case). */
const logw = (w: number): number => Math.log(Math.max(Math.abs(w), DIAG_EPS));

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

/** Running mean of per-step share vectors (steps where the quantity is missing are left out). */
class ShareMean {
  private readonly sum: number[];
  private n = 0;
  constructor(size: number) {
    this.sum = new Array<number>(size).fill(0);
  }
  add(s: number[] | null): void {
    if (!s) return;
    this.n += 1;
    for (let i = 0; i < s.length; i++) this.sum[i] += s[i];
  }
  get means(): (number | null)[] {
    return this.sum.map((x) => (this.n ? x / this.n : null));
  }
}

/** Running mean, sample standard deviation (Welford), min and max of a sequence. */
class Moments {
  n = 0;
  mean = 0;
  private m2 = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  add(x: number): void {
    this.n += 1;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }
  get std(): number {
    return this.n < 2 ? 0 : Math.sqrt(Math.max(0, this.m2) / (this.n - 1));
  }
}

/** A source of step records: an array, or a function returning a fresh iterable on each call (read twice). */
export type RecordSource = readonly StepRecord[] | (() => Iterable<StepRecord>);

/**
 * Explain a finished run. `records` are the step records of one trajectory in step order: an array
 * (`trainer.history.records`, `readJsonl(path).records`), or a function that returns a fresh iterable
 * of them on each call (it is called twice: once to count, once to average), so that a run of any
 * length is diagnosed with memory bounded by the number of terms (`diagnoseJsonl(path)` streams a
 * file this way). See the module documentation for the criterion.
 */
export function diagnose(records: RecordSource, options: DiagnoseOptions = {}): Diagnosis {
  const { tail = END_TAIL, head = 0.1, driftTolerance = 0.1, cvTolerance = 0.1 } = options;
  checkFraction('tail', tail);
  checkFraction('head', head);
  for (const [k, v] of [['driftTolerance', driftTolerance], ['cvTolerance', cvTolerance]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new Error(`diagnose: option "${k}" got ${v}; must be a positive number`);
  }
  if (!Array.isArray(records) && typeof records !== 'function') throw new Error('diagnose: records must be an array of step records or a function returning an iterable of them');
  if (Array.isArray(records) && records.some((r) => r?.candidate !== undefined)) records = followedTrajectory(records, options.tournament);
  const keep = options.tournament ? (options.tournament.winner ?? 'equal') : null;
  const source = (typeof records === 'function' ? records : () => records) as () => Iterable<StepRecord>;
  // A streamed source with the tournament given: its other candidates' records are skipped as they pass.
  const pass = keep === null || Array.isArray(records) ? source : function* () {
    for (const r of source()) if (r.candidate === undefined || r.candidate === keep) yield r;
  };
  const harm = options.harm === false ? null : new HarmDetector(options.harm ?? {});

  // Pass 1: validate, count, harm checks.
  let names: string[] = [];
  let total = 0;
  let keptCount = 0;
  let hasGradNorms = false;
  for (const r of pass()) {
    if (total === 0) {
      names = Object.keys(r?.weight ?? {});
      if (!names.length) throw new Error('diagnose: step 0 has no weights (is this a loss-balancer trajectory?)');
      harm?.open({ strategy: options.meta?.strategy ?? '', options: options.meta?.options ?? {}, terms: names });
    }
    for (const n of names) {
      if (typeof r.weight?.[n] !== 'number' || typeof r.loss?.[n] !== 'number') {
        throw new Error(`diagnose: record ${total} (step ${r?.step}) has no weight or loss for term "${n}"`);
      }
    }
    total += 1;
    if (r.skipped) continue;
    keptCount += 1;
    if (!hasGradNorms && r.gradNorm && names.every((n) => Number.isFinite(r.gradNorm![n]))) hasGradNorms = true;
    harm?.push(r);
  }
  if (total === 0) throw new Error('diagnose: the trajectory has no steps');
  const skipped = total - keptCount;
  if (!keptCount) throw new Error(`diagnose: all ${total} steps were skipped (non-finite losses or gradients)`);
  const nTail = tailCount(keptCount, tail);
  const nHead = Math.max(1, Math.ceil(keptCount * head));
  const tailStart = keptCount - nTail;
  const half = Math.floor(nTail / 2);

  // Pass 2: head and tail statistics.
  const T = names.length;
  const grad = (r: StepRecord, n: string) => r.gradNorm?.[n];
  const wgrad = (r: StepRecord, n: string) => (r.gradNorm?.[n] === undefined ? undefined : r.gradNorm[n] * r.weight[n]);
  const wloss = (r: StepRecord, n: string) => r.weight[n] * r.loss[n];
  const [gS, gE, wgS, wgE, wlS, wlE] = Array.from({ length: 6 }, () => new ShareMean(T));
  const lossHead = new Array<number>(T).fill(0);
  const lossTail = new Array<number>(T).fill(0);
  const alpha = names.map(() => new Moments());
  // log-weights over the tail's halves: raw log|w_i| and centred log|w_i| − mean_j log|w_j|
  const rawHalf = names.map(() => [new Moments(), new Moments()]);
  const cenHalf = names.map(() => [new Moments(), new Moments()]);
  const raw = names.map(() => new Moments());
  const cen = names.map(() => new Moments());
  let first: StepRecord | null = null;
  let last: StepRecord | null = null;
  let tailFrom = 0;
  let k = 0;
  for (const r of pass()) {
    if (r.skipped) continue;
    if (k >= keptCount) break;
    first ??= r;
    last = r;
    if (k < nHead) {
      gS.add(shares(r, names, grad));
      wgS.add(shares(r, names, wgrad));
      wlS.add(shares(r, names, wloss));
      for (let i = 0; i < T; i++) lossHead[i] += r.loss[names[i]];
    }
    if (k >= tailStart) {
      if (k === tailStart) tailFrom = r.step;
      gE.add(shares(r, names, grad));
      wgE.add(shares(r, names, wgrad));
      wlE.add(shares(r, names, wloss));
      const logs = names.map((n) => logw(r.weight[n]));
      const centre = logs.reduce((a, b) => a + b, 0) / T;
      const h = k - tailStart < half ? 0 : 1;
      for (let i = 0; i < T; i++) {
        const w = r.weight[names[i]];
        lossTail[i] += r.loss[names[i]];
        alpha[i].add(w);
        raw[i].add(logs[i]);
        cen[i].add(logs[i] - centre);
        rawHalf[i][h].add(logs[i]);
        cenHalf[i][h].add(logs[i] - centre);
      }
    }
    k += 1;
  }
  if (k !== keptCount || !first || !last) throw new Error(`diagnose: the records changed between the two passes (${keptCount} accepted steps, then ${k})`);
  const tailTo = last.step;
  const tailMean = (i: number) => alpha[i].mean;
  const positive = names.map((_, i) => i).filter((i) => tailMean(i) > DIAG_EPS);
  const reference = options.reference ?? (positive.length ? names[positive.reduce((best, i) => (tailMean(i) < tailMean(best) ? i : best))] : names[0]);
  if (!names.includes(reference)) throw new Error(`diagnose: option "reference" is "${reference}", not a term; terms are ${names.join(', ')}`);
  const refMean = tailMean(names.indexOf(reference));
  const gSm = gS.means;
  const gEm = gE.means;
  const wgSm = wgS.means;
  const wgEm = wgE.means;
  const wlSm = wlS.means;
  const wlEm = wlE.means;

  // A term moves when its own log-weight moves. When every term's log-weight moves, part of it may be a
  // rescaling shared by all (GradNorm's Σw = T), which is not movement: the measures are then taken on
  // the log-weights centred by their mean over the terms. When some term's weight stays put, there is
  // no shared rescaling and the raw log-weights are judged (so that term is not moved by the others).
  const driftOf = (hs: Moments[]) => (half >= 1 ? Math.abs(hs[1].mean - hs[0].mean) : 0);
  const centreDrift = names.every((_, i) => driftOf(rawHalf[i]) >= driftTolerance);
  const centreCv = names.every((_, i) => raw[i].std >= cvTolerance);
  const terms: TermDiagnosis[] = names.map((n, i) => {
    const m = alpha[i].mean;
    const drift = centreDrift ? driftOf(cenHalf[i]) : driftOf(rawHalf[i]);
    const cv = centreCv ? cen[i].std : raw[i].std;
    const status: WeightStatus = drift >= driftTolerance ? 'drifting' : cv >= cvTolerance ? 'oscillating' : 'converged';
    return {
      term: n,
      alphaStart: first!.weight[n],
      alphaEnd: last!.weight[n],
      alphaTailMean: m,
      alphaTailSpread: m > DIAG_EPS ? alpha[i].std / m : 0,
      alphaTailMin: alpha[i].min,
      alphaTailMax: alpha[i].max,
      ratio: safeDiv(m, refMean),
      gradShareStart: gSm[i],
      gradShareEnd: gEm[i],
      weightedGradShareStart: wgSm[i],
      weightedGradShareEnd: wgEm[i],
      weightedLossShareStart: wlSm[i] ?? 0,
      weightedLossShareEnd: wlEm[i] ?? 0,
      lossStart: lossHead[i] / nHead,
      lossEnd: lossTail[i] / nTail,
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
  const harmFound = harm ? harm.summary : [];

  const notes: string[] = [];
  if (skipped) notes.push(`${skipped} of ${total} steps were skipped (non-finite loss or gradient); they are left out of every average.`);
  if (constant) notes.push('The weights never changed (fixed weights): there is nothing to learn from the alphas; the shares below show how the terms competed.');
  if (keptCount < 20) notes.push(`Only ${keptCount} accepted steps: the verdicts below rest on very few points.`);

  const L: string[] = [];
  L.push(`${total} steps${skipped ? ` (${skipped} skipped)` : ''}, ${names.length} terms: ${names.join(', ')}. "End" means the mean over the last ${pct(tail)} of the accepted steps (steps ${tailFrom}–${tailTo}); "start" the first ${pct(head)}.`);
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
  L.push(`${verdict} (criterion: over the end window, each log-weight moved < ${fmt(driftTolerance)} between the window's halves and varied < ${fmt(cvTolerance)} (standard deviation), a rescaling shared by all terms not counted):`);
  for (const t of terms) L.push(`  - ${t.term}: ${t.status} (drift ${fmt(t.drift)}, variation ${fmt(t.cv)})`);
  if (status === 'drifting') L.push('  A drifting weight has not settled: train longer, or treat the recommendation as a starting point.');
  L.push('');
  L.push(`Recommended fixed weights (mean alpha over steps ${tailFrom}–${tailTo}; ± relative spread, [min, max]):`);
  for (const t of terms) {
    L.push(`  - ${t.term}: ${fmt(t.alphaTailMean)} ± ${pct(t.alphaTailSpread)} [${fmt(t.alphaTailMin)}, ${fmt(t.alphaTailMax)}]  (relative: ${fmt(t.ratio)})`);
  }
  L.push(`  As code: balancer: { name: 'fixed', weights: ${JSON.stringify(Object.fromEntries(terms.map((t) => [t.term, Number(t.alphaTailMean.toPrecision(4))])))} }`);
  if (!constant) L.push('  These reproduce the end of the balanced run; the early steps used different weights, so a fixed-weight run can differ early on.');
  L.push('');
  if (!harm) L.push('Harm checks: off.');
  else if (!harmFound.length) {
    L.push(`Harm checks (window ${harm.options.window} steps, loss window ${harm.options.lossWindow}): nothing found (no starved term, no weight pinned at a bound, no runaway ratio, no loss rising while the others fall)${hasGradNorms ? '' : '; the starved-term check needs gradient norms, which were not recorded'}.`);
  } else {
    L.push(`Harm checks (window ${harm.options.window} steps, loss window ${harm.options.lossWindow}; first occurrence, and at how many checks it was raised):`);
    for (const h of harmFound) L.push(`  - ${h.first.kind} (${h.checks}×, last at step ${h.last.step}): ${h.first.message.replace(/ \(harm checks: .*\)$/, '')}`);
  }
  const text = L.join('\n');

  return {
    text,
    steps: total,
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
    harm: harmFound,
    toString: () => text,
  };
}
