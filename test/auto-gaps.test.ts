/**
 * Gaps of the `auto` selection found in a new-user trial (issue 14): `auto` in `list()`, the honest
 * cost of a selection ended early or interrupted, the warning of a custom loop that stops during the
 * selection, and fitBalanced's History describing the winner's trajectory.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTO_OPTION_NAMES } from '../src/core/auto-config.js';
import { create, list } from '../src/core/registry.js';
import { summarize } from '../src/core/summary.js';
import { summarizeTournament } from '../src/core/tournament.js';
import type { BalancerSpec } from '../src/core/types.js';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';

beforeAll(() => initBackend('cpu'));

describe('auto in list()', () => {
  it('is listed as a selector with its summary, options and paper; create() explains it is not a strategy', () => {
    const all = list();
    const auto = all.find((s) => s.name === 'auto')!;
    expect(auto.kind).toBe('selector');
    expect(auto.options).toEqual([...AUTO_OPTION_NAMES]);
    expect(auto.options).toContain('trialSteps');
    expect(auto.paper).toMatch(/Jamieson & Talwalkar.*https:\/\/arxiv\.org\/abs\/1502\.07943/);
    expect(auto.summary).toMatch(/successive halving/);
    expect(all.map((s) => s.name)).toEqual([...all.map((s) => s.name)].sort((a, b) => a.localeCompare(b)));
    expect(() => create('auto')).toThrow(/"auto" is a strategy selector, not a strategy.*balancer: 'auto'/);
    // every other entry builds, as code that iterates list() expects
    for (const s of all.filter((x) => x.kind !== 'selector')) expect(create(s.name).name).toBe(s.name);
    expect(list().find((s) => s.name === 'gradnorm')!.options).toContain('alpha');
  });
});

/** A toy custom loop with `auto`; warnings collected. */
function loop(balancer: BalancerSpec, terms?: (t: Record<string, tf.Scalar>) => Record<string, tf.Scalar>) {
  const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 16 });
  const optimizer = tf.train.adam(0.02);
  const warnings: string[] = [];
  const trainer = new BalancedTrainer({
    terms: terms ? () => terms(toy.terms()) : toy.terms,
    variables: toy.variables,
    optimizer,
    balancer,
    harm: false,
    warn: (m) => warnings.push(m),
  });
  return {
    trainer,
    warnings,
    steps: (n: number) => {
      for (let i = 0; i < n; i++) trainer.step();
    },
    dispose: () => {
      optimizer.dispose();
      toy.dispose();
    },
  };
}

// growth: 1: rounds of equal length (3 steps), as the counts below are worked out; probation: 0:
// the halving rule's plan alone (test/auto-probation.test.ts counts a probation).
const FIVE = { name: 'auto', trialSteps: 3, growth: 1, probation: 0, candidates: ['fixed', { name: 'fixed', weights: [10, 1, 0.1] }, 'db-mtl', 'mgda', 'softadapt'] };

