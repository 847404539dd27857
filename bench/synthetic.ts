/**
 * A synthetic multi-task regression with a known optimum: two regression tasks of the same kind
 * (targets from two random teacher networks of one family) on a shared tanh trunk with one linear head
 * each. Term `a` is the plain mean squared error of task a; term `b` is task b's mean squared error
 * multiplied by `factor`, so its gradients (and its loss) are `factor` times larger than they would be.
 *
 * The quality measure is the unscaled sum mse_a + mse_b on held-out inputs. Weights with
 * w_a / w_b = `factor` make the weighted objective exactly proportional to that measure: that ratio is
 * the known optimum a balancer should find by itself ("a ended at 20× b").
 *
 * `npx tsx bench/synthetic.ts [--factor 20] [--seeds 3] [--steps 400]` prints every strategy's learned
 * ratio against the known one.
 */
import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { diagnose } from '../src/core/diagnose.js';
import type { StepRecord } from '../src/core/history.js';
import { list } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import type { BalancerSpec } from '../src/core/types.js';

/** Options of {@link makeSynthetic}. */
export interface SyntheticOptions {
  /** Gradient-scale factor of term b over term a. @default 20 */
  factor?: number;
  seed?: number;
  /** Input dimension. @default 6 */
  d?: number;
  /** Trunk width. @default 16 */
  h?: number;
  /** Training points (full batch). @default 128 */
  nTrain?: number;
  /** Held-out points. @default 256 */
  nTest?: number;
  /**
   * Make task b task a's twin: its targets are task a's negated and its head starts as −(head a). The
   * two terms are then one problem up to a sign and `factor`, so their gradients on the shared trunk
   * differ by exactly `factor` at every step: the known ratio holds exactly, not only on average.
   * @default false
   */
  twin?: boolean;
}

/** The task, with its variables. */
export interface Synthetic {
  factor: number;
  variables: tf.Variable[];
  /** Terms on the training set: `{ a: mse_a, b: factor·mse_b }`. */
  terms: () => Record<string, tf.Scalar>;
  /** Held-out quality: unscaled mse_a + mse_b (lower is better), and each part. */
  quality(): { total: number; a: number; b: number };
  dispose(): void;
}

let counter = 0;

