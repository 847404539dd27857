/**
 * Gradient-reading benchmark (issue 15): the cost of reading per-term gradients, as CPU-time ratios
 * to a plain `optimizer.minimize` step of the summed loss, on the overhead benchmark's model (MLP
 * trunk 64→256→256, T linear heads, MSE, batch 128, Adam, wasm), for one Gram-reading strategy
 * (mgda) in representation and exact mode, plain and with `every: k`. All configurations of one T run
 * interleaved in rounds in one process; a configuration's time is the median over rounds of the mean
 * CPU time per step of a block. Beside time, the engine's peak tensor bytes during one step
 * (`tf.profile(...).peakBytes`, which counts every live tensor, views included): absolute (it
 * includes the variables and every configuration's optimizer slots, so it depends on what else the
 * process holds) and above the bytes held when the step began (the step's own peak, which does not).
 * With /usr/bin/python3 and torch, the PyTorch anchor (bench/torch-anchor.py) runs after and its
 * ratios are printed beside ours. `npm run bench` (bench/overhead.ts) runs this too, at T = 4 and 16.
 *
 *   npx tsx bench/grad-read.ts                      # T=4,16, 7 rounds, blocks of 10 steps
 *   npx tsx bench/grad-read.ts --quick              # smoke: T=2, 1 round, blocks of 2, no anchor
 *   npx tsx bench/grad-read.ts --T 4 --rounds 9 --every 5,10 --no-anchor
 *   npx tsx bench/grad-read.ts --compare-exact      # also tfjs's own MatMul gradient (setPlainMatMul(false))
 *   npx tsx bench/grad-read.ts --compare-src before=/tmp/old/src
 *       # also exact and representation steps of another checkout's BalancedTrainer (its src/ folder,
 *       # with node_modules resolving to this one's), measured in the same rounds
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { setPlainMatMul } from '../src/train/grads.js';

const BATCH = 128;
const log = (m: string) => process.stderr.write(`${m}\n`);

/** What one run measures. */
export interface GradReadOptions {
  Ts: number[];
  rounds: number;
  block: number;
  everys: number[];
  strategy: string;
  /** tfjs's own MatMul gradient beside the rewrite. */
  compareExact?: boolean;
  /** Other checkouts' trainers, by label: `dir` is their src/ folder. */
  compareSrc?: { label: string; dir: string }[];
}

/** One configuration's result: CPU ms per step, ratio to plain, peak tensor MB (absolute, above the step's start). */
export interface GradReadCell { ms: number; ratio: number; peakMB: number; stepPeakMB: number }
export type GradReadResult = Record<number, Record<string, GradReadCell>>;
/** PyTorch anchor ratios by T. */
export type Anchor = {
  torch: string;
  T: Record<string, { representation: number; exact: number; autojac?: number; plain_ms?: number; plain_wall_ms?: number; wall?: { representation: number; exact: number; autojac: number } }>;
};

/**
 * Peak tensor bytes (MB) of one exact mgda step at T = 16 above the bytes held when the step began,
 * for the code before issue 15 (commit 349299b: tfjs's own MatMul gradient, the T backward passes
 * recorded on the shared tape), measured with that commit's src/ loaded beside this one
 * (`--compare-src`, docs/benchmarks.md). It counts tensors, not time, so it does not depend on the
 * machine's load (tfjs 4.22, wasm). The target: exact mode's peak at T = 16 not above it.
 */
export const EXACT_T16_STEP_PEAK_BEFORE_MB = 40.21;

/** The benchmark model (also `npm run bench`'s): MLP 64→width→width (ReLU), T linear heads, MSE terms on fixed data. */
export interface Problem {
  vars: tf.Variable[];
  trunk: () => tf.Tensor;
  heads: (z: tf.Tensor) => Record<string, tf.Scalar>;
  terms: () => Record<string, tf.Scalar>;
  dispose(): void;
}