describe('the cost reports what was run', () => {
  it('interrupted: taken candidate and trainer steps, with the revised plan beside them', async () => {
    const r = loop(FIVE);
    r.steps(4); // round 1: 5 candidates × 3 steps; round 2 (3 left) has taken 1 of its 3 steps
    const t = r.trainer.tournament!;
    expect(t.phase).toBe('running');
    expect(t.cost).toMatchObject({ candidateSteps: 5 * 3 + 3, trainerSteps: 4, plannedCandidateSteps: 5 * 3 + 3 * 3, plannedTrainerSteps: 6 });
    expect(t.candidates.reduce((a, c) => a + c.steps, 0)).toBe(t.cost.candidateSteps);
    const line = summarizeTournament(t).split('\n').pop()!;
    expect(line).toMatch(/^auto cost so far: 18 candidate steps over 4 trainer steps, 5 copies of the variables \(.*\); the selection is still running \(planned: 24 candidate steps over 6 trainer steps, 2 more step\(\) calls\)/);
    r.steps(2);
    expect(r.trainer.tournament!.phase).toBe('done');
    expect(summarizeTournament(r.trainer.tournament!).split('\n').pop()).toMatch(/^auto cost: 24 candidate steps over 6 trainer steps, 5 copies/);
    await r.trainer.close();
    r.dispose();
  });

  it('ended early (a candidate fails): the plan shrinks at once and the summary counts the steps taken', async () => {
    // softadapt 'loss-weighted' needs non-negative losses: it fails at its first step.
    const r = loop({ name: 'auto', trialSteps: 2, probation: 0, candidates: ['fixed', { name: 'softadapt', variant: 'loss-weighted' }, 'mgda', 'pcgrad'] }, (t) => ({ ...t, t2: tf.sub(t.t2, 1e4) as tf.Scalar }));
    r.steps(1);
    const t = r.trainer.tournament!;
    expect(t.candidates[1].failed).toMatch(/non-negative/);
    // planned at the start: 4 × 2 + 3 × 2 = 14 candidate steps over 4 trainer steps; with 2 challengers left, one round
    expect(t.cost).toMatchObject({ candidateSteps: 3, trainerSteps: 1, plannedCandidateSteps: 6, plannedTrainerSteps: 2 });
    r.steps(1);
    const done = r.trainer.tournament!;
    expect(done.phase).toBe('done');
    expect(done.cost).toMatchObject({ candidateSteps: 6, trainerSteps: 2, plannedCandidateSteps: 6, plannedTrainerSteps: 2 });
    const text = summarize(r.trainer.history.records, r.trainer.history.meta, done);
    expect(text).toMatch(/\nauto cost: 6 candidate steps over 2 trainer steps, 4 copies/);
    await r.trainer.close();
    r.dispose();
  });
});

describe('a custom loop that stops during the selection is warned', () => {
  it('close() warns once, naming the step() calls the selection still needs; a finished selection does not warn', async () => {
    const r = loop(FIVE);
    r.steps(4);
    expect(r.warnings).toEqual([]); // stepping in the selection is normal
    await r.trainer.close();
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^loss-balancer: auto: at close\(\), after 4 steps, the strategy selection is still running: it needs 2 more step\(\) calls \(it lasts 6 steps from step 0, 3 in its first round\), so no winner was picked and training so far followed equal weights; pass totalSteps \(the run's planned step\(\) calls\) so that the selection fits the run, or lower "trialSteps", or train longer; the selection ends here with equal weights, the candidates' copies are released/);
    await r.trainer.close();
    expect(r.warnings).toHaveLength(1); // rate-limited: once per step count
    r.dispose();

    const s = loop(FIVE);
    s.steps(6);
    await s.trainer.close();
    // (the only warning may be the one-line notice that equal weights were kept, not about an unfinished selection)
    expect(s.warnings.filter((w) => !w.includes('auto kept equal weights'))).toEqual([]);
    expect(s.trainer.warnUnfinishedSelection('x')).toBe(false);
    s.dispose();
  });
});

/** Two outputs on one trunk, with a metric per output. */
function twoOutputs(): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 1, name: 'small', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 1, name: 'big', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [a, b] });
  model.compile({ optimizer: tf.train.adam(0.01), loss: ['meanSquaredError', 'meanSquaredError'], metrics: ['mae'] });
  return model;
}

