import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowserExample, EXAMPLE_DIR } from '../examples/browser/build.js';
import { serve } from '../examples/browser/serve.js';
import type { PageState } from '../examples/browser/state.js';
import { HAVE_CHROMIUM, openPage } from './chromium.js';

describe('browser entry', () => {
  it('src/browser.ts bundles for the browser platform (no node: modules pulled in)', async () => {
    const { build } = await import('esbuild');
    const out = await build({ entryPoints: ['src/browser.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    const inputs = Object.keys(out.metafile!.inputs);
    expect(inputs.some((f) => /(^|\/)node:|src\/(sinks|tensorboard|plot|report|cli|run)\.ts$/.test(f))).toBe(false);
    expect(inputs).toContain('src/train/trainer.ts');
  });
});

describe.skipIf(!HAVE_CHROMIUM)('browser example (headless Chromium, tfjs wasm backend)', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    await buildBrowserExample(join(EXAMPLE_DIR, 'dist'));
    ({ server, url } = await serve(EXAMPLE_DIR));
  }, 120_000);
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('trains the toy problem with gradnorm on wasm and draws the alpha curve of every term', async () => {
    const b = await openPage();
    try {
      await b.page.goto(`${url}?strategy=gradnorm&steps=120`, { waitUntil: 'load' });
      await b.page.waitForFunction(() => ['done', 'error'].includes((window as any).lossBalancer?.status), null, { timeout: 100_000, polling: 200 });
      const state = (await b.page.evaluate(() => (window as any).lossBalancer)) as PageState;
      expect(state.error).toBeUndefined();
      expect(state.status).toBe('done');
      expect(state.backend).toBe('wasm');
      expect(state.step).toBe(120);
      expect(state.terms).toEqual(['small', 'medium', 'large']);
      // The balancer acted: the large-scale term's alpha fell below the small one's.
      const last = state.alphas[state.alphas.length - 1];
      expect(last.every((a) => Number.isFinite(a) && a > 0)).toBe(true);
      expect(last[2]).toBeLessThan(last[0]);

      const lines = await b.page.$$eval('#chart polyline.alpha-line', (ls) =>
        ls.map((l) => ({ term: l.getAttribute('data-term'), points: (l.getAttribute('points') ?? '').trim().split(/\s+/).length, length: (l as SVGPolylineElement).getTotalLength() })),
      );
      expect(lines.map((l) => l.term)).toEqual(state.terms);
      for (const l of lines) {
        expect(l.points).toBe(120);
        expect(l.length).toBeGreaterThan(100);
      }
      expect(await b.page.locator('#legend').innerText()).toMatch(/small α=.*medium α=.*large α=/s);
      expect(await b.page.locator('#strategy option').count()).toBeGreaterThan(4);
      expect(b.errors).toEqual([]);
      if (process.env.LB_SCREENSHOT) await b.page.screenshot({ path: process.env.LB_SCREENSHOT });
    } finally {
      await b.close();
    }
  }, 150_000);
});
