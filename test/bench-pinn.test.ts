import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main, PINN_ROWS, pinnTable, readResults, runPinn, writePinnSection } from '../bench/pinn.js';
import { main as overheadMain } from '../bench/pinn-overhead.js';
import { PINN_PROBLEMS } from '../bench/pinn/problems.js';
import { quietly, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

describe('bench:pinn smoke run', () => {
  it('`npm run bench:pinn -- --quick` (the CI check): every row on Helmholtz, 30 steps, results written and merged', async () => {
    const before = tf.memory().numTensors;
    const dir = mkdtempSync(join(tmpdir(), 'bench-pinn-quick-'));
    const { value: results, lines } = await quietly(() => main(['--quick', '--out', dir]));
    expect(lines[0]).toMatch(/^bench:pinn --quick: a smoke run/);
    expect(lines.join('\n')).toMatch(/\| problem \| row \| steps \|/);
    expect(results.map((r) => r.row)).toEqual(PINN_ROWS.map((r) => r.key));
    for (const r of results) {
      expect(r.steps).toBe(30);
      expect(r.skipped).toBeUndefined();
      expect(Number.isFinite(r.error)).toBe(true);
      expect(Object.keys(r.weights!)).toEqual(['residual', 'boundary']);
    }
    expect(tf.memory().numTensors).toBe(before);
    const { value: merged, lines: mergedLines } = await quietly(() => main(['--merge', dir]));
    expect(mergedLines.join('\n')).toMatch(/\| helmholtz \| equal weights \|/);
    expect(merged).toHaveLength(PINN_ROWS.length);
    await expect(main(['--quick', '--seeds', '1,x'])).rejects.toThrow(/--seeds got "x"; allowed: a whole number ≥ 0/);
    await expect(main(['--quick', '--problem', 'burgers'])).rejects.toThrow(/--problem got "burgers"; known: helmholtz, poisson1d, klein-gordon/);
    // the bound for the CI smoke run is 3 minutes; about 30 s of CPU here
  }, 180_000);

  it('runs 1-D Poisson rows and representation mode, skips unregistered names, merges JSON results into a table', () => {
    const before = tf.memory().numTensors;
    const dir = mkdtempSync(join(tmpdir(), 'bench-pinn-'));
    const results = [];
    for (const row of [...PINN_ROWS.filter((r) => ['equal', 'lra-paper'].includes(r.key)), { key: 'no-such', label: 'no-such', spec: 'no-such' }]) {
      const r = runPinn({ problem: 'poisson1d', row, seed: 0, steps: 3 });
      results.push(r);
      writeFileSync(join(dir, `poisson1d-${row.key}.json`), JSON.stringify(r));
      if (r.skipped) {
        expect(r.skipped).toMatch(/not in the registry/);
        continue;
      }
      expect(Number.isFinite(r.error)).toBe(true);
      expect(Object.keys(r.weights!)).toEqual(['residual', 'boundary']);
    }
    expect(results.find((r) => r.row === 'no-such')!.skipped).toBeDefined();
    // representation mode runs too
    const rep = runPinn({ problem: 'poisson1d', row: PINN_ROWS[1], seed: 1, steps: 3, mode: 'representation' });
    expect(Number.isFinite(rep.error)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);

    const table = pinnTable(readResults(dir));
    expect(table).toContain('| poisson1d | equal weights | 3 | exact | 1 (0) |');
    expect(table).toContain('skipped:');
    const md = join(dir, 'benchmarks.md');
    writeFileSync(md, '# Benchmarks\n\n<!-- seed:start -->\nkeep\n<!-- seed:end -->\n\n<!-- pinn:start -->\nold\n<!-- pinn:end -->\n');
    writePinnSection(md, table);
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('<!-- seed:start -->\nkeep\n<!-- seed:end -->');
    expect(text).not.toContain('\nold\n');
    expect(text).toContain('| poisson1d |');
  });

  it("auto-worst's held-out score is the worst term's log progress; a run that fails at its start releases every tensor", () => {
    const before = tf.memory().numTensors;
    const row = PINN_ROWS.find((r) => r.key === 'auto-worst')!;
    // the score the row hands to auto: 0 for the starting network (every term at its own start)
    const model = PINN_PROBLEMS.poisson1d().build(0);
    const made = row.makeSpec!(model, { problem: 'poisson1d', seed: 0 });
    const spec = made.spec as { name: string; score: () => number };
    expect(spec.name).toBe('auto');
    expect(spec.score()).toBe(0);
    made.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // errors before the first step (here the trainer's option check) leave nothing behind
    const bad = { ...row, makeSpec: (m: Parameters<NonNullable<typeof row.makeSpec>>[0], c: { problem: string; seed: number }) => ({ ...row.makeSpec!(m, c), spec: { name: 'auto', trialSteps: -1 } as never }) };
    expect(() => runPinn({ problem: 'poisson1d', row: bad, seed: 0, steps: 3 })).toThrow(/trialSteps/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("shows the paper's numbers (arXiv:2001.04536v1) beside 40,000-step rows of its two problems only", () => {
    const res = (problem: string, row: string, steps: number) => ({
      problem, row, label: row, seed: 0, steps, mode: 'exact' as const, decay: true, error: 0.1, weights: { residual: 1 }, msPerStep: 1, backend: 'cpu', machine: 'm', date: 'd',
    });
    const lines = pinnTable([res('helmholtz', 'equal', 40000), res('helmholtz', 'lra-code', 40000), res('klein-gordon', 'lra-code', 40000), res('helmholtz', 'equal', 10000), res('poisson1d', 'equal', 40000)]).split('\n');
    const line = (p: string, label: string, steps: number) => lines.find((l) => l.startsWith(`| ${p} | ${label} | ${steps} |`))!;
    expect(line('helmholtz', 'equal weights', 40000)).toMatch(/\| 1\.06e-1 \(M1, Table 2, mean of 10 trials\); 1\.81e-1 \(Fig\. 1, one run\) \|$/);
    const lraCode = lines.find((l) => l.startsWith('| helmholtz | grad-magnitude as in the authors'));
    expect(lraCode).toMatch(/\| 1\.12e-2 \(M2, Table 2, mean of 10 trials\); 1\.27e-2 \(Fig\. 6, one run\) \|$/);
    expect(lines.find((l) => l.startsWith('| klein-gordon |'))).toMatch(/1\.06e-2 \(M2, Table 3, one run\) \|$/);
    expect(line('helmholtz', 'equal weights', 10000)).toMatch(/\| 1\.0 \| {2}\|$/);
    expect(line('poisson1d', 'equal weights', 40000)).toMatch(/\| 1\.0 \| {2}\|$/);
    // auto rows name the candidate(s) the selection picked
    const auto = pinnTable([{ ...res('helmholtz', 'auto', 10000), winner: 'mgda' }, { ...res('helmholtz', 'auto', 10000), seed: 1 }]);
    expect(auto).toContain('| residual 1.00 (picked: mgda) |');
  });

  it('`npx tsx bench/pinn-overhead.ts --quick`: plain tfjs, equal weights and lra-code timed in one process; no leak; bad flags named', async () => {
    const before = tf.memory().numTensors;
    const { value: r, lines } = await quietly(() => overheadMain(['--quick']));
    expect(lines.join('\n')).toMatch(/\| trainer \| median ms\/step \| ratio to plain \|\n\|---\|---:\|---:\|\n\| plain \|/);
    expect(r.map((x) => x.variant)).toEqual(['plain', 'equal', 'lra-code']);
    for (const x of r) expect(x.msPerStep > 0 && Number.isFinite(x.ratio) && x.steps === 6).toBe(true);
    expect(r[0].ratio).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    await expect(overheadMain(['--rounds', '0'])).rejects.toThrow(/--rounds got "0"; allowed: a whole number ≥ 1/);
    await expect(overheadMain(['--fast'])).rejects.toThrow(/unknown argument "--fast"/);
  }, 120_000);
});
