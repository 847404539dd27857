/**
 * Where one step's kernel time goes, by kernel (issue 27): `tf.profile` of one trainer step on
 * bench/grad-read.ts's model (MLP trunk 64→256→256, T separate linear heads, batch 128, Adam, wasm),
 * for the `fixed` step and a probe strategy that reads the Gram matrix in exact mode (equal weights).
 * Kernels with an input above 10⁵ elements are listed with their input shapes; the others are
 * grouped by name. Wall time is the median of 5 steps before the profiled one.
 *
 *   npx tsx bench/step-kernels.ts [T]        # default T = 64
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { register } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { problem } from './grad-read.js';
import { makeProbe } from './many-terms.js';

await tf.setBackend('wasm');
await tf.ready();
const T = Number(process.argv[2] ?? 64);
const probe = makeProbe('bench-kernels-probe');
register(probe);
const p = problem(T, 256, 128);
const make = (balancer: string) => new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer, variables: p.vars, terms: p.terms, warn: () => {} });
const trainers: Record<string, BalancedTrainer> = { fixed: make('fixed'), exact: make(probe.name) };
for (const t of Object.values(trainers)) for (let i = 0; i < 2; i++) t.step();
console.log(`step-kernels: T=${T}, wasm, ${new Date().toISOString()}`);
for (const [key, t] of Object.entries(trainers)) {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const w = performance.now();
    t.step();
    times.push(performance.now() - w);
  }
  const info = await tf.profile(() => void t.step());
  const by = new Map<string, { n: number; ms: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const big = k.inputShapes.some((s) => s && s.reduce((a, b) => a * b, 1) > 1e5);
    const name = big ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
    const e = by.get(name) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += k.kernelTimeMs as number;
    total += k.kernelTimeMs as number;
    by.set(name, e);
  }
  times.sort((a, b) => a - b);
  console.log(`\n${key}: ${times[2].toFixed(1)} ms wall (median of 5), ${info.kernels.length} kernels, ${total.toFixed(1)} ms kernel time`);
  for (const [name, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16)) console.log(`  ${e.ms.toFixed(1).padStart(6)} ms ${String(e.n).padStart(5)}×  ${name}`);
}
