/**
 * Soak test (issue 7, item 5): many steps of a small model with one strategy of each family, printing
 * the live tensor count, the resident set size and the mean step time at intervals. A healthy run
 * shows a constant tensor count, an RSS that levels off, and a step time that does not drift.
 *
 * Usage:
 *   npm run soak                                  # 100,000 steps per family
 *   npm run soak -- --steps 10000 --every 1000    # shorter
 *   npm run soak -- --strategies gradnorm,famo    # other strategies
 *   npm run soak -- --backend cpu --jsonl         # another backend; also write a JSONL trajectory
 *
 * Exits with status 1 when the tensor count grew after the first interval.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../src/train/backend.js';
import { list } from '../src/core/registry.js';
import { JsonlSink } from '../src/node/sinks.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';

/** One strategy per family; the first registered candidate of each family is used. */
const FAMILIES: [family: string, candidates: string[]][] = [
  ['loss-only', ['loss-ratio', 'dwa', 'fixed']],
  ['gram', ['mgda', 'upgrad', 'grad-magnitude']],
  ['learned-parameter', ['uncertainty', 'gradnorm', 'famo']],
  ['seeded', ['pcgrad', 'rlw', 'relobralo']],
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const steps = Number(arg('steps') ?? 100_000);
const every = Number(arg('every') ?? Math.max(1, Math.round(steps / 10)));
const backendChoice = (arg('backend') ?? 'auto') as BackendChoice;
const withJsonl = process.argv.includes('--jsonl');
if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(every) || every < 1) {
  console.error('--steps and --every must be positive integers');
  process.exit(2);
}

const registered = new Set(list().map((s) => s.name));
const plan: [string, string][] = arg('strategies')
  ? arg('strategies')!.split(',').map((s) => ['custom', s.trim()])
  : FAMILIES.flatMap(([family, cands]) => {
      const s = cands.find((c) => registered.has(c));
      return s ? [[family, s] as [string, string]] : [];
    });

const backend = await initBackend(backendChoice);
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(`soak: ${steps} steps per strategy, report every ${every}; backend ${backend}; node ${process.version}; ${cpus()[0]?.model ?? '?'} x${cpus().length}`);

interface Row {
  step: number;
  tensors: number;
  rssMB: number;
  heapMB: number;
  msPerStep: number;
}

let failed = false;
const summary: string[] = [];
for (const [family, name] of plan) {
  const toy = makeToyProblem({ scales: [1, 10, 100], hidden: 16, samples: 64, seed: 1 });
  const optimizer = tf.train.adam(1e-3);
  const dir = withJsonl ? mkdtempSync(join(tmpdir(), 'lb-soak-')) : null;
  const trainer = new BalancedTrainer({
    terms: toy.terms,
    optimizer,
    balancer: name,
    variables: toy.variables,
    keepHistory: false,
    sinks: dir ? [new JsonlSink(join(dir, 'trajectory.jsonl'))] : [],
    warn: () => {},
  });
  console.log(`\n[${family}] ${name}`);
  console.log('     step  tensors   rss MB  heap MB  ms/step');
  const rows: Row[] = [];
  let t0 = performance.now();
  let skipped = 0;
  for (let i = 1; i <= steps; i++) {
    if (trainer.step().skipped) skipped++;
    if (i % every === 0 || i === steps) {
      const now = performance.now();
      const n = i % every === 0 ? every : i % every;
      (globalThis as { gc?: () => void }).gc?.(); // with --expose-gc: live heap, not garbage awaiting collection
      const mem = process.memoryUsage();
      const row = { step: i, tensors: tf.memory().numTensors, rssMB: mem.rss / 2 ** 20, heapMB: mem.heapUsed / 2 ** 20, msPerStep: (now - t0) / n };
      rows.push(row);
      console.log(
        `${String(i).padStart(9)} ${String(row.tensors).padStart(8)} ${mb(mem.rss).padStart(8)} ${mb(mem.heapUsed).padStart(8)} ${row.msPerStep.toFixed(3).padStart(8)}`,
      );
      t0 = performance.now();
    }
  }
  await trainer.close();
  toy.dispose();
  optimizer.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
  const first = rows[0];
  const last = rows[rows.length - 1];
  const tensorGrowth = last.tensors - first.tensors;
  const rssMax = Math.max(...rows.slice(1).map((r) => r.rssMB), first.rssMB);
  const times = rows.slice(1).map((r) => r.msPerStep);
  const drift = times.length ? times[times.length - 1] / times[0] : 1;
  if (tensorGrowth !== 0) failed = true;
  const line = `${family.padEnd(18)} ${name.padEnd(14)} tensors ${first.tensors}→${last.tensors} (growth ${tensorGrowth}), RSS ${first.rssMB.toFixed(0)}→${last.rssMB.toFixed(0)} MB (max ${rssMax.toFixed(0)}), ms/step ${times[0]?.toFixed(3) ?? first.msPerStep.toFixed(3)}→${last.msPerStep.toFixed(3)} (last/second interval ${drift.toFixed(2)}), skipped ${skipped}`;
  summary.push(line);
}
console.log('\nsummary');
for (const l of summary) console.log(l);
if (failed) {
  console.error('FAIL: the tensor count grew');
  process.exit(1);
}
