/**
 * Overhead benchmark: the cost of a balanced step relative to a plain `optimizer.minimize` of the
 * summed loss, on the same model and batch, for every registered strategy and T = 2, 4, 8, 16.
 *
 * Model: MLP trunk 64→256→256 (ReLU), T linear heads 256→1 with MSE, batch 128, Adam.
 * Modes: loss-only strategies (one backward pass), and for strategies that read gradients: exact
 * (per-term gradients over the trunk, one recorded forward pass), representation (Gram over
 * ∂L_i/∂z, z = trunk output) and exact with every = 10. All configurations of one T run interleaved
 * in rounds in one process; a configuration's time is the median over rounds of the mean step time
 * of a block of steps (10 steps for every = 10, so that each block holds exactly one gradient read).
 *
 *   npm run bench                       # wasm T=2,4,8,16 + cpu T=4; ~10 CPU-minutes (25 wall-minutes on a busy 2-core machine)
 *   npm run bench -- --long             # only growth: 10,000 steps per mode on wasm, T=4 (tensors, RSS)
 *   npm run bench -- --backends wasm --T 4 --rounds 3 --no-write
 *   npm run bench -- --quick            # smoke: wasm, T=2, 3 strategies, 1 round of 2 steps, no write, no anchor
 *   npm run bench -- --only-many-terms  # only the many-term table (issue 27): T = 2,4,16,64,128, wall and CPU time, anchor
 *
 * After the overhead table, the gradient-reading benchmark of issue 15 (bench/grad-read.ts: mgda in
 * representation and exact mode, with every = 10, peak tensor bytes per step) runs on wasm at T = 4
 * and 16 (those of --T), and the PyTorch anchor's ratios are printed beside it; the issue's targets
 * are checked in the target list.
 *
 * Options: --backends a,b  --T 2,4  --cpu-T 4  --rounds N  --block N  --strategies a,b
 *          --long  --long-steps N (10000)  --long-width N (64)  --long-batch N (32)
 *          --leak-steps N (quick growth check in the default run, 300)  --no-write
 *          --no-anchor (skip the PyTorch anchor, bench/torch-anchor.py, run at the end when /usr/bin/python3 has torch)
 *          --grad-rounds N (rounds of the gradient-reading table, 5)  --no-grad-read  --quick
 *          --many-T 2,4,16,64,128  --no-many-terms  --only-many-terms (bench/many-terms.ts, issue 27)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { create, list } from '../src/core/registry.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { tapeWorks } from '../src/train/grads.js';
import { gradReading, gradReadingTable, gradReadingVerdicts, problem, type Problem, torchAnchor as runTorchAnchor, type Anchor, type GradReadOptions, type GradReadResult } from './grad-read.js';
import { writeMarkedSection } from './docs-section.js';
import { layerwiseTable, manyTerms, manyTermsTable, strategyTable, type ManyTermsResult } from './many-terms.js';

// ----------------------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const nums = (s: string) => s.split(',').filter(Boolean).map(Number);
const QUICK = flag('quick');
const BACKENDS = opt('backends', QUICK ? 'wasm' : 'wasm,cpu').split(',');
const TS = nums(opt('T', QUICK ? '2' : '2,4,8,16'));
const CPU_TS = nums(opt('cpu-T', '4'));
const ROUNDS = Number(opt('rounds', QUICK ? '1' : '3'));
const BLOCK = Number(opt('block', QUICK ? '2' : '10'));
const ONLY = opt('strategies', QUICK ? 'fixed,uncertainty,mgda' : '') ? opt('strategies', QUICK ? 'fixed,uncertainty,mgda' : '').split(',') : null;
const GRAD_READ = !flag('no-grad-read');
const GRAD_ROUNDS = Number(opt('grad-rounds', QUICK ? '1' : '5'));
const NO_ANCHOR = QUICK || flag('no-anchor');
const LONG = flag('long');
const LONG_STEPS = Number(opt('long-steps', '10000'));
const LONG_WIDTH = Number(opt('long-width', '64'));
const LONG_BATCH = Number(opt('long-batch', '32'));
const LEAK_STEPS = Number(opt('leak-steps', QUICK ? '20' : '300'));
const WRITE = !QUICK && !flag('no-write');
const EVERY = 10;
// issue 27: the many-term table (bench/many-terms.ts) and its PyTorch anchor
const MANY_TS = nums(opt('many-T', QUICK ? '2' : '2,4,16,64,128'));
const MANY = !flag('no-many-terms');
const ONLY_MANY = flag('only-many-terms');
const log = (m: string) => process.stderr.write(`${m}\n`);

// ----------------------------------------------------------------------------- the model: bench/grad-read.ts's `problem`

/** Makes the shadow variables' names unique. */
let uid = 0;

