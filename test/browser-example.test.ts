import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrowserExample, EXAMPLE_DIR } from '../examples/browser/build.js';
import { serve } from '../examples/browser/serve.js';
import type { PageState } from '../examples/browser/state.js';
import { HAVE_CHROMIUM, NO_CHROMIUM, openPage } from './chromium.js';
import { skipBecause } from './skip.js';

describe('browser entry', () => {
  it('src/browser.ts bundles for the browser platform (no node: modules pulled in)', async () => {
    const { build } = await import('esbuild');
    const out = await build({ entryPoints: ['src/browser.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    const inputs = Object.keys(out.metafile!.inputs);
    expect(inputs.some((f) => /(^|\/)node:|src\/(sinks|tensorboard|plot|report|cli|run)\.ts$/.test(f))).toBe(false);
    expect(inputs).toContain('src/train/trainer.ts');
  });
});

describe.skipIf(skipBecause(!HAVE_CHROMIUM, 'the browser example in Chromium', NO_CHROMIUM))('browser example (headless Chromium)', () => {
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
      expect(await b.page.locator('#backend-name').innerText()).toBe('WebAssembly backend');
      if (process.env.LB_SCREENSHOT) await b.page.screenshot({ path: process.env.LB_SCREENSHOT });
    } finally {
      await b.close();
    }
  }, 150_000);

  // Every backend the page offers trains with auto (the selection runs through stepAsync) on real Chromium.
  for (const [backend, shown] of [['wasm', 'WebAssembly backend'], ['webgl', 'WebGL backend'], ['cpu', 'plain JavaScript (cpu) backend']] as const) {
    it(`auto on ${backend}: the selection runs through stepAsync, the page names the backend, the alphas are the winner's`, async () => {
      const b = await openPage();
      try {
        await b.page.goto(`${url}?strategy=auto&steps=100&trialSteps=6&backend=${backend}`, { waitUntil: 'load' });
        await b.page.waitForFunction(() => ['done', 'error'].includes((window as any).lossBalancer?.status), null, { timeout: 120_000, polling: 200 });
        const state = (await b.page.evaluate(() => (window as any).lossBalancer)) as PageState;
        expect(state.error).toBeUndefined();
        expect(state.requestedBackend).toBe(backend);
        expect(state.backend, `backend ${backend} did not start in headless Chromium (software WebGL: SwiftShader flags in test/chromium.ts)`).toBe(backend);
        expect(await b.page.locator('#backend-name').innerText()).toBe(shown);
        expect(state.status).toBe('done');
        expect(state.winner, 'auto picked no winner within 100 steps').toBeTruthy();
        expect(state.alphas).toHaveLength(100);
        const last = state.alphas[state.alphas.length - 1];
        expect(last.every((a) => Number.isFinite(a) && a > 0)).toBe(true);
        expect(await b.page.locator('#status').innerText()).toContain(`auto picked ${state.winner}`);
        // "train again" keeps the backend.
        await b.page.selectOption('#strategy', 'fixed');
        await Promise.all([b.page.waitForURL(/strategy=fixed/), b.page.click('#start')]);
        expect(new URL(b.page.url()).searchParams.get('backend')).toBe(backend);
        await b.page.waitForFunction(() => ['done', 'error'].includes((window as any).lossBalancer?.status), null, { timeout: 120_000, polling: 200 });
        expect(((await b.page.evaluate(() => (window as any).lossBalancer)) as PageState).backend).toBe(backend);
        expect(b.errors).toEqual([]);
        // The library's console notices: only auto's one-line notice when it keeps equal weights.
        const notices = b.warnings.filter((w) => /loss-balancer|balancer/i.test(w));
        if (state.winner === 'equal') {
          expect(notices).toHaveLength(1);
          expect(notices[0]).toMatch(/^loss-balancer: auto kept equal weights at step \d+/);
        } else {
          expect(notices).toEqual([]);
        }
      } finally {
        await b.close();
      }
    }, 240_000);
  }
});
