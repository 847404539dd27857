/**
 * Issue 26, item 14: terms named `constructor`, `toString` or `hasOwnProperty` (names of
 * `Object.prototype`) made `plotSvg`, `report` and `loss-balancer run` fail after training with
 * vega's `Operator not defined: undefined`: the legend order was given to vega-lite as a custom sort
 * array, which it compiles into an object lookup keyed by the values. The order is now the colour
 * scale's domain. The test runs `runExample` end to end with such names, and draws each chart.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExample, validateRunConfig } from '../src/node/run.js';
import { plotSvg, QUANTITIES, type Quantity } from '../src/viz/plot.js';
import { useTestBackend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-names-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => useTestBackend());

const PROTO_NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__', 'isPrototypeOf'];

describe('terms named like Object.prototype members', () => {
  it.each(Object.keys(QUANTITIES) as Quantity[])('plotSvg draws "%s" with every such name, legend in term order', async (q) => {
    const per = (f: (i: number) => number) => Object.fromEntries(PROTO_NAMES.map((n, i) => [n, f(i)]));
    const records = [0, 1, 2].map((step) => ({ step, loss: per((i) => 1 + i + step), weight: per((i) => 1 + i / 10), weighted: per((i) => 1 + i), gradNorm: per((i) => 2 + i), total: 3 }));
    const svg = await plotSvg(records, { quantity: q });
    const labels = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).filter((t) => PROTO_NAMES.includes(t));
    expect(labels).toEqual(PROTO_NAMES);
  });

  it('loss-balancer run trains, plots and reports terms constructor, toString, hasOwnProperty', async () => {
    const cfg = validateRunConfig({ strategy: 'mgda', steps: 3, output: dir, name: 'proto', example: { scales: [1, 10, 100], names: ['constructor', 'toString', 'hasOwnProperty'], samples: 8, hidden: 4 } });
    const res = await runExample(cfg);
    expect(res.records).toHaveLength(3);
    for (const p of res.files.plots) expect(existsSync(p), p).toBe(true);
    const html = readFileSync(res.files.report, 'utf8');
    for (const n of ['constructor', 'toString', 'hasOwnProperty']) expect(html).toContain(`<td class="term">${n}</td>`);
  });
});

describe('a term named __proto__', () => {
  it('trains, plots and reports like any other name', async () => {
    const cfg = validateRunConfig({ strategy: 'fixed', steps: 3, output: dir, name: 'proto2', example: { scales: [1, 10], names: ['__proto__', 'valueOf'], samples: 8, hidden: 4 } });
    const res = await runExample(cfg);
    expect(Object.keys(res.records[2].loss)).toEqual(['__proto__', 'valueOf']);
    const html = readFileSync(res.files.report, 'utf8');
    expect(html).toContain('<td class="term">__proto__</td>');
  });
});
