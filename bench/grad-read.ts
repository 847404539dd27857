/**
 * Gradient-reading benchmark (issue 15): the cost of reading per-term gradients, as CPU-time ratios
 * to a plain `optimizer.minimize` step of the summed loss, on the overhead benchmark's model (MLP
 * trunk 64→256→256, T linear heads, MSE, batch 128, Adam, wasm), for one Gram-reading strategy
 * (mgda) in representation and exact mode, plain and with `every: k`. All configurations of one T run
 * interleaved in rounds in one process; a configuration's time is the median over rounds of the mean
 * CPU time per step of a block. Beside time: the engine's peak tensor bytes during one step
 * (`tf.engine().startScope` counters via `tf.profile`). With /usr/bin/python3 and torch, the PyTorch
 * anchor (bench/torch-anchor.py) runs after and its ratios are printed beside ours.
 *
 *   npx tsx bench/grad-read.ts                      # T=4,16, 7 rounds, blocks of 10 steps
 *   npx tsx bench/grad-read.ts --quick              # smoke: T=2, 1 round, blocks of 2, no anchor
 *   npx tsx bench/grad-read.ts --T 4 --rounds 9 --every 5,10 --no-anchor
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { setPlainMatMul } from '../src/train/grads.js';

const argv = process.argv.slice(2);
const flag = (n: string) => argv.includes(`--${n}`);
const opt = (n: string, d: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const QUICK = flag('quick');
const nums = (s: string) => s.split(',').filter(Boolean).map(Number);
const TS = nums(opt('T', QUICK ? '2' : '4,16'));
const ROUNDS = Number(opt('rounds', QUICK ? '1' : '7'));
const BLOCK = Number(opt('block', QUICK ? '2' : '10'));
const EVERYS = nums(opt('every', QUICK ? '' : '10'));
const STRATEGY = opt('strategy', 'mgda');
const ANCHOR = !QUICK && !flag('no-anchor');
const BATCH = 128;
const log = (m: string) => process.stderr.write(`${m}\n`);

function problem(T: number, width = 256) {
  let seed = 1;
  const id = Math.random().toString(36).slice(2);
  const glorot = (shape: number[], name: string) =>
    tf.variable(tf.tidy(() => tf.randomNormal(shape, 0, Math.sqrt(2 / (shape[0] + shape[1])), 'float32', seed++)), true, `${name}_${id}`);
  const W1 = glorot([64, width], 'W1');
  const b1 = tf.variable(tf.zeros([width]), true, `b1_${id}`);
  const W2 = glorot([width, width], 'W2');
  const b2 = tf.variable(tf.zeros([width]), true, `b2_${id}`);
  const hw = Array.from({ length: T }, (_, i) => glorot([width, 1], `head${i}`));
  const hb = Array.from({ length: T }, (_, i) => tf.variable(tf.zeros([1]), true, `hb${i}_${id}`));
  const x = tf.randomNormal([BATCH, 64], 0, 1, 'float32', 1000);
  const ys = hw.map((_, i) => tf.randomNormal([BATCH, 1], 0, 1 + i, 'float32', 2000 + i));
  const trunk = () => tf.relu(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2));
  const heads = (z: tf.Tensor) =>
    Object.fromEntries(hw.map((w, i) => [`t${i}`, tf.losses.meanSquaredError(ys[i], tf.add(tf.matMul(z, w), hb[i])) as tf.Scalar]));
  return { vars: [W1, b1, W2, b2, ...hw, ...hb], trunk, heads, terms: () => heads(trunk()) };
}

interface Config { key: string; n: number; run: () => void; times: number[]; peak?: number }

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

async function runT(T: number): Promise<Record<string, { ms: number; ratio: number; peakMB: number }>> {
  const p = problem(T);
  const plainOpt = tf.train.adam(1e-4);
  const configs: Config[] = [
    { key: 'plain', n: BLOCK, times: [], run: () => void plainOpt.minimize(() => tf.addN(Object.values(p.terms())) as tf.Scalar, false, p.vars) },
  ];
  const trainer = (key: string, o: Partial<BalancedTrainerOptions>, n = BLOCK) => {
    const t = new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer: STRATEGY, variables: p.vars, keepHistory: false, warn: () => {}, ...o } as BalancedTrainerOptions);
    configs.push({ key, n, times: [], run: () => void t.step() });
  };
  {
    const t = new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer: 'uncertainty', variables: p.vars, keepHistory: false, warn: () => {}, terms: p.terms } as BalancedTrainerOptions);
    configs.push({ key: 'loss-only (uncertainty)', n: BLOCK, times: [], run: () => void t.step() });
  }
  trainer('representation', { represent: { trunk: p.trunk, heads: p.heads } });
  trainer('exact', { terms: p.terms });
  if (flag('compare-exact')) {
    const t = new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer: STRATEGY, variables: p.vars, keepHistory: false, warn: () => {}, terms: p.terms } as BalancedTrainerOptions);
    configs.push({ key: 'exact, tfjs transposed MatMul (old)', n: BLOCK, times: [], run: () => { setPlainMatMul(false); try { t.step(); } finally { setPlainMatMul(true); } } });
    const t2 = new BalancedTrainer({ optimizer: tf.train.adam(1e-4), balancer: STRATEGY, variables: p.vars, keepHistory: false, warn: () => {}, represent: { trunk: p.trunk, heads: p.heads } } as BalancedTrainerOptions);
    configs.push({ key: 'representation, tfjs transposed MatMul', n: BLOCK, times: [], run: () => { setPlainMatMul(false); try { t2.step(); } finally { setPlainMatMul(true); } } });
  }
  for (const k of EVERYS) {
    trainer(`representation every=${k}`, { represent: { trunk: p.trunk, heads: p.heads }, every: k }, k);
    trainer(`exact every=${k}`, { terms: p.terms, every: k }, k);
  }
  for (const c of configs) { c.run(); c.run(); }
  for (const c of configs) {
    const info = await tf.profile(() => c.run());
    c.peak = info.peakBytes;
  }
  for (let r = 0; r < ROUNDS; r++) for (const c of configs) c.times.push(cpuPerCall(c.run, c.n));
  const plain = median(configs[0].times);
  return Object.fromEntries(configs.map((c) => [c.key, { ms: median(c.times), ratio: median(c.times) / plain, peakMB: (c.peak ?? 0) / 2 ** 20 }]));
}

async function main() {
  await tf.setBackend('wasm');
  await tf.ready();
  const started = Date.now();
  const ours: Record<number, Awaited<ReturnType<typeof runT>>> = {};
  for (const T of TS) {
    ours[T] = await runT(T);
    log(`T=${T} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  let anchor: { torch: string; T: Record<string, { representation: number; exact: number }> } | null = null;
  let anchorNote = 'skipped (--quick or --no-anchor)';
  if (ANCHOR) {
    if (!existsSync('/usr/bin/python3')) anchorNote = 'skipped: /usr/bin/python3 not found';
    else {
      try {
        const outp = execFileSync('/usr/bin/python3', ['bench/torch-anchor.py', '--T', TS.join(','), '--rounds', String(ROUNDS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
        anchor = JSON.parse(outp.trim().split('\n').pop()!);
        anchorNote = `torch ${anchor!.torch}, single thread`;
      } catch (e) {
        anchorNote = `skipped: /usr/bin/python3 has no torch or the script failed (${(e as Error).message.split('\n')[0]})`;
      }
    }
  }
  const lines: string[] = [];
  lines.push(`gradient reading (${STRATEGY}, wasm, MLP 64→256→256, batch ${BATCH}, Adam), CPU-time ratio to a plain minimize step; median of ${ROUNDS} interleaved rounds`);
  lines.push('| T | configuration | CPU ms/step | ratio × | PyTorch anchor × | peak tensor MB (one step) |');
  lines.push('|---|---|---|---|---|---|');
  for (const T of TS) {
    for (const [k, v] of Object.entries(ours[T])) {
      const a = anchor?.T[String(T)];
      const av = a && (k === 'representation' || k === 'exact') ? a[k].toFixed(2) : '';
      lines.push(`| ${T} | ${k} | ${v.ms.toFixed(2)} | ${v.ratio.toFixed(2)} | ${av} | ${v.peakMB.toFixed(2)} |`);
    }
  }
  lines.push(`PyTorch anchor: ${anchorNote}`);
  lines.push(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}, ${new Date().toISOString()}`);
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
