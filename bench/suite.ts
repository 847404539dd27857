/**
 * `npm run bench:suite`: the cross-problem benchmark of issue 24. Small problems of the kinds users
 * have, each with its own held-out metric (not a loss), runnable on 2 cores; on each: equal weights,
 * the problem's hand-tuned and grid points, EVERY registered strategy at its defaults, bare `auto`
 * (the spec `'auto'` and nothing else; the trainer knows the run's length) and `auto` with the problem's validation score. 3 seeds,
 * medians, and the cost of each run (wall seconds, steps, peak tensor bytes, peak RSS).
 *
 * Every run writes one JSON file, `<cache>/<problem>/<row>/seed-<s>.json` (default cache
 * bench/results/suite), and the tables are rendered from those files, so rows can be re-run
 * separately:
 *
 *   npm run bench:suite                         every problem, row and seed; tables; docs section
 *   npm run bench:suite -- --only auto          re-run only the two auto rows; other rows from the cache
 *   npm run bench:suite -- --from-cache         render the tables (and docs) from the cache only
 *   npm run bench:suite -- --quick              tiny settings, every problem, a few rows, no docs (CI)
 *
 * Options: `--problems a,b` (default all, see {@link SUITE_PROBLEMS}), `--only <row id prefixes>` (`auto$`: that id only)
 * (row ids: `equal`, `hand`, `grid-…`, `strategy-<name>`, `auto`, `auto-validation`), `--seeds N`
 * (seeds 1..N, default 3) or `--seed-list 1,3`, `--strategies a,b` (default every registered one),
 * `--resume` (skip runs whose file exists for the same step count), `--cache DIR`, `--no-docs`.
 *
 * Rows "best grid point" and the summary are computed from the cache: the best grid point is the
 * best of the fixed-weight rows (equal, hand-tuned, grid) chosen per seed ON THE TEST METRIC (an
 * oracle: what a hand sweep approximates). The summary checks issue 24's "Done when": bare `auto` no
 * worse than equal weights on every seed, with the equal-weights row's own seed spread (max − min)
 * as the margin; and the gap closed, (equal − auto) / (equal − best grid point) with the sign of the
 * metric's direction, whose median over problems should be ≥ 0.5.
 */
import * as tf from '@tensorflow/tfjs';
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/train/backend.js';
import { list } from '../src/core/registry.js';
import type { BalancerSpec } from '../src/core/types.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { median, multiOutputProblem, pinnProblem, vaeProblem, type BenchProblem, type RunHooks } from './auto.js';
import { writeMarkedSection } from './docs-section.js';
import { helmholtz, poisson1d } from './pinn/problems.js';
import { autoencoderProblem, distillationProblem, ticketProblem } from './suite/problems.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The default cache of per-run results. */
export const SUITE_CACHE = join(ROOT, 'bench', 'results', 'suite');

// -------------------------------------------------------------------------------------------------
// Trainers: the one place where the suite builds them

/**
 * Every trainer of the suite is built here: add trainer options in this one place. Each is told
 * the run's length (`totalSteps`), as `fitBalanced` tells it: `auto` sizes its trials to the run.
 */
export function makeSuiteTrainer(options: BalancedTrainerOptions, run: { steps: number }): BalancedTrainer {
  return new BalancedTrainer({ ...options, totalSteps: run.steps });
}

// -------------------------------------------------------------------------------------------------
// Problems

/** A problem of the suite: how to build it (full or quick) and where it comes from. */
export interface SuiteProblemDef {
  name: string;
  /** Where the problem and its hand-tuned weights come from. */
  source: string;
  /** What the suite reduced against the original protocol (to fit a few seconds per run). */
  reduced: string;
  /** Builds the problem; `quick`: tiny sizes for the CI smoke run. */
  make(quick: boolean): BenchProblem;
}

/** Replace a problem's grid (the suite keeps grids small: each grid point is a row of 3 runs). */
const withGrid = (p: BenchProblem, grid: BenchProblem['grid']): BenchProblem => Object.assign(p, { grid });

const fixedRow = (label: string, weights: Record<string, number>) => ({ label, spec: { name: 'fixed', weights } as BalancerSpec });
const EQUAL = { label: 'equal weights', spec: 'fixed' as BalancerSpec };
const boundaryGrid = [EQUAL, ...[10, 100, 1000].map((k) => fixedRow(`fixed boundary ×${k}`, { boundary: k }))];

