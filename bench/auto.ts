/**
 * `auto` against the hand grid and every strategy at its defaults, on a list of problems.
 *
 * `npm run bench:auto` (reduced protocol: see the defaults below; writes docs/benchmarks.md between
 * the auto markers) or `npm run bench:auto -- --quick` (tiny settings, no docs: the CI smoke run).
 * Options: `--seeds N`, `--steps N` (multi-output), `--vae-steps N`, `--pinn-steps N`, `--problems a,b`
 * (multi-output, vae, poisson1d, helmholtz; default multi-output,vae), `--strategies a,b`,
 * `--trial-steps N`, `--only <label prefixes>` (run only those rows, e.g. to split the work), `--no-docs`,
 * `--seed-list 1,2` (run these seeds instead of 1..N), `--json out.json` (write the results), and
 * `--pinn-score sum-log|worst-term` (the PINNs' validation score: Σ_i log L_i, or max_i log(L_i / L_i⁰)
 * on the held-out batch), `--merge a.json,b.json` (print the tables of results run in separate processes, seeds joined in file order).
 *
 * Each problem gives its runs' held-out metric (lower or higher is better) and, for `auto`, a
 * validation score the selection uses (the user's own metric, on data apart from the test set).
 * Rows: equal weights; the fixed-weight grid (each point, and the best point chosen on the TEST
 * metric, an optimistic oracle a hand sweep approximates); each strategy at its defaults; `auto` with
 * the validation score; `auto` with its default score. Medians over seeds. `auto`'s cost is the
 * candidate steps it took, as a multiple of the run's steps.
 *
 * Problems: `multi-output` (below), `vae` (the seed's VAE on real digits, bench/seed.ts) and the PINNs
 * `poisson1d` and `helmholtz` (bench/pinn/problems.ts), each a {@link BenchProblem}.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { initBackend } from '../src/train/backend.js';
import { seedRng, uniform, type RngState } from '../src/core/rng.js';
import type { Tournament } from '../src/core/tournament.js';
import type { BalancerSpec } from '../src/core/types.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { digitSplit, subset, trainClassifier } from './digits.js';
import { HAND_GRID, seedRun } from './seed.js';
import { disposeBatch, heldOutScore, PINN_PROBLEMS, type PinnBatch, type PinnProblem } from './pinn/problems.js';
import { writeMarkedSection } from './docs-section.js';

/** One run's outcome. */
export interface ProblemRun {
  /** The held-out metric. */
  metric: number;
  /** Other held-out numbers shown next to the metric (e.g. the parts of a combined metric), by name. */
  extra?: Record<string, number>;
  /** The tournament, for `auto` runs. */
  tournament?: Tournament;
  seconds: number;
}

/**
 * What a harness may add to a run without the problem knowing it: how the run's trainer is built (the
 * one place where a harness sets trainer options, e.g. bench/suite.ts) and a callback after every
 * trainer step (e.g. to sample memory).
 */
export interface RunHooks {
  /** Builds the trainer from the options the problem chose. @default `new BalancedTrainer(options)` */
  makeTrainer?: (options: BalancedTrainerOptions) => BalancedTrainer;
  /** Called after every trainer step with the step index (0-based). */
  onStep?: (step: number) => void;
}

/** `hooks.makeTrainer`, or a plain `new BalancedTrainer(options)`. */
export const trainerOf = (hooks: RunHooks | undefined, options: BalancedTrainerOptions): BalancedTrainer =>
  hooks?.makeTrainer ? hooks.makeTrainer(options) : new BalancedTrainer(options);

/** Seeded minibatches: each call gives `batch` indices in [0, n), drawn uniformly with replacement, as an int32 tensor. */
export function batchSampler(seed: number, n: number, batch: number): () => tf.Tensor1D {
  let rng: RngState = seedRng(seed);
  return () => {
    const idx: number[] = [];
    for (let k = 0; k < batch; k++) {
      let u: number;
      [u, rng] = uniform(rng);
      idx.push(Math.floor(u * n));
    }
    return tf.tensor1d(idx, 'int32');
  };
}

/** A benchmark problem. */
export interface BenchProblem {
  name: string;
  /** What the metric is, for the table. */
  metricName: string;
  higherIsBetter: boolean;
  /** Trainer steps per run. */
  steps: number;
  /** The fixed-weight grid: label → spec (equal weights first). */
  grid: { label: string; spec: BalancerSpec }[];
  /**
   * One run. `spec` may be `auto` options; `validationScore` asks the problem to pass its validation
   * metric as the selection score.
   */
  run(spec: BalancerSpec, seed: number, validationScore: boolean, hooks?: RunHooks): ProblemRun;
  dispose?(): void;
}

