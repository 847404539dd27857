import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PINN_ROWS, pinnTable, readResults, runPinn, writePinnSection } from '../bench/pinn.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

describe('bench:pinn smoke run (--quick settings, fewer steps)', () => {
  it('runs every row on Helmholtz and 1-D Poisson, skips unregistered names, merges JSON results into a table', () => {
    const before = tf.memory().numTensors;
    const dir = mkdtempSync(join(tmpdir(), 'bench-pinn-'));
    const results = [];
    for (const problem of ['helmholtz', 'poisson1d']) {
      for (const row of [...PINN_ROWS, { key: 'no-such', label: 'no-such', spec: 'no-such' }]) {
        if (problem === 'poisson1d' && !['equal', 'lra-paper'].includes(row.key)) continue;
        const r = runPinn({ problem, row, seed: 0, steps: 3 });
        results.push(r);
        writeFileSync(join(dir, `${problem}-${row.key}.json`), JSON.stringify(r));
        if (r.skipped) {
          expect(r.skipped).toMatch(/not in the registry/);
          continue;
        }
        expect(Number.isFinite(r.error)).toBe(true);
        expect(Object.keys(r.weights!)).toEqual(['residual', 'boundary']);
      }
    }
    expect(results.find((r) => r.row === 'no-such')!.skipped).toBeDefined();
    // representation mode runs too
    const rep = runPinn({ problem: 'poisson1d', row: PINN_ROWS[1], seed: 1, steps: 3, mode: 'representation' });
    expect(Number.isFinite(rep.error)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);

    const table = pinnTable(readResults(dir));
    expect(table).toContain('| helmholtz | equal weights | 3 | exact | 1 (0) |');
    expect(table).toContain('skipped:');
    const md = join(dir, 'benchmarks.md');
    writeFileSync(md, '# Benchmarks\n\n<!-- seed:start -->\nkeep\n<!-- seed:end -->\n\n<!-- pinn:start -->\nold\n<!-- pinn:end -->\n');
    writePinnSection(md, table);
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('<!-- seed:start -->\nkeep\n<!-- seed:end -->');
    expect(text).not.toContain('\nold\n');
    expect(text).toContain('| poisson1d |');
  });
});