/** Build the task (seeded: the same seed gives the same data and initial weights). */
export function makeSynthetic(options: SyntheticOptions = {}): Synthetic {
  const { factor = 20, seed = 1, d = 6, h = 16, nTrain = 128, nTest = 256, twin = false } = options;
  if (!(factor > 0 && Number.isFinite(factor))) throw new Error(`makeSynthetic: option "factor" got ${factor}; must be a positive number`);
  const tag = `syn${seed}_${counter++}`;
  // teachers: y = v · tanh(U x), the same family for both tasks
  const teacher = (s: number) => ({
    u: tf.randomNormal([d, 8], 0, 1 / Math.sqrt(d), 'float32', s),
    v: tf.randomNormal([8, 1], 0, 1, 'float32', s + 1),
  });
  const ta = teacher(seed * 100 + 1);
  const tb = teacher(seed * 100 + 3);
  const xTrain = tf.randomNormal([nTrain, d], 0, 1, 'float32', seed * 100 + 5) as tf.Tensor2D;
  const xTest = tf.randomNormal([nTest, d], 0, 1, 'float32', seed * 100 + 6) as tf.Tensor2D;
  const raw = (t: { u: tf.Tensor; v: tf.Tensor }, x: tf.Tensor2D) => tf.matMul(tf.tanh(tf.matMul(x, t.u as tf.Tensor2D)), t.v as tf.Tensor2D);
  // each task's targets standardised with its training mean and deviation, so both tasks start
  // from the same residual scale and the only difference between the terms is `factor`
  const target = (t: { u: tf.Tensor; v: tf.Tensor }, x: tf.Tensor2D) =>
    tf.tidy(() => {
      const { mean, variance } = tf.moments(raw(t, xTrain));
      return tf.div(tf.sub(raw(t, x), mean), tf.sqrt(variance));
    });
  const yaTrain = target(ta, xTrain);
  const ybTrain = twin ? tf.neg(yaTrain) : target(tb, xTrain);
  const yaTest = target(ta, xTest);
  const ybTest = twin ? tf.neg(yaTest) : target(tb, xTest);
  const mk = (init: tf.Tensor, name: string) => {
    const v = tf.variable(init, true, `${tag}_${name}`);
    init.dispose();
    return v;
  };
  const trunk = mk(tf.randomNormal([d, h], 0, 1 / Math.sqrt(d), 'float32', seed * 100 + 7), 'trunk');
  const bias = mk(tf.zeros([h]), 'bias');
  const headA = mk(tf.randomNormal([h, 1], 0, 1 / Math.sqrt(h), 'float32', seed * 100 + 8), 'headA');
  const headB = mk(twin ? tf.neg(headA) : tf.randomNormal([h, 1], 0, 1 / Math.sqrt(h), 'float32', seed * 100 + 9), 'headB');
  const mses = (x: tf.Tensor2D, ya: tf.Tensor, yb: tf.Tensor) => {
    const z = tf.tanh(tf.add(tf.matMul(x, trunk), bias)) as tf.Tensor2D;
    return {
      a: tf.mean(tf.square(tf.sub(tf.matMul(z, headA), ya))) as tf.Scalar,
      b: tf.mean(tf.square(tf.sub(tf.matMul(z, headB), yb))) as tf.Scalar,
    };
  };
  const owned = [ta.u, ta.v, tb.u, tb.v, xTrain, xTest, yaTrain, ybTrain, yaTest, ybTest];
  return {
    factor,
    variables: [trunk, bias, headA, headB],
    terms: () => {
      const m = mses(xTrain, yaTrain, ybTrain);
      return { a: m.a, b: m.b.mul(factor) as tf.Scalar };
    },
    quality: () =>
      tf.tidy(() => {
        const m = mses(xTest, yaTest, ybTest);
        const a = m.a.dataSync()[0];
        const b = m.b.dataSync()[0];
        return { total: a + b, a, b };
      }),
    dispose() {
      tf.dispose([...owned, trunk, bias, headA, headB]);
    },
  };
}

/** One training run on the synthetic task. */
export interface SyntheticRun {
  records: StepRecord[];
  quality: { total: number; a: number; b: number };
}

/** Train on the synthetic task with a balancer (full batch, Adam). */
export function trainSynthetic(spec: BalancerSpec, options: SyntheticOptions & { steps?: number; lr?: number } = {}): SyntheticRun {
  const { steps = 400, lr = 0.01 } = options;
  const task = makeSynthetic(options);
  const optimizer = tf.train.adam(lr);
  try {
    const trainer = new BalancedTrainer({ terms: task.terms, optimizer, balancer: spec, variables: task.variables, warn: () => {} });
    for (let i = 0; i < steps; i++) trainer.step();
    return { records: trainer.history.records, quality: task.quality() };
  } finally {
    optimizer.dispose();
    task.dispose();
  }
}

/** One row of the synthetic table. */
export interface SyntheticRow {
  strategy: string;
  /** Learned w_a / w_b per seed (mean over the last 20% of steps). */
  ratios: number[];
  /** Held-out mse_a + mse_b per seed. */
  quality: number[];
  /** Convergence verdict per seed (from diagnose). */
  status: string[];
  /** Learned w_a / w_b on the twin task (seed 1), where the known ratio holds exactly. */
  twinRatio?: number;
  error?: string;
}