// -------------------------------------------------------------------------------------------------
// Multi-output regression with targets on very different scales

/**
 * A shared tanh trunk (8 → 32) and three linear heads; head i predicts `s_i · f_i(x)` with
 * s = (1, 100, 0.01), f_i a fixed random teacher, so the raw MSE terms (and their gradients) differ
 * by up to 10⁸. Metric: the mean over heads of MSE_i / Var(y_i) on held-out data (scale-free, lower
 * is better). Validation score: the same on a separate validation split.
 */
export function multiOutputProblem(steps = 600, batch = 32): BenchProblem {
  const scales = [1, 100, 0.01];
  const names = ['y_small', 'y_large', 'y_tiny'];
  const d = 8;
  const h = 32;
  const nTrain = 512;
  const nVal = 256;
  const nTest = 512;
  const make = (n: number, seed: number) =>
    tf.tidy(() => {
      const x = tf.randomNormal([n, d], 0, 1, 'float32', seed);
      const z = tf.tanh(tf.matMul(x, tf.randomNormal([d, 16], 0, 1, 'float32', 77)));
      const ys = scales.map((s, i) => tf.keep(tf.mul(tf.add(tf.matMul(z, tf.randomNormal([16, 1], 0, 1, 'float32', 80 + i)), tf.randomNormal([n, 1], 0, 0.05, 'float32', seed + 10 + i)), s)));
      return { x: tf.keep(x), ys };
    });
  const train = make(nTrain, 1);
  const val = make(nVal, 2);
  const test = make(nTest, 3);
  const variance = test.ys.map((y) => tf.tidy(() => tf.moments(y).variance.dataSync()[0]));
  const grid: { label: string; spec: BalancerSpec }[] = [{ label: 'equal weights', spec: 'fixed' }];
  // The hand normalisation 1/s_i² and a log grid on each term around it.
  grid.push({ label: 'fixed 1/scale²', spec: { name: 'fixed', weights: Object.fromEntries(names.map((n, i) => [n, 1 / scales[i] ** 2])) } });
  for (const [i, n] of names.entries()) {
    for (const k of [1e-4, 1e-2, 1e2, 1e4]) grid.push({ label: `fixed ${n} ×${k}`, spec: { name: 'fixed', weights: { [n]: k } } });
    void i;
  }
  return {
    name: 'multi-output',
    metricName: 'mean over heads of held-out MSE / Var(y) (lower is better)',
    higherIsBetter: false,
    steps,
    grid,
    run(spec, seed, validationScore, hooks) {
      const init = (shape: number[], s: number) => tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 1 / Math.sqrt(shape[0]), 'float32', s), true));
      const trunk = init([d, h], seed * 31 + 1);
      const heads = names.map((_, i) => init([h, 1], seed * 31 + 2 + i));
      const vars = [trunk, ...heads];
      const predict = (x: tf.Tensor) => {
        const z = tf.tanh(tf.matMul(x, trunk));
        return heads.map((w) => tf.matMul(z, w));
      };
      const relErr = (set: { x: tf.Tensor; ys: tf.Tensor[] }, v: number[]) =>
        tf.tidy(() => {
          const p = predict(set.x);
          return p.reduce((a, pi, i) => a + tf.mean(tf.square(tf.sub(pi, set.ys[i]))).dataSync()[0] / v[i], 0) / names.length;
        });
      const valVar = val.ys.map((y) => tf.tidy(() => tf.moments(y).variance.dataSync()[0]));
      let xb: tf.Tensor | null = null;
      let yb: tf.Tensor[] = [];
      const terms = () => {
        const p = predict(xb!);
        return Object.fromEntries(names.map((n, i) => [n, tf.mean(tf.square(tf.sub(p[i], yb[i]))) as tf.Scalar]));
      };
      const optimizer = tf.train.adam(3e-3);
      const isAuto = spec === 'auto' || (typeof spec === 'object' && spec.name === 'auto');
      const balancer = isAuto && validationScore ? { ...(typeof spec === 'object' ? spec : { name: 'auto' }), score: () => relErr(val, valVar) } : spec;
      const trainer = trainerOf(hooks, { terms, optimizer, balancer, variables: vars, warn: () => undefined });
      const draw = batchSampler(seed * 1000 + 5, nTrain, batch);
      const t0 = Date.now();
      try {
        for (let s = 0; s < steps; s++) {
          const ix = draw();
          xb = tf.gather(train.x, ix);
          yb = train.ys.map((y) => tf.gather(y, ix));
          trainer.step();
          hooks?.onStep?.(s);
          tf.dispose([ix, xb, ...yb]);
        }
        return { metric: relErr(test, variance), seconds: (Date.now() - t0) / 1000, tournament: trainer.tournament ?? undefined };
      } finally {
        void trainer.close();
        optimizer.dispose();
        vars.forEach((v) => v.dispose());
      }
    },
    dispose() {
      for (const s of [train, val, test]) tf.dispose([s.x, ...s.ys]);
    },
  };
}