// ----------------------------------------------------------------------------- timing helpers
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/**
 * CPU time (user + system, this process) per call of `f` over `n` calls, in ms. CPU time, not wall
 * time: on a shared machine the wall time of a block depends on what else runs; the backends used
 * here run on this process's threads, so its CPU time is the work the step does.
 */
function block(f: () => void, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / n;
}

interface Config {
  key: string;
  strategy: string;
  mode: 'plain' | 'forward' | 'adam' | 'loss-only' | 'exact' | 'exact-per-term' | 'representation' | 'every';
  n: number;
  run: () => void;
  dispose: () => void;
  times: number[];
  error?: string;
}

function trainerConfig(p: Problem, strategy: string, mode: Config['mode']): Config {
  const optimizer = tf.train.adam(1e-4);
  const base: Partial<BalancedTrainerOptions> = { optimizer, balancer: strategy, variables: p.vars, keepHistory: false, warn: () => {} };
  const opts: BalancedTrainerOptions =
    mode === 'representation'
      ? { ...base, represent: { trunk: p.trunk, heads: p.heads } } as BalancedTrainerOptions
      : { ...base, terms: p.terms, ...(mode === 'every' ? { every: EVERY } : {}), ...(mode === 'exact-per-term' ? { singleForward: false } : {}) } as BalancedTrainerOptions;
  const t = new BalancedTrainer(opts);
  return {
    key: `${strategy}/${mode}`,
    strategy,
    mode,
    n: mode === 'every' ? EVERY : BLOCK,
    run: () => void t.step(),
    dispose: () => optimizer.dispose(),
    times: [],
  };
}

function plainConfigs(p: Problem): Config[] {
  const optimizer = tf.train.adam(1e-4);
  const adam2 = tf.train.adam(1e-4);
  const shadow = p.vars.map((v, i) => tf.variable(tf.zerosLike(v), true, `shadow${i}_${uid++}`));
  const fixedGrads = Object.fromEntries(shadow.map((v) => [v.name, tf.onesLike(v).mul(1e-3)]));
  return [
    {
      key: 'plain', strategy: '-', mode: 'plain', n: BLOCK, times: [],
      run: () => void optimizer.minimize(() => tf.addN(Object.values(p.terms())) as tf.Scalar, false, p.vars),
      dispose: () => optimizer.dispose(),
    },
    {
      key: 'forward', strategy: '-', mode: 'forward', n: BLOCK, times: [],
      run: () => tf.tidy(() => void tf.addN(Object.values(p.terms())).dataSync()),
      dispose: () => {},
    },
    {
      key: 'adam', strategy: '-', mode: 'adam', n: BLOCK, times: [],
      run: () => {
        adam2.applyGradients(fixedGrads);
        shadow[0].dataSync();
      },
      dispose: () => {
        adam2.dispose();
        tf.dispose([...shadow, ...Object.values(fixedGrads)]);
      },
    },
  ];
}

interface Row {
  backend: string;
  T: number;
  strategy: string;
  reads: string;
  mode: string;
  ms: number;
  ratio: number;
  bound?: number;
  error?: string;
}

function strategies() {
  const all = list().filter((s) => s.kind !== 'selector' && (!ONLY || ONLY.includes(s.name)));
  return all;
}

