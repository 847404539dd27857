import { describe, expect, it } from 'vitest';
import { HarmDetector, HarmMonitor, harmOptions, type HarmFinding } from '../src/core/harm.js';
import type { StepRecord } from '../src/core/history.js';
import { list } from '../src/core/registry.js';

type Fn = (s: number) => Record<string, number>;

/** Constructed records: weights, raw losses and (optionally) gradient norms as functions of the step. */
function records(n: number, weight: Fn, loss?: Fn, grad?: Fn, clamped?: (s: number) => string[]): StepRecord[] {
  return Array.from({ length: n }, (_, s) => {
    const w = weight(s);
    const l = loss ? loss(s) : Object.fromEntries(Object.keys(w).map((k) => [k, 1]));
    const r: StepRecord = { step: s, loss: l, weight: w, weighted: Object.fromEntries(Object.keys(w).map((k) => [k, w[k] * l[k]])), total: 0 };
    if (grad) r.gradNorm = grad(s);
    const c = clamped?.(s);
    if (c?.length) r.clamped = c;
    return r;
  });
}

function run(recs: StepRecord[], meta: { strategy?: string; options?: unknown } = {}, opts = {}): { det: HarmDetector; raised: HarmFinding[] } {
  const det = new HarmDetector(opts);
  det.open({ strategy: meta.strategy ?? 'fixed', terms: Object.keys(recs[0].weight), options: meta.options ?? {} });
  const raised: HarmFinding[] = [];
  for (const r of recs) for (const f of det.push(r)) raised.push(f);
  return { det, raised };
}

const kinds = (fs: readonly HarmFinding[]) => [...new Set(fs.map((f) => `${f.kind}:${f.term}`))].sort();

