/**
 * `auto`'s probation (issue 24): under the default score, a challenger that wins the selection
 * trains on beside equal weights until `probation × totalSteps`, and takes over only if it still
 * beats equal weights then; otherwise the run continues from equal weights' copy.
 *
 * The harm that only shows late is built in: a test strategy ("late-harm") that balances the terms
 * like a good fixed weighting for its first updates, then drops every term but the last one. The
 * expected outcomes follow from the rule's definition (src/train/auto.ts, endRound): the fallback
 * run must equal a plain equal-weights run value for value, because it IS equal weights' copy.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStrategy, register, unregister, type Strategy } from '../src/index.js';
import { summarizeTournament } from '../src/core/tournament.js';
import { parseAuto } from '../src/train/auto.js';
import { renderReport } from '../src/viz/report.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer, type TrainerState } from '../src/train/trainer.js';
import type { BalancerSpec } from '../src/core/types.js';
import { useTestBackend } from './helpers.js';

/**
 * Weights [10, 10, 10] for its first `GOOD` updates (with plain SGD on terms that share their
 * optimum, a larger step on every term: it beats equal weights on each), then [0, 0, 30] (the first
 * two heads stop learning and the trunk moves to serve the third alone).
 */
const GOOD = 8;
const LATE = 30;
const lateHarm: Strategy<Record<string, never>, { calls: number }> = {
  name: 'late-harm',
  summary: 'a good weighting that turns harmful (test strategy)',
  options: getStrategy('fixed').options as never,
  needs: () => ({ gradients: 'none' }),
  init: () => ({ calls: 0 }),
  update: (_o, s, input) => ({
    weights: input.losses.map((_, i) => (s.calls < GOOD ? 10 : i === input.losses.length - 1 ? LATE : 0)),
    state: { calls: s.calls + 1 },
  }),
};

/** Equal weights for its first 6 updates (a score of exactly 0), then [10, 10, 10] (better on every term). */
const lateGood: Strategy<Record<string, never>, { calls: number }> = {
  name: 'late-good',
  summary: 'equal weights, then a larger step (test strategy)',
  options: getStrategy('fixed').options as never,
  needs: () => ({ gradients: 'none' }),
  init: () => ({ calls: 0 }),
  update: (_o, s, input) => ({ weights: input.losses.map(() => (s.calls < 6 ? 1 : 10)), state: { calls: s.calls + 1 } }),
};

beforeAll(async () => {
  await useTestBackend();
  register(lateHarm);
  register(lateGood);
});
afterAll(() => {
  unregister(lateHarm.name);
  unregister(lateGood.name);
});

interface Run {
  trainer: BalancedTrainer;
  values(): number[][];
  steps(n: number): void;
  dispose(): void;
  warnings: string[];
}

function setup(balancer: BalancerSpec): Run {
  const toy = makeToyProblem({ scales: [1, 1, 1], seed: 5, samples: 32 });
  const optimizer = tf.train.sgd(0.01);
  const warnings: string[] = [];
  const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: (m) => warnings.push(m) });
  return {
    trainer,
    warnings,
    values: () => toy.variables.map((v) => Array.from(v.dataSync())),
    steps(n) {
      for (let i = 0; i < n; i++) trainer.step();
    },
    dispose() {
      optimizer.dispose();
      toy.dispose();
    },
  };
}

const TOTAL = 60;
const auto = (extra: Record<string, unknown> = {}): BalancerSpec => ({ name: 'auto', trialSteps: 6, totalSteps: TOTAL, candidates: ['late-harm'], ...extra }) as BalancerSpec;

