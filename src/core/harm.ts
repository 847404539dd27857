/**
 * Harm detection: notice, while a run trains (or afterwards, from its trajectory), when the balancing
 * is hurting. Four flags, each judged over a sliding window of accepted (not skipped) steps:
 *
 * - **`starved`**: a term's share of the combined gradient, α_i‖g_i‖ / Σ_j α_j‖g_j‖ (norms on the
 *   shared parameters, from the record's `gradNorm`), averaged over the last `window` steps, is below
 *   `starvedShare`. Needs recorded gradient norms: a loss-only strategy reads none, so this flag is
 *   not checked for it.
 * - **`pinned`**: a term's weight sat at a bound for at least `pinnedFraction` of the last `window`
 *   steps: a `bounds` clamp (the record's `clamped`) or the strategy's floor (`floor`, by default the
 *   strategy's `minWeight` option when it has one, as GradNorm's), within a relative `pinTolerance`.
 * - **`runaway`**: the ratio of the largest to the smallest positive weight is at least `runawayRatio`
 *   (mean of its log over the window's second half) and still growing: it grew by a factor of at least
 *   `runawayGrowth` between the window's halves.
 * - **`rising`**: a term's raw loss rose over the last `lossWindow` steps (the means of the window's
 *   four quarters never decrease and the last is at least `risingFactor` × the first) while the other
 *   terms' losses fell (the geometric mean of their last-quarter / first-quarter ratios is at most
 *   1 / `risingFactor`). Only positive losses are compared.
 *
 * {@link HarmDetector} consumes {@link StepRecord}s one at a time with memory bounded by the window
 * (O(max(window, lossWindow) × terms) numbers), and is what both `diagnose` and {@link HarmMonitor}
 * (the trainer's live, rate-limited warnings) run.
 *
 * @module
 */
import { caveatsOf } from './caveats.js';
import type { RunMeta, Sink, StepRecord } from './history.js';

/** The four harm flags (see the module documentation). */
export type HarmKind = 'starved' | 'pinned' | 'runaway' | 'rising';

/** Thresholds of the harm checks. Every field is optional; the defaults are given per field. */
export interface HarmOptions {
  /** Steps (accepted ones) over which `starved`, `pinned` and `runaway` are judged. @default 200 */
  window?: number;
  /** Steps over which `rising` is judged. @default 500 */
  lossWindow?: number;
  /** A term whose mean share α_i‖g_i‖ / Σ α_j‖g_j‖ over the window is below this is starved. @default 0.01 */
  starvedShare?: number;
  /** A weight at a bound for at least this fraction of the window's steps is pinned. @default 0.9 */
  pinnedFraction?: number;
  /** A weight within this relative distance of the floor counts as at the floor. @default 0.05 */
  pinTolerance?: number;
  /**
   * The strategy's lower clip of a weight. @default the strategy's `minWeight` option when it is a number
   * (GradNorm: 1e-3), else none (only `bounds` clamps count)
   */
  floor?: number;
  /** Largest / smallest positive weight at or above this is a runaway (when still growing). @default 100 */
  runawayRatio?: number;
  /** ... and the ratio grew by at least this factor between the window's halves. @default 1.25 */
  runawayGrowth?: number;
  /** A loss that grew by this factor (last quarter / first quarter) while the others fell by it is rising. @default 1.1 */
  risingFactor?: number;
  /** A flag on the same term is reported again only after this many steps. @default 1000 */
  cooldown?: number;
  /** The checks run every this many steps. @default max(1, round(window / 10)) */
  checkEvery?: number;
}

/** One harm flag raised on one term. */
export interface HarmFinding {
  /** Which flag. */
  kind: HarmKind;
  /** The term at fault (for `runaway`: the term with the largest weight). */
  term: string;
  /** For `runaway`: the term with the smallest weight (the ratio's denominator). */
  other?: string;
  /** The trainer step at which the flag was raised (the window's last step). */
  step: number;
  /** The window's first step. */
  from: number;
  /** The numbers the flag rests on (shares, fractions, ratios). */
  evidence: Record<string, number>;
  /** One sentence naming the term, the steps and the evidence, plus the strategy's caveat when one applies. */
  message: string;
}