/** Run every registered strategy (and the fixed optimum and equal weights) on the synthetic task. */
export function syntheticTable(options: { factor?: number; seeds?: number; steps?: number; strategies?: string[]; log?: (l: string) => void } = {}): SyntheticRow[] {
  const { factor = 20, seeds = 3, steps = 400 } = options;
  const log = options.log ?? (() => {});
  const specs: [string, BalancerSpec][] = [
    ['fixed: equal', 'fixed'],
    [`fixed: known optimum (a ×${factor})`, { name: 'fixed', weights: { a: factor, b: 1 } }],
    ...(options.strategies ?? list().filter((s) => s.kind !== 'selector').map((s) => s.name).filter((n) => n !== 'fixed')).flatMap((n): [string, BalancerSpec][] =>
      n === 'grad-magnitude'
        ? [
            ['grad-magnitude (max-mean, paper)', n],
            ['grad-magnitude (mean-mean)', { name: n, statistic: 'mean-mean' }],
            ['grad-magnitude (norm)', { name: n, statistic: 'norm' }],
          ]
        : [[n, n]],
    ),
  ];
  const rows: SyntheticRow[] = [];
  for (const [label, spec] of specs) {
    const row: SyntheticRow = { strategy: label, ratios: [], quality: [], status: [] };
    try {
      for (let s = 0; s < seeds; s++) {
        const run = trainSynthetic(spec, { factor, seed: s + 1, steps });
        const d = diagnose(run.records, { reference: 'b' });
        row.ratios.push(d.recommendedRelative.a);
        row.quality.push(run.quality.total);
        row.status.push(d.status);
      }
      const twin = trainSynthetic(spec, { factor, seed: 1, steps, twin: true });
      row.twinRatio = diagnose(twin.records, { reference: 'b' }).recommendedRelative.a;
    } catch (e) {
      row.error = (e as Error).message;
    }
    log(`${label}: ratio ${row.ratios.map((r) => r.toPrecision(3)).join(', ')}${row.error ? ` error: ${row.error}` : ''}`);
    rows.push(row);
  }
  return rows;
}

/** Geometric mean (ratios are judged on a log scale). */
export function geomean(xs: readonly number[]): number {
  return Math.exp(xs.reduce((a, x) => a + Math.log(Math.max(x, 1e-300)), 0) / xs.length);
}

/** The synthetic table as Markdown. */
export function syntheticMarkdown(rows: readonly SyntheticRow[], factor: number, steps: number): string {
  const f = (x: number) => (Math.abs(x) >= 100 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(2) : x.toPrecision(3));
  const optimum = rows.find((r) => r.strategy.startsWith('fixed: known'));
  const ref = optimum ? optimum.quality.reduce((a, b) => a + b, 0) / optimum.quality.length : Number.NaN;
  const out = [
    `| strategy | learned w_a / w_b (known: ${factor}) | × off the known ratio | twin task: learned w_a / w_b | held-out mse_a + mse_b | vs fixed ×${factor} | weights |`,
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.error || !r.ratios.length) {
      out.push(`| ${r.strategy} | failed: ${r.error ?? 'no runs'} | | | | | |`);
      continue;
    }
    const g = geomean(r.ratios);
    const off = Math.max(g / factor, factor / g);
    const q = r.quality.reduce((a, b) => a + b, 0) / r.quality.length;
    const status = [...new Set(r.status)].join(', ');
    out.push(`| ${r.strategy} | ${f(g)} (${r.ratios.map(f).join(', ')}) | ${off.toFixed(2)} | ${r.twinRatio === undefined ? '' : f(r.twinRatio)} | ${q.toFixed(4)} | ${(100 * (q / ref - 1)).toFixed(1)}% | ${status} |`);
  }
  out.push('');
  out.push(`Each cell: ${rows[0]?.ratios.length ?? 0} seeds, ${steps} full-batch Adam steps (lr 0.01); learned ratio = mean alpha over the last 20% of steps (\`diagnose\`), geometric mean over seeds (per-seed values in brackets).`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { initBackend } = await import('../src/train/backend.js');
  const arg = (k: string, d: number) => {
    const i = process.argv.indexOf(k);
    return i >= 0 ? Number(process.argv[i + 1]) : d;
  };
  await initBackend();
  const factor = arg('--factor', 20);
  const steps = arg('--steps', 400);
  const rows = syntheticTable({ factor, seeds: arg('--seeds', 3), steps, log: (l) => console.error(l) });
  console.log(syntheticMarkdown(rows, factor, steps));
}
