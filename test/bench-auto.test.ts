/**
 * bench:auto smoke run (the CI check of `npm run bench:auto -- --quick`): the problem list runs,
 * every row is measured, auto reports what it picked and its cost, and the table renders.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { autoTable, main, median } from '../bench/auto.js';
import { quietly, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

describe('bench:auto --quick', () => {
  it('runs the multi-output problem: grid, strategies, auto with both scores; reports the winner and cost', async () => {
    const { value: [r], lines } = await quietly(() => main(['--quick', '--problems', 'multi-output', '--steps', '10']));
    expect(lines[0]).toMatch(/^bench:auto multi-output on \w+: 1 seed\(s\), 10 steps/);
    expect(lines.join('\n')).toContain(autoTable(r));
    expect(r.problem).toBe('multi-output');
    const labels = r.rows.map((x) => x.label);
    expect(labels[0]).toBe('equal weights');
    expect(labels).toContain('best grid point (oracle, per seed)');
    expect(labels).toContain('auto (validation score)');
    expect(labels).toContain('auto (default score)');
    for (const row of r.rows) {
      expect(row.error).toBeUndefined();
      expect(row.metrics.every(Number.isFinite)).toBe(true);
    }
    const auto = r.rows.find((x) => x.label === 'auto (validation score)')!;
    expect(auto.winners?.length).toBe(1);
    expect(auto.cost![0]).toBeGreaterThan(0);
    expect(autoTable(r)).toMatch(/\| \*\*auto \(validation score\)\*\* \|/);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  }, 300_000);

  it('runs the PINN poisson1d (bench/pinn/problems.ts): error metric finite, auto picks a candidate; unknown problems named', async () => {
    const { value: [r], lines } = await quietly(() => main(['--quick', '--problems', 'poisson1d', '--pinn-steps', '6', '--only', 'equal weights,auto (validation']));
    expect(lines.join('\n')).toContain(autoTable(r));
    expect(r.problem).toBe('poisson1d');
    expect(r.metricName).toMatch(/relative L2 error of u/);
    const auto = r.rows.find((x) => x.label === 'auto (validation score)')!;
    expect(auto.error).toBeUndefined();
    expect(auto.winners?.length).toBe(1);
    for (const row of r.rows) expect(row.metrics.every(Number.isFinite)).toBe(true);
    await expect(main(['--quick', '--problems', 'poisson'])).rejects.toThrow(/unknown problem\(s\) poisson; known: multi-output, vae, helmholtz, poisson1d/);
  }, 300_000);
});