/** The problems, in table order. */
export const SUITE_PROBLEMS: SuiteProblemDef[] = [
  {
    name: 'vae',
    source: "the project's seed problem (bench/seed.ts): a VAE on real MNIST digits with four terms (recon_a, recon_b, kl, adv); its hand weight recon_a ×20",
    reduced: 'bench:seed runs 300 steps of batch 128; here 200 steps of batch 64, grid recon_a ×{1, 5, 20, 50} (bench:seed: ×{1, 2, 5, 10, 20, 50})',
    make: (quick) => {
      const p = quick ? vaeProblem(4, { nTrain: 300, nTest: 100, batchSize: 16, sizes: { hidden: 16, latent: 4, discHidden: 8 } }) : vaeProblem(200, { batchSize: 64 });
      const keep = quick ? [1, 20] : [1, 5, 20, 50];
      return withGrid(p, keep.map((k) => (k === 1 ? EQUAL : k === 20 ? fixedRow('hand: the seed’s recon_a ×20', { recon_a: 20 }) : fixedRow(`fixed recon_a ×${k}`, { recon_a: k }))));
    },
  },
  {
    name: 'poisson1d',
    source: "−u'' = f on [0, 1], u = sin(4πx) (the 1-D example of Wang, Teng & Perdikaris 2021, §2.3; bench/pinn/problems.ts)",
    reduced: 'bench:auto runs 2,000 steps; here 800 steps (Adam 1e-3 with the authors’ decay, 128 points per step); no published fixed weights, so the grid is the oracle only',
    make: (quick) => withGrid(pinnProblem(poisson1d(), quick ? 4 : 800, quick ? 16 : 128, 'worst-term'), quick ? boundaryGrid.slice(0, 2) : boundaryGrid),
  },
  {
    name: 'helmholtz',
    source: 'Helmholtz 2-D of Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 43(5), 2021, and their code (GradientPathologiesPINNs@93e752b, Helmholtz/)',
    reduced: 'the paper: 40,000 steps, 128 points per term and side; here 500 steps, 64 points; the learning-rate annealing paper publishes no fixed weights, so the grid is the oracle only',
    make: (quick) => withGrid(pinnProblem(helmholtz(quick ? { hidden: [8, 8] } : {}), quick ? 3 : 500, quick ? 8 : 64, 'worst-term'), quick ? boundaryGrid.slice(0, 2) : boundaryGrid),
  },
  {
    name: 'multi-output',
    source: 'bench/auto.ts: a shared tanh trunk and three linear heads whose targets are on scales 1, 100 and 0.01',
    reduced: 'as bench:auto (600 steps of batch 32); grid: the hand normalisation 1/scale² and two single-term points (bench:auto: 13 points)',
    make: (quick) =>
      withGrid(multiOutputProblem(quick ? 6 : 600), [
        EQUAL,
        fixedRow('hand: 1/scale²', { y_small: 1, y_large: 1e-4, y_tiny: 1e4 }),
        ...(quick ? [] : [fixedRow('fixed y_large ×1e-4', { y_large: 1e-4 }), fixedRow('fixed y_tiny ×1e4', { y_tiny: 1e4 })]),
      ]),
  },
  {
    name: 'autoencoder',
    source: "issue 24's new-user trial: reconstruction (raw 0–255 pixels, ≈6e3) + sparsity (≈0.2) + classification (summed over the batch, ≈145) on real MNIST digits (bench/suite/problems.ts)",
    reduced: 'small by construction: 500 steps of batch 64 (Adam 3e-3), 2,500 training digits',
    make: (quick) => (quick ? withGrid(autoencoderProblem(4, { nTrain: 200, nTest: 100, batch: 16 }), [EQUAL]) : autoencoderProblem(500)),
  },
  {
    name: 'keras-ticket',
    source: 'the Keras functional-API guide’s ticket model, loss_weights [1.0, 0.2] (keras-team/keras-io, guides/functional_api.py; https://keras.io/guides/functional_api/); synthetic data of its shapes',
    reduced: 'vocabulary 10,000 → 500, body 100 → 30 words, LSTMs → mean-pooled embeddings + dense; 300 steps of batch 32 (the guide: 2 epochs of 1,280 random tickets)',
    make: (quick) => (quick ? ticketProblem(4, { nTrain: 200, nTest: 100, batch: 8, vocabulary: 50 }) : ticketProblem(300)),
  },
  {
    name: 'keras-distillation',
    source: 'the Keras example “Knowledge Distillation” (keras-team/keras-io, examples/vision/knowledge_distillation.py; https://keras.io/examples/vision/knowledge_distillation/), alpha 0.1 = weights (0.1, 0.9), temperature 10; real MNIST digits',
    reduced: 'CNNs on 28×28 → MLPs on 14×14 (teacher 196→64→10, student 196→16→10), 2,500 training digits, 300 steps of batch 64 (the example: 3 epochs of 60,000)',
    make: (quick) => (quick ? distillationProblem(4, { nTrain: 300, nTest: 100, batch: 16, teacherEpochs: 1 }) : distillationProblem(300)),
  },
];

