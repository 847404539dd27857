/**
 * Headless Chromium for page tests: Debian's /usr/bin/chromium driven by playwright-core (which
 * downloads no browser). Tests that need it skip with {@link NO_CHROMIUM} as the stated reason
 * where it is not installed (CI installs it: `apt-get install chromium`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';

/** Where Debian's chromium package puts the browser (override with CHROMIUM_PATH). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Whether page tests can run here. */
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** The reason printed when page tests are skipped. */
export const NO_CHROMIUM = `skipped: no Chromium at ${CHROMIUM} (install Debian's chromium, or set CHROMIUM_PATH)`;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // WebGL on the CPU (SwiftShader): there is no GPU in headless CI; explicit, so Chromium does not warn about the fallback.
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** A page in a fresh profile, with the console errors and page errors it produced. */
export interface OpenPage {
  page: Page;
  errors: string[];
  /** The console's warnings. */
  warnings: string[];
  /** Every URL the page requested. */
  requests: string[];
  close(): Promise<void>;
}

/** Launch Chromium with a fresh --user-data-dir and open one page. */
export async function openPage(): Promise<OpenPage> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'lb-chromium-'));
  // launchPersistentContext passes `profile` as --user-data-dir.
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1100, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  const warnings: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    if (m.type() === 'warning') warnings.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  return {
    page,
    errors,
    warnings,
    requests,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
