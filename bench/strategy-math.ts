/**
 * Strategy math at many terms (issue 27): the time of one `balancer.update` of every Gram-kind
 * strategy on synthetic T×T Gram matrices, no model. The Gram matrices come from random gradients with
 * a shared component (P = 4T coordinates, full rank, term scales 1..T) so that directions conflict
 * partly, as in a multi-task trunk. Each strategy runs `steps` updates on a slowly drifting G (state
 * carried over, as in training: warm starts count); the median of the last steps is reported.
 *
 *   npx tsx bench/strategy-math.ts                 # T = 16, 64, 128
 *   npx tsx bench/strategy-math.ts --T 64 --strategies upgrad,cagrad --steps 20
 */
import { create, list } from '../src/core/registry.js';

const argv = process.argv.slice(2);
const opt = (n: string, d: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const TS = opt('T', '16,64,128').split(',').map(Number);
const ONLY = opt('strategies', '').split(',').filter(Boolean);
const STEPS = Number(opt('steps', '12'));
const RANK = opt('rank', 'full'); // 'full' (P = 4T) or a number P
const COMMON = Number(opt('common', '0.6')); // weight of the shared component (0: independent random gradients, many conflicts)

/** Drifting synthetic Gram matrices for T terms: one per step. */
export function gramSequence(T: number, steps: number, P = RANK === 'full' ? 4 * T : Number(RANK), seed = 7): number[][][] {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const common = Array.from({ length: P }, rnd);
  const base = Array.from({ length: T }, (_, i) => common.map((c) => (1 + (i % 8)) * (COMMON * c + rnd())));
  const out: number[][][] = [];
  for (let k = 0; k < steps; k++) {
    const g = base.map((row) => row.map((v) => v * (1 + 0.05 * rnd())));
    out.push(g.map((a) => g.map((b) => a.reduce((acc, x, j) => acc + x * b[j], 0))));
  }
  return out;
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

function time(name: string, T: number): { ms: number; max: number } {
  const b = create(name, { warn: () => {} });
  b.bind(Array.from({ length: T }, (_, i) => `t${i}`));
  const grams = gramSequence(T, STEPS);
  const times: number[] = [];
  grams.forEach((gram, i) => {
    const losses = Array.from({ length: T }, (_, k) => 1 + k + 0.1 * Math.sin(i + k));
    const stats = { meanAbs: gram.map((r, k) => Math.sqrt(r[k]) / 10), maxAbs: gram.map((r, k) => Math.sqrt(r[k])) };
    const t0 = performance.now();
    b.update({ losses, gram, stats, epoch: 0 });
    times.push(performance.now() - t0);
  });
  const tail = times.slice(Math.min(2, times.length - 1));
  return { ms: median(tail), max: Math.max(...tail) };
}

const names = list().filter((s) => s.kind === 'gram' && s.reads !== 'losses' && (!ONLY.length || ONLY.includes(s.name))).map((s) => s.name);
console.log(`| strategy | ${TS.map((T) => `T=${T} ms (max)`).join(' | ')} |`);
console.log(`|---|${TS.map(() => '---').join('|')}|`);
for (const n of names) {
  const cells = TS.map((T) => {
    try {
      const r = time(n, T);
      return `${r.ms.toFixed(2)} (${r.max.toFixed(1)})`;
    } catch (e) {
      return `error: ${(e as Error).message.slice(0, 60)}`;
    }
  });
  console.log(`| ${n} | ${cells.join(' | ')} |`);
}
