/**
 * `auto` strategy selection (issue 14, part 1): successive halving among candidates that start from
 * one state and see the same batches; the winner continues from its own trial state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize } from '../src/core/summary.js';
import { followedTrajectory } from '../src/core/tournament.js';
import { loadState, saveState } from '../src/node/checkpoint.js';
import { parseAuto } from '../src/train/auto.js';
import { resolveTermWeights } from '../strategies/fixed.js';
import { makeToyProblem, type ToyProblem } from '../src/train/toy.js';
import { BalancedTrainer, type TrainerState } from '../src/train/trainer.js';
import type { BalancerSpec } from '../src/core/types.js';
import { twoOutputModel, useTestBackend } from './helpers.js';

let dir: string;
beforeAll(async () => {
  await useTestBackend();
  dir = mkdtempSync(join(tmpdir(), 'lb-auto-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A toy run whose batch changes every step (a fixed, seeded row permutation of the data). */
interface Run {
  toy: ToyProblem;
  optimizer: tf.Optimizer;
  trainer: BalancedTrainer;
  /** Take `n` steps, each on the batch of its step number. */
  steps(n: number): void;
  values(): number[][];
  dispose(): void;
}

const AUTO = { name: 'auto', trialSteps: 3, candidates: ['fixed', { name: 'fixed', weights: [10, 1, 0.1] }, 'db-mtl', 'mgda', 'softadapt'] };

function setup(balancer: BalancerSpec, seed = 3): Run {
  const toy = makeToyProblem({ scales: [1, 10, 100], seed, samples: 32 });
  const optimizer = tf.train.adam(0.02);
  // A mask per step picks half of the rows: the "batch" of that step.
  let k = 0;
  const masks = Array.from({ length: 64 }, (_, s) => tf.tidy(() => tf.keep(tf.cast(tf.greater(tf.randomUniform([32, 1], 0, 1, 'float32', 1000 + s), 0.5), 'float32'))));
  const base = toy.terms;
  const terms = () => {
    const t = base();
    // Scale each term by this batch's share of rows (a cheap batch dependence, same for every candidate).
    const f = tf.mean(masks[k]).add(0.5);
    return Object.fromEntries(Object.entries(t).map(([n, v]) => [n, tf.mul(v, f) as tf.Scalar]));
  };
  const trainer = new BalancedTrainer({ terms, variables: toy.variables, optimizer, balancer, warn: () => undefined });
  return {
    toy,
    optimizer,
    trainer,
    steps(n) {
      for (let i = 0; i < n; i++) {
        k = trainer.stepCount;
        trainer.step();
      }
    },
    values: () => toy.variables.map((v) => Array.from(v.dataSync())),
    dispose() {
      optimizer.dispose();
      toy.dispose();
      masks.forEach((m) => m.dispose());
    },
  };
}

describe('auto: options', () => {
  it('parses the name and the object form, fills defaults, and names a bad option', () => {
    expect(parseAuto('fixed')).toBeNull();
    const cfg = parseAuto('auto')!;
    // The trial length is derived at the first step (trialStepsFor), unless given.
    expect(cfg.trialSteps).toBeUndefined();
    expect(cfg.maxWorse).toBe(0.1);
    expect(cfg.budget).toBe(0.12);
    expect(cfg.grid).toEqual([0.1, 1, 10]);
    expect(cfg.mode).toBe('min');
    expect(() => parseAuto({ name: 'auto', trialStep: 3 })).toThrow(/trialStep/);
    expect(() => parseAuto({ name: 'auto', trialSteps: 0 })).toThrow(/trialSteps/);
    expect(() => parseAuto({ name: 'auto', mode: 'up' })).toThrow(/mode/);
    expect(() => parseAuto({ name: 'auto', candidates: ['auto'] })).toThrow(/candidates/);
    expect(() => parseAuto({ name: 'auto', window: 9, trialSteps: 3 })).toThrow(/window/);
  });
});

