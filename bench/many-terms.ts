/**
 * Many-term benchmark (issue 27): the cost of a balanced step at T = 2 … 128 terms, as ratios of wall
 * time (CPU time beside it) to the library's own `fixed` step, with the trainer's default options
 * (harm checks on, history kept), on bench/grad-read.ts's model (MLP trunk 64→256→256, T separate
 * linear heads [256, 1], MSE, batch 128, Adam, wasm).
 *
 * Configurations of one T, interleaved in rounds in one process, blocks of at least 5 consecutive steps
 * (one forced GC before the rounds, none between blocks: see `runT`):
 *   plain            `optimizer.minimize` of the summed loss
 *   fixed            the library's `fixed` step (one backward pass of Σ w_i L_i)
 *   exact            a probe strategy that reads the Gram matrix and returns equal weights: the cost
 *                    of reading per-term gradients over the trunk (one forward, T backward passes)
 *   representation   the same probe in representation mode (Gram over ∂L_i/∂z)
 * and, for each strategy of `--strategies`, its step in exact mode (and representation mode with
 * `--strategy-modes exact,representation`). Beside time, the peak tensor bytes of one step above the
 * bytes held when it began (`tf.profile`).
 *
 * Strategy math: every Gram-kind strategy's `update` timed on the Gram matrices the probe actually read
 * in exact mode (state carried across them, as in training), so that "math / probe step" is measured
 * on real gradients without running every strategy's step.
 *
 *   npx tsx --expose-gc bench/many-terms.ts                  # T = 2,4,16,64,128
 *   npx tsx --expose-gc bench/many-terms.ts --T 64 --rounds 3 --strategies upgrad,cagrad
 *   npx tsx --expose-gc bench/many-terms.ts --quick          # smoke: T = 2, 1 round of 2 steps
 *   npx tsx --expose-gc bench/many-terms.ts --T 64 --heads joint --no-harm   # one [256, T] head variable, harm checks off
 *   npx tsx --expose-gc bench/many-terms.ts --T 16,64,128 --compare-layerwise --no-math
 *       # also the probe's steps with the layer-wise readings off (per-term gradients), side by side
 *   ... --batch 32    # batch size (default 128)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import * as z from 'zod/mini';
import { pathToFileURL } from 'node:url';
import { create, list, register, unregister } from '../src/core/registry.js';
import type { Strategy } from '../src/core/types.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import { LAYERWISE_MIN_TERMS, setLayerwise } from '../src/train/grads.js';
import { problem, trunkVariables, type Problem } from './grad-read.js';

const log = (m: string) => process.stderr.write(`${m}\n`);

/** What one run measures. */
export interface ManyTermsOptions {
  Ts: number[];
  rounds: number;
  /** Steps per block at T = 2; fewer at large T (a block lasts about as long at every T). */
  block: number;
  /** Strategies whose steps are timed beside the probe. */
  strategies: string[];
  strategyModes: ('exact' | 'representation')[];
  /** Time every Gram-kind strategy's math on the probe's Gram matrices. */
  math: boolean;
  /** T separate [256, 1] head variables (default), or one [256, T] variable. */
  heads?: 'separate' | 'joint';
  /** The trainer's harm checks (default on, the trainer's default). */
  harm?: boolean;
  /** Batch size (default 128): the layer-wise readings' memory grows with T·B·widths, the per-term path's with T·P. */
  batch?: number;
  /**
   * Also time the probe's exact and representation steps with the layer-wise readings off
   * (`setLayerwise(false)`: per-term gradients, M Mᵀ), beside the defaults, in the same rounds.
   */
  compareLayerwise?: boolean;
}

/** One configuration's result. */
export interface Cell { wallMs: number; cpuMs: number; wall: number; cpu: number; stepPeakMB: number }
/** Per T: configuration → cell; `math`: strategy → ms per update on the read Gram matrices. */
export interface ManyTermsResult {
  T: number;
  cells: Record<string, Cell>;
  /** Strategy math on the Gram matrices read in exact mode, and in representation mode. */
  math: Record<string, { ms: number; max: number }>;
  mathRep: Record<string, { ms: number; max: number }>;
  load: number[];
}