/** A flag over a whole run, as `diagnose` reports it: its first and last occurrence and how often it was raised. */
export interface HarmSummary {
  /** The first time the flag was raised. */
  first: HarmFinding;
  /** The last time it was raised. */
  last: HarmFinding;
  /** Number of checks at which it was raised. */
  checks: number;
}

const DEFAULTS = {
  window: 200,
  lossWindow: 500,
  starvedShare: 0.01,
  pinnedFraction: 0.9,
  pinTolerance: 0.05,
  runawayRatio: 100,
  runawayGrowth: 1.25,
  risingFactor: 1.1,
  cooldown: 1000,
};

/** {@link HarmOptions} with every default filled (`floor` stays optional: none when the strategy has no floor). */
export type ResolvedHarmOptions = Required<Omit<HarmOptions, 'floor'>> & Pick<HarmOptions, 'floor'>;

/** The options with defaults filled; a bad value is an error naming the option, the value and the rule. */
export function harmOptions(options: HarmOptions = {}): ResolvedHarmOptions {
  if (options === null || typeof options !== 'object') throw new Error(`harm options must be an object; got ${JSON.stringify(options)}`);
  const o = { ...DEFAULTS, ...options };
  const int = (k: keyof HarmOptions, min: number) => {
    const v = o[k as keyof typeof o] as number;
    if (!Number.isInteger(v) || v < min) throw new Error(`harm option "${k}" got ${JSON.stringify(v)}; must be an integer >= ${min}`);
  };
  const num = (k: keyof HarmOptions, ok: (v: number) => boolean, rule: string) => {
    const v = o[k as keyof typeof o] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`harm option "${k}" got ${JSON.stringify(v)}; must be ${rule}`);
  };
  const known = new Set([...Object.keys(DEFAULTS), 'floor', 'checkEvery']);
  const unknown = Object.keys(options).find((k) => !known.has(k));
  if (unknown) throw new Error(`harm option "${unknown}" is unknown; known options: ${[...known].join(', ')}`);
  int('window', 4);
  int('lossWindow', 4);
  int('cooldown', 1);
  num('starvedShare', (v) => v > 0 && v < 1, 'a number in (0, 1)');
  num('pinnedFraction', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num('pinTolerance', (v) => v >= 0, 'a number >= 0');
  num('runawayRatio', (v) => v > 1, 'a number > 1');
  num('runawayGrowth', (v) => v >= 1, 'a number >= 1');
  num('risingFactor', (v) => v > 1, 'a number > 1');
  if (o.floor !== undefined) num('floor', (v) => v >= 0, 'a number >= 0');
  const checkEvery = options.checkEvery ?? Math.max(1, Math.round(o.window / 10));
  if (!Number.isInteger(checkEvery) || checkEvery < 1) throw new Error(`harm option "checkEvery" got ${JSON.stringify(checkEvery)}; must be an integer >= 1`);
  return { ...o, checkEvery };
}

const pct = (x: number): string => `${(100 * x).toFixed(x < 0.1 ? 2 : 0)}%`;
const num = (x: number): string => {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : Number(x.toPrecision(3)).toString();
};

/**
 * Runs the four harm checks over step records fed one at a time. Memory: a ring buffer of the last
 * max(`window`, `lossWindow`) accepted steps (weights, losses, gradient norms, clamps per term).
 */
export class HarmDetector {
  /** The validated options. */
  readonly options: ResolvedHarmOptions;
  private terms: string[] | null = null;
  private strategy = '';
  private floor: number | undefined;
  private cap = 0;
  private n = 0; // accepted steps seen
  private head = 0; // next slot
  private steps!: Float64Array;
  private w!: Float64Array;
  private loss!: Float64Array;
  private gn!: Float64Array;
  private clamped!: Uint8Array;
  private readonly lastReported = new Map<string, number>();
  private readonly summaries = new Map<string, HarmSummary>();
  /** Caveats already spelled out in a reported finding (by option), and each finding's short form. */
  private readonly caveatsShown = new Set<string>();
  private readonly caveatOf = new WeakMap<HarmFinding, { option: string; short: string }>();

  constructor(options: HarmOptions = {}) {
    this.options = harmOptions(options);
    this.floor = this.options.floor;
  }