describe('auto: selection', () => {
  it('is deterministic for a seed (same tournament, same variables)', () => {
    const a = setup(AUTO);
    const b = setup(AUTO);
    a.steps(12);
    b.steps(12);
    expect(a.trainer.tournament).toEqual(b.trainer.tournament);
    expect(a.values()).toEqual(b.values());
    expect(a.trainer.tournament!.phase).toBe('done');
    a.dispose();
    b.dispose();
  });

  it('the winner continues from its own trial state: the run equals the winner trained alone from the start', () => {
    const a = setup(AUTO);
    a.steps(14);
    const t = a.trainer.tournament!;
    expect(t.phase).toBe('done');
    const spec = t.candidates.find((c) => c.label === t.winner)!.spec as BalancerSpec;
    const b = setup(spec);
    b.steps(14);
    // Bit-exact: same variables, same balancer state (its step count), same optimizer iteration count.
    expect(a.values()).toEqual(b.values());
    expect(a.trainer.balancer.name).toBe(b.trainer.balancer.name);
    expect(a.trainer.balancer.state()).toEqual(b.trainer.balancer.state());
    expect((a.optimizer as unknown as { iterations: number }).iterations).toBe(14);
    expect(a.trainer.stepCount).toBe(14);
    a.dispose();
    b.dispose();
  });

  it('a learning-rate schedule set on the user\'s optimizer during the selection reaches every candidate and survives the hand-over (Adam and SGD)', () => {
    for (const make of [() => tf.train.adam(0.02), () => tf.train.sgd(0.02)]) {
      const run = (balancer: BalancerSpec) => {
        const r = setup(balancer);
        r.optimizer.dispose();
        const optimizer = make();
        const trainer = new BalancedTrainer({ terms: () => r.toy.terms(), variables: r.toy.variables, optimizer, balancer, warn: () => undefined });
        for (let i = 0; i < 14; i++) {
          // a step schedule, as a Keras LearningRateScheduler callback would set it
          const lr = 0.02 * 0.5 ** Math.floor(i / 4);
          const o = optimizer as unknown as { learningRate: number; setLearningRate?: (x: number) => void };
          if (o.setLearningRate) o.setLearningRate(lr);
          else o.learningRate = lr;
          trainer.step();
        }
        return { r, optimizer, trainer };
      };
      const a = run({ ...AUTO, probation: 0 } as BalancerSpec);
      const t = a.trainer.tournament!;
      expect(t.phase).toBe('done');
      const b = run(t.candidates.find((c) => c.label === t.winner)!.spec as BalancerSpec);
      expect(a.r.values()).toEqual(b.r.values());
      // the user's optimizer keeps the rate the schedule set last, not the one at the selection's start
      expect((a.optimizer as unknown as { learningRate: number }).learningRate).toBe(0.02 * 0.5 ** 3);
      for (const x of [a, b]) {
        x.optimizer.dispose();
        x.r.dispose();
      }
    }
  });

  it('every candidate starts from the same state: their first-step losses are equal', () => {
    const a = setup(AUTO);
    a.steps(1);
    const first = a.trainer.history.trials.filter((r) => r.step === 0);
    expect(first.length).toBe(AUTO.candidates.length);
    for (const r of first) expect(r.loss).toEqual(first[0].loss);
    a.dispose();
  });

  it('equal weights always reach the end, and a score the user gives is used (mode max)', () => {
    let calls = 0;
    const a = setup({ ...AUTO, score: () => ++calls % 5, mode: 'max' });
    a.steps(12);
    const t = a.trainer.tournament!;
    expect(t.score).toBe('user');
    expect(calls).toBeGreaterThan(0);
    const equal = t.candidates[0];
    expect(equal.label).toBe('equal');
    expect(equal.droppedAfter).toBeUndefined();
    expect(equal.scores.length).toBe(t.rounds.length);
    // The winner's last score is the best of the last round (higher is better here), among the
    // candidates not disqualified by a harm flag.
    const last = t.rounds[t.rounds.length - 1].scores;
    const out = new Set(t.candidates.filter((c) => c.disqualified).map((c) => c.label));
    expect(last[t.winner!]).toBe(Math.max(...Object.entries(last).filter(([l]) => !out.has(l)).map(([, v]) => v ?? -Infinity)));
    a.dispose();
  });

  it('default candidates: equal, the measured grid and the families, within maxCandidates', () => {
    const a = setup({ name: 'auto', trialSteps: 2, maxCandidates: 10 });
    a.steps(1);
    const t = a.trainer.tournament!;
    const labels = t.candidates.map((c) => c.label);
    expect(labels.length).toBe(10);
    expect(labels[0]).toBe('equal');
    expect(labels).toContain('mgda');
    expect(labels).toContain('softadapt');
    expect(labels.some((l) => l.startsWith('fixed['))).toBe(true);
    expect(Object.keys(t.gradNorms!)).toEqual(['t0', 't1', 't2']);
    expect(t.phase).toBe('running');
    expect(t.cost.copies).toBe(10);
    expect(t.cost.plannedCandidateSteps).toBeGreaterThan(10 * 2);
    a.dispose();
  });

  it('default candidates, three terms: the full list, unchanged by the de-duplication (none is a duplicate)', () => {
    // Pinned from the code before the de-duplication (same seed): 16 candidates, 825 planned steps
    // (the halving rule's; probation: 0).
    const a = setup({ name: 'auto', trialSteps: 25, growth: 1, probation: 0 });
    a.steps(1);
    const t = a.trainer.tournament!;
    expect(t.candidates.map((c) => c.label)).toEqual([
      'equal', 'fixed[t0=23,t1=1.96,t2=1]', 'fixed[t0=23]', 'fixed[t1=1.96]', 'fixed[t0=2.3]', 'fixed[t1=0.196]', 'fixed[t2=0.1]',
      'fixed[t0=230]', 'fixed[t1=19.6]', 'fixed[t2=10]', 'softadapt', 'uncertainty', 'db-mtl', 'grad-magnitude', 'mgda', 'pcgrad',
    ]);
    expect(t.cost.plannedCandidateSteps).toBe(825);
    a.dispose();
  });

  /** The effective weight vector of each fixed candidate (terms not named at 1), by label. */
  const fixedVectors = (t: { candidates: { label: string; spec: unknown }[] }, names: string[]) =>
    t.candidates
      .filter((c) => c.spec === 'fixed' || (c.spec as { name?: string }).name === 'fixed')
      .map((c) => JSON.stringify(resolveTermWeights('fixed', c.spec === 'fixed' ? undefined : (c.spec as { weights?: number[] }).weights, names)));

  it('default candidates, two terms: no two fixed candidates share a weight vector; a freed slot goes to the next grid point', () => {
    // A fresh toy per run: both measure the same gradient norms.
    const run = (balancer: BalancerSpec) => {
      const toy = makeToyProblem({ scales: [1, 30], seed: 4, samples: 16 });
      const optimizer = tf.train.adam(0.01);
      const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: () => undefined });
      trainer.step();
      const t = trainer.tournament!;
      optimizer.dispose();
      toy.dispose();
      return t;
    };
    // Before: "every term at b_i" ([21.3, 1]) and "t0 at b_0 × 1" ([21.3, 1]) were both kept:
    // 13 candidates, 675 planned candidate steps. Now the first of the two is kept (probation: 0:
    // the halving rule's plan alone).
    const t = run({ name: 'auto', trialSteps: 25, growth: 1, probation: 0 });
    const v = fixedVectors(t, ['t0', 't1']);
    expect(new Set(v).size).toBe(v.length);
    expect(t.candidates.map((c) => c.label)).toEqual([
      'equal', 'fixed[t0=21.3,t1=1]', 'fixed[t0=2.13]', 'fixed[t1=0.1]', 'fixed[t0=213]', 'fixed[t1=10]',
      'softadapt', 'uncertainty', 'db-mtl', 'grad-magnitude', 'mgda', 'pcgrad',
    ]);
    expect(t.cost.plannedCandidateSteps).toBe(650);
    // With room for two grid points, the duplicate no longer takes one of them.
    const capped = run({ name: 'auto', trialSteps: 25, maxCandidates: 9 });
    expect(capped.candidates.map((c) => c.label).slice(0, 3)).toEqual(['equal', 'fixed[t0=21.3,t1=1]', 'fixed[t0=2.13]']);
    expect(capped.candidates).toHaveLength(9);
  });

  it('user weights and user candidates equal to an earlier fixed candidate are dropped, the first kept', () => {
    const toy = makeToyProblem({ scales: [1, 30], seed: 4, samples: 16 });
    const optimizer = tf.train.adam(0.01);
    const candidates = ['fixed', { name: 'fixed', weights: { t1: 1 } }, { name: 'fixed', weights: [2, 1] }, { name: 'fixed', weights: { t0: 2 } }, { name: 'fixed', weights: [1, 3], label: 'mine' }, 'mgda'];
    const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: { name: 'auto', trialSteps: 2, candidates, weights: { t1: 3 } }, warn: () => undefined });
    trainer.step();
    expect(trainer.tournament!.candidates.map((c) => c.label)).toEqual(['equal', 'fixed[weights=[2,1]]', 'mine', 'mgda']);
    const eq = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer: { name: 'auto', trialSteps: 2, weights: [1, 1], grid: [] }, warn: () => undefined });
    eq.step();
    expect(eq.tournament!.candidates.map((c) => c.label)).not.toContain('user-weights');
    optimizer.dispose();
    toy.dispose();
  });

  it('a candidate whose step throws (softadapt on negative losses) is dropped, the others go on', () => {
    const toy = makeToyProblem({ scales: [1, 10], seed: 5, samples: 16 });
    const optimizer = tf.train.sgd(0.01);
    const terms = () => {
      const t = toy.terms();
      return { t0: t.t0, t1: tf.sub(t.t1, 1000) as tf.Scalar };
    };
    const warnings: string[] = [];
    const trainer = new BalancedTrainer({ terms, variables: toy.variables, optimizer, warn: (m) => void warnings.push(m), balancer: { name: 'auto', trialSteps: 2, candidates: ['fixed', { name: 'softadapt', variant: 'loss-weighted' }, 'mgda'] } });
    for (let i = 0; i < 6; i++) trainer.step();
    const sa = trainer.tournament!.candidates[1];
    expect(sa.failed).toMatch(/non-negative/);
    expect(trainer.tournament!.phase).toBe('done');
    // auto's notice when it keeps equal weights (captured here, not printed); none otherwise
    if (trainer.tournament!.winner === 'equal') expect(warnings.filter((w) => /auto kept equal weights/.test(w))).toHaveLength(1);
    optimizer.dispose();
    toy.dispose();
  });

  it('the console summary shows the tournament: scores, winner and cost', () => {
    const a = setup(AUTO);
    a.steps(12);
    const text = summarize(a.trainer.history.records, a.trainer.history.meta, a.trainer.tournament);
    // equal weights won the selection here: "auto kept equal weights: …" (else "auto picked <label>: …")
    expect(text).toMatch(/\nauto (picked \S+|kept equal weights): /);
    expect(text).toMatch(/auto cost: \d+ candidate steps/);
    expect(text).toMatch(/WINNER/);
    // The followed trajectory: one record per step (the winner's trial records, then the rest).
    expect(a.trainer.history.records.map((r) => r.step)).toEqual([...Array(12).keys()]);
    expect(followedTrajectory([...a.trainer.history.trials, ...a.trainer.history.records.filter((r) => !r.candidate)], a.trainer.tournament).length).toBe(12);
    a.dispose();
  });
});

