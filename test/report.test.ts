import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunMeta, StepRecord } from '../src/core/history.js';
import { findTrajectory, renderReport, report } from '../src/viz/report.js';
import { diagnose } from '../src/core/diagnose.js';
import { JsonlSink, readJsonl } from '../src/node/sinks.js';
import { HAVE_CHROMIUM, NO_CHROMIUM, openPage } from './chromium.js';
import { skipBecause } from './skip.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'lb-report-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TERMS = ['recon_a', 'recon_b', 'kl<&>'];
const META: RunMeta = {
  strategy: 'gradnorm',
  options: { alpha: 1.5, lr: 0.025 },
  terms: TERMS,
  backend: 'wasm',
  gradients: 'shared',
  startedAt: '2026-01-02T03:04:05.000Z',
  name: 'report-test',
};

function writeRun(dir: string, steps = 60): string {
  const sink = new JsonlSink(join(dir, 'trajectory.jsonl'));
  sink.open(META);
  for (let s = 0; s < steps; s++) {
    const loss = { recon_a: 5 * Math.exp(-s / 20) + 0.2, recon_b: 0.5 * Math.exp(-s / 30) + 0.01, 'kl<&>': 0.02 + s * 1e-3 };
    const weight = { recon_a: 1 - s / 200, recon_b: 1 + s / 40, 'kl<&>': Math.max(0.05, 1 - s / 70) };
    const weighted = Object.fromEntries(TERMS.map((t) => [t, (loss as any)[t] * (weight as any)[t]]));
    const rec: StepRecord = {
      step: s,
      loss,
      weight,
      weighted,
      gradNorm: { recon_a: 2, recon_b: 0.3, 'kl<&>': 0.01 + s / 1000 },
      total: Object.values(weighted).reduce((a, b) => a + b, 0),
    };
    if (s === 7) rec.skipped = 'non-finite loss of term "kl<&>"';
    sink.write(rec);
  }
  sink.close();
  return dir;
}

describe('report', () => {
  it('writes one self-contained page with config, charts, table and a diagnosis section', async () => {
    const dir = writeRun(tmp());
    const { path, html } = await report(dir, { diagnosis: null });
    expect(path).toBe(join(dir, 'report.html'));
    expect(readFileSync(path, 'utf8')).toBe(html);
    // Self-contained: no scripts, no external stylesheets, images or fonts.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|\ssrc=/i);
    expect(html.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, '')).not.toMatch(/https?:\/\//);
    expect(html).toContain('gradnorm');
    expect(html).toContain('wasm');
    expect(html).toContain('{&quot;alpha&quot;:1.5,&quot;lr&quot;:0.025}');
    expect(html).toContain('60 (1 skipped)');
    expect(html).toContain('kl&lt;&amp;&gt;');
    expect(html).not.toContain('kl<&>');
    expect((html.match(/<svg /g) ?? []).length).toBe(3); // alpha, loss, gradnorm
    expect(html).toContain('id="diagnosis"');
    expect(html).toContain('No diagnosis (turned off by the caller)');
  });

  it('a streamed file keeps a bounded sample of records for the charts, and the table over every step', async () => {
    const dir = writeRun(tmp(), 500);
    const { html } = await report(dir, { diagnosis: null, maxRecords: 20, quantities: ['alpha'] });
    const full = await renderReport(readJsonl(join(dir, 'trajectory.jsonl')), { diagnosis: null, quantities: [] });
    const table = (h: string) => h.slice(h.indexOf('<table id="alphas"'), h.indexOf('</table>', h.indexOf('<table id="alphas"')));
    expect(table(html)).toBe(table(full));
    expect(html).toContain('500 (1 skipped)');
  });

  it('puts the given diagnosis text in, escaped', async () => {
    const traj = readJsonl(join(writeRun(tmp(), 5), 'trajectory.jsonl'));
    const html = await renderReport(traj, { diagnosis: 'kl collapsed <below> 0.05', quantities: ['alpha'] });
    expect(html).toContain('<pre>kl collapsed &lt;below&gt; 0.05</pre>');
    expect((html.match(/<svg /g) ?? []).length).toBe(1);
  });

  it('puts the diagnosis of diagnose() in, from memory and from a streamed file alike', async () => {
    const file = join(writeRun(tmp(), 5), 'trajectory.jsonl');
    const traj = readJsonl(file);
    const html = await renderReport(traj, { quantities: [] });
    const text = diagnose(traj.records, { meta: traj.meta! }).text;
    expect(html).toContain(`<pre>${text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')}</pre>`);
    const { html: streamed } = await report(file, { quantities: [], out: join(tmp(), 'x.html') });
    expect(streamed).toBe(html);
  });

  it('finds the trajectory of a run folder and names what is wrong', () => {
    const dir = tmp();
    expect(() => findTrajectory(join(dir, 'nope'))).toThrow(/does not exist/);
    expect(() => findTrajectory(dir)).toThrow(/no trajectory\.jsonl/);
    writeFileSync(join(dir, 'a.jsonl'), '');
    expect(findTrajectory(dir)).toBe(join(dir, 'a.jsonl'));
    writeFileSync(join(dir, 'b.jsonl'), '');
    expect(() => findTrajectory(dir)).toThrow(/several trajectories \(a\.jsonl, b\.jsonl\)/);
    mkdirSync(join(dir, 'x'));
  });

  it('a trajectory file gets its page beside it', async () => {
    const dir = tmp();
    writeRun(dir, 3);
    const { path } = await report(join(dir, 'trajectory.jsonl'), { quantities: ['alpha'] });
    expect(path).toBe(join(dir, 'report.html'));
    expect(existsSync(path)).toBe(true);
  });

  it.skipIf(skipBecause(!HAVE_CHROMIUM, 'the report page in Chromium', NO_CHROMIUM))('loads in headless Chromium without console errors and shows every term', async () => {
    const dir = writeRun(tmp());
    const { path } = await report(dir);
    const b = await openPage();
    try {
      const url = pathToFileURL(path).href;
      await b.page.goto(url, { waitUntil: 'load' });
      expect(await b.page.title()).toBe('loss-balancer run: report-test (gradnorm)');
      const tableTerms = await b.page.locator('#alphas td.term').allTextContents();
      expect(tableTerms).toEqual(TERMS);
      for (const q of ['alpha', 'loss', 'gradnorm']) {
        const chart = b.page.locator(`#chart-${q} svg`);
        await expect(chart.isVisible()).resolves.toBe(true);
        const box = await chart.boundingBox();
        expect(box!.width).toBeGreaterThan(300);
        const legend = await b.page.locator(`#chart-${q} .role-legend-label text`).allTextContents();
        expect(legend).toEqual(TERMS);
      }
      const text = await b.page.locator('body').innerText();
      for (const t of TERMS) expect(text).toContain(t);
      expect(b.errors).toEqual([]);
      expect(b.requests.filter((r) => r !== url)).toEqual([]);
      if (process.env.LB_SCREENSHOT) await b.page.screenshot({ path: process.env.LB_SCREENSHOT, fullPage: true });
    } finally {
      await b.close();
    }
  }, 120_000);
});
