/**
 * How the timing method moves the exact/fixed ratio (issue 27): the library's `fixed` step and the
 * exact-mode probe step (reads the Gram matrix, returns equal weights) on bench/grad-read.ts's model,
 * timed in blocks of N consecutive steps, interleaved over 5 rounds, with or without two forced GCs
 * before each block (and optionally one untimed step after them), with `extra` more trainers alive in
 * the process. Prints medians of wall and CPU ms per step and the ratios.
 *
 *   npx tsx --expose-gc bench/step-timing.ts T N mode extra
 *     T      terms (default 64)
 *     N      steps per block (default 10)
 *     mode   no | settle | settle-warm (default no)
 *     extra  more trainers in the process, alternately fixed and probe (default 0)
 *
 * 2026-12-06 06:32 UTC, load ~1.2, T = 64 (docs/benchmarks.md, many terms): `64 10 no 0` fixed 48.5 ms,
 * exact 175.6 ms, 3.62× wall; `64 1 settle 4` (the many-term table's method until then: one step per
 * block after forced GCs, more trainers alive) fixed 86.7 ms, exact 219.0 ms, 2.53× wall.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { register } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { problem } from './grad-read.js';
import { makeProbe } from './many-terms.js';

await tf.setBackend('wasm');
await tf.ready();
const [T, N] = [Number(process.argv[2] ?? 64), Number(process.argv[3] ?? 10)];
const mode = process.argv[4] ?? 'no';
const extra = Number(process.argv[5] ?? 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (mode !== 'no' && !gc) throw new Error('run with --expose-gc for the settle modes');
const probe = makeProbe('bench-timing-probe');
register(probe);
const p = problem(T, 256, 128);
const make = (balancer: string) => new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer, variables: p.vars, terms: p.terms, warn: () => {} });
const trainers: [string, BalancedTrainer][] = [['fixed', make('fixed')], ['exact', make(probe.name)]];
for (let i = 0; i < extra; i++) trainers.push([`extra${i}`, make(i % 2 ? probe.name : 'fixed')]);
for (const [, t] of trainers) for (let i = 0; i < 2; i++) t.step();
const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
for (let r = 0; r < 5; r++) {
  for (const [key, t] of trainers) {
    if (mode !== 'no') for (let i = 0; i < 2; i++) gc!();
    if (mode === 'settle-warm') t.step();
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    for (let i = 0; i < N; i++) t.step();
    (wall[key] ??= []).push((performance.now() - w0) / N);
    const c = process.cpuUsage(c0);
    (cpu[key] ??= []).push((c.user + c.system) / 1000 / N);
  }
}
const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
const [fw, ew, fc, ec] = [med(wall.fixed), med(wall.exact), med(cpu.fixed), med(cpu.exact)];
console.log(`T=${T} N=${N} mode=${mode} extra=${extra}: fixed ${fw.toFixed(1)} ms (${fc.toFixed(1)} CPU), exact ${ew.toFixed(1)} (${ec.toFixed(1)}); exact/fixed ${(ew / fw).toFixed(2)} wall, ${(ec / fc).toFixed(2)} CPU`);