describe('auto: resume and memory', () => {
  for (const at of [4, 10]) {
    it(`a run interrupted at step ${at} (${at === 4 ? 'during' : 'after'} the selection) resumes bit-exactly through a checkpoint file`, async () => {
      const total = 14;
      const a = setup(AUTO);
      a.steps(total);
      const b = setup(AUTO);
      b.steps(at);
      const path = join(dir, `auto-${at}.json`);
      await saveState(path, b.trainer, { optimizer: b.optimizer, variables: b.toy.variables });
      expect((b.trainer.state() as TrainerState).auto!.tournament.phase).toBe(at === 4 ? 'running' : 'done');
      b.dispose();
      const c = setup(AUTO);
      await loadState(path, c.trainer, { optimizer: c.optimizer, variables: c.toy.variables });
      c.steps(total - at);
      expect(c.values()).toEqual(a.values());
      expect(c.trainer.tournament).toEqual(a.trainer.tournament);
      expect(c.trainer.balancer.state()).toEqual(a.trainer.balancer.state());
      a.dispose();
      c.dispose();
    });
  }

  it('leaves no tensor behind (beyond a plain run): through the selection, after it, and when closed mid-selection', async () => {
    // Baseline: what a plain run of the same problem leaves (none, once the trainer's own leaks are fixed).
    let before = tf.memory().numTensors;
    const p = setup('fixed');
    p.steps(14);
    await p.trainer.close();
    p.dispose();
    const plain = tf.memory().numTensors - before;
    before = tf.memory().numTensors - plain;
    const a = setup(AUTO);
    a.steps(14);
    await a.trainer.close();
    a.dispose();
    expect(tf.memory().numTensors).toBe(before + 2 * plain);
    before = tf.memory().numTensors;
    const b = setup(AUTO);
    b.steps(4);
    await b.trainer.close();
    b.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + plain);
  });

  it('a state with a selection refuses to load into a trainer without auto', () => {
    const a = setup(AUTO);
    a.steps(2);
    const s = a.trainer.state();
    const b = setup('fixed');
    expect(() => b.trainer.load(s)).toThrow(/auto/);
    a.dispose();
    b.dispose();
  });
});

