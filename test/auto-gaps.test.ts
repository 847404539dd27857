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

const FIVE = { name: 'auto', trialSteps: 3, candidates: ['fixed', { name: 'fixed', weights: [10, 1, 0.1] }, 'db-mtl', 'mgda', 'softadapt'] };

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
    const r = loop({ name: 'auto', trialSteps: 2, candidates: ['fixed', { name: 'softadapt', variant: 'loss-weighted' }, 'mgda', 'pcgrad'] }, (t) => ({ ...t, t2: tf.sub(t.t2, 1e4) as tf.Scalar }));
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
    expect(r.warnings[0]).toMatch(/^loss-balancer: auto: at close\(\), after 4 steps, the strategy selection is still running: it needs 2 more step\(\) calls \(it lasts 6 steps from step 0, 3 per round\), so no winner was picked and training so far followed equal weights; lower "trialSteps" or train longer; close\(\) releases/);
    await r.trainer.close();
    expect(r.warnings).toHaveLength(1); // rate-limited: once per step count
    r.dispose();

    const s = loop(FIVE);
    s.steps(6);
    await s.trainer.close();
    expect(s.warnings).toEqual([]);
    expect(s.trainer.warnUnfinishedSelection('x')).toBe(false);
    s.dispose();
  });
});
