/**
 * Where the time of a step goes: runs one configuration of the overhead benchmark's model under
 * `node --cpu-prof`, notes the time window of the measured steps (after a warm-up), then summarises
 * the profile's self time inside that window, grouped by origin (wasm kernels, tfjs-core engine and
 * gradients, wasm backend glue, ml-matrix, loss-balancer, strategies, GC) with the top functions.
 *
 *   rm -rf /tmp/prof && node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile.ts \
 *     --mode representation --strategy cagrad --T 4 --steps 200 --window /tmp/prof/window.json
 *   npx tsx bench/profile.ts --summarize /tmp/prof
 *
 * Modes: plain, loss-only, exact, exact-per-term, representation, every. Backend: --backend wasm|cpu.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const MODE = opt('mode', 'representation');
const STRATEGY = opt('strategy', 'mgda');
const T = Number(opt('T', '4'));
const STEPS = Number(opt('steps', '200'));
const BACKEND = opt('backend', 'wasm');
const WINDOW = opt('window', '');
const SUMMARIZE = opt('summarize', '');

if (SUMMARIZE) {
  summarize(SUMMARIZE);
  process.exit(0);
}

await tf.setBackend(BACKEND);
await tf.ready();

// the model of bench/overhead.ts
let seed = 1;
const glorot = (shape: number[]) => tf.variable(tf.tidy(() => tf.randomNormal(shape, 0, Math.sqrt(2 / (shape[0] + shape[1])), 'float32', seed++)));
const W1 = glorot([64, 256]);
const b1 = tf.variable(tf.zeros([256]));
const W2 = glorot([256, 256]);
const b2 = tf.variable(tf.zeros([256]));
const hw = Array.from({ length: T }, () => glorot([256, 1]));
const hb = Array.from({ length: T }, () => tf.variable(tf.zeros([1])));
const x = tf.randomNormal([128, 64], 0, 1, 'float32', 1000);
const ys = hw.map((_, i) => tf.randomNormal([128, 1], 0, 1 + i, 'float32', 2000 + i));
const trunk = () => tf.relu(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2));
const heads = (z: tf.Tensor) =>
  Object.fromEntries(hw.map((w, i) => [`t${i}`, tf.losses.meanSquaredError(ys[i], tf.add(tf.matMul(z, w), hb[i])) as tf.Scalar]));
const terms = () => heads(trunk());
const vars = [W1, b1, W2, b2, ...hw, ...hb];
const optimizer = tf.train.adam(1e-4);

let step: () => void;
if (MODE === 'plain') {
  step = () => void optimizer.minimize(() => tf.addN(Object.values(terms())) as tf.Scalar, false, vars);
} else {
  const base = { optimizer, balancer: MODE === 'loss-only' ? opt('strategy', 'uncertainty') : STRATEGY, variables: vars, keepHistory: false, warn: () => {} };
  const o: BalancedTrainerOptions =
    MODE === 'representation'
      ? ({ ...base, represent: { trunk, heads } } as BalancedTrainerOptions)
      : ({ ...base, terms, ...(MODE === 'every' ? { every: 10 } : {}), ...(MODE === 'exact-per-term' ? { singleForward: false } : {}) } as BalancedTrainerOptions);
  const t = new BalancedTrainer(o);
  step = () => void t.step();
}
for (let i = 0; i < 20; i++) step();

const us = () => Number(process.hrtime.bigint() / 1000n); // the clock of the profile's timestamps
const start = us();
const t0 = performance.now();
for (let i = 0; i < STEPS; i++) step();
const wall = performance.now() - t0;
const end = us();
const what = `mode ${MODE}${MODE === 'plain' ? '' : `, strategy ${MODE === 'loss-only' ? opt('strategy', 'uncertainty') : STRATEGY}`}, T=${T}, ${BACKEND}, ${STEPS} steps, ${(wall / STEPS).toFixed(2)} ms/step wall`;
console.log(what);
if (WINDOW) mkdirSync(dirname(WINDOW), { recursive: true });
if (WINDOW) writeFileSync(WINDOW, JSON.stringify({ start, end, steps: STEPS, what }));

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function summarize(dir: string): void {
  // tsx's loader runs in a worker thread with its own (mostly idle) profile: take the busiest one
  const profiles = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile)
    .map((p) => {
      const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
      return { p, busy: p.samples.filter((id) => !idle.has(id)).length };
    })
    .sort((a, b) => b.busy - a.busy)
    .map((x) => x.p);
  if (!profiles.length) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = profiles[0];
  const win = JSON.parse(readFileSync(join(dir, 'window.json'), 'utf8')) as { start: number; end: number; steps: number; what: string };
  const STEPS = win.steps;
  // self time per node from the samples
  const self = new Map<number, number>();
  let ts = profile.startTime;
    profile.samples.forEach((id, k) => {
      ts += profile.timeDeltas[k] ?? 0;
      const next = profile.timeDeltas[k + 1] ?? 0;
      if (ts >= win.start && ts <= win.end) self.set(id, (self.get(id) ?? 0) + next / 1000);
    });
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = [...self.values()].reduce((a, b) => a + b, 0);

  function origin(n: CpuNode): string {
    const { url, functionName } = n.callFrame;
    if (url.startsWith('wasm://') || /^\$?wasm-function|^\$func/.test(functionName)) return 'wasm kernels (XNNPACK / tfjs-backend-wasm)';
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)' || functionName === '(idle)') return '(program / idle)';
    if (url.includes('tfjs-backend-wasm')) return 'tfjs-backend-wasm JS glue';
    if (url.includes('tfjs-core')) return 'tfjs-core (engine, tape, gradients, ops)';
    if (url.includes('tfjs-layers')) return 'tfjs-layers';
    if (url.includes('ml-matrix')) return 'ml-matrix';
    if (url.includes('/strategies/')) return 'loss-balancer strategies';
    if (url.includes('/src/')) return 'loss-balancer src';
    if (url.includes('zod')) return 'zod';
    if (url.startsWith('node:') || url === '') return 'node internals / native';
    return 'other JS';
  }
  const groups = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const g = origin(n);
    groups.set(g, (groups.get(g) ?? 0) + ms);
    const file = n.callFrame.url.split('/').slice(-1)[0] || '(native)';
    const key = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
  }
  const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(`profile: ${win.what}; ${(total / STEPS).toFixed(2)} ms/step sampled in the window`);
  lines.push('', '| origin | ms/step | share |', '|---|---|---|');
  for (const [g, ms] of [...groups].sort((a, b) => b[1] - a[1])) lines.push(`| ${g} | ${(ms / STEPS).toFixed(2)} | ${pct(ms)} |`);
  lines.push('', '| top functions (self time) | ms/step | share |', '|---|---|---|');
  for (const [f, ms] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`| \`${f}\` | ${(ms / STEPS).toFixed(2)} | ${pct(ms)} |`);
  console.log(lines.join('\n'));
}
