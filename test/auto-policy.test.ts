/**
 * `auto` without a score (issue 24): every candidate is judged against equal weights on the same
 * held-out batches, a candidate that makes a term worse cannot win, harm flags disqualify, and the
 * trial length follows the run's length (`totalSteps`). The expected numbers below are worked by
 * hand from the definitions in src/train/auto.ts (compareWithEqual, trialStepsFor, roundLength).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareWithEqual, roundLength, trialStepsFor } from '../src/train/auto.js';
import { parseAuto } from '../src/core/auto-config.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import type { BalancerSpec } from '../src/core/types.js';
import { twoOutputModel, useTestBackend } from './helpers.js';

beforeAll(async () => {
  await useTestBackend();
});

const LN2 = Math.log(2);

describe('the default score: each term against equal weights on the same batches', () => {
  it('a gain counts up to ln 10, a loss counts T times (by hand)', () => {
    // term 0: half of equal weights' loss (d = ln 0.5); term 1: 10 % above (d = ln 1.1), no noise.
    const c = compareWithEqual([[1, 1.1], [1, 1.1]], [[2, 1], [2, 1]]);
    expect(c.perTerm[0]).toBeCloseTo(Math.log(0.5), 12);
    expect(c.perTerm[1]).toBeCloseTo(Math.log(1.1), 12);
    // mean over terms of (ln 0.5, 2 · ln 1.1) = (−0.693147 + 0.190620) / 2
    expect(c.score).toBeCloseTo((Math.log(0.5) + 2 * Math.log(1.1)) / 2, 12);
    expect(c.worst).toBeCloseTo(Math.log(1.1), 12); // no noise: the term's mean itself
    expect(c.upper).toBeCloseTo(c.score, 12);
  });

  it('crushing one term earns at most ln 10 of credit', () => {
    const c = compareWithEqual([[1e-6, 1], [1e-6, 1]], [[1, 1], [1, 1]]);
    expect(c.perTerm[0]).toBeCloseTo(Math.log(1e-6), 10);
    expect(c.score).toBeCloseTo(-Math.log(10) / 2, 12);
  });

  it('a term whose loss can be negative is compared by its relative difference', () => {
    // (−2 − (−1)) / (|−1| + 1e-12) = −1
    const c = compareWithEqual([[-2, 1]], [[-1, 1]]);
    expect(c.perTerm[0]).toBeCloseTo(-1, 9);
    expect(c.score).toBeCloseTo(-0.5, 9);
  });

  it('noise: the upper bound is the score plus twice its standard error over the steps', () => {
    // term 0 has d = (ln 0.5, ln 2): mean 0; term 1 has d = 0. Per-step scores ±ln2/2, sd = ln2/√2,
    // se = sd/√2 = ln2/2, upper = 0 + 2 · ln2/2 = ln 2; worst = max(0 − 2·se_0, 0) = 0.
    const c = compareWithEqual([[1, 1], [4, 1]], [[2, 1], [2, 1]]);
    expect(c.score).toBeCloseTo(0, 12);
    expect(c.upper).toBeCloseTo(LN2, 12);
    expect(c.worst).toBeCloseTo(0, 12);
  });
});

describe('the trial length follows the run', () => {
  const cfg = (totalSteps?: number) => ({ ...parseAuto({ name: 'auto', ...(totalSteps ? { totalSteps } : {}) })! });
  it('from totalSteps and the budget (by hand)', () => {
    // 16 candidates, eta 2: live 16, 9, 5, 3 over rounds of t, 2t, 4t, 8t: extra candidate steps
    // (15 + 8·2 + 4·4 + 2·8) t = 63 t ≤ 0.12 · 20000 = 2400 → t = 38; the selection spans 15 t.
    expect(trialStepsFor(16, cfg(20000), 2)).toBe(38);
    // 5000 steps: 600 / 63 = 9.5 → 9; 600 steps: 72 / 63 < 8, and 15 · 8 ≤ 300: the shortest trial, 8
    expect(trialStepsFor(16, cfg(5000), 2)).toBe(9);
    expect(trialStepsFor(16, cfg(600), 2)).toBe(8);
    // 100 steps: half the run holds 15 t ≤ 50 → t = 3
    expect(trialStepsFor(16, cfg(100), 2)).toBe(3);
    // 12 candidates: live 12, 7, 4, 3: (11 + 6·2 + 3·4 + 2·8) t = 51 t ≤ 0.12 · 20000 → 47
    expect(trialStepsFor(12, cfg(20000), 2)).toBe(47);
    // unknown length: 10
    expect(trialStepsFor(16, cfg(), 2)).toBe(10);
  });

  it('rounds grow by `growth`; a tournament saved without it has rounds of equal length', () => {
    expect([0, 1, 2, 3].map((r) => roundLength({ trialSteps: 10, growth: 2 }, r))).toEqual([10, 20, 40, 80]);
    expect([0, 1, 2].map((r) => roundLength({ trialSteps: 25 }, r))).toEqual([25, 25, 25]);
  });

  it('a trainer given totalSteps plans its selection inside the run, and the default schedule costs what the halving rule says', () => {
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: { name: 'auto', totalSteps: 20000 }, warn: () => undefined });
    trainer.step();
    const t = trainer.tournament!;
    expect(t.candidates).toHaveLength(16);
    expect(t.trialSteps).toBe(38);
    expect(t.growth).toBe(2);
    expect(t.totalSteps).toBe(20000);
    // 38·16 + 76·9 + 152·5 + 304·3 = 608 + 684 + 760 + 912 candidate steps over 38 + 76 + 152 + 304
    // steps, then a winning challenger's probation: min(0.4 × 20000 − 570, 4 × 570) = 2280 steps of
    // two candidates (equal weights and it)
    expect(t.cost.plannedCandidateSteps).toBe(2964 + 2 * 2280);
    expect(t.cost.plannedTrainerSteps).toBe(570 + 2280);
    trainer.close();
    optimizer.dispose();
    toy.dispose();
  });
});

describe('equal weights are kept when no candidate is better on every term', () => {
  function run(balancer: BalancerSpec, steps: number, warnings: string[] = []) {
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: (w) => warnings.push(w) });
    for (let i = 0; i < steps; i++) trainer.step();
    const t = trainer.tournament!;
    return { t, trainer, done: () => (trainer.close(), optimizer.dispose(), toy.dispose()) };
  }

  it('candidates that starve a term lose to equal weights, and one line names the option to pass', () => {
    const warnings: string[] = [];
    // each challenger turns one term almost off: that term's loss rises against equal weights'
    const candidates = ['fixed', { name: 'fixed', weights: [1e-4, 1, 1] }, { name: 'fixed', weights: [1, 1e-4, 1] }, { name: 'fixed', weights: [1, 1, 1e-4] }];
    const { t, done } = run({ name: 'auto', trialSteps: 8, growth: 1, candidates }, 16, warnings);
    expect(t.phase).toBe('done');
    expect(t.winner).toBe('equal');
    expect(t.reason).toMatch(/^kept equal weights: (every candidate let a term's held-out loss rise more than \+10 %|no candidate's held-out losses beat equal weights')/);
    const notice = warnings.filter((w) => w.includes('auto kept equal weights'));
    expect(notice).toHaveLength(1);
    expect(notice[0]).toMatch(/pass score: \(\) => number \(BalancedTrainer\) or monitor: 'val_…' \(fitBalanced\)/);
    done();
  });

  it('a challenger that raises a harm flag equal weights do not raise is disqualified, with the flag named', () => {
    // bounds.min clamps t0's weight every step: `pinned` on t0 (equal weights are never clamped)
    const candidates = ['fixed', { name: 'fixed', label: 'clamped', weights: [1e-3, 1, 1], bounds: { min: 0.5 } }, 'softadapt', 'mgda'];
    const { t, done } = run({ name: 'auto', trialSteps: 8, growth: 1, candidates }, 16);
    const c = t.candidates.find((x) => x.label === 'clamped')!;
    expect(c.disqualified).toMatch(/^round 1: pinned on t0/);
    expect(c.droppedAfter).toBe(0);
    expect(t.winner).not.toBe('clamped');
    done();
  });

  it('close() during the selection ends it with equal weights; the trainer goes on training with them', () => {
    const warnings: string[] = [];
    const { t, trainer, done } = run({ name: 'auto', trialSteps: 5, candidates: ['fixed', 'mgda', 'softadapt', 'db-mtl'] }, 3, warnings);
    expect(t.phase).toBe('running');
    trainer.endSelection('close()');
    // trainer.tournament is a copy taken at each read: read it again
    const after = trainer.tournament!;
    expect(t.phase).toBe('running');
    expect(after.phase).toBe('done');
    expect(after.winner).toBe('equal');
    expect(trainer.balancer.name).toBe('fixed');
    const r = trainer.step();
    expect(r.candidates).toBeUndefined();
    expect(Object.values(r.weights)).toEqual([1, 1, 1]);
    expect(warnings.some((w) => /the selection ends here with equal weights/.test(w))).toBe(true);
    done();
  });
});

describe('totalSteps as a trainer option', () => {
  it("reaches auto unless its spec names one, and a bad value names the option", () => {
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const make = (balancer: BalancerSpec, totalSteps?: unknown) =>
      new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: () => undefined, ...(totalSteps !== undefined ? { totalSteps: totalSteps as number } : {}) });
    const a = make('auto', 20000);
    a.step();
    expect(a.tournament!.totalSteps).toBe(20000);
    expect(a.tournament!.trialSteps).toBe(38);
    a.close();
    const b = make({ name: 'auto', totalSteps: 600 }, 20000);
    b.step();
    expect(b.tournament!.totalSteps).toBe(600);
    b.close();
    expect(() => make('auto', 0)).toThrow(/option "totalSteps" got 0; must be an integer >= 1/);
    expect(() => make('fixed', 2.5)).toThrow(/totalSteps/);
    optimizer.dispose();
    toy.dispose();
  });
});

describe("messages a new user's trial found unclear", () => {
  it('a fit whose run stops before the planned selection end names the early stop, not totalSteps', () => {
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const warnings: string[] = [];
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: 'auto', totalSteps: 400, warn: (w) => warnings.push(w) });
    for (let i = 0; i < 5; i++) trainer.step();
    trainer.endSelection('the end of fitBalanced');
    expect(warnings[0]).toMatch(/the run stopped at step 5 of the 400 planned \(early stopping, stopTraining, or a loop that ended early\)/);
    expect(warnings[0]).not.toMatch(/pass totalSteps/);
    trainer.close();
    optimizer.dispose();
    toy.dispose();
  });

  it('the summary names the default score as it is computed', async () => {
    const { summarizeTournament } = await import('../src/core/tournament.js');
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: { name: 'auto', trialSteps: 2, candidates: ['fixed', 'mgda'] }, warn: () => undefined });
    trainer.step();
    expect(summarizeTournament(trainer.tournament!)).toMatch(/mean over terms of log\(L_i \/ L_i of equal weights\) on the same held-out batches, a gain capped at ln 10, a loss counted T times/);
    trainer.close();
    optimizer.dispose();
    toy.dispose();
  });
});

describe("a second new user's trial (fitDatasetBalanced on a generator)", () => {
  it('a selection ended early moves equal weights\' trial records into history.records, as a finished one moves the winner\'s', () => {
    const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 32 });
    const optimizer = tf.train.adam(0.02);
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: 'auto', warn: () => undefined });
    for (let i = 0; i < 5; i++) trainer.step();
    expect(trainer.history.records).toHaveLength(0); // while it runs: history.trials
    trainer.endSelection('the end of fitDatasetBalanced');
    expect(trainer.history.records.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    expect(trainer.history.records.every((r) => r.candidate === 'equal')).toBe(true);
    trainer.close();
    optimizer.dispose();
    toy.dispose();
  });

  it("auto on a dataset of unknown size without batchesPerEpoch warns at the start, naming what to pass", async () => {
    const { fitDatasetBalanced } = await import('../src/train/fit-dataset.js');
    const model = twoOutputModel(4);
    const ds = tf.data.generator(function* () {
      for (let i = 0; i < 4; i++) yield tf.tidy(() => ({ xs: tf.randomNormal([8, 3], 0, 1, 'float32', i), ys: { a: tf.zeros([8, 1]), b: tf.ones([8, 1]) } }));
    });
    const warnings: string[] = [];
    const hist = await fitDatasetBalanced(model, ds as never, { epochs: 1, verbose: 0, balancer: 'auto', warn: (w: string) => warnings.push(w) } as never);
    expect(warnings[0]).toMatch(/fitDatasetBalanced: balancer 'auto' cannot size its selection to this run: the dataset's size is unknown \(a generator\?\) and "batchesPerEpoch" is not given/);
    expect(hist.trainer.history.records).toHaveLength(4);
    await hist.trainer.close();
    model.optimizer.dispose();
    model.dispose();
  });
});