  /** Take the run's facts: strategy name (for its caveats), term names, and the floor from its options. */
  open(meta: Pick<RunMeta, 'strategy' | 'terms'> & { options?: unknown }): void {
    this.strategy = String(meta.strategy ?? '');
    if (this.options.floor === undefined) {
      const mw = (meta.options as { minWeight?: unknown } | null | undefined)?.minWeight;
      this.floor = typeof mw === 'number' && Number.isFinite(mw) && mw >= 0 ? mw : undefined;
    }
    if (Array.isArray(meta.terms) && meta.terms.length) this.bind(meta.terms);
  }

  private bind(terms: string[]): void {
    this.terms = [...terms];
    const T = terms.length;
    this.cap = Math.max(this.options.window, this.options.lossWindow);
    this.steps = new Float64Array(this.cap);
    this.w = new Float64Array(this.cap * T);
    this.loss = new Float64Array(this.cap * T);
    this.gn = new Float64Array(this.cap * T);
    this.clamped = new Uint8Array(this.cap * T);
  }

  /** Every flag raised so far, by `kind:term`: first and last occurrence, number of checks. */
  get summary(): HarmSummary[] {
    return [...this.summaries.values()];
  }

  /**
   * Feed one step record (skipped steps are ignored). Returns the findings raised at this step that
   * are not within `cooldown` steps of the same flag on the same term (usually none).
   */
  push(record: StepRecord): HarmFinding[] {
    if (record.skipped) return [];
    if (!this.terms) this.bind(Object.keys(record.weight ?? {}));
    const names = this.terms!;
    const T = names.length;
    if (!T) return [];
    const slot = this.head;
    this.steps[slot] = record.step;
    const clamped = record.clamped ?? [];
    for (let i = 0; i < T; i++) {
      const n = names[i];
      this.w[slot * T + i] = record.weight?.[n] ?? Number.NaN;
      this.loss[slot * T + i] = record.loss?.[n] ?? Number.NaN;
      const g = record.gradNorm?.[n];
      this.gn[slot * T + i] = typeof g === 'number' ? g : Number.NaN;
      this.clamped[slot * T + i] = clamped.includes(n) ? 1 : 0;
    }
    this.head = (this.head + 1) % this.cap;
    this.n += 1;
    if (this.n % this.options.checkEvery !== 0) return [];
    const found: HarmFinding[] = [];
    if (this.n >= this.options.window) for (const f of this.checkWindow()) found.push(f);
    if (this.n >= this.options.lossWindow) for (const f of this.checkRising()) found.push(f);
    const out: HarmFinding[] = [];
    for (const f of found) {
      const key = `${f.kind}:${f.term}`;
      const s = this.summaries.get(key);
      if (s) {
        s.last = f;
        s.checks += 1;
      } else this.summaries.set(key, { first: f, last: f, checks: 1 });
      const last = this.lastReported.get(key);
      if (last === undefined || f.step - last >= this.options.cooldown) {
        this.lastReported.set(key, f.step);
        // the strategy's caveat is spelled out in the first reported finding that carries it, then cited
        const c = this.caveatOf.get(f);
        if (c && this.caveatsShown.has(c.option)) f.message = c.short;
        else if (c) this.caveatsShown.add(c.option);
        out.push(f);
      }
    }
    return out;
  }

  /** Slot of the k-th most recent step (k = 0: the newest). */
  private at(k: number): number {
    return (this.head - 1 - k + 2 * this.cap) % this.cap;
  }

  private finding(kind: HarmKind, term: string, from: number, to: number, evidence: Record<string, number>, text: string, other?: string): HarmFinding {
    const caveat = caveatsOf(this.strategy).find((c) => c.flags.includes(kind));
    const tail = ' (harm checks: trainer option harm: false turns them off, harm: { ... } adjusts the thresholds)';
    const message = `step ${to}: ${text}` + (caveat ? ` Note on ${this.strategy} (${caveat.option}): ${caveat.text}` : '') + tail;
    const f: HarmFinding = { kind, term, ...(other ? { other } : {}), step: to, from, evidence, message };
    if (caveat) this.caveatOf.set(f, { option: caveat.option, short: `step ${to}: ${text} (See the note on ${this.strategy} (${caveat.option}) in the first such warning.)` + tail });
    return f;
  }

