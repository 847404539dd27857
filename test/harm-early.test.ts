/**
 * The early harm check (issue 24, item 4): a strategy whose default harms a problem of terms on very
 * different scales is reported within the first steps, naming the term at risk and what to use
 * instead (the strategy's caveat, src/core/caveats.ts), not after the 200-step window.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { HarmMonitor } from '../src/core/harm.js';
import type { BalancerSpec } from '../src/core/types.js';
import { useTestBackend } from './helpers.js';

beforeAll(async () => {
  await useTestBackend();
});

function run(balancer: BalancerSpec, steps: number, scales = [1, 1e6], harm?: object) {
  const toy = makeToyProblem({ scales, seed: 5, samples: 32 });
  const optimizer = tf.train.adam(0.01);
  const warnings: { step: number; text: string }[] = [];
  const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: (w) => warnings.push({ step: trainer.stepCount, text: w }), ...(harm ? { harm } : {}) });
  for (let i = 0; i < steps; i++) trainer.step();
  trainer.close();
  optimizer.dispose();
  toy.dispose();
  return warnings;
}

describe('early harm warnings', () => {
  it('gradnorm on terms 1e6 apart: the weight pinned at the floor is reported as soon as it sat there 20 steps, with the way out', () => {
    const w = run('gradnorm', 200);
    const early = w.filter((x) => x.text.startsWith('early warning'));
    expect(early.length, w.map((x) => `${x.step}: ${x.text.slice(0, 120)}`).join('\n')).toBeGreaterThanOrEqual(1);
    // the main check would report it at step 199 at the earliest
    expect(early[0].step).toBeLessThan(100);
    expect(early[0].text).toMatch(/^early warning, step \d+: the weight of term "t1" is pinned at the strategy's floor minWeight = 0\.001/);
    expect(early[0].text).toMatch(/Normalise the targets \(or the losses\) first, lower minWeight, or use a scale-free method/);
    // once per term and flag
    expect(new Set(early.map((x) => x.text.split(':')[0])).size).toBe(early.length);
  });

  it('nothing early for equal weights, nor with early: false', () => {
    expect(run('fixed', 40).filter((x) => x.text.startsWith('early warning'))).toEqual([]);
    expect(run('gradnorm', 40, [1, 1e6], { early: false }).filter((x) => x.text.startsWith('early warning'))).toEqual([]);
  });

  it("after auto hands the run over, warnings carry the winner's caveat and say what to do", () => {
    const msgs: string[] = [];
    const m = new HarmMonitor({ warn: (x) => msgs.push(x) });
    m.open({ strategy: 'auto', options: {}, terms: ['a', 'b'], backend: 'cpu', gradients: 'per candidate', startedAt: '' });
    m.pickedByAuto('gradnorm', 'gradnorm', 40, { minWeight: 1e-3 });
    // b's weight sits at GradNorm's floor from step 40 on
    for (let s = 40; s < 80; s++) m.write({ step: s, loss: { a: 1, b: 1 }, weight: { a: 1.999, b: 1e-3 }, weighted: { a: 1.999, b: 1e-3 }, total: 2 });
    expect(msgs.length).toBeGreaterThanOrEqual(1);
    expect(msgs[0]).toMatch(/^early warning, step \d+: the weight of term "b" is pinned at the strategy's floor minWeight = 0\.001/);
    expect(msgs[0]).toMatch(/Note on gradnorm \(minWeight\)/);
    expect(msgs[0]).toMatch(/\(auto picked gradnorm at step 40, judging the run's first 40 steps only: if this term matters, pass score \(or monitor in fitBalanced\) so that auto judges by your metric, or leave gradnorm out of its candidates\)$/);
  });

  it('a bad value names the option', () => {
    expect(() => new HarmMonitor({ early: 2 })).toThrow(/harm option "early" got 2/);
  });
});