const PROBE = 'bench-equal-gram';
const PROBE_REP = 'bench-equal-gram-rep';
/** The Gram matrices each probe read (the first 40), by probe name. */
const grams: Record<string, number[][][]> = { [PROBE]: [], [PROBE_REP]: [] };
/**
 * Equal weights, reading the Gram matrix: the cost of the reading alone. Keeps the first 40 Gram
 * matrices it read in `grams[name]` when that list exists (this file's probes).
 */
export function makeProbe(name: string): Strategy<Record<string, never>, Record<string, never>> {
  return {
    name,
    summary: 'benchmark probe: reads the Gram matrix, returns equal weights',
    options: z.strictObject({}),
    needs: () => ({ gradients: 'gram' }),
    init: () => ({}),
    update: (_o, state, { gram }) => {
      const kept = grams[name];
      if (kept && kept.length < 40) kept.push(gram!.map((r) => [...r]));
      return { weights: gram!.map(() => 1), state };
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length ? (s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2) : NaN;
};
function settle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 2; i++) gc();
}

interface Config { key: string; run: () => void; dispose: () => void; wall: number[]; cpu: number[]; stepPeak?: number }

function trainer(p: Problem, balancer: string, mode: 'plain-trainer' | 'exact' | 'representation', harm: boolean, layerwise = true): { run: () => void; dispose: () => void } {
  const optimizer = tf.train.adam(1e-4);
  // the trainer's defaults (harm checks, history); only the variables are named (the problem's)
  const extra = harm ? {} : { harm: false as const };
  const o: BalancedTrainerOptions = mode === 'representation'
    ? { optimizer, balancer, variables: p.vars, represent: { trunk: p.trunk, heads: p.heads }, warn: () => {}, ...extra }
    : { optimizer, balancer, variables: p.vars, terms: p.terms, warn: () => {}, ...extra };
  const t = new BalancedTrainer(o);
  const run = layerwise
    ? () => void t.step()
    : () => {
        setLayerwise(false);
        try {
          t.step();
        } finally {
          setLayerwise(true);
        }
      };
  return { run, dispose: () => optimizer.dispose() };
}

/**
 * The same model with the T heads as one [256, T] variable (and one bias [T]): terms are the columns'
 * MSEs. The forward and the tape then do not grow with T (one matrix product for all heads).
 */
export function jointProblem(T: number, width = 256, batch = 128): Problem {
  const id = `joint${T}_${Math.random().toString(36).slice(2)}`;
  const { own, glorot, W1, b1, W2, b2 } = trunkVariables(width, id);
  const H = glorot([width, T], 'H');
  const hb = own(tf.zeros([T]), `hb_${id}`);
  const x = tf.randomNormal([batch, 64], 0, 1, 'float32', 1000);
  const y = tf.tidy(() => tf.mul(tf.randomNormal([batch, T], 0, 1, 'float32', 2000), tf.add(tf.range(0, T), 1)));
  const names = Array.from({ length: T }, (_, i) => `t${i}`);
  const trunk = () => tf.relu(tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2));
  const heads = (z: tf.Tensor) => {
    const per = tf.unstack(tf.mean(tf.square(tf.sub(tf.add(tf.matMul(z as tf.Tensor2D, H), hb), y)), 0));
    return Object.fromEntries(names.map((n, i) => [n, per[i] as tf.Scalar]));
  };
  const vars = [W1, b1, W2, b2, H, hb];
  return { vars, trunk, heads, terms: () => heads(trunk()), dispose: () => tf.dispose([...vars, x, y]) };
}

