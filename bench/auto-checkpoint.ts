/**
 * Size and time of a checkpoint taken during an `auto` selection (issue 26, item 5): a toy model of
 * about `--params` parameters (a 1000-wide input, hidden width params/1000, two heads), Adam, the
 * default `auto` candidates, one step (every candidate then holds its copies), `saveState` with the
 * optimizer and variables, then `loadState` into a fresh trainer. Prints the file size, the times,
 * the largest RSS seen after each phase, `tournament.cost.bytes` and the bytes tfjs holds for the copies.
 *
 *   npx tsx bench/auto-checkpoint.ts --params 1500000
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadState, saveState } from '../src/node/checkpoint.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(`--${k}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const params = arg('params', 1_500_000);
const MiB = 2 ** 20;
let peak = 0;
const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));

await tf.setBackend('cpu');
const toy = makeToyProblem({ scales: [1, 100], inputs: 1000, hidden: Math.max(1, Math.round(params / 1000)), samples: 8, seed: 1 });
const n = toy.variables.reduce((a, v) => a + v.size, 0);
const optimizer = tf.train.adam(1e-3);
const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: 'auto', harm: false, warn: () => undefined });
const before = tf.memory().numBytes;
trainer.step();
const held = tf.memory().numBytes - before;
sample();
const t = trainer.tournament!;
const dir = mkdtempSync(join(tmpdir(), 'lb-auto-ckpt-'));
const path = join(dir, 'ckpt.json');
console.log(`parameters: ${n}; candidates: ${t.candidates.length}; tournament.cost.bytes: ${(t.cost.bytes / MiB).toFixed(1)} MiB; tfjs bytes added by the first step: ${(held / MiB).toFixed(1)} MiB`);
let t0 = performance.now();
try {
  await saveState(path, trainer, { optimizer, variables: toy.variables });
  const save = performance.now() - t0;
  sample();
  const size = statSync(path).size;
  console.log(`saveState: ${(save / 1000).toFixed(2)} s, file ${(size / MiB).toFixed(1)} MiB (${(size / (n * 4 * t.candidates.length * 3)).toFixed(2)} bytes per stored float32 byte)`);
  const opt2 = tf.train.adam(1e-3);
  const fresh = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer: opt2, balancer: 'auto', harm: false, warn: () => undefined });
  t0 = performance.now();
  await loadState(path, fresh, { optimizer: opt2, variables: toy.variables });
  console.log(`loadState: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
} catch (e) {
  sample();
  console.log(`failed after ${((performance.now() - t0) / 1000).toFixed(2)} s: ${(e as Error).name}: ${(e as Error).message.slice(0, 200)}`);
}
sample();
console.log(`largest RSS after a phase: ${(peak / MiB).toFixed(0)} MiB`);
rmSync(dir, { recursive: true, force: true });