// -------------------------------------------------------------------------------------------------
// The seed's VAE (bench/seed.ts): metric = classifier accuracy on reconstructions of held-out digits

/**
 * The seed's VAE on real digits (four terms, a discriminator trained alongside). Metric: accuracy of
 * a digit classifier on the reconstructions of held-out digits (higher is better). Validation score
 * for `auto`: the reconstruction BCE on 500 digits split off the training set (the user's natural
 * metric; not the test metric). Note: the discriminator is outside the trainer, so during the
 * selection it trains on equal weights' reconstructions only (it is not copied per candidate).
 */
export function vaeProblem(steps = 300, opts: { nTrain?: number; nTest?: number; batchSize?: number; sizes?: { hidden: number; latent: number; discHidden: number } } = {}): BenchProblem {
  const { nTrain = 8000, nTest = 2000, batchSize = 128 } = opts;
  const split = digitSplit({ nTrain, nTest, pooled: true });
  const nVal = Math.min(500, Math.floor(nTrain / 5));
  const train = subset(split.train, [...Array(nTrain - nVal).keys()]);
  const val = subset(split.train, [...Array(nVal).keys()].map((i) => nTrain - nVal + i));
  const classifier = trainClassifier(split.train, split.test);
  const xVal = tf.tensor2d(val.images, [val.n, val.side * val.side]);
  return {
    name: 'vae',
    metricName: 'classifier accuracy on reconstructions of held-out digits (higher is better)',
    higherIsBetter: true,
    steps,
    grid: HAND_GRID.map((k) => ({ label: k === 1 ? 'equal weights' : `fixed recon_a ×${k}`, spec: k === 1 ? 'fixed' : { name: 'fixed', weights: { recon_a: k } } })),
    run(spec, seed, validationScore, hooks) {
      const isAuto = spec === 'auto' || (typeof spec === 'object' && spec.name === 'auto');
      const r = seedRun({
        makeTrainer: hooks?.makeTrainer,
        afterGeneratorStep: hooks?.onStep ? (_model, step) => hooks.onStep!(step) : undefined,
        train,
        test: split.test,
        classifier,
        spec,
        seed,
        steps,
        batchSize,
        lr: 3e-3,
        sizes: opts.sizes,
        specFor: isAuto && validationScore ? (model) => ({ ...(typeof spec === 'object' ? spec : { name: 'auto' }), score: () => model.evaluate(xVal).recon_a }) : undefined,
      });
      return { metric: r.accuracy, seconds: r.seconds, tournament: r.tournament };
    },
    dispose() {
      xVal.dispose();
      classifier.dispose();
    },
  };
}

// -------------------------------------------------------------------------------------------------
// PINNs (bench/pinn/problems.ts): metric = relative L2 error of u on the problem's evaluation grid

/**
 * A PINN of bench/pinn/problems.ts (`poisson1d`, `helmholtz`): two terms, `residual` and `boundary`, on
 * fresh collocation points every step; Adam 1e-3 with the authors' decay, as bench/pinn.ts. Metric: the
 * relative L2 error of u on the evaluation grid (lower is better). Validation score for `auto`:
 * Σ_i log L_i of the two terms on one fixed held-out batch of collocation points (what a PINN user can
 * compute without the exact solution; scale-free, so neither term's units dominate), or with
 * `validation: 'worst-term'` max_i log(L_i / L_i⁰) on that batch (L_i⁰ at the common start): Σ log L_i
 * rewards driving one term to zero, which on zero boundary data u ≈ 0 does (docs/benchmarks.md).
 */
