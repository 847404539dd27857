/**
 * bench:suite (issue 24): the CI smoke run of `npm run bench:suite -- --quick` (every problem runs,
 * nothing leaks, runs are cached, the tables render, `--only auto` re-runs just the auto rows and
 * `--from-cache` re-renders without running), and the summary's "Done when" arithmetic checked on
 * hand-made numbers.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapClosed, main, noWorseOnEverySeed, problemResult, SUITE_PROBLEMS, summarize, summaryTable, type RunRecord } from '../bench/suite.js';
import { quietly, useTestBackend } from './helpers.js';

const cache = mkdtempSync(join(tmpdir(), 'bench-suite-test-'));
const quiet = () => undefined;
/** bench:suite's main with its printed tables captured (and checked: they are the returned text), not printed. */
const run = async (argv: string[]) => {
  const { value, lines } = await quietly(() => main(argv, quiet));
  expect(lines.join('\n')).toBe(value.text);
  return value;
};

beforeAll(() => useTestBackend());
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe('bench:suite --quick', () => {
  it('runs every problem (equal, hand, auto rows), leaks no tensor, caches each run and renders the tables', async () => {
    await run(['--quick', '--cache', cache, '--only', 'equal', '--problems', 'multi-output']); // backend and kernels warm
    const before = tf.memory().numTensors;
    const out = await run(['--quick', '--cache', cache, '--only', 'equal,hand,auto']);
    expect(tf.memory().numTensors).toBe(before);
    expect(out.results.map((r) => r.problem)).toEqual(SUITE_PROBLEMS.map((p) => p.name));
    for (const r of out.runs) {
      expect(r.error, `${r.problem} ${r.row}`).toBeUndefined();
      expect(Number.isFinite(r.metric), `${r.problem} ${r.row}`).toBe(true);
      expect(r.leakedTensors, `${r.problem} ${r.row}`).toBe(0);
      expect(r.peakRssBytes).toBeGreaterThan(0);
    }
    const autoRuns = out.runs.filter((r) => r.kind === 'auto' || r.kind === 'auto-validation');
    expect(autoRuns.length).toBe(2 * SUITE_PROBLEMS.length);
    expect(autoRuns.every((r) => typeof r.winner === 'string' && r.candidateSteps! > 0)).toBe(true);
    expect(out.text).toMatch(/\| \*\*bare auto \('auto'\)\*\* \|/);
    expect(out.text).toMatch(/\| \*\*best grid point \(oracle, per seed\)\*\* \|/);
    expect(out.text).toMatch(/Median gap closed over problems: bare auto/);
    // the parts of a combined metric are shown
    expect(out.text).toMatch(/recon MSE\/var \(median\)/);
  }, 300_000);

  it('--only auto re-runs just the auto rows; --from-cache renders the same tables without running', async () => {
    const auto = await run(['--quick', '--cache', cache, '--only', 'auto', '--problems', 'keras-ticket,poisson1d']);
    expect(new Set(auto.runs.map((r) => r.row))).toEqual(new Set(['auto', 'auto-validation']));
    const rendered = await run(['--quick', '--cache', cache, '--from-cache', '--problems', 'keras-ticket,poisson1d']);
    expect(rendered.runs).toEqual([]);
    expect(rendered.text).toBe(auto.text);
    expect(rendered.results[0].rows.map((r) => r.id)).toEqual(['equal', 'hand', 'best-grid', 'auto', 'auto-validation']);
    await expect(main(['--quick', '--problems', 'nope'], quiet)).rejects.toThrow(/unknown problem\(s\) nope; known: vae, poisson1d/);
    await expect(main(['--quick', '--strategies', 'nope'], quiet)).rejects.toThrow(/unknown strategy\(ies\) nope; registered: .*mgda/);
  }, 300_000);
});

