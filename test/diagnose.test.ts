import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainSynthetic } from '../bench/synthetic.js';
import { diagnose } from '../src/core/diagnose.js';
import type { StepRecord } from '../src/core/history.js';
import { useTestBackend } from './helpers.js';

/** Records with the given weight and gradient-norm functions of the step. */
function records(n: number, weight: (s: number) => Record<string, number>, grad?: (s: number) => Record<string, number>): StepRecord[] {
  return Array.from({ length: n }, (_, s) => {
    const w = weight(s);
    const loss = Object.fromEntries(Object.keys(w).map((k) => [k, 1]));
    const r: StepRecord = { step: s, loss, weight: w, weighted: { ...w }, total: Object.values(w).reduce((a, b) => a + b, 0) };
    if (grad) r.gradNorm = grad(s);
    return r;
  });
}

describe('diagnose on hand-made trajectories', () => {
  it('recommends the tail mean, expresses ratios against the smallest weight, and calls a settled run converged', () => {
    const recs = records(100, (s) => ({ recon_a: s < 50 ? 1 + s / 10 : 18.7, kl: 1 }), () => ({ recon_a: 0.05, kl: 1 }));
    const d = diagnose(recs);
    expect(d.reference).toBe('kl');
    expect(d.recommended.recon_a).toBeCloseTo(18.7, 6);
    expect(d.recommendedRelative.recon_a).toBeCloseTo(18.7, 6);
    expect(d.status).toBe('converged');
    expect(d.text).toContain('recon_a ended at 18.7× kl');
    expect(d.tailSteps).toEqual([80, 99]);
    const a = d.terms.find((t) => t.term === 'recon_a')!;
    expect(a.gradShareEnd).toBeCloseTo(0.05 / 1.05, 6);
    expect(a.weightedGradShareEnd).toBeCloseTo((18.7 * 0.05) / (18.7 * 0.05 + 1), 6);
    expect(String(d)).toBe(d.text);
  });

  it('tells oscillating from drifting weights', () => {
    const osc = diagnose(records(200, (s) => ({ a: s % 2 ? 3 : 1, b: 1 })));
    expect(osc.status).toBe('oscillating');
    expect(osc.recommended.a).toBeCloseTo(2, 6);
    expect(osc.terms[0].alphaTailSpread).toBeGreaterThan(0.4);
    const drift = diagnose(records(200, (s) => ({ a: Math.exp(s / 20), b: 1 })));
    expect(drift.status).toBe('drifting');
    expect(drift.text).toContain('still drifting');
  });

  it('a global rescaling of all weights is not movement', () => {
    const d = diagnose(records(100, (s) => ({ a: 2 * (1 + s), b: 1 + s })));
    expect(d.status).toBe('converged');
  });

  it('says when gradient norms are absent and uses weighted-loss shares', () => {
    const d = diagnose(records(50, () => ({ a: 1, b: 3 })));
    expect(d.hasGradNorms).toBe(false);
    expect(d.terms[0].gradShareEnd).toBeNull();
    expect(d.text).toContain('Gradient norms were not recorded');
    expect(d.terms[1].weightedLossShareEnd).toBeCloseTo(0.75, 6);
    expect(d.text).toContain('fixed weights');
  });

  it('skipped steps are left out; zero weights give no NaN', () => {
    const recs = records(40, () => ({ a: 0, b: 0 }), () => ({ a: 0, b: 0 }));
    recs[3].skipped = 'non-finite loss';
    recs[3].weight = { a: Number.NaN, b: Number.NaN };
    const d = diagnose(recs);
    expect(d.skipped).toBe(1);
    expect(d.text).not.toContain('NaN');
    for (const t of d.terms) {
      expect(Number.isFinite(t.ratio)).toBe(true);
      expect(Number.isFinite(t.cv)).toBe(true);
    }
  });

  it('judges stability on log-weights: a moving large weight is not "converged", the small constant reference not "oscillating"', () => {
    // big oscillates ±10% around 1000; ref is constant 1. Normalised by Σα (the old criterion) big looked
    // constant (≈ 0.999) and ref oscillated (1/(big+1) moves ±10%): the verdicts were swapped.
    const d = diagnose(records(200, (s) => ({ big: s % 2 ? 1100 : 900, ref: 1 })));
    const [big, ref] = d.terms;
    expect(big.status).toBe('oscillating');
    expect(big.cv).toBeCloseTo((Math.log(1100 / 900) / 2) * Math.sqrt(40 / 39), 9); // sample std of log α over the 40 tail steps
    expect(ref.status).toBe('converged');
    expect(ref.cv).toBe(0);
    // a large weight still rising ×e over the tail, beside a constant one: drifting, the constant one converged
    const up = diagnose(records(200, (s) => ({ big: 1e4 * Math.exp(s / 40), ref: 1 })));
    expect(up.terms[0].status).toBe('drifting');
    expect(up.terms[1].status).toBe('converged');
    // a large constant weight: converged, whatever its size
    expect(diagnose(records(100, (s) => ({ big: 1e6, small: 1 + 0.001 * (s % 2) }))).status).toBe('converged');
  });

  it('streaming (a function giving the records, read twice) gives the same diagnosis as the array', () => {
    const recs = records(333, (s) => ({ a: 2 + Math.sin(s / 7), b: 1 + s / 100, c: 0.5 }), (s) => ({ a: 1, b: 0.1 + s / 1000, c: 3 }));
    recs[17].skipped = 'non-finite loss';
    let calls = 0;
    const streamed = diagnose(() => {
      calls += 1;
      return (function* () {
        for (const r of recs) yield r;
      })();
    });
    const inMemory = diagnose(recs);
    expect(calls).toBe(2);
    expect(JSON.parse(JSON.stringify(streamed))).toEqual(JSON.parse(JSON.stringify(inMemory)));
    expect(streamed.text).toBe(inMemory.text);
  });

  it('reports the harm checks; the strategy floor comes from options.meta', () => {
    const recs = records(400, () => ({ big: 1e-3, small: 1.999 }), () => ({ big: 100, small: 0.1 }));
    const d = diagnose(recs, { meta: { strategy: 'gradnorm', options: { minWeight: 1e-3 } } });
    expect(d.harm.map((h) => `${h.first.kind}:${h.first.term}`)).toContain('pinned:big');
    expect(d.text).toMatch(/Harm checks .*\n  - pinned .*"big" is pinned at the strategy's floor/);
    expect(diagnose(recs, { harm: false }).harm).toEqual([]);
    expect(diagnose(records(50, () => ({ a: 1, b: 1 }))).text).toMatch(/Harm checks .*nothing found/);
  });

  it('rejects bad input with errors naming the fault', () => {
    expect(() => diagnose([])).toThrow(/no steps/);
    expect(() => diagnose(records(5, () => ({ a: 1 })), { tail: 0 })).toThrow(/"tail"/);
    expect(() => diagnose(records(5, () => ({ a: 1 })), { reference: 'kl' })).toThrow(/"reference".*kl.*terms are a/);
    const bad = records(5, () => ({ a: 1, b: 1 }));
    delete (bad[2].weight as Record<string, number>).b;
    expect(() => diagnose(bad)).toThrow(/record 2 .*"b"/);
  });
});

describe('diagnose on the synthetic task with a known ratio', () => {
  beforeAll(() => useTestBackend());
  const spec = { name: 'grad-magnitude', statistic: 'norm' } as const;

  it('the recommendation lands within ×1.5 of the known ratio (twin task, factor 20)', () => {
    const before = tf.memory().numTensors;
    const run = trainSynthetic(spec, { factor: 20, seed: 1, steps: 300, twin: true });
    expect(tf.memory().numTensors).toBe(before);
    const d = diagnose(run.records, { reference: 'b' });
    const ratio = d.recommended.a / d.recommended.b;
    expect(ratio).toBeGreaterThan(20 / 1.5);
    expect(ratio).toBeLessThan(20 * 1.5);
    expect(d.hasGradNorms).toBe(true);
    expect(d.text).toMatch(/a ended at \d+(\.\d+)?× b/);
  });

  it('retraining with the recommended fixed weights reaches the balanced run within 5%', () => {
    const balanced = trainSynthetic(spec, { factor: 20, seed: 1, steps: 300 });
    const d = diagnose(balanced.records);
    const fixed = trainSynthetic({ name: 'fixed', weights: d.recommended }, { factor: 20, seed: 1, steps: 300 });
    const equal = trainSynthetic('fixed', { factor: 20, seed: 1, steps: 300 });
    // lower is better: the fixed run's held-out error is at most 5% above the balanced run's
    expect(fixed.quality.total).toBeLessThanOrEqual(balanced.quality.total * 1.05);
    // and the advice matters: equal weights are clearly worse than either
    expect(equal.quality.total).toBeGreaterThan(balanced.quality.total * 1.2);
  });
});

describe('diagnose with a switched-off term', () => {
  it('expresses ratios against the smallest positive weight and names the term at 0', () => {
    const d = diagnose(records(30, () => ({ a: 4, b: 2, c: 0 })));
    expect(d.reference).toBe('b');
    expect(d.recommendedRelative.a).toBeCloseTo(2, 6);
    expect(d.text).toContain('a ended at 2× b');
    expect(d.text).toContain('Switched off at the end (alpha 0): c');
    const z = diagnose(records(30, () => ({ a: 4, b: 0 })), { reference: 'b' });
    expect(z.text).toContain("b's alpha ended at 0");
    expect(z.recommendedRelative.a).toBe(0);
  });
});