// -------------------------------------------------------------------------------------------------
// Rows

/** What a row is. */
export type RowKind = 'equal' | 'hand' | 'grid' | 'strategy' | 'auto' | 'auto-validation';

/** A row: one configuration, run on every seed. */
export interface SuiteRow {
  /** Directory name in the cache and what `--only` matches (by prefix). */
  id: string;
  label: string;
  kind: RowKind;
  spec: BalancerSpec;
  /** Pass the problem's validation metric as `auto`'s score. */
  validation: boolean;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9._]+/g, '-').replace(/^-|-$/g, '');

/** Every registered strategy but `fixed` (equal weights' row) and the `auto` selector. */
export const defaultStrategies = (): string[] => list().filter((s) => s.kind !== 'selector' && s.name !== 'fixed').map((s) => s.name);

/** The rows of a problem: its grid (equal first, hand-tuned rows labelled "hand:"), the strategies, bare auto, auto with the validation score. */
export function suiteRows(p: BenchProblem, strategies: readonly string[]): SuiteRow[] {
  const grid: SuiteRow[] = p.grid.map((g, i) => {
    const kind: RowKind = i === 0 ? 'equal' : g.label.startsWith('hand') ? 'hand' : 'grid';
    return { id: kind === 'equal' ? 'equal' : kind === 'hand' ? 'hand' : `grid-${slug(g.label.replace(/^fixed /, ''))}`, label: g.label, kind, spec: g.spec, validation: false };
  });
  return [
    ...grid,
    ...strategies.map((s): SuiteRow => ({ id: `strategy-${s}`, label: s, kind: 'strategy', spec: s, validation: false })),
    { id: 'auto', label: "bare auto ('auto')", kind: 'auto', spec: 'auto', validation: false },
    { id: 'auto-validation', label: 'auto + validation score', kind: 'auto-validation', spec: 'auto', validation: true },
  ];
}

// -------------------------------------------------------------------------------------------------
// One run

/** One run's result, as cached. */
export interface RunRecord {
  problem: string;
  row: string;
  label: string;
  kind: RowKind;
  seed: number;
  steps: number;
  metricName: string;
  higherIsBetter: boolean;
  /** The held-out metric (NaN when the run threw). */
  metric: number;
  /** The parts of a combined metric, or other held-out numbers. */
  extra?: Record<string, number>;
  /** Wall seconds of the whole run (model set-up, training, evaluation). */
  seconds: number;
  /** Peak of tf.memory().numBytes sampled after every step, minus its value when the run started (the problem's data). */
  peakTensorBytes: number;
  /** Peak process RSS sampled after every step. */
  peakRssBytes: number;
  /** Tensors left after the run that were not there before it (should be 0). */
  leakedTensors: number;
  /** For `auto` rows: the winner, why, and the candidate steps taken. */
  winner?: string;
  reason?: string;
  candidateSteps?: number;
  /** The message, when the run threw. */
  error?: string;
  commit: string;
  date: string;
  /** The 1-minute load average when the run started (the machine is shared). */
  load1?: number;
  backend: string;
  node: string;
}