async function runT(T: number, o: ManyTermsOptions): Promise<ManyTermsResult> {
  const p = o.heads === 'joint' ? jointProblem(T, 256, o.batch ?? 128) : problem(T, 256, o.batch ?? 128);
  // at least 5 consecutive steps per block, as in training: a step timed alone after a forced GC (the
  // method before 2026-12-06 06:30 UTC) was slowed by the collection's after-effects, the `fixed` step
  // the most (T = 64, 4 trainers in the process: 92 against 51 ms), which made the exact ratio look
  // better than users see it (2.3× against 3.4×; docs/benchmarks.md)
  const n = Math.max(5, Math.round(o.block * Math.min(1, 8 / T)));
  const plainOpt = tf.train.adam(1e-4);
  const configs: Config[] = [
    { key: 'plain', run: () => void plainOpt.minimize(() => tf.addN(Object.values(p.terms())) as tf.Scalar, false, p.vars), dispose: () => plainOpt.dispose(), wall: [], cpu: [] },
  ];
  const add = (key: string, balancer: string, mode: 'plain-trainer' | 'exact' | 'representation') => configs.push({ key, ...trainer(p, balancer, mode, o.harm !== false), wall: [], cpu: [] });
  add('fixed', 'fixed', 'plain-trainer');
  add('exact', PROBE, 'exact');
  add('representation', PROBE_REP, 'representation');
  if (o.compareLayerwise) {
    configs.push({ key: 'exact per-term', ...trainer(p, PROBE, 'exact', o.harm !== false, false), wall: [], cpu: [] });
    configs.push({ key: 'representation per-term', ...trainer(p, PROBE_REP, 'representation', o.harm !== false, false), wall: [], cpu: [] });
  }
  for (const s of o.strategies) for (const m of o.strategyModes) add(`${s} ${m}`, s, m);
  grams[PROBE].length = 0;
  grams[PROBE_REP].length = 0;
  for (const c of configs) {
    c.run();
    c.run();
  }
  for (const c of configs) {
    const start = tf.memory().numBytes;
    const info = await tf.profile(() => c.run());
    c.stepPeak = info.peakBytes - start;
  }
  settle();
  for (let r = 0; r < o.rounds; r++) {
    const order = configs.map((_, i) => configs[(i + r) % configs.length]);
    for (const c of order) {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      for (let i = 0; i < n; i++) c.run();
      const w = performance.now() - w0;
      const cu = process.cpuUsage(c0);
      c.wall.push(w / n);
      c.cpu.push((cu.user + cu.system) / 1000 / n);
    }
  }
  const fixedWall = median(configs[1].wall);
  const fixedCpu = median(configs[1].cpu);
  const cells: Record<string, Cell> = {};
  for (const c of configs) {
    const wallMs = median(c.wall);
    const cpuMs = median(c.cpu);
    cells[c.key] = { wallMs, cpuMs, wall: wallMs / fixedWall, cpu: cpuMs / fixedCpu, stepPeakMB: (c.stepPeak ?? 0) / 2 ** 20 };
  }
  for (const c of configs) c.dispose();
  p.dispose();
  const math: ManyTermsResult['math'] = {};
  const mathRep: ManyTermsResult['math'] = {};
  if (process.env.BENCH_DUMP_GRAMS) writeFileSync(`${process.env.BENCH_DUMP_GRAMS}-T${T}.json`, JSON.stringify({ exact: grams[PROBE].slice(0, 12), representation: grams[PROBE_REP].slice(0, 12) }));
  if (o.math) {
    for (const s of list().filter((x) => x.kind === 'gram' && x.reads !== 'losses' && !x.name.startsWith('bench-'))) {
      try {
        math[s.name] = strategyMath(s.name, grams[PROBE].slice(0, 12));
        mathRep[s.name] = strategyMath(s.name, grams[PROBE_REP].slice(0, 12));
      } catch {
        // a strategy not defined at this T (krum needs nByzantine + 3 terms): no row
        delete math[s.name];
        delete mathRep[s.name];
      }
    }
  }
  return { T, cells, math, mathRep, load: os.loadavg() };
}