export function pinnProblem(
  problem: PinnProblem,
  steps = 2000,
  batch = 128,
  validation: 'sum-log' | 'worst-term' = 'sum-log',
  options: { grid?: { label: string; spec: BalancerSpec }[]; learningRate?: number; decay?: boolean } = {},
): BenchProblem {
  const { learningRate = 1e-3, decay = true } = options;
  const grid: { label: string; spec: BalancerSpec }[] = options.grid ?? [{ label: 'equal weights', spec: 'fixed' }];
  if (!options.grid) for (const k of [0.1, 10, 100, 1000]) grid.push({ label: `fixed boundary ×${k}`, spec: { name: 'fixed', weights: { boundary: k } } });
  return {
    name: problem.name,
    metricName: 'relative L2 error of u (lower is better)',
    higherIsBetter: false,
    steps,
    grid,
    run(spec, seed, validationScore, hooks) {
      const model = problem.build(seed, { batch });
      // 'sum-log': Σ_i log L_i; 'worst-term': max_i log(L_i / L_i at the start), so that no candidate
      // wins by driving one term to zero while another stays where it started
      const { score, dispose: disposeHeld } = heldOutScore(problem, model, seed, { batch, kind: validation });
      let b: PinnBatch = model.sample();
      const optimizer = tf.train.adam(learningRate);
      const isAuto = spec === 'auto' || (typeof spec === 'object' && spec.name === 'auto');
      const balancer = isAuto && validationScore ? { ...(typeof spec === 'object' ? spec : { name: 'auto' }), score } : spec;
      const trainer = trainerOf(hooks, { terms: () => model.terms(b), optimizer, balancer, variables: model.net.variables, keepHistory: false, warn: () => undefined });
      const t0 = Date.now();
      try {
        for (let s = 0; s < steps; s++) {
          if (decay) (optimizer as unknown as { learningRate: number }).learningRate = learningRate * 0.9 ** (s / 1000);
          trainer.step();
          hooks?.onStep?.(s);
          disposeBatch(b);
          b = model.sample();
        }
        return { metric: model.error(), seconds: (Date.now() - t0) / 1000, tournament: trainer.tournament ?? undefined };
      } finally {
        void trainer.close();
        disposeBatch(b);
        disposeHeld();
        optimizer.dispose();
        model.dispose();
      }
    },
  };
}

// -------------------------------------------------------------------------------------------------

/** A row of the table: one configuration over seeds. */
export interface AutoRow {
  label: string;
  kind: 'grid' | 'grid-best' | 'strategy' | 'auto';
  metrics: number[];
  seconds: number[];
  /** For auto rows: candidate steps / steps, per seed, and the winners. */
  cost?: number[];
  winners?: string[];
  error?: string;
}