let commitCache: string | undefined;
function commitOf(): string {
  if (commitCache === undefined) {
    try {
      commitCache = execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
      if (execSync("git status --porcelain -- src strategies bench ':!bench/results'", { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()) commitCache += '+dirty';
    } catch {
      commitCache = 'unknown';
    }
  }
  return commitCache;
}

/** Run one row of a problem on one seed; a run that throws gives a record with the error. */
export function runOne(p: BenchProblem, row: SuiteRow, seed: number): RunRecord {
  const baseBytes = tf.memory().numBytes;
  const baseTensors = tf.memory().numTensors;
  let peakBytes = baseBytes;
  let peakRss = process.memoryUsage.rss();
  const hooks: RunHooks = {
    makeTrainer: (o) => makeSuiteTrainer(o, { steps: p.steps }),
    onStep: () => {
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    },
  };
  const t0 = Date.now();
  const rec: RunRecord = {
    problem: p.name,
    row: row.id,
    label: row.label,
    kind: row.kind,
    seed,
    steps: p.steps,
    metricName: p.metricName,
    higherIsBetter: p.higherIsBetter,
    metric: Number.NaN,
    seconds: 0,
    peakTensorBytes: 0,
    peakRssBytes: 0,
    leakedTensors: 0,
    commit: commitOf(),
    date: new Date().toISOString(),
    load1: loadavg()[0],
    backend: tf.getBackend(),
    node: process.version,
  };
  try {
    const r = p.run(row.spec, seed, row.validation, hooks);
    rec.metric = r.metric;
    if (r.extra) rec.extra = r.extra;
    if (r.tournament) {
      rec.winner = r.tournament.winner ?? '(selection not finished)';
      if (r.tournament.reason) rec.reason = r.tournament.reason;
      rec.candidateSteps = r.tournament.cost.candidateSteps;
    }
  } catch (e) {
    rec.error = (e as Error).message ?? String(e);
  }
  rec.seconds = (Date.now() - t0) / 1000;
  rec.peakTensorBytes = peakBytes - baseBytes;
  rec.peakRssBytes = peakRss;
  rec.leakedTensors = tf.memory().numTensors - baseTensors;
  return rec;
}

const recordPath = (cache: string, problem: string, row: string, seed: number) => join(cache, problem, row, `seed-${seed}.json`);

/** Write a record to the cache. */
export function saveRecord(cache: string, r: RunRecord): void {
  const f = recordPath(cache, r.problem, r.row, r.seed);
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(f, `${JSON.stringify(r, null, 1)}\n`);
}

/** Every cached record of a problem, by row id then seed. */
export function loadRecords(cache: string, problem: string): Map<string, Map<number, RunRecord>> {
  const out = new Map<string, Map<number, RunRecord>>();
  const dir = join(cache, problem);
  if (!existsSync(dir)) return out;
  for (const row of readdirSync(dir)) {
    const m = new Map<number, RunRecord>();
    for (const f of readdirSync(join(dir, row))) {
      if (!/^seed-\d+\.json$/.test(f)) continue;
      const r = JSON.parse(readFileSync(join(dir, row, f), 'utf8'), (_k, v) => (v === null ? Number.NaN : v)) as RunRecord;
      m.set(r.seed, r);
    }
    out.set(row, m);
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// Tables

/** A row over seeds, as rendered. */
export interface RowResult {
  id: string;
  label: string;
  kind: RowKind | 'best-grid';
  /** Per seed (NaN: missing or threw), in the order of the seed list. */
  metrics: number[];
  records: (RunRecord | undefined)[];
  median: number;
}

/** One problem's table. */
export interface ProblemResult {
  problem: string;
  metricName: string;
  higherIsBetter: boolean;
  steps: number;
  seeds: number[];
  rows: RowResult[];
}

const KIND_ORDER: Record<RowKind, number> = { equal: 0, hand: 1, grid: 2, strategy: 3, auto: 4, 'auto-validation': 5 };

/** Build a problem's table from its cached records (rows in the order equal, hand, grid, strategies A–Z, auto rows). */
export function problemResult(problem: string, records: Map<string, Map<number, RunRecord>>, seeds: readonly number[]): ProblemResult | null {
  const rows: RowResult[] = [];
  let meta: RunRecord | undefined;
  for (const [id, bySeed] of records) {
    const recs = seeds.map((s) => bySeed.get(s));
    const any = [...bySeed.values()][0];
    if (!any) continue;
    meta ??= any;
    const metrics = recs.map((r) => (r && !r.error ? r.metric : Number.NaN));
    rows.push({ id, label: any.label, kind: any.kind, metrics, records: recs, median: median(metrics) });
  }
  if (!meta) return null;
  rows.sort((a, b) => KIND_ORDER[a.kind as RowKind] - KIND_ORDER[b.kind as RowKind] || (a.kind === 'grid' || a.kind === 'hand' ? 0 : a.label.localeCompare(b.label)));
  const hi = meta.higherIsBetter;
  const fixedRows = rows.filter((r) => r.kind === 'equal' || r.kind === 'hand' || r.kind === 'grid');
  const best = seeds.map((_, i) => {
    const v = fixedRows.map((r) => r.metrics[i]).filter(Number.isFinite);
    return v.length ? (hi ? Math.max(...v) : Math.min(...v)) : Number.NaN;
  });
  rows.splice(fixedRows.length, 0, { id: 'best-grid', label: 'best grid point (oracle, per seed)', kind: 'best-grid', metrics: best, records: [], median: median(best) });
  return { problem, metricName: meta.metricName, higherIsBetter: hi, steps: meta.steps, seeds: [...seeds], rows };
}

const f4 = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : '—');
const mb = (b: number) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '—');
const maxOf = (xs: number[]) => (xs.filter(Number.isFinite).length ? Math.max(...xs.filter(Number.isFinite)) : Number.NaN);

/** The Markdown table of one problem: median and per-seed metric, the parts, auto's picks and the cost. */
export function problemTable(r: ProblemResult): string {
  const extraNames = [...new Set(r.rows.flatMap((row) => row.records.flatMap((x) => Object.keys(x?.extra ?? {}))))];
  const lines = [
    `**${r.problem}**: ${r.metricName}; ${r.steps} steps per run; median over seeds ${r.seeds.join(', ')}`,
    '',
    `| row | median | per seed | ${extraNames.map((n) => `${n} (median)`).join(' | ')}${extraNames.length ? ' | ' : ''}auto: picked | auto: candidate steps / steps | s / run | tensor MB (peak) | RSS MB (peak) |`,
    `|---|---|---|${extraNames.map(() => '---|').join('')}---|---|---|---|---|`,
  ];
  for (const row of r.rows) {
    const recs = row.records.filter((x): x is RunRecord => !!x);
    const err = recs.find((x) => x.error)?.error;
    const stale = recs.some((x) => x.steps !== r.steps) ? ` (cached at ${[...new Set(recs.map((x) => x.steps))].join('/')} steps)` : '';
    const label = row.kind === 'auto' || row.kind === 'auto-validation' || row.kind === 'best-grid' ? `**${row.label}**` : row.label;
    const med = err && !Number.isFinite(row.median) ? `threw: ${err.replace(/\|/g, '/').slice(0, 80)}` : f4(row.median) + (err ? ` (threw on a seed: ${err.replace(/\|/g, '/').slice(0, 60)})` : '');
    const extras = extraNames.map((n) => f4(median(recs.map((x) => x.extra?.[n] ?? Number.NaN))));
    const picked = recs.some((x) => x.winner) ? row.records.map((x) => x?.winner ?? '—').join(', ') : '';
    const cost = recs.some((x) => x.candidateSteps !== undefined) ? row.records.map((x) => (x?.candidateSteps !== undefined ? (x.candidateSteps / x.steps).toFixed(2) : '—')).join(', ') : '';
    const secs = recs.length ? median(recs.map((x) => x.seconds)).toFixed(1) : '';
    lines.push(
      `| ${label}${stale} | ${med} | ${row.metrics.map(f4).join(', ')} | ${extras.join(' | ')}${extras.length ? ' | ' : ''}${picked} | ${cost} | ${secs} | ${recs.length ? mb(maxOf(recs.map((x) => x.peakTensorBytes))) : ''} | ${recs.length ? mb(maxOf(recs.map((x) => x.peakRssBytes))) : ''} |`,
    );
  }
  return lines.join('\n');
}

/** Issue 24's "Done when" numbers for one problem. */
export interface ProblemSummary {
  problem: string;
  higherIsBetter: boolean;
  equal: number;
  bestGrid: number;
  /** The hand-tuned row's median, when the problem has one. */
  hand?: number;
  bestStrategy?: { name: string; median: number };
  bareAuto: number;
  autoValidation: number;
  /** The equal-weights row's own seed spread (max − min): the allowed margin. */
  margin: number;
  /** Bare auto no worse than equal weights on every seed (by more than the margin); null: a seed is missing. */
  bareNoWorse: boolean | null;
  autoValidationNoWorse: boolean | null;
  /** (equal − auto) / (equal − best grid), signed so that 1 = as good as the best grid point; null when equal weights is the best grid point. */
  gapBare: number | null;
  gapValidation: number | null;
  /** The gap (equal weights → best grid point) exceeds the equal-weights row's seed spread: the gap closed is not a ratio of noise. */
  gapAboveSpread: boolean;
}

/** Signed improvement of `x` over `ref` (positive = better), by the metric's direction. */
const better = (hi: boolean, x: number, ref: number) => (hi ? x - ref : ref - x);

/** No worse than equal weights on every seed, within the margin; null when a seed is missing. */
export function noWorseOnEverySeed(hi: boolean, row: readonly number[], equal: readonly number[], margin: number): boolean | null {
  if (row.length !== equal.length || row.some((x) => !Number.isFinite(x)) || equal.some((x) => !Number.isFinite(x))) return null;
  return row.every((x, i) => better(hi, x, equal[i]) >= -margin);
}

/** (equal − x) / (equal − best), by the metric's direction; null when the best grid point is equal weights (no gap). */
export function gapClosed(hi: boolean, x: number, equal: number, best: number): number | null {
  const gap = better(hi, best, equal);
  if (!(gap > 0) || !Number.isFinite(x)) return null;
  return better(hi, x, equal) / gap;
}

/** The summary numbers of one problem. */
export function summarize(r: ProblemResult): ProblemSummary {
  const hi = r.higherIsBetter;
  const row = (k: RowResult['kind']) => r.rows.find((x) => x.kind === k);
  const equal = row('equal');
  const best = row('best-grid');
  const bare = row('auto');
  const val = row('auto-validation');
  const eqMetrics = equal?.metrics ?? [];
  const margin = eqMetrics.filter(Number.isFinite).length ? maxOf(eqMetrics) - Math.min(...eqMetrics.filter(Number.isFinite)) : Number.NaN;
  const strategies = r.rows.filter((x) => x.kind === 'strategy' && Number.isFinite(x.median));
  const top = strategies.sort((a, b) => better(hi, b.median, a.median))[0];
  const eq = equal?.median ?? Number.NaN;
  const bg = best?.median ?? Number.NaN;
  return {
    problem: r.problem,
    higherIsBetter: hi,
    equal: eq,
    bestGrid: bg,
    hand: row('hand')?.median,
    bestStrategy: top ? { name: top.label, median: top.median } : undefined,
    bareAuto: bare?.median ?? Number.NaN,
    autoValidation: val?.median ?? Number.NaN,
    margin,
    bareNoWorse: bare ? noWorseOnEverySeed(hi, bare.metrics, eqMetrics, margin) : null,
    autoValidationNoWorse: val ? noWorseOnEverySeed(hi, val.metrics, eqMetrics, margin) : null,
    gapBare: bare ? gapClosed(hi, bare.median, eq, bg) : null,
    gapValidation: val ? gapClosed(hi, val.median, eq, bg) : null,
    gapAboveSpread: better(hi, bg, eq) > margin,
  };
}

const yn = (b: boolean | null) => (b === null ? 'n/a (missing seed)' : b ? 'yes' : '**no**');
const gapText = (g: number | null, x: ProblemSummary) => (g === null ? 'n/a' : `${g.toFixed(2)}${x.gapAboveSpread ? '' : ' (gap within seed spread)'}`);

/** The summary table across problems and the two "Done when" verdicts, computed. */
export function summaryTable(results: readonly ProblemResult[]): string {
  const s = results.map(summarize);
  const lines = [
    '| problem | better | equal weights | best grid point (oracle) | hand-tuned | best strategy at defaults | bare auto | auto + validation | bare auto no worse than equal on every seed (margin) | gap closed: bare auto | gap closed: auto + validation |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...s.map(
      (x) =>
        `| ${x.problem} | ${x.higherIsBetter ? 'higher' : 'lower'} | ${f4(x.equal)} | ${f4(x.bestGrid)} | ${x.hand === undefined ? '—' : f4(x.hand)} | ${x.bestStrategy ? `${x.bestStrategy.name} ${f4(x.bestStrategy.median)}` : '—'} | ${f4(x.bareAuto)} | ${f4(x.autoValidation)} | ${yn(x.bareNoWorse)} (${f4(x.margin)}) | ${gapText(x.gapBare, x)} | ${gapText(x.gapValidation, x)} |`,
    ),
  ];
  const gaps = (k: 'gapBare' | 'gapValidation', real = false) => s.filter((x) => !real || x.gapAboveSpread).map((x) => x[k]).filter((g): g is number => g !== null);
  const medGap = (k: 'gapBare' | 'gapValidation', real = false) => (gaps(k, real).length ? median(gaps(k, real)).toFixed(2) : 'n/a');
  const noGap = s.filter((x) => x.gapBare === null).map((x) => x.problem);
  const allSafe = s.every((x) => x.bareNoWorse === true);
  lines.push(
    '',
    `Median gap closed over problems: bare auto **${medGap('gapBare')}** (over ${gaps('gapBare').length} problems), auto + validation **${medGap('gapValidation')}** (over ${gaps('gapValidation').length})${noGap.length ? `; n/a (no gap: equal weights is the best grid point, or a row is missing): ${noGap.join(', ')}` : ''}. Over the problems whose gap exceeds equal weights' own seed spread only: bare auto ${medGap('gapBare', true)} (over ${gaps('gapBare', true).length}), auto + validation ${medGap('gapValidation', true)} (over ${gaps('gapValidation', true).length}).`,
    `Done-when checks for bare auto: no worse than equal weights on every problem and seed: **${allSafe ? 'yes' : 'no'}**${allSafe ? '' : ` (fails on ${s.filter((x) => x.bareNoWorse !== true).map((x) => x.problem).join(', ')})`}; median gap closed ≥ 0.5: **${gaps('gapBare').length && median(gaps('gapBare')) >= 0.5 ? 'yes' : 'no'}**.`,
  );
  return lines.join('\n');
}

// -------------------------------------------------------------------------------------------------
// Command line

/** What {@link main} returns (the tests read it). */
export interface SuiteOutput {
  results: ProblemResult[];
  /** The printed text: per-problem tables and the summary. */
  text: string;
  /** Runs made by this call. */
  runs: RunRecord[];
}

/** Parse argv, run the selected rows (writing each run to the cache), render every table from the cache, print, write docs. */
export async function main(argv: readonly string[], log: (line: string) => void = (l) => console.error(l)): Promise<SuiteOutput> {
  const quick = argv.includes('--quick');
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    if (i >= 0 && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) throw new Error(`bench:suite: ${name} needs a value`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const known = SUITE_PROBLEMS.map((p) => p.name);
  const wanted = arg('--problems')?.split(',') ?? known;
  const unknown = wanted.filter((w) => !known.includes(w));
  if (unknown.length) throw new Error(`bench:suite: unknown problem(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const seedList = arg('--seed-list')?.split(',').map(Number) ?? Array.from({ length: Number(arg('--seeds') ?? (quick ? 1 : 3)) }, (_, i) => i + 1);
  if (!seedList.length || seedList.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`bench:suite: --seeds takes a positive integer and --seed-list positive integers, got ${arg('--seeds') ?? arg('--seed-list')}`);
  const registered = defaultStrategies();
  const strategies = arg('--strategies')?.split(',') ?? (quick ? ['mgda', 'softadapt'] : registered);
  const badStrategies = strategies.filter((s) => !registered.includes(s));
  if (badStrategies.length) throw new Error(`bench:suite: unknown strategy(ies) ${badStrategies.join(', ')}; registered: ${registered.join(', ')}`);
  const only = arg('--only')?.split(',');
  const cache = arg('--cache') ?? (quick ? join(tmpdir(), `loss-balancer-suite-quick-${process.pid}`) : SUITE_CACHE);
  const fromCache = argv.includes('--from-cache');
  const resume = argv.includes('--resume');
  const backend = await initBackend();
  const load0 = loadavg()[0];
  const t0 = Date.now();
  const runs: RunRecord[] = [];
  if (!fromCache) {
    for (const def of SUITE_PROBLEMS.filter((d) => wanted.includes(d.name))) {
      const rowsOf = (p: BenchProblem) => suiteRows(p, strategies).filter((r) => !only || only.some((k) => (k.endsWith('$') ? r.id === k.slice(0, -1) : r.id.startsWith(k))));
      const p = def.make(quick);
      try {
        const rows = rowsOf(p);
        log(`bench:suite ${p.name} on ${backend}: ${rows.length} row(s) × ${seedList.length} seed(s), ${p.steps} steps per run`);
        for (const row of rows) {
          for (const seed of seedList) {
            const f = recordPath(cache, p.name, row.id, seed);
            if (resume && existsSync(f) && (JSON.parse(readFileSync(f, 'utf8')) as RunRecord).steps === p.steps) continue;
            const r = runOne(p, row, seed);
            saveRecord(cache, r);
            runs.push(r);
            log(`  ${p.name} ${row.id} seed ${seed}: ${r.error ? `threw: ${r.error}` : r.metric.toPrecision(4)}${r.winner ? ` (picked ${r.winner}, ${r.candidateSteps} candidate steps)` : ''}, ${r.seconds.toFixed(1)} s${r.leakedTensors ? `, ${r.leakedTensors} tensors left` : ''}`);
          }
        }
      } finally {
        p.dispose?.();
      }
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  const results = wanted.map((name) => problemResult(name, loadRecords(cache, name), seedList)).filter((r): r is ProblemResult => r !== null);
  const text = [...results.map(problemTable), '**Summary across problems** (medians over seeds)', summaryTable(results)].join('\n\n');
  console.log(text);
  if (!quick && !argv.includes('--no-docs')) {
    writeMarkedSection(join(ROOT, 'docs', 'benchmarks.md'), 'suite', suiteSection(results, { argv, backend, seconds, load: [load0, loadavg()[0]], cache }));
    log('bench:suite: wrote docs/benchmarks.md between the suite markers');
  }
  return { results, text, runs };
}

/** The docs section: command, machine, cost, problems with their sources and reductions, tables, summary. */
export function suiteSection(results: readonly ProblemResult[], o: { argv: readonly string[]; backend: string; seconds: number; load: number[]; cache: string }): string {
  const recs = results.flatMap((r) => r.rows.flatMap((x) => x.records.filter((y): y is RunRecord => !!y)));
  const total = recs.reduce((a, x) => a + x.seconds, 0);
  const dates = recs.map((x) => x.date.slice(0, 16).replace('T', ' ')).sort();
  const loads = recs.map((x) => x.load1).filter((x): x is number => x !== undefined);
  const commits = [...new Set(recs.map((x) => x.commit))];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const problems = SUITE_PROBLEMS.filter((d) => results.some((r) => r.problem === d.name));
  return [
    '## Cross-problem suite (`npm run bench:suite`, issue 24)',
    '',
    `Command: \`npm run bench:suite\` (every run cached as JSON under ${o.cache.replace(`${ROOT}/`, '')}/<problem>/<row>/seed-<s>.json; this render: \`npm run bench:suite -- ${o.argv.filter((a) => a !== '--no-docs').join(' ')}\`). Machine: ${cpus().length} vCPU ${cpu}, shared with other jobs (1-minute load average ${loads.length ? `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} at the start of the ${loads.length} runs that recorded it` : 'not recorded by these runs'}; ${o.load.map((x) => x.toFixed(1)).join(' → ')} over this render's invocation); Node ${process.version}; tfjs backend \`${o.backend}\`. Runs from ${dates[0] ?? '—'} to ${dates[dates.length - 1] ?? '—'} UTC, at commit(s) ${commits.join(', ')} ("+dirty": code under bench/, src/ or strategies/ not committed). Sum of the cached runs' wall time: ${(total / 60).toFixed(1)} min for ${recs.length} runs (one process, one core).`,
    '',
    'Rows: equal weights; the hand-tuned weights the source publishes ("hand:") and a few grid points; the **best grid point**, chosen per seed on the test metric among the fixed-weight rows (an oracle); every registered strategy at its defaults; **bare auto** (`balancer: \'auto\'`, nothing else; every trainer is told the run\'s length, `totalSteps`, as `fitBalanced` tells it); **auto + validation score** (`{ name: \'auto\', score }` with the problem\'s validation metric on data apart from the test set). Medians over seeds; cost per run: wall seconds (set-up, training, evaluation), peak of `tf.memory().numBytes` above the problem\'s data and peak process RSS, both sampled after every step; for auto rows the candidate steps as a multiple of the run\'s steps.',
    '',
    '| problem | source | reduced against the original protocol |',
    '|---|---|---|',
    ...problems.map((d) => `| ${d.name} | ${d.source} | ${d.reduced} |`),
    '',
    '### Summary across problems',
    '',
    summaryTable(results),
    '',
    '### Per problem',
    '',
    results.map(problemTable).join('\n\n'),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