/** A cached record with the fields the tables read. */
function rec(row: string, kind: RunRecord['kind'], seed: number, metric: number, error?: string): RunRecord {
  return {
    problem: 'p', row, label: row, kind, seed, steps: 10, metricName: 'error', higherIsBetter: false, metric, seconds: 1,
    peakTensorBytes: 0, peakRssBytes: 1, leakedTensors: 0, commit: 'x', date: '2026-12-06', backend: 'cpu', node: 'v20', ...(error ? { error } : {}),
  };
}

describe('bench:suite summary arithmetic (hand-computed)', () => {
  // lower is better; equal weights per seed 1.0, 1.2, 1.1 (median 1.1, spread 0.2); grid points
  // 0.5, 0.9, 0.7 and 0.8, 0.4, 0.9 → oracle per seed 0.5, 0.4, 0.7 (median 0.5)
  const rows: [string, RunRecord['kind'], number[]][] = [
    ['equal', 'equal', [1.0, 1.2, 1.1]],
    ['grid-a', 'grid', [0.5, 0.9, 0.7]],
    ['hand', 'hand', [0.8, 0.4, 0.9]],
    ['strategy-x', 'strategy', [0.6, 0.6, 0.6]],
    ['strategy-y', 'strategy', [0.3, Number.NaN, 0.3]],
    ['auto', 'auto', [1.15, 0.8, 1.3]],
    ['auto-validation', 'auto-validation', [0.5, 0.5, 1.5]],
  ];
  const records = new Map(rows.map(([id, kind, ms]) => [id, new Map(ms.map((m, i) => [i + 1, rec(id, kind, i + 1, m, Number.isNaN(m) ? 'boom' : undefined)]))]));
  const r = problemResult('p', records, [1, 2, 3])!;

  it('orders rows and computes the per-seed oracle', () => {
    expect(r.rows.map((x) => x.id)).toEqual(['equal', 'hand', 'grid-a', 'best-grid', 'strategy-x', 'strategy-y', 'auto', 'auto-validation']);
    expect(r.rows.find((x) => x.id === 'best-grid')!.metrics).toEqual([0.5, 0.4, 0.7]);
  });

  it('no worse on every seed within the equal row spread; gap closed by the metric direction', () => {
    const s = summarize(r);
    expect(s.equal).toBeCloseTo(1.1);
    expect(s.bestGrid).toBeCloseTo(0.5);
    expect(s.margin).toBeCloseTo(0.2);
    // auto: 1.15 ≤ 1.0 + 0.2, 0.8 ≤ 1.2 + 0.2, 1.3 ≤ 1.1 + 0.2 → yes; median 1.15 → gap (1.1 − 1.15) / (1.1 − 0.5)
    expect(s.bareNoWorse).toBe(true);
    expect(s.gapBare!).toBeCloseTo(-0.05 / 0.6);
    // auto + validation: seed 3 1.5 > 1.3 → no; median 0.5 → gap 1
    expect(s.autoValidationNoWorse).toBe(false);
    expect(s.gapValidation!).toBeCloseTo(1);
    // the best strategy by median, a strategy that threw on a seed keeps its finite median
    expect(s.bestStrategy).toEqual({ name: 'strategy-y', median: 0.3 });
    expect(gapClosed(true, 0.8, 0.6, 1.0)).toBeCloseTo(0.5);
    expect(gapClosed(false, 0.8, 0.6, 0.6)).toBeNull();
    expect(noWorseOnEverySeed(true, [0.5, 0.7], [0.6, 0.6], 0.05)).toBe(false);
    expect(noWorseOnEverySeed(true, [0.5], [0.6, 0.6], 0.05)).toBeNull();
    // the gap 1.1 → 0.5 exceeds equal weights' spread 0.2
    expect(s.gapAboveSpread).toBe(true);
    const t = summaryTable([r]);
    expect(t).toMatch(/\| p \| lower \| 1\.1 \| 0\.5 \| 0\.8 \| strategy-y 0\.3 \| 1\.15 \| 0\.5 \| yes \(0\.2\) \| -0\.08 \| 1\.00 \|/);
    expect(t).toMatch(/median gap closed ≥ 0\.5: \*\*no\*\*/);
  });
});