describe('auto: run config, sinks, report, TensorBoard', () => {
  it('a run config with strategy auto trains, logs every candidate and shows the tournament', async () => {
    const { validateRunConfig, runExample } = await import('../src/node/run.js');
    const { readJsonl } = await import('../src/node/sinks.js');
    const { readEvents } = await import('../src/node/tensorboard.js');
    const { readdirSync, readFileSync } = await import('node:fs');
    expect(() => validateRunConfig({ strategy: { name: 'auto', trialStep: 2 } })).toThrow(/trialStep/);
    const cfg = validateRunConfig({ strategy: { name: 'auto', trialSteps: 2, candidates: ['fixed', 'mgda', 'db-mtl', 'softadapt'] }, steps: 8, output: dir, backend: 'cpu' });
    const res = await runExample(cfg);
    expect(res.records.length).toBe(8);
    const written = readJsonl(res.files.trajectory, { candidates: true });
    expect(written.tournament?.phase).toBe('done');
    expect(written.records.filter((r) => r.candidate === 'mgda').length).toBeGreaterThan(0);
    const html = readFileSync(res.files.report, 'utf8');
    expect(html).toMatch(/Strategy selection \(auto\)/);
    expect(html).toMatch(/winner/);
    const subs = readdirSync(join(res.dir, 'auto'));
    expect(subs).toEqual(expect.arrayContaining(['equal', 'mgda', 'db-mtl', 'softadapt']));
    const ev = readdirSync(join(res.dir, 'auto', 'mgda')).find((f) => f.startsWith('events.'))!;
    const { events } = readEvents(join(res.dir, 'auto', 'mgda', ev));
    expect(events.some((e) => 'alpha/t0' in e.scalars)).toBe(true);
  });
});