/** Median (and max) wall ms of one `balancer.update` over a sequence of Gram matrices, state carried. */
export function strategyMath(name: string, seq: readonly number[][][]): { ms: number; max: number } {
  const T = seq[0].length;
  const b = create(name, { warn: () => {} });
  b.bind(Array.from({ length: T }, (_, i) => `t${i}`));
  const times: number[] = [];
  seq.forEach((gram, i) => {
    const losses = Array.from({ length: T }, (_, k) => 1 + k / T + 0.1 * Math.sin(i + k));
    const stats = { meanAbs: gram.map((r, k) => Math.sqrt(Math.max(r[k], 0)) / 100), maxAbs: gram.map((r, k) => Math.sqrt(Math.max(r[k], 0)) / 10) };
    const t0 = performance.now();
    b.update({ losses, gram, stats, epoch: 0 });
    times.push(performance.now() - t0);
  });
  const tail = times.length > 3 ? times.slice(2) : times;
  return { ms: median(tail), max: Math.max(...tail) };
}

/** Run every T of `o` on wasm. */
export async function manyTerms(o: ManyTermsOptions): Promise<ManyTermsResult[]> {
  register(makeProbe(PROBE) as never);
  register(makeProbe(PROBE_REP) as never);
  try {
    const out: ManyTermsResult[] = [];
    for (const T of o.Ts) {
      const t0 = performance.now();
      out.push(await runT(T, o));
      log(`  many terms T=${T} done in ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}`);
    }
    return out;
  } finally {
    unregister(PROBE);
    unregister(PROBE_REP);
  }
}

const f2 = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '—');

/** The issue-27 table (markdown lines); `anchor` ratios by T when the PyTorch anchor ran. */
export function manyTermsTable(rs: ManyTermsResult[], anchor: Record<string, Record<string, number>> | null): string[] {
  const lines = [
    '| T | fixed step ms wall (CPU) | plain minimize × wall (CPU) | exact × wall (CPU) | representation × wall (CPU) | PyTorch LibMTL-style exact × | torchjd autojac × | torchjd autogram × | LibMTL representation × | exact / representation step peak MB | load |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rs) {
    const e = r.cells.exact;
    const p = r.cells.representation;
    const f = r.cells.fixed;
    const a = anchor?.[String(r.T)];
    lines.push(
      `| ${r.T} | ${f2(f.wallMs)} (${f2(f.cpuMs)}) | ${f2(r.cells.plain.wall)} (${f2(r.cells.plain.cpu)}) | ${f2(e.wall)} (${f2(e.cpu)}) | ${f2(p.wall)} (${f2(p.cpu)}) | ${f2(a?.exact)} | ${f2(a?.autojac)} | ${f2(a?.autogram)} | ${f2(a?.representation)} | ${e.stepPeakMB.toFixed(1)} / ${p.stepPeakMB.toFixed(1)} | ${r.load[0].toFixed(1)} |`,
    );
  }
  return lines;
}

/** The layer-wise readings beside the per-term ones (when measured): time and step peak, per mode. */
export function layerwiseTable(rs: ManyTermsResult[]): string[] {
  const withCmp = rs.filter((r) => r.cells['exact per-term']);
  if (!withCmp.length) return [];
  const lines = [
    '| T | mode | layer-wise × fixed, wall (CPU) | per-term × fixed, wall (CPU) | layer-wise / per-term, wall | step peak MB, layer-wise / per-term |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of withCmp) {
    for (const mode of ['exact', 'representation']) {
      const a = r.cells[mode];
      const b = r.cells[`${mode} per-term`];
      lines.push(`| ${r.T} | ${mode} | ${f2(a.wall)} (${f2(a.cpu)}) | ${f2(b.wall)} (${f2(b.cpu)}) | ${f2(a.wallMs / b.wallMs)} | ${a.stepPeakMB.toFixed(1)} / ${b.stepPeakMB.toFixed(1)} |`);
    }
  }
  if (withCmp.some((r) => r.T < LAYERWISE_MIN_TERMS)) {
    lines.push('', `"layer-wise" is the trainer's default; below ${LAYERWISE_MIN_TERMS} terms that is the per-term path in exact mode (LAYERWISE_MIN_TERMS, src/train/grads.ts), so both exact columns time the same code there.`);
  }
  return lines;
}