/** One problem's results. */
export interface AutoProblemResult {
  problem: string;
  metricName: string;
  higherIsBetter: boolean;
  steps: number;
  seeds: number;
  /** The seeds run, in order (rows' per-seed arrays follow it). */
  seedList?: number[];
  rows: AutoRow[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Run one problem: the grid, each strategy at its defaults, auto (validation score) and auto (default score). */
export function benchProblem(p: BenchProblem, o: { seeds: number; seedList?: readonly number[]; strategies: readonly string[]; auto: Record<string, unknown>; log: (l: string) => void; only?: readonly string[] }): AutoProblemResult {
  const seedList = o.seedList ?? Array.from({ length: o.seeds }, (_, i) => i + 1);
  const rows: AutoRow[] = [];
  const configs: { label: string; kind: AutoRow['kind']; spec: BalancerSpec; validation: boolean }[] = [
    ...p.grid.map((g) => ({ label: g.label, kind: 'grid' as const, spec: g.spec, validation: false })),
    ...o.strategies.map((s) => ({ label: s, kind: 'strategy' as const, spec: s as BalancerSpec, validation: false })),
    { label: 'auto (validation score)', kind: 'auto', spec: { name: 'auto', ...o.auto }, validation: true },
    { label: 'auto (default score)', kind: 'auto', spec: { name: 'auto', ...o.auto }, validation: false },
  ];
  for (const c of configs.filter((x) => !o.only || o.only.some((k) => x.label.startsWith(k)))) {
    const row: AutoRow = { label: c.label, kind: c.kind, metrics: [], seconds: [] };
    for (const s of seedList) {
      try {
        const r = p.run(c.spec, s, c.validation);
        row.metrics.push(r.metric);
        row.seconds.push(r.seconds);
        if (r.tournament) {
          (row.cost ??= []).push(r.tournament.cost.candidateSteps / p.steps);
          (row.winners ??= []).push(r.tournament.winner ?? '(running)');
        }
        o.log(`  ${p.name} ${c.label} seed ${s}: ${r.metric.toPrecision(4)}${r.tournament ? ` (picked ${r.tournament.winner}, ${r.tournament.cost.candidateSteps} candidate steps)` : ''}, ${r.seconds.toFixed(1)} s`);
      } catch (e) {
        row.error = (e as Error).message;
        o.log(`  ${p.name} ${c.label}: threw: ${row.error}`);
        break;
      }
    }
    rows.push(row);
  }
  // The best grid point, chosen per seed on the test metric (an oracle: what a hand sweep aims at).
  const grid = rows.filter((r) => r.kind === 'grid');
  const best: number[] = [];
  for (let s = 0; s < seedList.length; s++) {
    const vals = grid.map((r) => r.metrics[s]).filter((v) => v !== undefined && Number.isFinite(v));
    if (vals.length) best.push(p.higherIsBetter ? Math.max(...vals) : Math.min(...vals));
  }
  rows.splice(grid.length, 0, { label: 'best grid point (oracle, per seed)', kind: 'grid-best', metrics: best, seconds: [] });
  return { problem: p.name, metricName: p.metricName, higherIsBetter: p.higherIsBetter, steps: p.steps, seeds: seedList.length, seedList: [...seedList], rows };
}

/**
 * Merge results of the same problem run in separate processes (`--seed-list` split, `--json` files):
 * rows with the same label are joined seed by seed, in the order of the files; the oracle row is
 * recomputed from the merged grid rows.
 */
export function mergeAutoResults(parts: readonly AutoProblemResult[]): AutoProblemResult[] {
  const byProblem = new Map<string, AutoProblemResult[]>();
  for (const r of parts) byProblem.set(`${r.problem}|${r.steps}`, [...(byProblem.get(`${r.problem}|${r.steps}`) ?? []), r]);
  return [...byProblem.values()].map((rs) => {
    const seedList = rs.flatMap((r) => r.seedList ?? Array.from({ length: r.seeds }, (_, i) => i + 1));
    const labels: string[] = [];
    for (const r of rs) for (const row of r.rows) if (row.kind !== 'grid-best' && !labels.includes(row.label)) labels.push(row.label);
    const rows: AutoRow[] = labels.map((label) => {
      const found = rs.map((r) => r.rows.find((x) => x.label === label));
      const first = found.find((x) => x)!;
      const row: AutoRow = { label, kind: first.kind, metrics: [], seconds: [] };
      rs.forEach((r, i) => {
        const x = found[i];
        const n = r.seedList?.length ?? r.seeds;
        for (let k = 0; k < n; k++) {
          row.metrics.push(x?.metrics[k] ?? Number.NaN);
          row.seconds.push(x?.seconds[k] ?? Number.NaN);
          if (x?.cost) (row.cost ??= []).push(x.cost[k]);
          if (x?.winners) (row.winners ??= []).push(x.winners[k]);
        }
        if (x?.error) row.error = x.error;
      });
      return row;
    });
    const first = rs[0];
    const grid = rows.filter((r) => r.kind === 'grid');
    const best = seedList.map((_, s) => {
      const vals = grid.map((r) => r.metrics[s]).filter((v) => v !== undefined && Number.isFinite(v));
      return first.higherIsBetter ? Math.max(...vals) : Math.min(...vals);
    });
    rows.splice(grid.length, 0, { label: 'best grid point (oracle, per seed)', kind: 'grid-best', metrics: best, seconds: [] });
    return { ...first, seeds: seedList.length, seedList, rows };
  });
}

const f4 = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : '—');

/** The Markdown table of a problem. */
export function autoTable(r: AutoProblemResult): string {
  const lines = [
    `**${r.problem}** — ${r.metricName}; ${r.steps} steps, median over ${r.seeds} seed(s)`,
    '',
    '| run | median | per seed | auto: picked | auto: cost (candidate steps / steps) |',
    '|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const m = row.error ? `threw: ${row.error.slice(0, 60)}` : f4(median(row.metrics));
    const label = row.kind === 'auto' || row.kind === 'grid-best' ? `**${row.label}**` : row.label;
    lines.push(`| ${label} | ${m} | ${row.metrics.map(f4).join(', ')} | ${row.winners?.join(', ') ?? ''} | ${row.cost ? row.cost.map((c) => c.toFixed(2)).join(', ') : ''} |`);
  }
  return lines.join('\n');
}

/** Replace (or append) the text between the auto markers of `file`. */
export function writeAutoSection(file: string, body: string): void {
  writeMarkedSection(file, 'auto', body);
}

/** Parse argv, run, print, and (full runs) write docs/benchmarks.md between the auto markers. */
export async function main(argv: readonly string[]): Promise<AutoProblemResult[]> {
  const quick = argv.includes('--quick');
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, d: number) => (arg(name) !== undefined ? Number(arg(name)) : d);
  const merge = arg('--merge');
  if (merge) {
    // tables from `--json` files written by separate processes (e.g. one per seed, two at a time)
    const parts = merge.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as AutoProblemResult[]);
    const merged = mergeAutoResults(parts.flat());
    console.log(merged.map(autoTable).join('\n\n'));
    return merged;
  }
  const backend = await initBackend();
  const seedList = arg('--seed-list')?.split(',').map(Number);
  if (seedList && seedList.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`bench:auto: --seed-list takes positive integers, got "${arg('--seed-list')}"`);
  const seeds = seedList?.length ?? num('--seeds', quick ? 1 : 3);
  const steps = num('--steps', quick ? 20 : 600);
  const vaeSteps = num('--vae-steps', quick ? 12 : 300);
  const wanted = (arg('--problems') ?? 'multi-output,vae').split(',');
  const strategies = quick ? ['mgda', 'softadapt'] : (arg('--strategies')?.split(',') ?? ['softadapt', 'uncertainty', 'db-mtl', 'grad-magnitude', 'gradnorm', 'mgda', 'pcgrad', 'nash-mtl', 'upgrad', 'dwa']);
  const auto = quick ? { trialSteps: 2, maxCandidates: 5 } : { trialSteps: num('--trial-steps', 25) };
  const log = (l: string) => console.error(l);
  const problems: BenchProblem[] = [];
  const unknown = wanted.filter((w) => !['multi-output', 'vae', ...Object.keys(PINN_PROBLEMS)].includes(w));
  if (unknown.length) throw new Error(`bench:auto: unknown problem(s) ${unknown.join(', ')}; known: multi-output, vae, ${Object.keys(PINN_PROBLEMS).join(', ')}`);
  if (wanted.includes('multi-output')) problems.push(multiOutputProblem(steps));
  for (const [name, make] of Object.entries(PINN_PROBLEMS)) {
    const validation = (arg('--pinn-score') ?? 'sum-log') as 'sum-log' | 'worst-term';
    if (!['sum-log', 'worst-term'].includes(validation)) throw new Error(`bench:auto: --pinn-score takes sum-log or worst-term, got "${validation}"`);
    if (wanted.includes(name)) problems.push(pinnProblem(make(), num('--pinn-steps', quick ? 20 : 2000), quick ? 32 : 128, validation));
  }
  if (wanted.includes('vae')) problems.push(vaeProblem(vaeSteps, quick ? { nTrain: 300, nTest: 100, batchSize: 16, sizes: { hidden: 16, latent: 4, discHidden: 8 } } : {}));
  const t0 = Date.now();
  const results: AutoProblemResult[] = [];
  for (const p of problems) {
    log(`bench:auto ${p.name} on ${backend}: ${seeds} seed(s), ${p.steps} steps`);
    results.push(benchProblem(p, { seeds, seedList, strategies, auto, log, only: arg('--only')?.split(',') }));
    p.dispose?.();
  }
  const seconds = (Date.now() - t0) / 1000;
  const tables = results.map(autoTable).join('\n\n');
  console.log(tables);
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify(results, null, 1));
  if (!quick && !argv.includes('--no-docs')) {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..');
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const body = [
      '## `auto`: strategy selection against the hand grid and the strategies at their defaults',
      '',
      `Command: \`npm run bench:auto -- ${argv.filter((a) => a !== '--no-docs').join(' ')}\` (${new Date().toISOString().slice(0, 10)}, ${cpus().length} vCPU ${cpu}, shared with other jobs; backend ${backend}; ${seconds.toFixed(0)} s).`,
      `auto: ${JSON.stringify(auto)} with default candidates; "validation score" = the problem's validation metric passed as \`score\`; "default score" = the built-in score over the raw terms. "best grid point" is chosen on the test metric per seed (an oracle).`,
      '',
      tables,
    ].join('\n');
    writeAutoSection(join(root, 'docs', 'benchmarks.md'), body);
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