describe('auto: fitBalanced', () => {
  it('fitBalanced with balancer auto trains a two-output LayersModel and ends with the winner', async () => {
    const { fitBalanced } = await import('../src/train/fit.js');
    const model = twoOutputModel();
    const x = tf.randomNormal([32, 3], 0, 1, 'float32', 4);
    const ya = tf.randomNormal([32, 1], 0, 1, 'float32', 5);
    const yb = tf.mul(tf.randomNormal([32, 1], 0, 1, 'float32', 6), 100);
    const out = await fitBalanced(model, x, [ya, yb], { balancer: { name: 'auto', trialSteps: 2, candidates: ['fixed', 'mgda', 'softadapt'] }, epochs: 3, batchSize: 8 });
    const t = out.trainer.tournament!;
    expect(t.phase).toBe('done');
    const spec = t.candidates.find((c) => c.label === t.winner)!.spec;
    expect(out.trainer.balancer.name).toBe(typeof spec === 'string' ? spec : spec.name);
    expect(() => new BalancedTrainer({ terms: () => ({ a: tf.scalar(1) }), optimizer: tf.train.sgd(0.1), balancer: { name: 'auto', monitor: 'val_loss' } })).toThrow(/monitor/);
    tf.dispose([x, ya, yb]);
    model.dispose();
  });
});