function runT(backend: string, T: number): { rows: Row[]; plainMs: number; exactMs: Record<string, number>; repMs: Record<string, number> } {
  const p = problem(T);
  const configs: Config[] = [...plainConfigs(p)];
  const reads: Record<string, string> = {};
  for (const s of strategies()) {
    reads[s.name] = s.reads;
    if (s.reads === 'losses') configs.push(trainerConfig(p, s.name, 'loss-only'));
    // Jacobian-kind strategies refuse representation mode by design (they need parameter coordinates)
    else for (const m of ['exact', 'representation', 'every'] as const) if (m !== 'representation' || !s.reads.includes('jacobian')) configs.push(trainerConfig(p, s.name, m));
  }
  // one per-term reference (T forward passes) to show what the single recorded forward saves
  const firstGram = strategies().find((s) => s.reads !== 'losses');
  if (firstGram) configs.push(trainerConfig(p, firstGram.name, 'exact-per-term'));

  // warm-up: every configuration once (kernels, optimizer slots, the tape self-check)
  for (const c of configs) {
    try {
      c.run();
      c.run();
    } catch (e) {
      c.error = (e as Error).message.split('\n')[0].slice(0, 120);
    }
  }
  const started = performance.now();
  // one collection before the rounds, none between blocks: a forced GC before each block (the method
  // until 2026-12-06) slowed the next steps, the small-kernel ones most (T = 4, 10-step blocks: the
  // `fixed` step 19.1 against 10.6 ms wall, `bench/step-timing.ts 4 10 settle 0` against `… no 0`),
  // which understated every ratio to them
  settle();
  for (let r = 0; r < ROUNDS; r++) {
    // rotate the order each round so that no configuration always runs after the same one
    const order = configs.map((_, i) => configs[(i + r) % configs.length]);
    for (const c of order) {
      if (c.error) continue;
      try {
        c.times.push(block(c.run, c.n));
      } catch (e) {
        c.error = (e as Error).message.split('\n')[0].slice(0, 120);
      }
    }
  }
  log(`  ${backend} T=${T}: ${configs.length} configurations × ${ROUNDS} rounds in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const ms = (key: string) => median(configs.find((c) => c.key === key)!.times);
  const plain = ms('plain');
  const F = ms('forward');
  const A = ms('adam');
  // arithmetic bound of the exact mode: 1 forward + T backward passes + 1 optimizer update
  const B = Math.max(plain - F - A, 0);
  const bound = (F + T * B + A) / plain;
  const rows: Row[] = [];
  const exactMs: Record<string, number> = {};
  const repMs: Record<string, number> = {};
  for (const c of configs) {
    if (c.mode === 'plain' || c.mode === 'adam') continue;
    const t = c.times.length ? median(c.times) : NaN;
    if (c.mode === 'exact') exactMs[c.strategy] = t;
    if (c.mode === 'representation') repMs[c.strategy] = t;
    rows.push({
      backend, T, strategy: c.strategy, reads: reads[c.strategy] ?? '-', mode: c.mode, ms: t, ratio: t / plain,
      bound: c.mode === 'exact' || c.mode === 'exact-per-term' ? bound : undefined, error: c.error,
    });
  }
  rows.unshift({ backend, T, strategy: '-', reads: '-', mode: 'plain', ms: plain, ratio: 1 });
  for (const c of configs) c.dispose();
  p.dispose();
  return { rows, plainMs: plain, exactMs, repMs };
}

// ----------------------------------------------------------------------------- strategy math alone
/** Median time of one `balancer.update` with a realistic Gram matrix (T×T), in ms. */
function strategyMath(name: string, T: number): number {
  const b = create(name, { warn: () => {} });
  b.bind(Array.from({ length: T }, (_, i) => `t${i}`));
  // gradients with a common component and term-specific parts, scales 1..T
  const P = 64;
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
  const common = Array.from({ length: P }, rnd);
  const g = Array.from({ length: T }, (_, i) => common.map((c) => (i + 1) * (c + rnd())));
  const gram = g.map((a) => g.map((bb) => a.reduce((acc, x, k) => acc + x * bb[k], 0)));
  const stats = { meanAbs: g.map((a) => a.reduce((x, y) => x + Math.abs(y), 0) / P), maxAbs: g.map((a) => Math.max(...a.map(Math.abs))) };
  const times: number[] = [];
  for (let i = 0; i < 60; i++) {
    const losses = Array.from({ length: T }, (_, k) => 1 + k + 0.1 * Math.sin(i + k));
    const t0 = performance.now();
    b.update({ losses, gram, stats, epoch: 0 });
    times.push(performance.now() - t0);
  }
  return median(times.slice(10));
}

// ----------------------------------------------------------------------------- growth over many steps
interface Growth {
  mode: string;
  strategy: string;
  steps: number;
  warm: number;
  seconds: number;
  tensorsBefore: number;
  tensorsAfter: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  rssMaxMB: number;
  heapBeforeMB: number;
  heapAfterMB: number;
  wasmBeforeMB: number;
  wasmAfterMB: number;
  rssGrowth: number;
}

const MB = 2 ** 20;
/** Bytes of the wasm backend's linear memory (it only ever grows), 0 on other backends. */
function wasmBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? 0;
}
function settle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
}

/**
 * Tensor count and memory over `steps` steps after a warm-up of 10% of them (at least 200): V8 and
 * the wasm heap grow to their working size during the first thousand steps, which is not a leak.
 * Before/after are read after forced garbage collections (`--expose-gc`, set by `npm run bench`).
 */
function growth(mode: Config['mode'], strategy: string, steps: number, T = 4): Growth {
  const p = LONG ? problem(T, LONG_WIDTH, LONG_BATCH) : problem(T);
  const c = trainerConfig(p, strategy, mode);
  const warm = QUICK ? 5 : Math.max(200, Math.round(steps / 10));
  for (let i = 0; i < warm; i++) c.run();
  settle();
  const tensorsBefore = tf.memory().numTensors;
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  const wasmBefore = wasmBytes();
  let rssMax = rssBefore;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    c.run();
    if (i % 1000 === 999) {
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      log(`    ${mode} ${strategy}: ${i + 1}/${steps} steps, ${tf.memory().numTensors} tensors, rss ${(process.memoryUsage().rss / MB).toFixed(0)} MB`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  settle();
  const rssAfter = process.memoryUsage().rss;
  const out: Growth = {
    mode, strategy, steps, warm, seconds,
    tensorsBefore, tensorsAfter: tf.memory().numTensors,
    rssBeforeMB: rssBefore / MB, rssAfterMB: rssAfter / MB, rssMaxMB: Math.max(rssMax, rssAfter) / MB,
    heapBeforeMB: heapBefore / MB, heapAfterMB: process.memoryUsage().heapUsed / MB,
    wasmBeforeMB: wasmBefore / MB, wasmAfterMB: wasmBytes() / MB,
    rssGrowth: (rssAfter - rssBefore) / rssBefore,
  };
  c.dispose();
  p.dispose();
  return out;
}

// ----------------------------------------------------------------------------- report
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '—');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function machine(backends: string[]): string {
  const cpus = os.cpus();
  const tfjs = JSON.parse(readFileSync(new URL('../node_modules/@tensorflow/tfjs/package.json', import.meta.url), 'utf8')).version;
  return [
    `- machine: ${os.availableParallelism?.() ?? cpus.length} CPUs (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GB RAM, ${os.platform()} ${os.release()}`,
    `- node ${process.version}, @tensorflow/tfjs ${tfjs}, backends: ${backends.join(', ')} (tfjs-node not installed)`,
    `- single recorded forward pass available: ${tapeWorks() ? 'yes' : 'no (fell back to one forward per term)'}`,
    `- load average when the run ended (1/5/15 min): ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} (other jobs share the machine: absolute times are inflated, ratios come from interleaved rounds)`,
    `- date: ${new Date().toISOString()}`,
  ].join('\n');
}

function writeSection(marker: string, body: string): void {
  writeMarkedSection(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), marker, body);
  log(`wrote section "${marker}" of docs/benchmarks.md`);
}

// ----------------------------------------------------------------------------- main
/**
 * The many-term section (issue 27): bench/many-terms.ts at MANY_TS on wasm (wall-time ratios to the
 * library's `fixed` step with the trainer's defaults, CPU time beside them, strategy math on the Gram
 * matrices read), and the PyTorch anchor for the same T. Returns the text.
 */
async function manyTermsSection(command: string): Promise<string> {
  await tf.setBackend('wasm');
  await tf.ready();
  const began = performance.now();
  log(`many terms (issue 27): T=${MANY_TS.join(',')}`);
  const rs: ManyTermsResult[] = await manyTerms({ Ts: MANY_TS, rounds: QUICK ? 1 : Math.max(ROUNDS, 3), block: QUICK ? 2 : 8, strategies: [], strategyModes: ['exact'], math: true, compareLayerwise: !QUICK });
  const anchor = NO_ANCHOR ? { anchor: null, note: 'skipped (--no-anchor or --quick)' } : runTorchAnchor(MANY_TS, Math.max(ROUNDS, 3));
  const a = anchor.anchor;
  const ratios = a
    ? Object.fromEntries(Object.entries(a.T).map(([T, r]) => [T, { exact: r.wall?.exact ?? r.exact, autojac: r.wall?.autojac ?? NaN, representation: r.wall?.representation ?? r.representation }]))
    : null;
  const out: string[] = ['## Many terms (issue 27)', ''];
  out.push(`Generated by \`bench/overhead.ts\` (\`bench/many-terms.ts\`): \`${command}\` (${((performance.now() - began) / 60000).toFixed(1)} min).`, '');
  out.push(machine(['wasm']), '');
  out.push(
    'Model: MLP trunk 64→256→256 (ReLU), T separate linear heads [256, 1] with MSE, batch 128, Adam, wasm. Ratios of **wall time** to the ' +
      'library\'s `fixed` step (one backward pass of Σ w_i L_i) with the trainer\'s default options (harm checks on, history kept); CPU time ' +
      '(user + system of the process) in brackets. "exact" and "representation" are a probe strategy that reads the Gram matrix and ' +
      'returns equal weights (the cost of reading, without any strategy\'s math). Median of interleaved rounds of blocks of at least ' +
      '5 consecutive steps (one forced GC before the rounds; before 2026-12-06 06:30 UTC one step per block right after a forced GC, which ' +
      'slowed the `fixed` step most and made the exact ratio look better than users see it). Step peak: tensor MB of one profiled step above the bytes held when it began. The PyTorch columns are ratios to PyTorch\'s ' +
      'own plain step (bench/torch-anchor.py, one thread, wall time): "LibMTL-style" reads T per-term gradients by T backward passes; ' +
      '"torchjd autojac" is its method (one batched backward, `is_grads_batched=True`) in plain torch, torchjd itself is not installed; ' +
      '"torchjd autogram" was not run.',
    '',
  );
  out.push(...manyTermsTable(rs, ratios), '');
  out.push(`PyTorch anchor: ${anchor.note}`, '');
  const side = layerwiseTable(rs);
  if (side.length) {
    out.push(
      'Layer-wise against per-term reading, same rounds (the probe\'s steps with `setLayerwise(false)` beside the defaults): exact mode ' +
        'reads the Gram matrix of the dense trunk from each layer\'s input and per-term output gradients (src/train/layerwise.ts), ' +
        'representation mode from the heads\' first dense layers (src/train/head-gram.ts); "per-term" is the T backward passes and ' +
        'M Mᵀ of before. Both are chosen by the trainer itself where they apply (docs/guide-speed.md).',
      '',
      ...side,
      '',
    );
  }
  out.push(
    'Strategy math: every Gram-kind strategy\'s `update` (the balancer\'s, with its checks) timed on the Gram matrices the probe read in ' +
      'this run (state carried from one to the next, as in training), median ms of the later ones; "(probe + math) / probe" is the step ' +
      'the strategy would cost relative to the probe step of the same mode (target at T = 64: ≤ 1.10), "math / reading" compares the ' +
      'math with the reading itself (exact probe − fixed step; target at T = 128: ≤ 1).',
    '',
  );
  out.push(...strategyTable(rs), '');
  const verdicts: string[] = [];
  for (const r of rs) {
    if (r.T === 64) {
      verdicts.push(`${r.cells.representation.wall <= 1.3 ? 'ok' : 'MISSED'}: representation at T=64 ${r.cells.representation.wall.toFixed(2)}× the fixed step, wall (target ≤ 1.3×)`);
      verdicts.push(`${r.cells.exact.wall <= 2.5 ? 'ok' : 'MISSED'}: exact at T=64 ${r.cells.exact.wall.toFixed(2)}× the fixed step, wall (target ≤ 2.5×)`);
      for (const [name, m] of Object.entries(r.math)) {
        const e = r.cells.exact.wallMs;
        const p = r.cells.representation.wallMs;
        const worst = Math.max((e + m.ms) / e, (p + r.mathRep[name].ms) / p);
        if (worst > 1.1) verdicts.push(`MISSED: ${name} math at T=64: (probe + math) / probe = ${worst.toFixed(3)} (target ≤ 1.10)`);
      }
    }
    if (r.T === 128) {
      const reading = r.cells.exact.wallMs - r.cells.fixed.wallMs;
      for (const [name, m] of Object.entries(r.math)) if (m.ms > reading) verdicts.push(`MISSED: ${name} math at T=128 ${m.ms.toFixed(1)} ms > the reading ${reading.toFixed(1)} ms`);
    }
  }
  if (rs.some((r) => r.T === 64)) verdicts.push(`strategy math at T=64 within 10% of the probe step: ${verdicts.some((v) => / math at T=64/.test(v)) ? 'not for every strategy (above)' : 'every strategy'}`);
  if (rs.some((r) => r.T === 128)) verdicts.push(`strategy math at T=128 below the reading: ${verdicts.some((v) => / math at T=128/.test(v)) ? 'not for every strategy (above)' : 'every strategy'}`);
  if (verdicts.length) out.push('Targets (issue 27):', '', ...verdicts.map((v) => `- ${v}`));
  return out.join('\n');
}

