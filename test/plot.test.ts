import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepRecord } from '../src/core/history.js';
import { plotData, plotSpec, plotSvg, svgToPng, writePlots } from '../src/viz/plot.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TERMS = ['recon', 'kl', 'physics'];
function trajectory(n: number, withGrad = false): StepRecord[] {
  return Array.from({ length: n }, (_, s) => {
    const loss = { recon: 10 * Math.exp(-s / 50) + 0.1, kl: 0.01 + s * 1e-4, physics: 100 / (s + 1) };
    const weight = { recon: 1 + s / 100, kl: 3 * Math.exp(-s / 80), physics: s === 3 ? 0 : 0.5 };
    const weighted = Object.fromEntries(TERMS.map((t) => [t, (loss as any)[t] * (weight as any)[t]]));
    const rec: StepRecord = { step: s, loss, weight, weighted, total: Object.values(weighted).reduce((a, b) => a + b, 0) };
    if (withGrad) rec.gradNorm = { recon: 1, kl: 0.1, physics: 10 };
    return rec;
  });
}

/** The term of each drawn line (vega draws one line-mark path per series). */
const linePaths = (svg: string) =>
  [...svg.matchAll(/<path aria-label="[^"]*term: ([^"]+)" role="graphics-symbol" aria-roledescription="line mark" d="M[0-9]/g)].map((m) => m[1]);

describe('plots', () => {
  it('draws one line per term with a legend naming each term', async () => {
    const svg = await plotSvg(trajectory(120), { quantity: 'alpha' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(linePaths(svg).sort()).toEqual([...TERMS].sort());
    const legend = svg.match(/<g class="mark-group role-legend"[^>]*aria-label="([^"]*)"/);
    expect(legend?.[1]).toContain('recon, kl, physics');
    for (const t of TERMS) expect(svg).toMatch(new RegExp(`<text[^>]*>${t}</text>`));
    expect(svg).toContain('alpha (weight)');
  });

  it('log scale: a log y axis, non-positive values left out', async () => {
    const recs = trajectory(10);
    expect(plotData(recs, { log: true }).some((p) => p.value <= 0)).toBe(false);
    expect(plotData(recs, { log: false }).some((p) => p.value === 0)).toBe(true);
    const svg = await plotSvg(recs, { quantity: 'loss', log: true });
    expect(svg).toMatch(/for a log scale/);
    expect(svg).toContain('(log scale)');
    expect(linePaths(svg).sort()).toEqual([...TERMS].sort());
  });

  it('thins long runs to maxPoints per term and keeps the last step', () => {
    const recs = trajectory(5000);
    const pts = plotData(recs, { maxPoints: 100 }).filter((p) => p.term === 'kl');
    expect(pts.length).toBeLessThanOrEqual(101);
    expect(pts[pts.length - 1].step).toBe(4999);
  });

  it('drops non-finite values and names a bad quantity', () => {
    const recs = trajectory(5);
    recs[2].loss.kl = Number.NaN;
    expect(plotData(recs, { quantity: 'loss' }).filter((p) => p.term === 'kl')).toHaveLength(4);
    expect(() => plotSpec(recs, { quantity: 'nope' as any })).toThrow(/unknown quantity "nope"/);
  });

  it('rasterises to a PNG of sensible size', async () => {
    const svg = await plotSvg(trajectory(50), { width: 400, height: 200 });
    const png = Buffer.from(svgToPng(svg, 2));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    // The chart area (400×200) plus axes, title and legend, at twice the size.
    expect(width).toBeGreaterThan(800);
    expect(width).toBeLessThan(1600);
    expect(height).toBeGreaterThan(400);
    expect(height).toBeLessThan(800);
    expect(png.length).toBeGreaterThan(5000);
  });

  it('writePlots writes alpha, loss and gradnorm charts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-plot-'));
    dirs.push(dir);
    const out = await writePlots(trajectory(30, true), dir, { log: true });
    expect(Object.keys(out)).toEqual(['alpha', 'loss', 'gradnorm']);
    for (const q of ['alpha', 'loss', 'gradnorm']) {
      expect(existsSync(join(dir, `${q}.svg`))).toBe(true);
      expect(readFileSync(join(dir, `${q}.png`)).subarray(1, 4).toString()).toBe('PNG');
    }
  });
});