describe('harm flags on constructed trajectories', () => {
  it('a healthy run raises nothing', () => {
    const recs = records(1000, (s) => ({ a: 1 + 0.1 * Math.sin(s), b: 2 }), (s) => ({ a: 1 / (1 + s), b: 2 / (1 + s) }), () => ({ a: 1, b: 0.5 }));
    expect(run(recs).raised).toEqual([]);
  });

  it('starved: a term driving < 1% of the combined gradient over the window; named with step and evidence', () => {
    // bc's raw gradient is 1000× smaller than res's, equal weights: bc's share ≈ 0.1%
    const recs = records(400, () => ({ res: 1, bc: 1 }), undefined, () => ({ res: 1, bc: 1e-3 }));
    const { raised } = run(recs);
    expect(kinds(raised)).toEqual(['starved:bc']);
    const f = raised[0];
    expect(f.step).toBe(199); // first full window
    expect(f.from).toBe(0);
    expect(f.evidence.share).toBeCloseTo(1e-3 / 1.001, 9);
    expect(f.message).toMatch(/step 199: term "bc" is starved.*0\.10%.*steps 0–199/);
    // just above the threshold: nothing
    expect(run(records(400, () => ({ res: 1, bc: 1 }), undefined, () => ({ res: 1, bc: 0.0102 }))).raised).toEqual([]);
  });

  it('pinned: GradNorm weight at its minWeight floor (read from the options), and a bounds clamp', () => {
    const recs = records(300, () => ({ big: 1e-3, small: 1.999 }), undefined, () => ({ big: 100, small: 0.1 }));
    const { raised } = run(recs, { strategy: 'gradnorm', options: { minWeight: 1e-3 } });
    const pinned = raised.find((f) => f.kind === 'pinned')!;
    expect(pinned.term).toBe('big');
    expect(pinned.evidence.fraction).toBe(1);
    expect(pinned.evidence.floor).toBe(1e-3);
    expect(pinned.message).toMatch(/"big" is pinned at the strategy's floor minWeight = 0.001/);
    expect(pinned.message).toMatch(/Note on gradnorm \(minWeight\): GradNorm equalises/);
    // without a floor in the options nothing is pinned
    expect(run(recs, { strategy: 'x' }).raised.filter((f) => f.kind === 'pinned')).toEqual([]);
    // bounds: clamped in 95% of the steps
    const b = records(300, () => ({ a: 5, b: 1 }), undefined, undefined, (s) => (s % 20 ? ['a'] : []));
    const bf = run(b).raised.find((f) => f.kind === 'pinned')!;
    expect(bf.term).toBe('a');
    expect(bf.evidence.atBounds).toBeCloseTo(0.95, 9);
    expect(bf.message).toMatch(/a bound \(bounds\.min, max or maxChange/);
    // 80% of the steps: below pinnedFraction 0.9
    expect(run(records(300, () => ({ a: 5, b: 1 }), undefined, undefined, (s) => (s % 5 ? ['a'] : []))).raised).toEqual([]);
  });

  it('runaway: a ratio of orders of magnitude that still grows; a large constant ratio is not flagged', () => {
    const grow = records(400, (s) => ({ kl: 10 * Math.exp(s / 50), recon: 1 }));
    const { raised } = run(grow, { strategy: 'grad-magnitude' });
    const f = raised.find((x) => x.kind === 'runaway')!;
    expect(f.term).toBe('kl');
    expect(f.other).toBe('recon');
    expect(f.evidence.ratio).toBeGreaterThan(100);
    expect(f.evidence.growth).toBeCloseTo(Math.exp(100 / 50), 6);
    expect(f.message).toMatch(/"kl"'s weight is .*× "recon"'s/);
    expect(f.message).toMatch(/Note on grad-magnitude \(reference\)/);
    expect(run(records(400, () => ({ kl: 1e4, recon: 1 }))).raised).toEqual([]);
    // growing but small: not flagged
    expect(run(records(400, (s) => ({ a: 1 + s / 100, b: 1 }))).raised).toEqual([]);
  });

  it("a strategy's caveat is spelled out in the first reported warning only, later ones cite it", () => {
    // 1,500 steps of a still-growing ratio: runaway is reported again after each cooldown
    const { raised } = run(records(1500, (s) => ({ kl: 10 * Math.exp(s / 100), recon: 1 })), { strategy: 'grad-magnitude' });
    const withNote = raised.filter((f) => /Note on grad-magnitude \(reference\):/.test(f.message));
    expect(raised.length).toBeGreaterThan(1);
    expect(withNote).toEqual([raised[0]]);
    for (const f of raised.slice(1)) expect(f.message).toMatch(/See the note on grad-magnitude \(reference\) in the first such warning\..*harm: false/);
  });

  it('rising: a raw loss rising for the whole loss window while the others fall', () => {
    const recs = records(600, () => ({ recon: 1, kl: 1 }), (s) => ({ recon: 0.1 * (1 + s / 300), kl: 5 / (1 + s / 100) }));
    const { raised } = run(recs);
    expect(kinds(raised)).toEqual(['rising:recon']);
    expect(raised[0].step).toBe(499);
    expect(raised[0].evidence.change).toBeGreaterThan(1.1);
    expect(raised[0].evidence.othersChange).toBeLessThan(1 / 1.1);
    // both rising: no flag (nothing was traded)
    expect(run(records(600, () => ({ a: 1, b: 1 }), (s) => ({ a: 1 + s, b: 1 + s }))).raised).toEqual([]);
  });

  it('warnings are rate-limited per flag and term, skipped steps are ignored, and the summary counts every check', () => {
    const recs = records(3000, () => ({ res: 1, bc: 1 }), undefined, () => ({ res: 1, bc: 1e-4 }));
    recs[250].skipped = 'non-finite';
    const msgs: string[] = [];
    const m = new HarmMonitor({ warn: (x) => msgs.push(x) });
    m.open({ strategy: 'fixed', options: {}, terms: ['res', 'bc'], backend: 'cpu', gradients: 'shared', startedAt: '' });
    for (const r of recs) m.write(r);
    // first at step 199, then again after ≥ 1000 steps: 3 warnings in 3000 steps (a starved term is
    // not among the early check's flags: see test/harm-early.test.ts)
    expect(msgs.length).toBe(3);
    expect(msgs[0]).toMatch(/^step 199: /);
    const s = m.detector.summary;
    expect(s.length).toBe(1);
    expect(s[0].checks).toBeGreaterThan(100);
    expect(s[0].last.step).toBeGreaterThanOrEqual(2980);
  });

  it('many terms starved in one check: one warning line naming them, not one per term (a new user\'s T = 32 run)', () => {
    const names = Array.from({ length: 12 }, (_, i) => `t${i}`);
    // t0 drives the combined gradient; t1…t11 each about 0.01 % of it
    const recs = records(210, () => Object.fromEntries(names.map((n) => [n, 1])), undefined, () => Object.fromEntries(names.map((n, i) => [n, i === 0 ? 1 : 1e-4])));
    const warnings: string[] = [];
    const m = new HarmMonitor({ warn: (w) => warnings.push(w), early: false });
    m.open({ strategy: 'fixed', terms: names, options: {}, backend: 'cpu', gradients: 'shared', startedAt: '' });
    for (const r of recs) m.write(r);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^11 terms raised "starved" over steps 0–199 \("t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8" and 3 more\); the first: step 199: term "t1" is starved/);
    expect(m.detector.summary.map((x) => x.first.term)).toHaveLength(11);
    // three findings of a kind are still one line each
    const few = new HarmMonitor({ warn: (w) => warnings.push(w), early: false });
    few.open({ strategy: 'fixed', terms: names.slice(0, 4), options: {}, backend: 'cpu', gradients: 'shared', startedAt: '' });
    for (const r of records(210, () => ({ t0: 1, t1: 1, t2: 1, t3: 1 }), undefined, () => ({ t0: 1, t1: 1e-4, t2: 1e-4, t3: 1e-4 }))) few.write(r);
    expect(warnings.slice(1)).toHaveLength(3);
  });

  it('memory is bounded: the detector keeps max(window, lossWindow) steps', () => {
    const det = new HarmDetector({ window: 10, lossWindow: 20 });
    for (const r of records(5000, () => ({ a: 1, b: 1 }))) det.push(r);
    expect((det as unknown as { w: Float64Array }).w.length).toBe(20 * 2);
  });

  it('bad thresholds are errors naming the option', () => {
    expect(() => harmOptions({ window: 2 })).toThrow(/"window" got 2/);
    expect(() => harmOptions({ starvedShare: 1.5 })).toThrow(/"starvedShare"/);
    expect(() => harmOptions({ nope: 1 } as never)).toThrow(/"nope" is unknown/);
  });
});

describe('caveats in list()', () => {
  it('grad-magnitude, gradnorm and uncertainty carry a caveat with the paper\'s reason', () => {
    const by = Object.fromEntries(list().map((s) => [s.name, s]));
    expect(by['grad-magnitude'].caveats?.[0]).toMatch(/reference term.*Wang/);
    expect(by.gradnorm.caveats?.[0]).toMatch(/minWeight.*Chen/);
    expect(by.uncertainty.caveats?.[0]).toMatch(/1\/\(2L\).*Kendall/);
    expect(by.mgda.caveats).toBeUndefined();
  });
});