  private checkWindow(): HarmFinding[] {
    const names = this.terms!;
    const T = names.length;
    const W = this.options.window;
    const from = this.steps[this.at(W - 1)];
    const to = this.steps[this.at(0)];
    const out: HarmFinding[] = [];

    // starved: weighted gradient share
    const shareSum = new Float64Array(T);
    const shareMax = new Float64Array(T);
    const rawSum = new Float64Array(T);
    const wSum = new Float64Array(T);
    let withGrad = 0;
    for (let k = 0; k < W; k++) {
      const s = this.at(k);
      let tot = 0;
      let raw = 0;
      let ok = true;
      for (let i = 0; i < T; i++) {
        const g = this.gn[s * T + i];
        const w = this.w[s * T + i];
        if (!Number.isFinite(g) || !Number.isFinite(w)) ok = false;
        else {
          tot += Math.abs(w) * g;
          raw += g;
        }
      }
      for (let i = 0; i < T; i++) wSum[i] += this.w[s * T + i];
      if (!ok || !(tot > 0)) continue;
      withGrad += 1;
      for (let i = 0; i < T; i++) {
        const sh = (Math.abs(this.w[s * T + i]) * this.gn[s * T + i]) / tot;
        shareSum[i] += sh;
        if (sh > shareMax[i]) shareMax[i] = sh;
        rawSum[i] += raw > 0 ? this.gn[s * T + i] / raw : 0;
      }
    }
    if (withGrad >= W / 2 && T > 1) {
      for (let i = 0; i < T; i++) {
        const share = shareSum[i] / withGrad;
        if (share < this.options.starvedShare) {
          const rawShare = rawSum[i] / withGrad;
          const weight = wSum[i] / W;
          out.push(
            this.finding('starved', names[i], from, to, { share, maxShare: shareMax[i], rawShare, weight },
              `term "${names[i]}" is starved: its share of the combined gradient α‖∇‖/Σα‖∇‖ averaged ${pct(share)} (max ${pct(shareMax[i])}) over steps ${from}–${to}, below ${pct(this.options.starvedShare)}; unweighted its gradient is ${pct(rawShare)} of Σ‖∇‖, its mean weight ${num(weight)}.`),
          );
        }
      }
    }

    // pinned: at a bounds clamp or at the strategy's floor
    const floor = this.floor;
    for (let i = 0; i < T; i++) {
      let atClamp = 0;
      let atFloor = 0;
      for (let k = 0; k < W; k++) {
        const s = this.at(k);
        if (this.clamped[s * T + i]) atClamp += 1;
        else if (floor !== undefined && Math.abs(this.w[s * T + i]) <= floor * (1 + this.options.pinTolerance) + 1e-300) atFloor += 1;
      }
      const fraction = (atClamp + atFloor) / W;
      if (fraction >= this.options.pinnedFraction) {
        const where = atFloor >= atClamp ? `the strategy's floor minWeight = ${num(floor ?? 0)}` : 'a bound (bounds.min, max or maxChange clamped it)';
        out.push(
          this.finding('pinned', names[i], from, to, { fraction, atFloor: atFloor / W, atBounds: atClamp / W, weight: wSum[i] / W, ...(floor !== undefined ? { floor } : {}) },
            `the weight of term "${names[i]}" is pinned at ${where} for ${pct(fraction)} of steps ${from}–${to} (mean weight ${num(wSum[i] / W)}): the strategy wants it beyond the bound, so it is not balancing this term.`),
        );
      }
    }

    // runaway: largest / smallest positive weight, orders of magnitude and growing
    const last = this.at(0);
    let hi = -1;
    let lo = -1;
    for (let i = 0; i < T; i++) {
      const w = Math.abs(this.w[last * T + i]);
      if (!(w > 0) || !Number.isFinite(w)) continue;
      if (hi < 0 || w > Math.abs(this.w[last * T + hi])) hi = i;
      if (lo < 0 || w < Math.abs(this.w[last * T + lo])) lo = i;
    }
    if (hi >= 0 && lo >= 0 && hi !== lo) {
      const half = Math.floor(W / 2);
      let a = 0;
      let na = 0;
      let b = 0;
      let nb = 0;
      for (let k = 0; k < W; k++) {
        const s = this.at(k);
        const r = Math.abs(this.w[s * T + hi]) / Math.abs(this.w[s * T + lo]);
        if (!(r > 0) || !Number.isFinite(r)) continue;
        if (k < half) {
          b += Math.log(r);
          nb += 1;
        } else {
          a += Math.log(r);
          na += 1;
        }
      }
      if (na && nb) {
        const ratio = Math.exp(b / nb);
        const growth = Math.exp(b / nb - a / na);
        if (ratio >= this.options.runawayRatio && growth >= this.options.runawayGrowth) {
          out.push(
            this.finding('runaway', names[hi], from, to, { ratio, growth },
              `runaway weights: "${names[hi]}"'s weight is ${num(ratio)}× "${names[lo]}"'s (over steps ${from}–${to}) and the ratio grew ×${num(growth)} within that window: one term is being pushed up (or the other down) by orders of magnitude.`,
              names[lo]),
          );
        }
      }
    }
    return out;
  }