/**
 * The benchmark model's shared trunk (64 → width → width: W1, b1, W2, b2; Glorot-normal, seeded 1, 2)
 * and the two helpers that made it, for the heads: `own` makes a variable of a tensor and releases
 * the tensor (tf.variable keeps its own copy), `glorot` continues the seed sequence (3, 4, ...).
 */
export function trunkVariables(width: number, id: string) {
  let seed = 1;
  const own = (init: tf.Tensor, name: string) => {
    const v = tf.variable(init, true, name);
    init.dispose();
    return v;
  };
  const glorot = (shape: number[], name: string) => own(tf.randomNormal(shape, 0, Math.sqrt(2 / (shape[0] + shape[1])), 'float32', seed++), `${name}_${id}`);
  const W1 = glorot([64, width], 'W1');
  const b1 = own(tf.zeros([width]), `b1_${id}`);
  const W2 = glorot([width, width], 'W2');
  const b2 = own(tf.zeros([width]), `b2_${id}`);
  return { own, glorot, W1, b1, W2, b2 };
}

let uid = 0;
export function problem(T: number, width = 256, batch = BATCH): Problem {
  const id = `${uid++}`;
  const { own, glorot, W1, b1, W2, b2 } = trunkVariables(width, id);
  const hw = Array.from({ length: T }, (_, i) => glorot([width, 1], `head${i}`));
  const hb = Array.from({ length: T }, (_, i) => own(tf.zeros([1]), `hb${i}_${id}`));
  const x = tf.randomNormal([batch, 64], 0, 1, 'float32', 1000);
  const ys = hw.map((_, i) => tf.randomNormal([batch, 1], 0, 1 + i, 'float32', 2000 + i));
  const trunk = () => tf.relu(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2));
  const heads = (z: tf.Tensor) =>
    Object.fromEntries(hw.map((w, i) => [`t${i}`, tf.losses.meanSquaredError(ys[i], tf.add(tf.matMul(z, w), hb[i])) as tf.Scalar]));
  const vars = [W1, b1, W2, b2, ...hw, ...hb];
  return {
    vars,
    trunk,
    heads,
    terms: () => heads(trunk()),
    dispose: () => tf.dispose([...vars, x, ...ys]),
  };
}

interface Config { key: string; n: number; run: () => void; times: number[]; peak?: number; stepPeak?: number; dispose?: () => void }

