/**
 * Issue 26, item 2: `report.html` showed a trajectory's weight, loss or tournament-score values
 * without escaping when they were strings (`fmt()` returns `String(x)` for a non-number), so a JSONL
 * line with `"weight": { "a": "<img src=x onerror=alert(1)>" }` put live markup in the page. Every
 * value from the file is now escaped. The test writes hostile strings into every value a page shows
 * (per-term values, totals, steps, tournament scores, statuses, meta fields) and checks that the page
 * holds no markup that came from the file: no `<script`, `<img`, `<iframe`, `<svg onload`, and no
 * attribute `on...=` outside escaped text.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { report } from '../src/viz/report.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PAYLOADS = ['<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '"><svg onload=alert(1)>', "'><iframe src=javascript:alert(1)>", '</td><b onmouseover=alert(1)>x'];

/** The page's own tags (no charts are drawn in these tests). */
const PAGE_TAGS = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'main', 'h1', 'h2', 'p', 'span', 'section', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'b', 'pre', 'footer', 'figure']);

/** The first tag that is not one of the page's own, or that carries an event-handler attribute. */
function injected(html: string): string | null {
  for (const m of html.matchAll(/<([a-zA-Z][\w-]*)([^>]*)>/g)) {
    if (!PAGE_TAGS.has(m[1].toLowerCase()) || /\son\w+\s*=/i.test(m[2])) return m[0];
  }
  return null;
}

function run(lines: unknown[], name: string): string {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return file;
}

const meta = { kind: 'meta', strategy: 'fixed', terms: ['a', 'b'], backend: 'cpu', gradients: false, startedAt: 't' };
const step = (i: number, over: Record<string, unknown> = {}) => ({ kind: 'step', step: i, loss: { a: 1, b: 2 }, weight: { a: 1, b: 1 }, weighted: { a: 1, b: 2 }, total: 3, ...over });

function tournament(over: { score?: unknown; dropped?: unknown; failed?: unknown; family?: unknown }) {
  return {
    kind: 'tournament',
    phase: 'done',
    startStep: 0,
    trialSteps: 1,
    eta: 2,
    score: 'default',
    mode: 'min',
    candidates: [
      { label: 'equal', spec: 'fixed', family: over.family ?? 'fixed', scores: [over.score ?? 1], steps: 1 },
      { label: 'mgda', spec: 'mgda', family: 'gradient', scores: [over.score ?? 2], steps: 1, droppedAfter: over.dropped ?? 0 },
      { label: 'gradnorm', spec: 'gradnorm', family: 'gradient', scores: [null], steps: 1, failed: over.failed ?? 'x' },
    ],
    rounds: [{ step: 1, scores: { equal: over.score ?? 1, mgda: 2 }, kept: ['equal'] }],
    winner: 'equal',
    reason: 'r',
    cost: { candidateSteps: 3, plannedCandidateSteps: 3, trainerSteps: 1, plannedTrainerSteps: 1, copies: 3, bytes: 10 },
  };
}

describe('report.html escapes every value read from the trajectory', () => {
  it.each(['weight', 'loss', 'weighted'])('strings in "%s" values', async (field) => {
    for (const p of PAYLOADS) {
      const file = run([meta, step(0, { [field]: { a: p, b: 1 } }), step(1), step(2, { [field]: { a: 1, b: p } })], `${field}`);
      const { html } = await report(file, { quantities: [] });
      expect(injected(html), p).toBeNull();
    }
  });

  it('strings in the tournament scores, statuses and families', async () => {
    for (const p of PAYLOADS) {
      for (const over of [{ score: p }, { dropped: p }, { failed: p }, { family: p }]) {
        const file = run([meta, step(0), step(1), tournament(over)], 'tournament');
        const { html } = await report(file, { quantities: [], diagnosis: null });
        expect(injected(html), `${JSON.stringify(over)}`).toBeNull();
      }
    }
  });

  it('property: a hostile string anywhere in a record or the meta line never reaches the page as markup', async () => {
    const paths = ['loss.a', 'weight.b', 'weighted.a', 'total', 'step', 'gradNorm.a', 'skipped', 'meta.strategy', 'meta.options', 'meta.backend', 'meta.startedAt', 'meta.extra'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), fc.constantFrom(...PAYLOADS), fc.integer({ min: 0, max: 2 }), async (path, p, at) => {
        const lines: Record<string, unknown>[] = [{ ...meta }, step(0, { gradNorm: { a: 1, b: 1 } }), step(1, { gradNorm: { a: 1, b: 1 } }), step(2, { gradNorm: { a: 1, b: 1 } })];
        const [head, key] = path.split('.');
        const target = head === 'meta' ? lines[0] : lines[1 + at];
        if (head === 'meta') target[key] = p;
        else if (key === undefined) target[head] = p;
        else (target[head] as Record<string, unknown>)[key] = p;
        const { html } = await report(run(lines, 'prop'), { quantities: [] });
        expect(injected(html)).toBeNull();
      }),
      { numRuns: 60, seed: 26 },
    );
  });
});