describe("fitBalanced's History during an auto selection describes the winner", () => {
  it('equals, key by key, the History of the winner fitted alone; the selection epochs are marked; callbacks saw equal weights live', async () => {
    const x = tf.randomNormal([40, 3], 0, 1, 'float32', 11);
    const s = x.sum(1, true);
    const ys = [s.mul(0.01), s.square().mul(100)];
    // 30 training samples in batches of 8: 4 steps per epoch. The selection lasts 2 rounds of 3
    // steps: all of epoch 0 (its validation during the selection) and half of epoch 1.
    const args = { epochs: 3, batchSize: 8, validationSplit: 0.25, verbose: 0, seed: 1, harm: false } as const;
    // A score that ranks the candidates in the order it is called: the last live one wins each round.
    let calls = 0;
    const auto = { name: 'auto', trialSteps: 3, growth: 1, candidates: ['fixed', { name: 'fixed', weights: [3, 0.5] }, 'uncertainty', 'grad-magnitude'], score: () => -calls++ };
    const seen: number[] = [];
    const before = tf.memory().numTensors;
    const m1 = twoOutputs();
    const h1 = await fitBalanced(m1, x, ys, { ...args, balancer: auto, callbacks: { onEpochEnd: async (_e, logs) => void seen.push(logs!['alpha/big'] as number) } });
    const t = h1.trainer.tournament!;
    expect(t.winner).toBe('grad-magnitude');
    expect(t.cost.trainerSteps).toBe(6);
    expect(h1.selectionEpochs).toEqual([0, 1]);
    const m2 = twoOutputs();
    const h2 = await fitBalanced(m2, x, ys, { ...args, balancer: 'grad-magnitude' });
    expect(Object.keys(h1.history).sort()).toEqual(Object.keys(h2.history).sort());
    for (const k of Object.keys(h2.history)) expect(h1.history[k], k).toEqual(h2.history[k]);
    // the model holds the winner's values
    expect(m1.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(m2.getWeights().map((w) => Array.from(w.dataSync())));
    // live, epoch 0 (all in the selection) was equal weights' alpha 1; the returned History has the winner's
    expect(seen[0]).toBe(1);
    expect(h1.history['alpha/big'][0]).not.toBe(1);
    await h1.trainer.close();
    await h2.trainer.close();
    for (const m of [m1, m2]) {
      m.optimizer.dispose();
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(before); // no leak (metrics and validation of every candidate included)
    tf.dispose([x, s, ...ys]);
  });

  it('a fit that ends during the selection keeps equal weights, ends the selection, warns once and releases every copy by itself', async () => {
    const x = tf.randomNormal([24, 3], 0, 1, 'float32', 12);
    const s = x.sum(1, true);
    const ys = [s.mul(0.01), s.square().mul(100)];
    const warnings: string[] = [];
    const args = { epochs: 1, batchSize: 8, validationSplit: 0.25, verbose: 0, seed: 1, harm: false, warn: (w: string) => warnings.push(w) } as const;
    // Baseline: a plain fit of the same model, model and optimizer disposed, leaves nothing.
    const before = tf.memory().numTensors;
    const m0 = twoOutputs();
    await (await fitBalanced(m0, x, ys, args)).trainer.close();
    m0.optimizer.dispose();
    m0.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const m = twoOutputs();
    const h = await fitBalanced(m, x, ys, { ...args, balancer: { name: 'auto', trialSteps: 3, growth: 1, candidates: ['fixed', 'uncertainty', 'grad-magnitude', 'mgda'] } });
    // fitBalanced ended the selection: equal weights won, no candidate's copy outlives the call.
    const t = h.trainer.tournament!;
    expect(t.phase).toBe('done');
    expect(t.winner).toBe('equal');
    expect(t.reason).toMatch(/the run ended \(the end of fitBalanced\) before the selection finished: kept equal weights/);
    expect(t.cost.copies).toBe(4);
    expect(h.selectionEpochs).toEqual([0]);
    expect(h.history['alpha/big']).toEqual([1]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/at the end of fitBalanced, after 3 steps, the strategy selection is still running: it needs 3 more step\(\) calls/);
    m.dispose();
    m.optimizer.dispose();
    // nothing left before close(): the candidates' copies of the variables and optimizers are released
    expect(tf.memory().numTensors).toBe(before);
    await h.trainer.close();
    expect(warnings).toHaveLength(1);
    tf.dispose([x, s, ...ys]);
  });
});