function cpuPerCall(f: () => void, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

type TrainerClass = typeof BalancedTrainer;

async function runT(T: number, o: GradReadOptions, others: { label: string; Trainer: TrainerClass }[]): Promise<Record<string, GradReadCell>> {
  const p = problem(T);
  const plainOpt = tf.train.adam(1e-4);
  const configs: Config[] = [
    { key: 'plain', n: o.block, times: [], run: () => void plainOpt.minimize(() => tf.addN(Object.values(p.terms())) as tf.Scalar, false, p.vars), dispose: () => plainOpt.dispose() },
  ];
  const make = (Trainer: TrainerClass, extra: Partial<BalancedTrainerOptions>, balancer = o.strategy) => {
    const optimizer = tf.train.adam(1e-4);
    const t = new Trainer({ optimizer, balancer, variables: p.vars, keepHistory: false, warn: () => {}, ...extra } as BalancedTrainerOptions);
    return { t, dispose: () => optimizer.dispose() };
  };
  const trainer = (key: string, extra: Partial<BalancedTrainerOptions>, n = o.block, wrap?: (f: () => void) => void, Trainer: TrainerClass = BalancedTrainer) => {
    const { t, dispose } = make(Trainer, extra);
    const step = () => void t.step();
    configs.push({ key, n, times: [], run: wrap ? () => wrap(step) : step, dispose });
  };
  {
    const { t, dispose } = make(BalancedTrainer, { terms: p.terms }, 'uncertainty');
    configs.push({ key: 'loss-only (uncertainty)', n: o.block, times: [], run: () => void t.step(), dispose });
  }
  trainer('representation', { represent: { trunk: p.trunk, heads: p.heads } });
  trainer('exact', { terms: p.terms });
  if (o.compareExact) {
    const tfjsOwn = (f: () => void) => {
      setPlainMatMul(false);
      try {
        f();
      } finally {
        setPlainMatMul(true);
      }
    };
    trainer('exact, tfjs MatMul gradient', { terms: p.terms }, o.block, tfjsOwn);
    trainer('representation, tfjs MatMul gradient', { represent: { trunk: p.trunk, heads: p.heads } }, o.block, tfjsOwn);
  }
  for (const { label, Trainer } of others) {
    trainer(`exact (${label})`, { terms: p.terms }, o.block, undefined, Trainer);
    trainer(`representation (${label})`, { represent: { trunk: p.trunk, heads: p.heads } }, o.block, undefined, Trainer);
  }
  for (const k of o.everys) {
    trainer(`representation every=${k}`, { represent: { trunk: p.trunk, heads: p.heads }, every: k }, k);
    trainer(`exact every=${k}`, { terms: p.terms, every: k }, k);
  }
  // warm-up: kernels, optimizer slots; then one profiled step each (for every=k a reuse step)
  for (const c of configs) { c.run(); c.run(); }
  for (const c of configs) {
    const start = tf.memory().numBytes;
    const info = await tf.profile(() => c.run());
    c.peak = info.peakBytes;
    c.stepPeak = info.peakBytes - start;
  }
  for (let r = 0; r < o.rounds; r++) for (const c of configs) c.times.push(cpuPerCall(c.run, c.n));
  const plain = median(configs[0].times);
  const out = Object.fromEntries(configs.map((c) => [c.key, { ms: median(c.times), ratio: median(c.times) / plain, peakMB: (c.peak ?? 0) / 2 ** 20, stepPeakMB: (c.stepPeak ?? 0) / 2 ** 20 }]));
  for (const c of configs) c.dispose?.();
  p.dispose();
  return out;
}

/** Run every T of `o` on the current backend (wasm expected). */
export async function gradReading(o: GradReadOptions): Promise<GradReadResult> {
  const others: { label: string; Trainer: TrainerClass }[] = [];
  for (const { label, dir } of o.compareSrc ?? []) {
    const mod = (await import(pathToFileURL(`${dir.replace(/\/$/, '')}/train/trainer.ts`).href)) as { BalancedTrainer: TrainerClass };
    others.push({ label, Trainer: mod.BalancedTrainer });
  }
  const started = Date.now();
  const ours: GradReadResult = {};
  for (const T of o.Ts) {
    ours[T] = await runT(T, o, others);
    log(`  gradient reading T=${T} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return ours;
}

/** The PyTorch anchor (bench/torch-anchor.py in /usr/bin/python3), or why it was skipped. */
export function torchAnchor(Ts: number[], rounds: number): { anchor: Anchor | null; note: string } {
  if (!existsSync('/usr/bin/python3')) return { anchor: null, note: 'skipped: /usr/bin/python3 not found' };
  try {
    const outp = execFileSync('/usr/bin/python3', ['bench/torch-anchor.py', '--T', Ts.join(','), '--rounds', String(rounds)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const anchor = JSON.parse(outp.trim().split('\n').pop()!) as Anchor;
    return { anchor, note: `bench/torch-anchor.py, torch ${anchor.torch}, one thread, same model/batch/Adam, ratios to its own plain step` };
  } catch (e) {
    return { anchor: null, note: `skipped: /usr/bin/python3 has no torch or the script failed (${(e as Error).message.split('\n')[0]})` };
  }
}

/** The issue-15 targets checked on a result: time ratios and exact mode's step peak at T = 16. */
export function gradReadingVerdicts(r: GradReadResult): string[] {
  const v: string[] = [];
  const check = (T: number, key: string, max: number) => {
    const c = r[T]?.[key];
    if (c) v.push(`${c.ratio <= max ? 'ok' : 'MISSED'}: ${key} at T=${T} ${c.ratio.toFixed(2)}× (target ≤ ${max}×)`);
  };
  check(4, 'representation', 1.05);
  check(16, 'representation', 1.3);
  check(4, 'exact', 2.9);
  check(16, 'exact', 9);
  const e16 = r[16]?.exact;
  if (e16) {
    v.push(
      `${e16.stepPeakMB <= EXACT_T16_STEP_PEAK_BEFORE_MB ? 'ok' : 'MISSED'}: exact at T=16 peak ${e16.stepPeakMB.toFixed(2)} MB above the step's start ` +
        `(target ≤ ${EXACT_T16_STEP_PEAK_BEFORE_MB} MB, the code before issue 15)`,
    );
  }
  return v;
}

/** The table (markdown) of a result, with the anchor's ratios beside representation and exact. */
export function gradReadingTable(r: GradReadResult, o: GradReadOptions, anchor: Anchor | null): string[] {
  const lines: string[] = [];
  lines.push(`Gradient reading (${o.strategy}, wasm, MLP 64→256→256, batch ${BATCH}, Adam): CPU-time ratio to a plain minimize step; median of ${o.rounds} interleaved rounds of blocks of ${o.block} steps (k for every=k). Peak: tensor MB of one profiled step (for every=k a reuse step), absolute / above the step's start.`);
  lines.push('');
  lines.push('| T | configuration | CPU ms/step | ratio × | PyTorch anchor × | peak MB | step peak MB |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const T of Object.keys(r).map(Number)) {
    for (const [k, v] of Object.entries(r[T])) {
      const a = anchor?.T[String(T)];
      const av = a && (k === 'representation' || k === 'exact') ? a[k].toFixed(2) : k === 'plain' && a ? '1.00' : '';
      lines.push(`| ${T} | ${k} | ${v.ms.toFixed(2)} | ${v.ratio.toFixed(2)} | ${av} | ${v.peakMB.toFixed(2)} | ${v.stepPeakMB.toFixed(2)} |`);
    }
  }
  return lines;
}

async function main() {
  const argv = process.argv.slice(2);
  const flag = (n: string) => argv.includes(`--${n}`);
  const opt = (n: string, d: string) => {
    const i = argv.indexOf(`--${n}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
  };
  const QUICK = flag('quick');
  const nums = (s: string) => s.split(',').filter(Boolean).map(Number);
  const o: GradReadOptions = {
    Ts: nums(opt('T', QUICK ? '2' : '4,16')),
    rounds: Number(opt('rounds', QUICK ? '1' : '7')),
    block: Number(opt('block', QUICK ? '2' : '10')),
    everys: nums(opt('every', QUICK ? '' : '10')),
    strategy: opt('strategy', 'mgda'),
    compareExact: flag('compare-exact'),
    compareSrc: opt('compare-src', '').split(',').filter(Boolean).map((s) => {
      const i = s.indexOf('=');
      if (i <= 0) throw new Error(`--compare-src: expected label=dir, got "${s}"`);
      return { label: s.slice(0, i), dir: s.slice(i + 1) };
    }),
  };
  await tf.setBackend('wasm');
  await tf.ready();
  const ours = await gradReading(o);
  const { anchor, note } = !QUICK && !flag('no-anchor') ? torchAnchor(o.Ts, o.rounds) : { anchor: null, note: 'skipped (--quick or --no-anchor)' };
  const lines = gradReadingTable(ours, o, anchor);
  lines.push('', `PyTorch anchor: ${note}`);
  lines.push(...gradReadingVerdicts(ours).map((v) => `- ${v}`));
  lines.push(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}, ${new Date().toISOString()}`);
  console.log(lines.join('\n'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