async function main() {
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  if (MANY) {
    const text = await manyTermsSection(command);
    process.stdout.write(`${text}\n\n`);
    if (WRITE) writeSection('many-terms', text);
    if (ONLY_MANY) return;
  }
  const used: string[] = [];
  const allRows: Row[] = [];
  const verdicts: string[] = [];
  let wasmT16: { exactMs: Record<string, number>; repMs: Record<string, number>; plainMs: number } | null = null;
  const began = performance.now();
  for (const backend of LONG ? ['wasm'] : BACKENDS) {
    if (!(await tf.setBackend(backend).catch(() => false))) {
      log(`backend ${backend} is not available; skipped`);
      continue;
    }
    await tf.ready();
    used.push(backend);
    log(`backend ${backend}: tape works = ${tapeWorks()}`);
    if (LONG) break;
    for (const T of backend === 'wasm' ? TS : CPU_TS.length ? CPU_TS : TS) {
      const r = runT(backend, T);
      allRows.push(...r.rows);
      if (backend === 'wasm' && T === 16) wasmT16 = r;
    }
  }
  const elapsed = (performance.now() - began) / 1000;

  // the main table: one row per (backend, T, strategy), columns per mode
  const modes = ['loss-only', 'exact', 'representation', 'every'];
  const keyOf = (r: Row) => `${r.backend}|${r.T}|${r.strategy}`;
  const grouped = new Map<string, Row[]>();
  for (const r of allRows) if (r.strategy !== '-') (grouped.get(keyOf(r)) ?? grouped.set(keyOf(r), []).get(keyOf(r))!).push(r);
  const plainOf = (b: string, T: number) => allRows.find((r) => r.backend === b && r.T === T && r.mode === 'plain')!;
  const fwdOf = (b: string, T: number) => allRows.find((r) => r.backend === b && r.T === T && r.mode === 'forward');
  const boundOf = (b: string, T: number) => allRows.find((r) => r.backend === b && r.T === T && r.bound !== undefined)?.bound;
  const perTermOf = (b: string, T: number) => allRows.find((r) => r.backend === b && r.T === T && r.mode === 'exact-per-term');

  const out: string[] = [];
  out.push('## Overhead of a balanced step', '');
  out.push(`Generated by \`bench/overhead.ts\`: \`${command}\` (${(elapsed / 60).toFixed(1)} min).`, '');
  out.push(machine(used), '');
  out.push(
    'Model: MLP trunk 64→256→256 (ReLU), T linear heads 256→1 with MSE, batch 128, Adam (lr 1e-4). Times are CPU time of the ' +
      'process (user + system), which on a shared machine measures the work of a step where wall time would measure the neighbours. ' +
      `Each cell: median over ${ROUNDS} interleaved rounds of the mean step time of a block of ${BLOCK} steps (${EVERY} for every=${EVERY}; ` +
      'one forced garbage collection before the rounds, none between blocks: until 2026-12-06 one before each block, which slowed ' +
      'the next steps, the plain and `fixed` steps most, and understated the ratios), divided by the ' +
      'median plain step (`optimizer.minimize` of the summed loss, same model and batch, measured in the same rounds). ' +
      '"exact" reads per-term gradients over all trunk parameters from one recorded forward pass; "bound" is the arithmetic ' +
      'bound of that mode, (F + T·B + A) / plain, with F the forward time, A the Adam update and B = plain − F − A the backward pass.',
    '',
  );
  const summary: (string | number)[][] = [];
  // (CPU ms per step)
  for (const b of LONG ? [] : used) {
    for (const T of b === 'wasm' ? TS : CPU_TS) {
      const pr = plainOf(b, T);
      const fw = fwdOf(b, T);
      const pt = perTermOf(b, T);
      summary.push([b, T, f2(pr.ms), fw ? f2(fw.ms) : '—', f2(boundOf(b, T) ?? NaN), pt ? `${f2(pt.ratio)} (${pt.strategy})` : '—']);
    }
  }
  out.push(table(['backend', 'T', 'plain step CPU ms', 'forward CPU ms', 'exact bound ×', 'exact, one forward per term ×'], summary), '');
  const body: (string | number)[][] = [];
  for (const [, rows] of grouped) {
    const r0 = rows[0];
    if (r0.mode === 'exact-per-term') continue;
    const cell = (m: string) => {
      const r = rows.find((x) => x.mode === m);
      if (!r) return '';
      return r.error ? `error: ${r.error}` : f2(r.ratio);
    };
    body.push([r0.backend, r0.T, r0.strategy, r0.reads, ...modes.map(cell)]);
  }
  out.push(table(['backend', 'T', 'strategy', 'reads', 'loss-only ×', 'exact ×', 'representation ×', `every=${EVERY} ×`], body), '');
  out.push('(Strategies that read the Jacobian, `losses+jacobian`, refuse representation mode by design: no cell.)', '');

  // strategy math at T=16
  if (wasmT16) {
    const mathRows: (string | number)[][] = [];
    // Jacobian-kind strategies compute on the backend inside the step (no Gram-only update to time)
    for (const s of strategies().filter((x) => x.reads !== 'losses' && !x.reads.includes('jacobian'))) {
      const m = strategyMath(s.name, 16);
      const ex = wasmT16.exactMs[s.name];
      const rp = wasmT16.repMs[s.name];
      const ok = m / ex <= 0.02;
      mathRows.push([s.name, m.toFixed(3), pct(m / ex), pct(m / rp), pct(m / wasmT16.plainMs), ok ? 'ok' : 'MISSED']);
      verdicts.push(`${ok ? 'ok' : 'MISSED'}: ${s.name} strategy math at T=16 is ${pct(m / ex)} of an exact step (target ≤ 2%)`);
    }
    out.push(`Strategy math alone (\`balancer.update\` with a 16×16 Gram matrix, median of 50, wasm):`, '');
    out.push(table(['strategy', 'ms', '% of exact step', '% of representation step', '% of plain step', 'target ≤ 2% of exact step'], mathRows), '');
  }

  // growth: quick check, or 10,000 steps with --long
  const gram = strategies().find((s) => s.reads.includes('gram'))?.name ?? strategies().find((s) => s.reads !== 'losses')?.name;
  const lossOnly = strategies().find((s) => s.reads === 'losses')?.name;
  const growthRows: Growth[] = [];
  if (used.includes('wasm')) {
    await tf.setBackend('wasm');
    const steps = LONG ? LONG_STEPS : LEAK_STEPS;
    log(`growth over ${steps} steps (wasm, T=4)`);
    if (gram) for (const m of ['exact', 'representation', 'every'] as const) growthRows.push(growth(m, gram, steps));
    if (lossOnly) growthRows.push(growth('loss-only', lossOnly, steps));
  }
  const growthTable = table(
    ['mode', 'strategy', 'warm-up + steps', 'seconds', 'tensors before → after', 'RSS MB before → after (max)', 'RSS growth', 'V8 heap MB', 'wasm heap MB'],
    growthRows.map((g) => [
      g.mode, g.strategy, `${g.warm} + ${g.steps}`, g.seconds.toFixed(0), `${g.tensorsBefore} → ${g.tensorsAfter}`,
      `${g.rssBeforeMB.toFixed(0)} → ${g.rssAfterMB.toFixed(0)} (${g.rssMaxMB.toFixed(0)})`, pct(g.rssGrowth),
      `${g.heapBeforeMB.toFixed(1)} → ${g.heapAfterMB.toFixed(1)}`, `${g.wasmBeforeMB.toFixed(0)} → ${g.wasmAfterMB.toFixed(0)}`,
    ]),
  );
  for (const g of growthRows) {
    const okT = g.tensorsAfter === g.tensorsBefore;
    verdicts.push(`${okT ? 'ok' : 'MISSED'}: ${g.mode} tensor growth over ${g.steps} steps: ${g.tensorsAfter - g.tensorsBefore} (target 0)`);
    const okR = g.rssGrowth < 0.05;
    verdicts.push(`${okR ? 'ok' : 'MISSED'}: ${g.mode} RSS growth over ${g.steps} steps: ${pct(g.rssGrowth)} (target < 5%)`);
  }

  // the gradient-reading table of issue 15 (wasm, T = 4 and 16 of --T) and the PyTorch anchor once for both tables
  let gradRead: { o: GradReadOptions; r: GradReadResult } | null = null;
  if (!LONG && GRAD_READ && used.includes('wasm')) {
    await tf.setBackend('wasm');
    const gTs = QUICK ? TS : TS.filter((T) => T === 4 || T === 16);
    if (gTs.length) {
      const o: GradReadOptions = { Ts: gTs, rounds: GRAD_ROUNDS, block: BLOCK, everys: [EVERY], strategy: 'mgda' };
      log(`gradient reading (issue 15): T=${gTs.join(',')}, ${GRAD_ROUNDS} rounds`);
      gradRead = { o, r: await gradReading(o) };
      verdicts.push(...gradReadingVerdicts(gradRead.r));
    }
  }
  const anchor = LONG ? { anchor: null, note: '' } : NO_ANCHOR ? { anchor: null, note: 'skipped (--no-anchor or --quick)' } : runTorchAnchor(TS, Math.max(ROUNDS, 5));

  // targets (wasm, T=4)
  for (const [, rows] of grouped) {
    const r0 = rows[0];
    if (r0.backend !== 'wasm' || r0.T !== 4) continue;
    for (const r of rows) {
      if (r.error) {
        verdicts.push(`MISSED: ${r.strategy} ${r.mode} failed: ${r.error}`);
        continue;
      }
      if (r.mode === 'loss-only') verdicts.push(`${r.ratio <= 1.05 ? 'ok' : 'MISSED'}: ${r.strategy} loss-only ${f2(r.ratio)}× (target ≤ 1.05×)`);
      if (r.mode === 'representation') verdicts.push(`${r.ratio <= 1.25 ? 'ok' : 'MISSED'}: ${r.strategy} representation ${f2(r.ratio)}× (target ≤ 1.25×)`);
      if (r.mode === 'every') verdicts.push(`${r.ratio <= 1.3 ? 'ok' : 'MISSED'}: ${r.strategy} exact every=${EVERY} ${f2(r.ratio)}× (target ≤ 1.3×)`);
      if (r.mode === 'exact' && r.bound) {
        const rel = r.ratio / r.bound;
        verdicts.push(`${rel <= 1.1 ? 'ok' : 'MISSED'}: ${r.strategy} exact ${f2(r.ratio)}× = ${f2(rel)} × bound ${f2(r.bound)}× (target ≤ 1.10 × bound)`);
      }
    }
  }
  const missed = verdicts.filter((v) => v.startsWith('MISSED'));
  out.push(`Tensor count and memory (wasm, T=4; quick check: ${LEAK_STEPS} steps per mode after a warm-up of ${QUICK ? 5 : 200}; the 10,000-step check is \`--long\`, below):`, '');
  out.push(growthTable, '');
  out.push(`Targets (wasm, T=4 unless stated): ${verdicts.length - missed.length} met, ${missed.length} missed.`, '');
  if (missed.length) out.push(...missed.map((m) => `- ${m}`), '');
  out.push('<details><summary>all target checks</summary>', '', ...verdicts.map((v) => `- ${v}`), '', '</details>');

  if (LONG) {
    out.length = 0;
    out.push('## Tensor count and RSS over a long run', '');
    out.push(`Generated by \`bench/overhead.ts\`: \`${command}\` (${((performance.now() - began) / 60000).toFixed(1)} min).`, '');
    out.push(machine(used), '');
    out.push(
      `The model above narrowed so that 10,000 exact steps fit in minutes: trunk 64→${LONG_WIDTH}→${LONG_WIDTH}, batch ${LONG_BATCH}, wasm, T=4 ` +
        `(\`--long-width\`, \`--long-batch\`); ${LONG_STEPS} steps per mode after a warm-up of 10% of them, memory read after forced garbage collections. A leak of a fixed size per step ` +
        'shows as a larger relative RSS growth in a smaller model, so this is the stricter check.',
      '',
    );
    out.push(growthTable, '');
    const gv = verdicts.filter((v) => / growth /.test(v));
    out.push(...gv.map((v) => `- ${v}`));
  }
  if (!LONG && gradRead) out.push('', '### Gradient reading (issue 15)', '', ...gradReadingTable(gradRead.r, gradRead.o, anchor.anchor));
  if (!LONG) out.push('', ...anchorLines(anchor), '');
  if (QUICK) out.unshift('(--quick: a smoke run, 1 round of 2 steps per cell: the ratios below are noise, not measurements)', '');
  const text = out.join('\n');
  process.stdout.write(`${text}\n`);
  if (WRITE) writeSection(LONG ? 'overhead-long' : 'overhead', text);
}

/**
 * The PyTorch anchor (bench/torch-anchor.py: same model, batch and Adam; LibMTL-style per-term
 * gradients; single thread), run once by `main` in Debian's /usr/bin/python3 when it has torch, for
 * the same T; skipped with --no-anchor. Returns the lines to print.
 */
function anchorLines({ anchor: a, note }: { anchor: Anchor | null; note: string }): string[] {
  if (!a) return [`PyTorch anchor: ${note}`];
  return [
    `PyTorch anchor (bench/torch-anchor.py, torch ${a.torch}, one thread, same model/batch/Adam, CPU-time ratios to its own plain step, run after the rounds above):`,
    '',
    table(['T', 'representation ×', 'exact ×'], Object.entries(a.T).map(([T, r]) => [T, r.representation.toFixed(2), r.exact.toFixed(2)])),
  ];
}

await main();