  private checkRising(): HarmFinding[] {
    const names = this.terms!;
    const T = names.length;
    if (T < 2) return [];
    const W = this.options.lossWindow;
    const q = Math.floor(W / 4);
    const from = this.steps[this.at(W - 1)];
    const to = this.steps[this.at(0)];
    // quarter means, oldest quarter first
    const means: number[][] = names.map(() => [0, 0, 0, 0]);
    const counts: number[][] = names.map(() => [0, 0, 0, 0]);
    for (let k = 0; k < 4 * q; k++) {
      const s = this.at(W - 1 - k);
      const quarter = Math.floor(k / q);
      for (let i = 0; i < T; i++) {
        const l = this.loss[s * T + i];
        if (Number.isFinite(l)) {
          means[i][quarter] += l;
          counts[i][quarter] += 1;
        }
      }
    }
    const m = means.map((row, i) => row.map((x, j) => (counts[i][j] ? x / counts[i][j] : Number.NaN)));
    const positive = m.map((row) => row.every((x) => x > 0));
    const change = m.map((row, i) => (positive[i] ? row[3] / row[0] : Number.NaN));
    const out: HarmFinding[] = [];
    const f = this.options.risingFactor;
    for (let i = 0; i < T; i++) {
      if (!positive[i] || !(change[i] >= f)) continue;
      if (!(m[i][1] >= m[i][0] && m[i][2] >= m[i][1] && m[i][3] >= m[i][2])) continue;
      let logSum = 0;
      let k = 0;
      for (let j = 0; j < T; j++) {
        if (j === i || !positive[j]) continue;
        logSum += Math.log(change[j]);
        k += 1;
      }
      if (!k) continue;
      const others = Math.exp(logSum / k);
      if (others > 1 / f) continue;
      out.push(
        this.finding('rising', names[i], from, to, { change: change[i], othersChange: others, start: m[i][0], end: m[i][3] },
          `the raw loss of term "${names[i]}" rose over steps ${from}–${to} (×${num(change[i])}: ${num(m[i][0])} → ${num(m[i][3])}, quarter means never falling) while the other terms' losses fell (×${num(others)}, geometric mean): the balance favours the others at this term's expense.`),
      );
    }
    return out;
  }
}

/** Options of {@link HarmMonitor}: the thresholds plus where the warnings go. */
export interface HarmMonitorOptions extends HarmOptions {
  /** Where warnings go. @default console.warn, prefixed "loss-balancer: " */
  warn?: (message: string) => void;
  /**
   * The early check: until the main `window` has filled, the same checks run over windows of this
   * many steps, so that a weight pinned at its floor or at a bound, or weights a million times
   * apart and still growing, are reported within the first steps, before the run is spent (each
   * once per term, with the strategy's caveat: why, and what to use instead). `false` turns it
   * off. @default 20
   */
  early?: number | false;
}

/** Weights this far apart (largest / smallest) count as running away in the early check. */
const EARLY_RUNAWAY_RATIO = 1e6;

/** More findings of one flag than this in one check are warned in one line (see HarmMonitor). */
const GROUP_OVER = 3;

/**
 * A {@link Sink} that runs a {@link HarmDetector} on every step record and warns (rate-limited by
 * `cooldown`, per flag and term) when a flag is raised. `BalancedTrainer` adds one unless its option
 * `harm` is `false`.
 */
export class HarmMonitor implements Sink {
  /** The detector (its {@link HarmDetector.summary} lists every flag raised so far). */
  readonly detector: HarmDetector;
  private readonly warn: (message: string) => void;

