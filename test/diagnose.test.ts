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