describe('auto probation', () => {
  it('a challenger that harms a term after the selection falls back to equal weights, value for value', async () => {
    const before = tf.memory().numTensors;
    const run = setup(auto());
    run.steps(TOTAL);
    const t = run.trainer.tournament!;
    // one round of 6 steps (two candidates), then the probation until 0.4 × 60 = 24
    expect(t.rounds.map((r) => r.step)).toEqual([6, 24]);
    expect(t.probation).toEqual({ candidate: 'late-harm', round: 1, steps: 18, outcome: 'fell back' });
    expect(t.winner).toBe('equal');
    expect(t.reason).toMatch(/late-harm won the selection at step 6, but not its probation beside equal weights \(steps 6–24\): its score [\d.]+ \(\+ 2 standard errors: [\d.]+\) no longer beats equal weights. 0 beyond the noise \(its losses against equal weights., geometric means over steps 15–24: t0 \+\d+ %, t1 \+\d+ %, t2 /);
    expect(run.warnings.filter((w) => w.includes('over its probation'))).toHaveLength(1);
    expect(run.trainer.balancer.name).toBe('fixed');
    const text = summarizeTournament(t);
    expect(text).toMatch(/candidate\s+round 1\s+probation\s+status/);
    expect(text).toMatch(/\nlate-harm .* fell behind in probation\n/);
    expect(text).toMatch(/\nauto kept equal weights: late-harm won the selection/);
    expect(text).toMatch(/\nauto cost: 48 candidate steps over 24 trainer steps/);
    const html = await renderReport({ meta: run.trainer.history.meta, records: run.trainer.history.records, tournament: t, tornLastLine: false }, { diagnosis: null });
    expect(html).toContain('<th class="num">probation</th>');
    expect(html).toContain('fell behind in probation');
    const plain = setup('fixed');
    plain.steps(TOTAL);
    expect(run.values()).toEqual(plain.values());
    plain.dispose();
    run.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a challenger that keeps winning takes over at the end of its probation', () => {
    const run = setup(auto({ candidates: [{ name: 'fixed', weights: [10, 10, 10] }] }));
    run.steps(30);
    const t = run.trainer.tournament!;
    expect(t.probation?.outcome).toBe('kept');
    expect(t.winner).toBe('fixed[weights=[10,10,10]]');
    expect(t.reason).toMatch(/at the end of its probation beside equal weights \(steps 6–24\)/);
    expect(run.trainer.balancer.name).toBe('fixed');
    expect(run.trainer.history.last?.weight).toEqual({ t0: 10, t1: 10, t2: 10 });
    run.dispose();
  });

  it('probation: 0 hands over right after the selection (and the harm then stays)', () => {
    const run = setup(auto({ probation: 0 }));
    run.steps(TOTAL);
    const t = run.trainer.tournament!;
    expect(t.probation).toBeUndefined();
    expect(t.winner).toBe('late-harm');
    expect(t.rounds.map((r) => r.step)).toEqual([6]);
    run.dispose();
  });

  it('without totalSteps the probation lasts 4 times the selection; with it, at most that long; the plan counts it', () => {
    const run = setup(auto({ totalSteps: undefined }));
    run.steps(1);
    // selection 6 steps + probation 24: planned 30 trainer steps, 6 + 2 × 24 candidate steps
    expect(run.trainer.tournament!.cost.plannedTrainerSteps).toBe(30);
    expect(run.trainer.tournament!.cost.plannedCandidateSteps).toBe(12 + 48);
    run.steps(29);
    const t = run.trainer.tournament!;
    expect(t.probation?.steps).toBe(24);
    expect(t.phase).toBe('done');
    expect(t.cost.candidateSteps).toBe(60);
    run.dispose();
    // 0.4 × 1000 = 400 would be the end; 4 × 6 = 24 steps is the cap
    const long = setup(auto({ totalSteps: 1000 }));
    long.steps(7);
    expect(long.trainer.tournament!.probation?.steps).toBe(24);
    long.dispose();
  });

  it('with your score there is no probation', () => {
    const run = setup(auto({ score: () => 0 }));
    run.steps(8);
    expect(run.trainer.tournament!.probation).toBeUndefined();
    expect(run.trainer.tournament!.phase).toBe('done');
    run.dispose();
  });

  it('a state saved mid-probation resumes bit-exactly; a damaged probation field is named', () => {
    const whole = setup(auto());
    whole.steps(TOTAL);
    const part = setup(auto());
    part.steps(15);
    expect(part.trainer.tournament!.probation?.outcome).toBeUndefined();
    const saved = JSON.parse(JSON.stringify(part.trainer.state())) as TrainerState;
    const values = part.values();
    part.dispose();
    const resumed = setup(auto());
    resumed.trainer.load(saved);
    // the variables come back from the checkpoint file in a real resume; here by hand
    resumed.trainer.variables.forEach((v, i) => v.assign(tf.tensor(values[i], v.shape)));
    resumed.steps(TOTAL - 15);
    expect(resumed.values()).toEqual(whole.values());
    expect(resumed.trainer.tournament!.probation).toEqual(whole.trainer.tournament!.probation);

    const fresh = setup(auto());
    const bad = (f: (s: { auto: { tournament: { probation: Record<string, unknown> } } }) => void) => {
      const s = JSON.parse(JSON.stringify(saved));
      f(s);
      return () => fresh.trainer.load(s);
    };
    expect(bad((s) => (s.auto.tournament.probation.candidate = 'equal'))).toThrow(/auto\.tournament\.probation\.candidate.*must be the label of a challenger/);
    expect(bad((s) => (s.auto.tournament.probation.round = 0))).toThrow(/auto\.tournament\.probation\.round.*must be the running round \(1\)/);
    expect(bad((s) => (s.auto.tournament.probation.steps = 0))).toThrow(/auto\.tournament\.probation\.steps/);
    expect(bad((s) => (s.auto.tournament.probation.outcome = 'kept'))).toThrow(/auto\.tournament\.probation\.outcome.*must be absent/);
    expect(fresh.trainer.stepCount).toBe(0);
    fresh.dispose();
    whole.dispose();
    resumed.dispose();
  });

  it('a challenger that beats equal weights in the last round only is not picked, and the reason says so', () => {
    // rounds of 6 and 12 steps: late-good scores exactly 0 in round 1, then wins round 2 beyond the noise
    const run = setup(auto({ totalSteps: 200, candidates: ['late-good', { name: 'fixed', weights: [0, 0, 1] }, { name: 'fixed', weights: [0, 1, 0] }] }));
    run.steps(18);
    const t = run.trainer.tournament!;
    expect(t.candidates.find((c) => c.label === 'late-good')!.scores[0]).toBe(0);
    expect(t.winner).toBe('equal');
    expect(t.reason).toMatch(/^kept equal weights: the best, late-good, beat equal weights' held-out losses beyond the noise in the last round only \(score -[\d.]+, \+ 2 standard errors -[\d.]+; the round before: 0\); a winner must be below equal weights' 0 in the last two rounds$/);
    expect(run.warnings.some((w) => w.includes('beyond the noise, in its last two rounds, no term more than +10 % worse'))).toBe(true);
    run.dispose();
  });

  it('option probation: a number from 0 to 1, else an error naming it', () => {
    expect(parseAuto({ name: 'auto' })!.probation).toBe(0.4);
    expect(parseAuto({ name: 'auto', probation: 0 })!.probation).toBe(0);
    for (const bad of [-0.1, 1.5, Number.NaN, '0.3', null]) {
      expect(() => parseAuto({ name: 'auto', probation: bad })).toThrow(/auto: option "probation" got .*allowed: a number from 0 to 1/);
    }
  });
});