/** Strategy steps and strategy math relative to the probe's step (markdown lines). */
export function strategyTable(rs: ManyTermsResult[]): string[] {
  const lines: string[] = [];
  const withMath = rs.filter((r) => Object.keys(r.math).length);
  if (withMath.length) {
    lines.push(
      `| strategy | ${withMath.map((r) => `T=${r.T}: math ms, exact G (max) | (probe + math) / probe, exact | math ms, repr. G (max) | (probe + math) / probe, repr. | math / reading, exact`).join(' | ')} |`,
      `|---|${withMath.map(() => '---|---|---|---|---').join('|')}|`,
    );
    for (const name of [...new Set(withMath.flatMap((r) => Object.keys(r.math)))].sort()) {
      const cells = withMath.map((r) => {
        const m = r.math[name];
        if (!m) return '— | — | — | — | —';
        const mr = r.mathRep[name];
        const e = r.cells.exact.wallMs;
        const p = r.cells.representation.wallMs;
        const reading = e - r.cells.fixed.wallMs;
        return `${m.ms.toFixed(2)} (${m.max.toFixed(1)}) | ${((e + m.ms) / e).toFixed(3)} | ${mr.ms.toFixed(2)} (${mr.max.toFixed(1)}) | ${((p + mr.ms) / p).toFixed(3)} | ${(m.ms / reading).toFixed(3)}`;
      });
      lines.push(`| ${name} | ${cells.join(' | ')} |`);
    }
  }
  const steps = rs.flatMap((r) => Object.keys(r.cells).filter((k) => !['plain', 'fixed', 'exact', 'representation', 'exact per-term', 'representation per-term'].includes(k)).map((k) => ({ r, k })));
  if (steps.length) {
    lines.push('', '| T | strategy step | × fixed, wall (CPU) | × probe step of the same mode, wall (CPU) | step peak MB |', '|---|---|---|---|---|');
    for (const { r, k } of steps) {
      const c = r.cells[k];
      const probeCell = r.cells[k.endsWith('representation') ? 'representation' : 'exact'];
      lines.push(`| ${r.T} | ${k} | ${f2(c.wall)} (${f2(c.cpu)}) | ${f2(c.wallMs / probeCell.wallMs)} (${f2(c.cpuMs / probeCell.cpuMs)}) | ${c.stepPeakMB.toFixed(1)} |`);
    }
  }
  return lines;
}

/** The command line (`--quick` for CI's smoke run); returns the results, prints the tables. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<ManyTermsResult[]> {
  const flag = (n: string) => argv.includes(`--${n}`);
  const opt = (n: string, d: string) => {
    const i = argv.indexOf(`--${n}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
  };
  const QUICK = flag('quick');
  const o: ManyTermsOptions = {
    Ts: opt('T', QUICK ? '2' : '2,4,16,64,128').split(',').map(Number),
    rounds: Number(opt('rounds', QUICK ? '1' : '3')),
    block: Number(opt('block', QUICK ? '2' : '8')),
    strategies: opt('strategies', '').split(',').filter(Boolean),
    strategyModes: opt('strategy-modes', 'exact').split(',') as ManyTermsOptions['strategyModes'],
    math: !flag('no-math'),
    heads: opt('heads', 'separate') as 'separate' | 'joint',
    harm: !flag('no-harm'),
    compareLayerwise: flag('compare-layerwise'),
    batch: Number(opt('batch', '128')),
  };
  if (!(Number.isInteger(o.batch) && o.batch! >= 1)) throw new Error(`--batch got "${opt('batch', '')}"; allowed: a whole number ≥ 1`);
  if (!o.Ts.every((T) => Number.isInteger(T) && T >= 1)) throw new Error(`--T got "${opt('T', '')}"; allowed: whole numbers ≥ 1, comma-separated`);
  await tf.setBackend('wasm');
  await tf.ready();
  const rs = await manyTerms(o);
  console.log([...manyTermsTable(rs, null), '', ...layerwiseTable(rs), '', ...strategyTable(rs)].join('\n'));
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}, ${new Date().toISOString()}`);
  return rs;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => undefined, (e) => {
    console.error(e);
    process.exit(1);
  });
}
