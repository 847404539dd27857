/**
 * Writes the per-strategy tables of docs/guide-robustness.md (between `<!-- robustness-table:start -->`
 * and `<!-- robustness-table:end -->`) by running every registered strategy through the degenerate
 * cases of test/fixtures/degenerate-cases.ts. Nothing in the tables is typed by hand.
 *
 * Usage: npx tsx bench/robustness-table.ts [--write]   (without --write: print to stdout)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Balancer } from '../src/core/balancer.js';
import { create, list } from '../src/core/registry.js';
import { DEGENERATE_CASES } from '../test/fixtures/degenerate-cases.js';

const fmt = (x: number) => (x === 0 ? '0' : Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3 ? x.toExponential(1) : String(Number(x.toPrecision(3))));

function nonNegative(b: Balancer): boolean {
  const f = b.strategy.nonNegativeLosses;
  return typeof f === 'function' ? f(b.options) : !!f;
}

/** Run one case; the last weights, or how it was rejected. */
function outcome(name: string, id: string): string {
  const c = DEGENERATE_CASES.find((x) => x.id === id)!;
  const b = create(name, { onNonFinite: 'throw' });
  b.bind(c.terms);
  let w: number[] = b.weights;
  for (const [t, input] of c.inputs.entries()) {
    try {
      w = b.update(input).weights;
    } catch (e) {
      return `rejected at step ${t}${/"b"/.test((e as Error).message) ? ' (names term)' : ''}`;
    }
  }
  return w.map(fmt).join(', ');
}

const rows1: string[] = [
  '| strategy | reads | needs losses ≥ 0 | negative loss | weights may be negative |',
  '|---|---|---|---|---|',
];
const cases = DEGENERATE_CASES.filter((c) => c.id !== 'negative-loss');
const rows2: string[] = [`| strategy | ${cases.map((c) => c.title).join(' | ')} |`, `|---|${cases.map(() => '---').join('|')}|`];
for (const s of list().filter((s) => s.kind !== 'selector')) {
  const b = create(s.name);
  const neg = outcome(s.name, 'negative-loss');
  rows1.push(
    `| \`${s.name}\` | ${s.reads} | ${nonNegative(b) ? 'yes' : 'no'} | ${neg.startsWith('rejected') ? neg : 'accepted'} | ${b.strategy.signedWeights ? 'yes' : 'no'} |`,
  );
  rows2.push(`| \`${s.name}\` | ${cases.map((c) => outcome(s.name, c.id)).join(' | ')} |`);
}

const table = [
  'Inputs (default options):',
  '',
  ...rows1,
  '',
  'Weights after each degenerate sequence (terms a, b, c; default options; `onNonFinite: \'throw\'`, so',
  'a non-finite or negative output would have failed the run instead of being skipped):',
  '',
  ...rows2,
].join('\n');

if (process.argv.includes('--write')) {
  const path = join(import.meta.dirname, '..', 'docs', 'guide-robustness.md');
  const doc = readFileSync(path, 'utf8');
  const start = '<!-- robustness-table:start -->';
  const end = '<!-- robustness-table:end -->';
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${path}: markers ${start} / ${end} not found`);
  writeFileSync(path, `${doc.slice(0, i + start.length)}\n${table}\n${doc.slice(j)}`);
  console.log(`wrote ${path}`);
} else {
  console.log(table);
}