  /** The early check's detector while the main window fills (see {@link HarmMonitorOptions.early}). */
  private earlyDetector: HarmDetector | null;
  private readonly earlyShown = new Set<string>();
  private seen = 0;

  constructor(options: HarmMonitorOptions = {}) {
    const { warn, early, ...thresholds } = options ?? {};
    this.detector = new HarmDetector(thresholds);
    this.warn = warn ?? ((m) => console.warn(`loss-balancer: ${m}`));
    const e = early ?? 20;
    if (e !== false && (!Number.isInteger(e) || e < 4)) throw new Error(`harm option "early" got ${JSON.stringify(e)}; must be an integer >= 4, or false`);
    this.earlyDetector = e !== false && e < this.detector.options.window
      ? new HarmDetector({ ...thresholds, window: e, lossWindow: Math.max(e, this.detector.options.lossWindow), checkEvery: Math.max(1, Math.round(e / 2)), cooldown: this.detector.options.window })
      : null;
  }

  private strategy = '';
  /** Set when `auto` handed the run to a strategy: appended to every warning from then on. */
  private autoNote = '';

  open(meta: RunMeta): void {
    this.detector.open(meta);
    this.earlyDetector?.open(meta);
    this.strategy = String(meta.strategy ?? '');
  }

  /**
   * `auto` handed the run to `strategy` (candidate `label`) at `step`: later warnings carry that
   * strategy's caveat and say that auto picked it on the run's first `step` steps (its selection and
   * probation), and what to do.
   */
  pickedByAuto(strategy: string, label: string, step: number, options?: { minWeight?: unknown }): void {
    const meta = { strategy, terms: [] as string[], options };
    this.detector.open(meta);
    this.earlyDetector?.open(meta);
    this.strategy = strategy;
    this.autoNote =
      ` (auto picked ${label} at step ${step}, judging the run's first ${step} steps only: if this term matters, pass score (or monitor in fitBalanced) so that auto judges by your metric, or leave ${strategy} out of its candidates)`;
  }

  /**
   * One warning per finding; when one check raises the same flag on more than {@link GROUP_OVER}
   * terms (a many-term run: at T = 32 a new user's mgda run printed one "starved" line per term), one
   * line for them all, naming the terms and quoting the first finding ({@link HarmDetector.summary}
   * keeps each).
   */
  private emit(findings: readonly HarmFinding[]): void {
    const byKind = new Map<HarmKind, HarmFinding[]>();
    for (const f of findings) {
      const list = byKind.get(f.kind) ?? [];
      list.push(f);
      byKind.set(f.kind, list);
    }
    for (const [kind, fs] of byKind) {
      if (fs.length <= GROUP_OVER) {
        for (const f of fs) this.warn(f.message + this.autoNote);
        continue;
      }
      const names = fs.map((f) => `"${f.term}"`);
      const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
      this.warn(`${fs.length} terms raised "${kind}" over steps ${fs[0].from}–${fs[0].step} (${shown}); the first: ${fs[0].message}${this.autoNote}`);
    }
  }

  write(record: StepRecord): void {
    // During an `auto` selection the candidates' trial records are not the run's own trajectory.
    if (record.candidate !== undefined) return;
    this.emit(this.detector.push(record));
    if (!this.earlyDetector) return;
    if (!record.skipped) this.seen += 1;
    if (this.seen >= this.detector.options.window) {
      this.earlyDetector = null; // the main window has filled: its checks take over
      return;
    }
    for (const f of this.earlyDetector.push(record)) {
      // A starved term or weights 100× apart are what a strategy passes through while it adapts;
      // a weight pinned at a bound, or weights a million times apart and growing, are not.
      const sure = f.kind === 'pinned' || (f.kind === 'runaway' && (f.evidence.ratio ?? 0) >= EARLY_RUNAWAY_RATIO);
      const key = `${f.kind}:${f.term}`;
      if (!sure || this.earlyShown.has(key)) continue;
      this.earlyShown.add(key);
      // the strategy's caveat (what goes wrong, what to use instead) in full, in every early warning
      const caveat = caveatsOf(this.strategy).find((c) => c.flags.includes(f.kind));
      const text = caveat && !f.message.includes(caveat.text) ? `${f.message} Note on ${this.strategy} (${caveat.option}): ${caveat.text}` : f.message;
      this.warn(`early warning, ${text}${this.autoNote}`);
    }
  }
}
